import { crc32c } from './crc32c.js';
import { ViewCache } from './data-view.js';

// One record in a segment file (little-endian):
//
//   0      4      8              16             24     26     28    29    32     36
//   +------+------+--------------+--------------+------+------+-----+-----+------+----+-----+------+
//   | len  | crc  | offset (f64) | time (f64)   | idLn | tgLn | flg | pad | dLen | id | tag | data |
//   +------+------+--------------+--------------+------+------+-----+-----+------+----+-----+------+
//
// `len` is the whole record including this header; `crc` is CRC32C of bytes [8, len). Offsets and times are
// integers below 2^53, stored as doubles so that reading them needs no BigInt. flag bit 0: the tag is present.

export const HEADER_BYTES = 36;
/** Largest id or tag that fits its u16 length field. */
export const MAX_FIELD_BYTES = 0xffff;
const FLAG_TAG = 1;

export interface RecordFields {
  offset: number;
  timestamp: number;
  id: string;
  tag: string | undefined;
  data: Uint8Array;
}

export function encodedLength(idBytes: number, tagBytes: number, dataBytes: number): number {
  return HEADER_BYTES + idBytes + tagBytes + dataBytes;
}

/** Ids and tags up to this length are written by a JS loop when ASCII: a call into C++ costs more. */
const SHORT_FIELD = 128;

/** Writes an id or tag as UTF-8 at `pos`; returns its byte length. */
function writeField(buf: Buffer, s: string, pos: number): number {
  const n = s.length;
  if (n > SHORT_FIELD) return buf.write(s, pos, 'utf8');
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) return buf.write(s, pos, 'utf8');
    buf[pos + i] = c;
  }
  return n;
}

// The header is written through a DataView over the writer's slab, kept for the next record (the slab changes
// rarely): Buffer's write methods are each a property load and a call that is not inlined, about 1,100
// instructions per record more (callgrind).
const views = new ViewCache();

/** Write one record at `pos` of `buf` (which must have room); returns the record length. */
export function encodeRecord(
  buf: Buffer,
  pos: number,
  offset: number,
  timestamp: number,
  id: string,
  tag: string | undefined,
  data: Uint8Array,
): number {
  let p = pos + HEADER_BYTES;
  const idLen = writeField(buf, id, p);
  p += idLen;
  const tagLen = tag === undefined ? 0 : writeField(buf, tag, p);
  p += tagLen;
  buf.set(data, p);
  p += data.length;
  const len = p - pos;
  const v = views.of(buf);
  const o = buf.byteOffset + pos;
  v.setUint32(o, len, true);
  v.setFloat64(o + 8, offset, true);
  v.setFloat64(o + 16, timestamp, true);
  v.setUint16(o + 24, idLen, true);
  v.setUint16(o + 26, tagLen, true);
  v.setUint32(o + 28, tag === undefined ? 0 : FLAG_TAG, true); // the flag byte, then 3 bytes of padding
  v.setUint32(o + 32, data.length, true);
  v.setUint32(o + 4, crc32c(buf, pos + 8, p), true);
  return len;
}

/** Result of looking at the bytes at a position. */
export const CHECK_OK = 0;
/** Not enough bytes to hold the record (torn, or the read buffer is short). */
export const CHECK_SHORT = 1;
/** The header is insane or the checksum does not match. */
export const CHECK_CORRUPT = 2;

/**
 * Check the record at `pos`: its header is plausible, it lies within `[pos, end)` and its CRC matches.
 * `maxLen` bounds `len` so that a corrupt length cannot make us read gigabytes.
 */
export function checkRecord(buf: Buffer, pos: number, end: number, maxLen: number): number {
  if (end - pos < HEADER_BYTES) return CHECK_SHORT;
  const len = buf.readUInt32LE(pos);
  if (len < HEADER_BYTES || len > maxLen) return CHECK_CORRUPT;
  const idLen = buf.readUInt16LE(pos + 24);
  const tagLen = buf.readUInt16LE(pos + 26);
  const dLen = buf.readUInt32LE(pos + 32);
  if (HEADER_BYTES + idLen + tagLen + dLen !== len) return CHECK_CORRUPT;
  if (end - pos < len) return CHECK_SHORT;
  if (crc32c(buf, pos + 8, pos + len) !== buf.readUInt32LE(pos + 4)) return CHECK_CORRUPT;
  return CHECK_OK;
}

export function recordLength(buf: Buffer, pos: number): number {
  return buf.readUInt32LE(pos);
}
export function recordOffset(buf: Buffer, pos: number): number {
  return buf.readDoubleLE(pos + 8);
}
export function recordTimestamp(buf: Buffer, pos: number): number {
  return buf.readDoubleLE(pos + 16);
}
export function recordId(buf: Buffer, pos: number): string {
  const s = pos + HEADER_BYTES;
  return buf.toString('utf8', s, s + buf.readUInt16LE(pos + 24));
}
export function recordTag(buf: Buffer, pos: number): string | undefined {
  if ((buf[pos + 28]! & FLAG_TAG) === 0) return undefined;
  const s = pos + HEADER_BYTES + buf.readUInt16LE(pos + 24);
  return buf.toString('utf8', s, s + buf.readUInt16LE(pos + 26));
}

/**
 * Decode a checked record. The data is copied out of `buf`, a reused read buffer, unless `view`: `buf` is never
 * written again (a recently written batch), so the data is a view of it.
 */
export function decodeRecord(buf: Buffer, pos: number, view = false): RecordFields & { retry: number } {
  const idLen = buf.readUInt16LE(pos + 24);
  const tagLen = buf.readUInt16LE(pos + 26);
  const dLen = buf.readUInt32LE(pos + 32);
  const idStart = pos + HEADER_BYTES;
  const tagStart = idStart + idLen;
  const dataStart = tagStart + tagLen;
  let data: Buffer;
  if (view) data = buf.subarray(dataStart, dataStart + dLen);
  else {
    data = Buffer.allocUnsafe(dLen);
    buf.copy(data, 0, dataStart, dataStart + dLen);
  }
  return {
    offset: buf.readDoubleLE(pos + 8),
    timestamp: buf.readDoubleLE(pos + 16),
    id: buf.toString('utf8', idStart, tagStart),
    tag: (buf[pos + 28]! & FLAG_TAG) === 0 ? undefined : buf.toString('utf8', tagStart, dataStart),
    data,
    retry: 0,
  };
}
