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

/** Values up to this length are checked by one JS pass; longer ones by three native scans. */
const SHORT_VALUE = 64;

/** `v` as one header line carries it: CR, LF and NUL become spaces (a value from a URL may hold them). */
export function cleanValue(v: string): string {
  const n = v.length;
  if (n <= SHORT_VALUE) {
    // one pass over a short value (an id, a topic, a number) beats three calls into indexOf
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c <= 13 && (c === 10 || c === 13 || c === 0)) return v.replace(UNSAFE_VALUE, ' ');
    }
    return v;
  }
  if (v.indexOf('\n') === -1 && v.indexOf('\r') === -1 && v.indexOf('\0') === -1) return v;
  return v.replace(UNSAFE_VALUE, ' ');
}

/** The request target as a request line carries it: controls and spaces percent-encoded, `/` for an empty URL. */
export function requestTarget(url: string): string {
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

/** The start line with its CRLF: `HTTP/1.1 200 OK` for a response, `GET /x HTTP/1.1` for a request. */
export function encodeStartLine(msg: Message): string {
  const version = msg.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
  if (msg.status !== undefined) {
    const status = msg.status;
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `status must be an integer 100..999, got ${status}`);
    }
    return `${version} ${status} ${reasonPhrase(status)}\r\n`;
  }
  const method = msg.method;
  if (tokenKind(method) === 0) {
    throw new ZbusError(
      'ZBUS_ERR_INVALID_ARGUMENT',
      `method must be an HTTP token, got ${JSON.stringify(method)}`,
    );
  }
  return `${method} ${requestTarget(msg.url)} ${version}\r\n`;
}

/** One header line with its CRLF, the value on one line. */
export function encodeHeaderLine(name: string, value: string): string {
  return `${name}: ${cleanValue(value)}\r\n`;
}

/** Names encodeHead writes itself (content-length), drops (transfer-encoding) or folds (encoding, content-type). */
function framing(k: string, folded: boolean): boolean {
  switch (k.length) {
    case 8:
      return k === 'encoding';
    case 12:
      return folded && k === 'content-type';
    case 14:
      return k === 'content-length';
    case 17:
      return k === 'transfer-encoding';
  }
  return false;
}

/**
 * The header lines of `h`, each with its CRLF, as encodeHead writes them: no content-length or
 * transfer-encoding, `encoding` folded into content-type, names that are not tokens left out. Names in `omit`
 * are left out too (a broker storing a message without its request-only headers). `clean`: every name in `h` is
 * a token and no value holds CR, LF or NUL, so neither is checked again: true of a decoded request's headers
 * after resolveCommand (the decoder checks both; resolveCommand cleans what it takes from the URL) as long as
 * the broker adds only such values.
 */
export function encodeHeaderLines(
  h: Record<string, string>,
  omit?: ReadonlySet<string>,
  clean = false,
): string {
  const encoding = h.encoding;
  const folded = encoding !== undefined;
  let s = '';
  for (const k in h) {
    if (omit?.has(k) || framing(k, folded)) continue;
    if (clean) s += `${k}: ${h[k] as string}\r\n`;
    else if (tokenKind(k) !== 0) s += `${k}: ${cleanValue(h[k] as string)}\r\n`;
  }
  if (encoding !== undefined) {
    s += `content-type: ${cleanValue(h['content-type'] ?? 'text/plain')}; charset=${cleanValue(encoding)}\r\n`;
  }
  return s;
}

/**
 * Start line + headers (with the content-length of `msg.body`) + blank line. Write it as UTF-8, then the body.
 * With `msg.headTail` the head ends before the blank line: write the tail (which ends it) between head and body.
 */
export function encodeHead(msg: Message): string {
  let s = encodeStartLine(msg) + encodeHeaderLines(msg.headers);
  if (msg.headers.connection === undefined) s += 'connection: Keep-Alive\r\n';
  s += `content-length: ${msg.body.length}\r\n`;
  return msg.headTail === undefined ? `${s}\r\n` : s;
}

/**
 * Writes the head of `msg`, byte for byte what encodeHead returns, into `out` from `at`; returns where it ends, or
 * -1 when it does not fit or is not all ASCII (then write encodeHead's string). No string is built: a client
 * encodes each request straight into its write batch, where the head's concatenations cost more than the rest of
 * a publish.
 */
export function writeHead(msg: Message, out: Uint8Array, at: number): number {
  let p = writeStartLine(msg, out, at);
  const h = msg.headers;
  const encoding = h.encoding;
  for (const k in h) {
    if (p < 0) return -1;
    // the headers encodeHeaderLines leaves out: framing, `encoding` and the content-type it folds into
    if (k === 'content-length' || k === 'transfer-encoding' || k === 'encoding') continue;
    if ((k === 'content-type' && encoding !== undefined) || tokenKind(k) === 0) continue;
    p = writeHeaderLine(k, h[k] as string, out, p);
  }
  if (encoding !== undefined) {
    p = putAscii('content-type: ', out, p);
    p = putAscii(h['content-type'] ?? 'text/plain', out, p);
    p = putAscii('; charset=', out, p);
    p = putCrlf(out, putAscii(encoding, out, p));
  }
  if (h.connection === undefined) p = putCrlf(out, putAscii('connection: Keep-Alive', out, p));
  p = putAscii('content-length: ', out, p);
  p = putCrlf(out, putUint(msg.body.length, out, p));
  return msg.headTail === undefined ? putCrlf(out, p) : p;
}

/** The start line as encodeStartLine makes it (and throws as it does), written into `out`. */
function writeStartLine(msg: Message, out: Uint8Array, at: number): number {
  const status = msg.status;
  if (msg.httpVersion !== '1.0') {
    if (status === undefined && tokenKind(msg.method) !== 0) {
      let p = putAscii(msg.method, out, at);
      p = putAscii(' ', out, p);
      p = putAscii(requestTarget(msg.url), out, p);
      return putCrlf(out, putAscii(' HTTP/1.1', out, p));
    }
    if (status !== undefined && Number.isInteger(status) && status >= 100 && status <= 999) {
      let p = putAscii('HTTP/1.1 ', out, at);
      p = putUint(status, out, p);
      p = putAscii(' ', out, p);
      return putCrlf(out, putAscii(reasonPhrase(status), out, p));
    }
  }
  // HTTP/1.0, and a bad method or status (encodeStartLine throws for those)
  return putCrlf(out, putAscii(encodeStartLine(msg).slice(0, -2), out, at));
}

function writeHeaderLine(name: string, value: string, out: Uint8Array, at: number): number {
  let p = putAscii(name, out, at);
  p = putAscii(': ', out, p);
  return putCrlf(out, putAscii(value, out, p));
}

/**
 * Copies ASCII `s` into `out` at `at`, CR, LF and NUL as spaces (as cleanValue does): returns where it ends, or -1
 * for non-ASCII text, no room, or an `at` of -1 (so calls chain and the caller checks once).
 */
export function putAscii(s: string, out: Uint8Array, at: number): number {
  const n = s.length;
  if (at < 0 || at + n > out.length) return -1;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c > 127) return -1;
    if (c <= 13 && (c === 10 || c === 13 || c === 0)) c = 32;
    out[at + i] = c;
  }
  return at + n;
}

/**
 * Writes the decimal digits of `n` (a non-negative integer) into `out` at `at`: returns where they end, or -1 for
 * no room or an `at` of -1.
 */
export function putDecimal(n: number, out: Uint8Array, at: number): number {
  if (at < 0) return -1;
  let end = at;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) end++;
  if (end >= out.length) return -1;
  for (let p = end, v = n; p >= at; p--, v = Math.floor(v / 10)) out[p] = 48 + (v % 10);
  return end + 1;
}

function putCrlf(out: Uint8Array, at: number): number {
  if (at < 0 || at + 2 > out.length) return -1;
  out[at] = 13;
  out[at + 1] = 10;
  return at + 2;
}

/** The decimal digits of `n`, a non-negative integer. */
function putUint(n: number, out: Uint8Array, at: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  if (at < 0 || at + digits > out.length) return -1;
  let x = n;
  for (let i = at + digits - 1; i >= at; i--) {
    out[i] = 48 + (x % 10);
    x = Math.floor(x / 10);
  }
  return at + digits;
}

// Output buffers come from a 64 KiB slab, as Node's Buffer pool does: `new Uint8Array(n)` allocates an off-heap
// backing store each time and costs several times the rest of encodeMessage (bench/codec.bench.ts). Messages over
// 8 KiB get their own buffer, so a view never pins a slab for a big message.
const SLAB_SIZE = 64 * 1024;
const POOLED_MAX = 8 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabOffset = 0;

function allocate(n: number): Uint8Array {
  if (n > POOLED_MAX) return new Uint8Array(n);
  if (slabOffset + n > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabOffset = 0;
  }
  const out = slab.subarray(slabOffset, slabOffset + n);
  slabOffset = (slabOffset + n + 7) & ~7;
  return out;
}

/**
 * The whole message (head and body) in one buffer. Small results are views into a shared 64 KiB slab (like Node
 * Buffers); copy one with `slice()` before keeping it for long.
 */
export function encodeMessage(msg: Message): Uint8Array {
  const head = encodeHead(msg);
  const tail = msg.headTail;
  const body = msg.body;
  const hl = head.length;
  const tl = tail === undefined ? 0 : tail.length;
  // An ASCII head (the usual case) is exactly head.length bytes: encode it straight into the final buffer.
  const out = allocate(hl + tl + body.length);
  if (utf8EncodeInto(head, out, 0) === hl) {
    if (tail !== undefined) out.set(tail, hl);
    if (body.length !== 0) out.set(body, hl + tl);
    return out;
  }
  const headBytes = utf8Encode(head);
  const full = allocate(headBytes.length + tl + body.length);
  full.set(headBytes, 0);
  if (tail !== undefined) full.set(tail, headBytes.length);
  full.set(body, headBytes.length + tl);
  return full;
}

/** Whether the connection stays open after `msg`: HTTP/1.1 unless `connection: close`; HTTP/1.0 only with keep-alive. */
export function keepAlive(msg: Message): boolean {
  const c = msg.headers.connection;
  // The spellings clients send (ab, curl, browsers, zbus) are compared first: no regular expression per request.
  const usual = c === 'Keep-Alive' || c === 'keep-alive';
  if (msg.httpVersion === '1.0') return c !== undefined && (usual || /(^|,)\s*keep-alive\s*(,|$)/i.test(c));
  return c === undefined || usual || !/(^|,)\s*close\s*(,|$)/i.test(c);
}
