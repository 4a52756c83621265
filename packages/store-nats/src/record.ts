// What a topic's stream holds per message: the store's own fields in front of the opaque bytes, so that a
// delivery needs no NATS headers (whose parsing costs per message) and the broker's bytes are never parsed here.
//
//   version u8 (1) | id length u16 | id utf8 | tag length u16 (0xffff: no tag) | tag utf8 | data
//
// The delay stream holds the same fields after `deliverAt` (version 2 | deliverAt f64 | ...).
import { StoreError } from '@zbus/server';

const V_RECORD = 1;
const V_DELAYED = 2;
const NO_TAG = 0xffff;

export interface RecordFields {
  id: string;
  tag: string | undefined;
  data: Uint8Array;
}

function frame(version: number, extra: number, f: RecordFields): Buffer {
  const idLen = Buffer.byteLength(f.id, 'utf8');
  const tagLen = f.tag === undefined ? 0 : Buffer.byteLength(f.tag, 'utf8');
  if (idLen >= NO_TAG || tagLen >= NO_TAG) {
    throw new StoreError('ZBUS_ERR_BODY_TOO_LARGE', 'id or tag longer than 65534 bytes');
  }
  const buf = Buffer.allocUnsafe(1 + extra + 2 + idLen + 2 + tagLen + f.data.length);
  buf[0] = version;
  let pos = 1 + extra;
  buf.writeUInt16LE(idLen, pos);
  pos += 2;
  pos += buf.write(f.id, pos, 'utf8');
  buf.writeUInt16LE(f.tag === undefined ? NO_TAG : tagLen, pos);
  pos += 2;
  if (f.tag !== undefined) pos += buf.write(f.tag, pos, 'utf8');
  buf.set(f.data, pos);
  return buf;
}

export function encodeRecord(f: RecordFields): Uint8Array {
  return frame(V_RECORD, 0, f);
}

export function encodeDelayed(deliverAt: number, f: RecordFields): Uint8Array {
  const buf = frame(V_DELAYED, 8, f);
  buf.writeDoubleLE(deliverAt, 1);
  return buf;
}

function corrupt(why: string): StoreError {
  return new StoreError('ZBUS_ERR_STORE', `a stored message is not a zbus record (${why})`);
}

function fields(buf: Buffer, start: number): RecordFields {
  let pos = start;
  if (pos + 2 > buf.length) throw corrupt('short id');
  const idLen = buf.readUInt16LE(pos);
  pos += 2;
  if (pos + idLen + 2 > buf.length) throw corrupt('short id');
  const id = buf.toString('utf8', pos, pos + idLen);
  pos += idLen;
  const tagLen = buf.readUInt16LE(pos);
  pos += 2;
  let tag: string | undefined;
  if (tagLen !== NO_TAG) {
    if (pos + tagLen > buf.length) throw corrupt('short tag');
    tag = buf.toString('utf8', pos, pos + tagLen);
    pos += tagLen;
  }
  return { id, tag, data: buf.subarray(pos) };
}

function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeRecord(bytes: Uint8Array): RecordFields {
  const buf = view(bytes);
  if (buf[0] !== V_RECORD) throw corrupt(`version ${buf[0]}`);
  return fields(buf, 1);
}

export function decodeDelayed(bytes: Uint8Array): RecordFields & { deliverAt: number } {
  const buf = view(bytes);
  if (buf[0] !== V_DELAYED || buf.length < 9) throw corrupt(`version ${buf[0]}`);
  return { deliverAt: buf.readDoubleLE(1), ...fields(buf, 9) };
}
