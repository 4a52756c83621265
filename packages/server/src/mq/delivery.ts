// The stored form of a message and how it is delivered (zbus-protocol.md §7.6). A delivery travels as a 200
// response whose `id` is the consume request's id, with the stored id, url, method and status moved into
// `origin_*` headers so that clients can restore them.
//
// A message is stored as what will be sent: a valid HTTP message whose first header is its content-length and
// whose other header lines are the delivery's own (origin_*, topic, the producer's headers without the
// request-only ones), then the body:
//
//   POST /produce/T HTTP/1.1\r\n          <- the request's start line (what a broker before 0.12 reads it by)
//   content-length: 7\r\n                 <- first, so that the body's length is found without a parse
//   origin_method: POST\r\n origin_url: /produce/T\r\n origin_id: m-1\r\n topic: T\r\n ...\r\n
//   \r\n
//   payload
//
// A delivery is then a short head (status line, id, offset, timestamp, consume_group, retry, content-length)
// followed by views of the stored header lines and body: no decode, no copy. Records written before this form
// (content-length last, origin_* not yet set) are decoded and rewritten into it once per delivery.
import {
  encodeHeaderLine,
  encodeHeaderLines,
  encodeStartLine,
  Message,
  MessageDecoder,
  putAscii,
  putDecimal,
  requestTarget,
  ZbusError,
} from '@zbus/protocol';
import type { Delivery, StoredRecord } from '../store/types.js';

/** Headers of a produce that are not stored: the request's own (0.11 strips these) and hop-by-hop. */
const REQUEST_ONLY = ['cmd', 'ack', 'token', 'delay', 'deliver_at', 'timeout', 'connection'];
/** Headers every delivery writes itself (a producer's own values would be replaced, as 0.11 replaces them). */
const PER_DELIVERY = ['id', 'origin_id', 'offset', 'timestamp', 'consume_group', 'retry'];
const OMIT_REQUEST = new Set([...REQUEST_ONLY, ...PER_DELIVERY, 'origin_method', 'origin_url']);
/** A request to `/` gets no origin_url, so a producer's own origin_url stays (as in 0.11). */
const OMIT_REQUEST_ROOT = new Set([...REQUEST_ONLY, ...PER_DELIVERY, 'origin_method']);
const OMIT_RESPONSE = new Set([...REQUEST_ONLY, ...PER_DELIVERY, 'origin_status']);

/** `content-length: ` as bytes: the marker of a record in the stored form, right after the start line. */
const LENGTH_FIRST = Buffer.from('content-length: ', 'latin1');

/**
 * The stored form of `msg` (see the top of this file), without the request-only headers and every copy of the
 * token (`?token=` in the URL, `token` in the cookie). `id` becomes origin_id; `topic` is written when the
 * message names none. Nothing is deleted from `msg` (that would slow every later access to its headers).
 * `request`: `msg` is a request as the pipeline hands it to a command (decoded, resolved, stamped), whose header
 * names are tokens and values one line already: they are not checked again (encodeHeaderLines' `clean`).
 */
export function encodeStored(
  msg: Message,
  id: string,
  topic: string,
  request = false,
  kept?: StoredLines,
): Uint8Array {
  const h = msg.headers;
  // The token may also sit in the URL query (`?token=`) or the cookie; consumers see both (origin_url, cookie).
  if (msg.url.includes('token=')) msg.url = withoutQueryToken(msg.url);
  if (kept !== undefined && request) {
    const bytes = storedFromKept(msg, id, kept);
    if (bytes !== undefined) return bytes;
  }
  let s = encodeStartLine(msg);
  const body = msg.body;
  s += `content-length: ${body.length}\r\n`;
  let omit: ReadonlySet<string>;
  if (msg.status === undefined) {
    s += `origin_method: ${msg.method}\r\n`;
    const url = requestTarget(msg.url);
    if (url === '/') omit = OMIT_REQUEST_ROOT;
    else {
      s += encodeHeaderLine('origin_url', url);
      omit = OMIT_REQUEST;
    }
  } else {
    s += `origin_status: ${msg.status}\r\n`;
    omit = OMIT_RESPONSE;
  }
  // A request's id and topic are one clean line already (decoded, drawn by the broker, or a store's name).
  s += request ? `origin_id: ${id}\r\n` : encodeHeaderLine('origin_id', id);
  if (h.topic === undefined) s += request ? `topic: ${topic}\r\n` : encodeHeaderLine('topic', topic);
  const cookie = h.cookie;
  if (cookie?.includes('token')) {
    omit = new Set([...omit, 'cookie']);
    const rest = withoutCookieToken(cookie);
    if (rest !== '') s += encodeHeaderLine('cookie', rest);
  }
  s += `${encodeHeaderLines(h, omit, request)}\r\n`;
  return storedBytes(s, body);
}

// Small stored forms are cut from a shared 8 KiB slab, as Buffer.allocUnsafe cuts them from Node's pool, but with
// one call into C++ per produce (the write of the head) where measuring the head's UTF-8 length first made two.
const SLAB_BYTES = 8 * 1024;
let slab = Buffer.allocUnsafe(SLAB_BYTES);
let slabAt = 0;

/** `head` as UTF-8, then `body`, in one buffer. */
function storedBytes(head: string, body: Uint8Array): Buffer {
  const most = 3 * head.length + body.length; // UTF-8 takes at most 3 bytes per UTF-16 unit
  if (most > SLAB_BYTES >> 1) {
    const headBytes = Buffer.byteLength(head, 'utf8');
    const out = Buffer.allocUnsafe(headBytes + body.length);
    out.write(head, 0, headBytes, 'utf8');
    out.set(body, headBytes);
    return out;
  }
  if (slabAt + most > SLAB_BYTES) {
    slab = Buffer.allocUnsafe(SLAB_BYTES);
    slabAt = 0;
  }
  const start = slabAt;
  let end = start + slab.write(head, start, 'utf8');
  slab.set(body, end);
  end += body.length;
  slabAt = (end + 7) & ~7; // 8-aligned, as Node's pool cuts its buffers
  return slab.subarray(start, end);
}

/**
 * What a connection's produces keep between them (one per connection): the stored form's bytes that do not change
 * from one produce to the next, and what they were written from. A producer repeats its method, URL and HTTP
 * version (`GET /` from a zbus client, `GET /produce/T` from ab or curl) and its header lines (its topic and
 * content type, and the sender, host and remote-addr the broker adds), so they are copied as bytes rather than
 * built as a string again.
 */
export interface StoredLines {
  /** The request line the `start` and `origin` bytes were written from. */
  method: string;
  url: string;
  version: string;
  /** The URL of the last request whose request line was not kept: kept when the next request repeats it. */
  nextUrl: string;
  /** The start line through `content-length: `, and from the CRLF after its value through `origin_id: `. */
  start: Uint8Array;
  origin: Uint8Array;
  /** The headers that are not stored (OMIT_REQUEST, or OMIT_REQUEST_ROOT for a request to `/`). */
  omit: ReadonlySet<string>;
  /** The header lines after origin_id, through the blank line that ends the head, and their names and values. */
  names: string[];
  values: string[];
  bytes: Uint8Array;
  /** Every header name of the last request, in order, and whether each is a stored line (storedLine). */
  keys: string[];
  stored: boolean[];
}

/** A new, empty StoredLines. */
export function storedLines(): StoredLines {
  // A zbus client's produce, `GET /` over HTTP/1.1, from the start.
  return {
    method: 'GET',
    url: '/',
    version: '1.1',
    nextUrl: '/',
    start: ROOT_START,
    origin: ROOT_ORIGIN,
    omit: OMIT_REQUEST_ROOT,
    names: [],
    values: [],
    bytes: EMPTY,
    keys: [],
    stored: [],
  };
}

const EMPTY = new Uint8Array(0);
/** Header `k` is one of a request's stored lines (encodeHeaderLines writes no framing header either). */
const storedLine = (k: string, omit: ReadonlySet<string>) =>
  !omit.has(k) && k !== 'content-length' && k !== 'transfer-encoding';
/** The stored form of a `GET /` request up to its content-length's value, and from there to origin_id's. */
const ROOT_START = Buffer.from('GET / HTTP/1.1\r\ncontent-length: ', 'latin1');
const ROOT_ORIGIN = Buffer.from('\r\norigin_method: GET\r\norigin_id: ', 'latin1');

/**
 * encodeStored of a request that names its topic, written into the slab from the connection's `kept` bytes (made
 * again when they changed): no head string is built, flattened and encoded in C++, which was a third of the
 * broker's garbage per produce and, for produce by URL, a tenth of its instructions per request. Undefined for
 * a response, a token in its cookie, an `encoding` to fold, an id that is not ASCII, or a large message: those
 * take the string.
 */
function storedFromKept(msg: Message, id: string, kept: StoredLines): Buffer | undefined {
  const h = msg.headers;
  if (msg.status !== undefined || h.topic === undefined) return;
  if (h.encoding !== undefined || h.cookie?.includes('token')) return;
  if (msg.method !== kept.method || msg.url !== kept.url || msg.httpVersion !== kept.version) {
    // A request line seen once takes the string (an RPC call by URL names a new one each time); one that
    // comes again is kept.
    if (msg.url !== kept.nextUrl) {
      kept.nextUrl = msg.url;
      return;
    }
    // The same bytes as encodeStored's string: its start line, content-length, origin_method and origin_url.
    const url = requestTarget(msg.url);
    kept.start = Buffer.from(`${encodeStartLine(msg)}content-length: `, 'utf8');
    const originUrl = url === '/' ? '' : encodeHeaderLine('origin_url', url);
    kept.origin = Buffer.from(`\r\norigin_method: ${msg.method}\r\n${originUrl}origin_id: `, 'utf8');
    kept.omit = url === '/' ? OMIT_REQUEST_ROOT : OMIT_REQUEST;
    kept.method = msg.method;
    kept.url = msg.url;
    kept.version = msg.httpVersion;
    kept.keys = [];
    kept.names = [];
    kept.bytes = EMPTY;
  }
  const omit = kept.omit;
  // A producer sends the same names in the same order every time: where the name at a position is the last
  // request's, whether it is stored is known without storedLine's Set lookup (about 9 per produce).
  const { keys, stored } = kept;
  let i = 0;
  let n = 0;
  let same = true;
  for (const k in h) {
    const line = keys[i] === k ? stored[i] === true : storedLine(k, omit);
    i++;
    if (!line) continue;
    if (kept.names[n] !== k || kept.values[n] !== h[k]) same = false;
    n++;
  }
  if (!same || n !== kept.names.length || i !== keys.length) {
    const names: string[] = [];
    const values: string[] = [];
    kept.keys = [];
    kept.stored = [];
    for (const k in h) {
      const line = storedLine(k, omit);
      kept.keys.push(k);
      kept.stored.push(line);
      if (!line) continue;
      names.push(k);
      values.push(h[k] as string);
    }
    kept.names = names;
    kept.values = values;
    kept.bytes = Buffer.from(`${encodeHeaderLines(h, omit, true)}\r\n`, 'utf8');
  }
  const lines = kept.bytes;
  const body = msg.body;
  const head = kept.start;
  const origin = kept.origin;
  // 16: the body length's digits; 2: the CRLF after the id
  const size = head.length + 16 + origin.length + id.length + 2 + lines.length + body.length;
  if (size > SLAB_BYTES >> 1) return;
  if (slabAt + size > SLAB_BYTES) {
    slab = Buffer.allocUnsafe(SLAB_BYTES);
    slabAt = 0;
  }
  const out = slab;
  const start = slabAt;
  out.set(head, start);
  let p = start + head.length;
  p = putDecimal(body.length, out, p);
  out.set(origin, p);
  // The pipeline's ids hold no CR, LF or NUL (the decoder refuses them, cleanValue folds a URL's): putAscii's
  // spaces for them never apply here.
  p = putAscii(id, out, p + origin.length);
  if (p < 0) return;
  out[p++] = 13;
  out[p++] = 10;
  out.set(lines, p);
  p += lines.length;
  out.set(body, p);
  p += body.length;
  slabAt = (p + 7) & ~7;
  return out.subarray(start, p);
}

/** Where the last record's stored header lines start and how long its body is (storedLayout's result). */
const layout = { tail: 0, bodyLength: 0 };

/**
 * Whether `data` is a record in the stored form; if so `layout` says where its header lines start and how long
 * its body is. A record written before that form has its content-length last, not first.
 */
function storedLayout(data: Uint8Array): boolean {
  const lf = data.indexOf(10);
  if (lf < 0 || lf + 1 + LENGTH_FIRST.length > data.length) return false;
  let p = lf + 1;
  for (let i = 0; i < LENGTH_FIRST.length; i++, p++) if (data[p] !== LENGTH_FIRST[i]) return false;
  let n = 0;
  for (let c = data[p]; c !== undefined && c >= 48 && c <= 57; c = data[++p]) n = n * 10 + c - 48;
  // The length line ends in CRLF, and the header lines after it end in a blank line right before the body.
  const end = data.length - n;
  if (data[p] !== 13 || data[p + 1] !== 10 || end < p + 4 || data[end - 1] !== 10 || data[end - 2] !== 13)
    return false;
  layout.tail = p + 2;
  layout.bodyLength = n;
  return true;
}

/**
 * Stored records were validated on the way in (a broker may have taken more headers or bytes under other limits
 * than it runs with now), so decoding them again applies no limits.
 */
const STORED_LIMITS = {
  maxHeaderBytes: Number.MAX_SAFE_INTEGER,
  maxHeaderCount: Number.MAX_SAFE_INTEGER,
  maxBodyBytes: Number.MAX_SAFE_INTEGER,
  maxUrlBytes: Number.MAX_SAFE_INTEGER,
};

// One decoder, reused for every stored record that must be decoded (a record is exactly one message). Decoding
// is synchronous, so one is enough.
let storedDecoder: MessageDecoder | undefined;
let decoded: Message | undefined;

/** A stored record as a message (either form): for the paths that need its headers (relay, dead letters). */
export function decodeStored(data: Uint8Array): Message {
  storedDecoder ??= new MessageDecoder((m) => {
    decoded = m;
  }, STORED_LIMITS);
  const d = storedDecoder;
  decoded = undefined;
  try {
    d.push(data);
  } catch (err) {
    storedDecoder = undefined; // an errored decoder stays errored
    throw err;
  }
  const m = decoded;
  decoded = undefined;
  if (m === undefined || d.bufferedBytes !== 0) {
    storedDecoder = undefined;
    throw new ZbusError('ZBUS_ERR_STORE', 'a stored record is not one whole message');
  }
  return m;
}

/**
 * The id a decoded stored record was produced with: `id` in a record written before the stored form,
 * `origin_id` in one written since (which never stores `id`).
 */
export function storedId(m: Message): string | undefined {
  return m.headers.id ?? m.headers.origin_id;
}

/**
 * A delivery of `d` as the answer to the consume request `requestId`: a fresh head plus views of the stored
 * header lines and body (`headTail`, `body`). A record written before the stored form is rewritten into it
 * first (one decode), with the same result.
 */
export function buildDelivery(
  d: Delivery | StoredRecord,
  requestId: string,
  topic: string,
  group: string | undefined,
): Message {
  let data = d.data;
  if (!storedLayout(data)) {
    const old = decodeStored(data);
    data = encodeStored(old, old.headers.id ?? d.id, topic);
    if (!storedLayout(data)) throw new ZbusError('ZBUS_ERR_STORE', 'a stored record cannot be delivered');
  }
  const m = new Message();
  m.status = 200;
  const h = m.headers;
  h.id = requestId;
  if (group !== undefined) h.consume_group = group;
  h.offset = decimalText(d.offset);
  h.timestamp = timestampText(d.timestamp);
  const retry = (d as Delivery).retry;
  if (retry !== undefined && retry > 0) h.retry = String(retry);
  const bodyStart = data.length - layout.bodyLength;
  m.headTail = data.subarray(layout.tail, bodyStart);
  m.body = data.subarray(bodyStart);
  return m;
}

/** "000" to "999": the last three digits of decimalText's numbers. */
const LOW_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/**
 * `String(n)`, for a non-negative integer made without V8's number-string cache for numbers past 999. That cache
 * keeps the text of the last numbers made into text (thousands of them): the offset of each message, made into
 * text for its ack and its delivery, stayed reachable from it through a scavenge or two, was promoted to old space
 * and died there (about 27 bytes per message at 10k msg/s, most of what the broker still promoted). Here only
 * the text of `n / 1000` goes through the cache, once per thousand numbers.
 */
export function decimalText(n: number): string {
  if (n < 1000 || !Number.isSafeInteger(n)) return String(n);
  const high = Math.floor(n / 1000);
  return String(high) + LOW_DIGITS[n - high * 1000];
}

// The last timestamp written and its text: acks and deliveries in one burst mostly share a millisecond.
let lastTimestamp = -1;
let lastTimestampText = '';

/** The text of a message's timestamp (a time in ms) for its ack and its deliveries. */
export function timestampText(t: number): string {
  if (t !== lastTimestamp) {
    lastTimestamp = t;
    lastTimestampText = decimalText(t);
  }
  return lastTimestampText;
}

/** `/T?cmd=produce&token=s&x=1` -> `/T?cmd=produce&x=1`. */
export function withoutQueryToken(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((pair) => pair !== '' && !/^token(=|$)/.test(pair));
  return kept.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${kept.join('&')}`;
}

/** `a=1; token=s; __Host-token=s; b=2` -> `a=1; b=2`. */
export function withoutCookieToken(cookie: string): string {
  return cookie
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && !/^(?:__Host-)?token\s*=/.test(part))
    .join('; ');
}
