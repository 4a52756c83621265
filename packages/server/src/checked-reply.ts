// A reply the broker builds from values it made or checked on the way in, written without checking them again.
import { encodeStartLine, Message, putAscii, putDecimal } from '@zbus/protocol';

/**
 * A reply whose header names are HTTP tokens other than the framing ones (content-length, transfer-encoding,
 * encoding) and whose values hold no CR, LF or NUL: every value is the broker's own (numbers, durability, a
 * request id it drew) or was checked on the way in (a stored topic's name, a decoded request id). Its body is
 * `text` as UTF-8 (or nothing, once emptied for a HEAD request). encodeMessage checks each name and value again,
 * character by character, which cost about as much as the rest of writing a produce's ack.
 */
export class CheckedReply extends Message {
  /** `body`: `text` as UTF-8 when the caller has it already. */
  constructor(
    status: number,
    readonly text: string,
    body?: Uint8Array,
  ) {
    super({ status, body: body ?? text });
  }
}

/** The whole reply as text: the head byte for byte as encodeHead makes it, then the body. */
export function checkedText(reply: CheckedReply): string {
  let s =
    reply.status === 200 && reply.httpVersion === '1.1' ? 'HTTP/1.1 200 OK\r\n' : encodeStartLine(reply);
  const h = reply.headers;
  for (const k in h) s += `${k}: ${h[k]}\r\n`;
  if (h.connection === undefined) s += 'connection: Keep-Alive\r\n';
  const n = reply.body.length;
  return n === 0 ? `${s}content-length: 0\r\n\r\n` : `${s}content-length: ${n}\r\n\r\n${reply.text}`;
}

/** The bytes of a produce's ack up to its offset's value, for the topic and durability they were made for. */
export interface AckHead {
  readonly topic: string;
  readonly durable: string;
  readonly bytes: Uint8Array;
}

/** The header names of a produce's ack (storedAck, then the produce command and the ticket), in their order. */
const ACK_KEYS = ['topic', 'durable', 'offset', 'id'];
const ID_LINE = Buffer.from('\r\nid: ', 'latin1');
const ACK_END = Buffer.from('\r\nconnection: Keep-Alive\r\ncontent-length: ', 'latin1');

/**
 * checkedText's bytes of a produce's ack written into `out` at `at`, with its status line, topic and durability
 * copied from `kept.head` (made again when they change): only the offset, id, length and time are written per
 * ack, and no string is built (the acks of a turn joined as one string were a sixth of the broker's garbage per
 * produce). Returns where the bytes end, or -1 for any other reply (another status or header), a value that is
 * not ASCII, or no room: then write checkedText's string.
 */
export function writeAck(
  reply: CheckedReply,
  kept: { head: AckHead | undefined },
  out: Uint8Array,
  at: number,
): number {
  if (reply.status !== 200 || reply.httpVersion !== '1.1') return -1;
  const h = reply.headers;
  let n = 0;
  for (const k in h) if (k !== ACK_KEYS[n++]) return -1;
  if (n !== ACK_KEYS.length) return -1;
  const topic = h.topic as string;
  const durable = h.durable as string;
  let head = kept.head;
  if (head === undefined || head.topic !== topic || head.durable !== durable) {
    head = {
      topic,
      durable,
      bytes: Buffer.from(`HTTP/1.1 200 OK\r\ntopic: ${topic}\r\ndurable: ${durable}\r\noffset: `),
    };
    kept.head = head;
  }
  const offset = h.offset as string;
  const id = h.id as string;
  const body = reply.body;
  // 20: the body length's digits and the blank line, with room to spare
  const size =
    head.bytes.length + offset.length + ID_LINE.length + id.length + ACK_END.length + 20 + body.length;
  if (at + size > out.length) return -1;
  out.set(head.bytes, at);
  let p = putAscii(offset, out, at + head.bytes.length);
  if (p < 0) return -1;
  out.set(ID_LINE, p);
  p = putAscii(id, out, p + ID_LINE.length);
  if (p < 0) return -1;
  out.set(ACK_END, p);
  p += ACK_END.length;
  p = putDecimal(body.length, out, p);
  out[p] = 13;
  out[p + 1] = 10;
  out[p + 2] = 13;
  out[p + 3] = 10;
  p += 4;
  for (let i = 0; i < body.length; i++) out[p + i] = body[i] as number;
  return p + body.length;
}
