// A reply the broker builds from values it made or checked on the way in, written without checking them again.
import { encodeStartLine, Message } from '@zbus/protocol';

/**
 * A reply whose header names are HTTP tokens other than the framing ones (content-length, transfer-encoding,
 * encoding) and whose values hold no CR, LF or NUL: every value is the broker's own (numbers, durability, a
 * request id it drew) or was checked on the way in (a stored topic's name, a decoded request id). Its body is
 * `text` as UTF-8 (or nothing, once emptied for a HEAD request). encodeMessage checks each name and value again,
 * character by character, which cost about as much as the rest of writing a produce's ack.
 */
export class CheckedReply extends Message {
  constructor(
    status: number,
    readonly text: string,
  ) {
    super({ status, body: text });
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
