import { tokenKind } from './decoder.js';
import { ZbusError } from './errors.js';
import { reasonPhrase } from './headers.js';
import type { Message } from './message.js';
import { utf8Encode, utf8EncodeInto } from './text.js';

/*
 * Message → bytes (zbus-protocol.md §1.1). The head is built as one string; encodeMessage writes head and body into
 * one exact-size buffer. Every outgoing message carries content-length and, unless it has its own connection header,
 * `connection: Keep-Alive`. An `encoding` header becomes `content-type: <type or text/plain>; charset=<encoding>`
 * with the charset as sent (decisions.md §2 fixes 0.11's forced utf-8) and is not written itself.
 * Values are written on one line: CR, LF and NUL in a value become spaces, and a header whose name is not an HTTP
 * token is left out, so a decoded-from-URL value can never inject a header.
 */

const UNSAFE_VALUE = /[\r\n\0]/g;

function cleanValue(v: string): string {
  // two native scans beat a regex test on short strings
  if (v.indexOf('\n') === -1 && v.indexOf('\r') === -1 && v.indexOf('\0') === -1) return v;
  return v.replace(UNSAFE_VALUE, ' ');
}

function cleanUrl(url: string): string {
  if (url.length === 0) return '/';
  const n = url.length;
  let i = 0;
  for (; i < n; i++) {
    const c = url.charCodeAt(i);
    if (c <= 32 || c === 127) break;
  }
  if (i === n) return url;
  // percent-encode controls and spaces so the request line stays three tokens
  let out = url.slice(0, i);
  for (; i < n; i++) {
    const c = url.charCodeAt(i);
    out += c <= 32 || c === 127 ? `%${c.toString(16).toUpperCase().padStart(2, '0')}` : url[i];
  }
  return out;
}

/** Start line + headers (with the content-length of `msg.body`) + blank line. Write it as UTF-8, then the body. */
export function encodeHead(msg: Message): string {
  const version = msg.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
  let s: string;
  if (msg.status !== undefined) {
    const status = msg.status;
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `status must be an integer 100..999, got ${status}`);
    }
    s = `${version} ${status} ${reasonPhrase(status)}\r\n`;
  } else {
    const method = msg.method;
    if (tokenKind(method) === 0) {
      throw new ZbusError(
        'ZBUS_ERR_INVALID_ARGUMENT',
        `method must be an HTTP token, got ${JSON.stringify(method)}`,
      );
    }
    s = `${method} ${cleanUrl(msg.url)} ${version}\r\n`;
  }
  const h = msg.headers;
  const encoding = h.encoding;
  let connection = false;
  for (const k in h) {
    switch (k.length) {
      case 8:
        if (k === 'encoding') continue;
        break;
      case 10:
        if (k === 'connection') connection = true;
        break;
      case 12:
        if (k === 'content-type' && encoding !== undefined) continue;
        break;
      case 14:
        if (k === 'content-length') continue;
        break;
      case 17:
        if (k === 'transfer-encoding') continue;
        break;
    }
    if (tokenKind(k) === 0) continue;
    s += `${k}: ${cleanValue(h[k] as string)}\r\n`;
  }
  if (encoding !== undefined) {
    s += `content-type: ${cleanValue(h['content-type'] ?? 'text/plain')}; charset=${cleanValue(encoding)}\r\n`;
  }
  if (!connection) s += 'connection: Keep-Alive\r\n';
  return `${s}content-length: ${msg.body.length}\r\n\r\n`;
}

/** The whole message (head and body) in one buffer. */
export function encodeMessage(msg: Message): Uint8Array {
  const head = encodeHead(msg);
  const body = msg.body;
  const hl = head.length;
  // ASCII heads (the usual case) are exactly head.length bytes: encode straight into the final buffer.
  const out = new Uint8Array(hl + body.length);
  const written = utf8EncodeInto(head, out, 0);
  if (written === hl) {
    if (body.length !== 0) out.set(body, hl);
    return out;
  }
  const headBytes = utf8Encode(head);
  const full = new Uint8Array(headBytes.length + body.length);
  full.set(headBytes, 0);
  full.set(body, headBytes.length);
  return full;
}

/** Whether the connection stays open after `msg`: HTTP/1.1 unless `connection: close`; HTTP/1.0 only with keep-alive. */
export function keepAlive(msg: Message): boolean {
  const c = msg.headers.connection;
  if (msg.httpVersion === '1.0') return c !== undefined && /(^|,)\s*keep-alive\s*(,|$)/i.test(c);
  return c === undefined || !/(^|,)\s*close\s*(,|$)/i.test(c);
}
