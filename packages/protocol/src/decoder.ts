import { isZbusError, LimitError, ProtocolError, type ZbusErrorCode } from './errors.js';
import { Header } from './headers.js';
import { type DecoderLimits, resolveLimits } from './limits.js';
import { Message } from './message.js';
import { EMPTY_BYTES, utf8Encode, utf8Slice } from './text.js';

/*
 * Streaming HTTP/1.x decoder (zbus-protocol.md §1.1, style.md §5).
 *
 *   push(chunk) ──► HEAD ──(blank line)──► BODY (content-length) ──► emit ──► HEAD ...
 *                        └─(chunked)────► CHUNK_SIZE ⇄ CHUNK_DATA ⇄ CHUNK_END
 *                                                    └─(size 0)──► TRAILER ──► emit
 *   any error ──► ERRORED (for good)      onMessage() === false ──► STOPPED (remaining() has the rest)
 *
 * The end of the head is found by one pass over the bytes that resumes where the previous chunk stopped, so a head
 * that arrives one byte at a time is scanned once (linear). A head inside one chunk is decoded
 * to a string straight from the chunk; a split head is kept as views and copied once into one buffer at its end.
 * Bodies inside one chunk are zero-copy subarray views; split bodies are copied once into an exact-size buffer.
 * Chunked bodies are always copied out, into a buffer of 4 KiB that doubles as needed and is trimmed once at the end:
 * a view would keep the whole socket read it came from alive (1-byte chunks in 64 KiB reads would hold 64 KiB each).
 * Their framing (size lines, extensions, CRLFs, trailer) may not outweigh their data by more than maxHeaderBytes.
 * push() takes ownership of its chunk: the caller must not reuse it (Node socket chunks are never reused).
 */

const S_HEAD = 0;
const S_BODY = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_DATA = 3;
const S_CHUNK_END = 4;
const S_TRAILER = 5;
const S_STOPPED = 6;
const S_ERRORED = 7;

const LF = 10;
const CR = 13;
/** Bytes allowed around the URL on the request line before a missing LF counts as a too-long URL. */
const START_LINE_SLACK = 64;
/** A chunk-size line (hex size plus extensions) longer than this is malformed. */
const MAX_CHUNK_LINE = 1024;

// RFC 9110 §5.6.2 tchar; 2 marks an upper-case letter (lower-cased on decode).
const TOKEN = new Uint8Array(128);
for (let c = 33; c < 127; c++) {
  if (c > 64 && c < 91) TOKEN[c] = 2;
  else if (!'"(),/:;<=>?@[\\]{}'.includes(String.fromCharCode(c))) TOKEN[c] = 1;
}

/** 0: not a token; 1: a lower-case token; 2: a token with upper-case letters. */
export function tokenKind(s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  let kind = 1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const t = c < 128 ? (TOKEN[c] as number) : 0;
    if (t === 0) return 0;
    if (t === 2) kind = 2;
  }
  return kind;
}

// Known header names, keyed by their length and first, middle and last characters in lower case (every name in
// `Header` has a slot of its own). A name found there and equal to the text, or to the text in lower case
// (`Content-Length`, `Host`, as curl, browsers and `ab` send them), comes back as the interned constant: no slice,
// no toLowerCase, and the keyed store into the header bag hits an internalized key (about 1.4x faster stores than
// with sliced names, bench/codec.bench.ts). Other names are checked character by character. Decoding a produce or
// its ack took about 10% fewer instructions than with a hash of every character.
const KNOWN_SLOTS = 1024; // a power of two; a slot holds one name (a name that collides is just not interned)
const KNOWN: (string | undefined)[] = new Array<string | undefined>(KNOWN_SLOTS).fill(undefined);

/** The slot of the name `s[start, end)` (end > start), the same for the name in any case. */
export function knownSlot(s: string, start: number, end: number): number {
  const mid = s.charCodeAt((start + end) >> 1) | 32;
  return (
    ((end - start) * 8 + (s.charCodeAt(start) | 32) * 31 + mid + (s.charCodeAt(end - 1) | 32)) &
    (KNOWN_SLOTS - 1)
  );
}

/** Whether `s` at `at` is the lower-case token `name` with letters in either case (and no other difference). */
function sameName(s: string, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const k = name.charCodeAt(i);
    const c = s.charCodeAt(at + i);
    if (c !== k && (k < 97 || c + 32 !== k)) return false;
  }
  return true;
}

for (const name of Object.values(Header)) {
  const slot = knownSlot(name, 0, name.length);
  KNOWN[slot] ??= name;
}

/**
 * Has every decoder intern `names` too (lower-case letters, digits, `-` and `_`; others, and names whose slot is
 * taken, are skipped): a broker adds the names that curl, browsers and `ab` send with every request (`user-agent`,
 * `accept`). `sameName` takes a character 32 below a known one as its capital, which holds for letters only: a
 * known `|` or `~` would also match `\` or `^`.
 */
export function knowHeaderNames(names: readonly string[]): void {
  for (const name of names) if (/^[a-z0-9_-]+$/.test(name)) KNOWN[knownSlot(name, 0, name.length)] ??= name;
}

let resetDecoder: (d: MessageDecoder) => void;

function bad(message: string): ProtocolError {
  return new ProtocolError('ZBUS_ERR_BAD_MESSAGE', message);
}

function limit(code: ZbusErrorCode, message: string): LimitError {
  return new LimitError(code, message);
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) {
    const only = parts[0] as Uint8Array;
    if (only.length === total) return only;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i] as number);
  return s;
}

/**
 * Decodes a stream of HTTP/1.x messages. `onMessage` is called for each complete message; when it returns `false`
 * decoding stops right after that message (a WebSocket upgrade) and {@link remaining} holds the bytes after it.
 */
export class MessageDecoder {
  // biome-ignore lint/suspicious/noConfusingVoidType: callbacks that return nothing are the common case
  readonly #onMessage: (msg: Message) => boolean | undefined | void;
  readonly #maxHeaderBytes: number;
  readonly #maxLines: number;
  readonly #maxBodyBytes: number;
  readonly #maxUrlBytes: number;

  #state = S_HEAD;
  #error: unknown;
  #inCallback = false;
  #rest: Uint8Array = EMPTY_BYTES;

  // head
  #headParts: Uint8Array[] = [];
  #headBytes = 0;
  #lines = 0;
  /** Bytes of the current, unfinished head line (CR included). */
  #lineLen = 0;
  /** The bytes scanned so far end in CR. */
  #cr = false;
  /** Offset of each line's LF from the head start (a plain array: a typed array this size costs an off-heap
   * allocation per decoder, which decodeMessage pays on every call). */
  readonly #ends: number[] = [];

  // body
  #msg: Message | null = null;
  #contentLength = -1;
  #chunked = false;
  /** The body being received: exact size for content-length, growing capacity for chunked bodies. */
  #body: Uint8Array = EMPTY_BYTES;
  #filled = 0;
  #chunkLeft = 0;
  #line = '';
  /** Bytes of a chunked body that are not data: size lines with their extensions, CRLFs, the trailer. */
  #framing = 0;

  // biome-ignore lint/suspicious/noConfusingVoidType: callbacks that return nothing are the common case
  constructor(onMessage: (msg: Message) => boolean | undefined | void, limits?: DecoderLimits) {
    this.#onMessage = onMessage;
    const l = resolveLimits(limits);
    this.#maxHeaderBytes = l.maxHeaderBytes;
    this.#maxLines = l.maxHeaderCount + 1; // + the start line
    this.#maxBodyBytes = l.maxBodyBytes;
    this.#maxUrlBytes = l.maxUrlBytes;
  }

  static {
    // Lets decodeMessage reuse one decoder instead of building one per WebSocket frame.
    resetDecoder = (d: MessageDecoder): void => {
      d.#state = S_HEAD;
      d.#error = undefined;
      d.#inCallback = false;
      d.#rest = EMPTY_BYTES;
      d.#headParts = [];
      d.#headBytes = 0;
      d.#lines = 0;
      d.#lineLen = 0;
      d.#cr = false;
      d.#msg = null;
      d.#contentLength = -1;
      d.#chunked = false;
      d.#body = EMPTY_BYTES;
      d.#filled = 0;
      d.#chunkLeft = 0;
      d.#line = '';
      d.#framing = 0;
    };
  }

  /** Bytes held for the message in progress (or after a stop). */
  get bufferedBytes(): number {
    if (this.#state === S_STOPPED) return this.#rest.length;
    return this.#headBytes + this.#filled + this.#line.length;
  }

  /**
   * The message whose head is decoded and of whose body no byte has arrived yet, else undefined: a transport
   * answers its `Expect: 100-continue` from here, with no search of its own through the bytes.
   */
  get awaitingBody(): Message | undefined {
    const st = this.#state;
    if (st === S_BODY) return this.#filled === 0 ? (this.#msg as Message) : undefined;
    if (st === S_CHUNK_SIZE && this.#filled === 0 && this.#framing === 0 && this.#line === '')
      return this.#msg as Message;
    return undefined;
  }

  /** The bytes after the message at which decoding stopped (empty when it did not stop). */
  remaining(): Uint8Array {
    return this.#rest;
  }

  /** Decodes `chunk`; throws ProtocolError/LimitError on bad input, and the same error on every later call. */
  push(chunk: Uint8Array): void {
    if (this.#state >= S_STOPPED) {
      if (this.#state === S_ERRORED) throw this.#error;
      throw new ProtocolError('ZBUS_ERR_CLOSED', 'decoder stopped after a message; read remaining()');
    }
    try {
      this.#run(chunk);
    } catch (e) {
      let err = e;
      if (this.#inCallback) this.#inCallback = false;
      else if (!isZbusError(e))
        err = new ProtocolError('ZBUS_ERR_BAD_MESSAGE', 'malformed message', { cause: e });
      this.#state = S_ERRORED;
      this.#error = err;
      this.#headParts = [];
      this.#body = EMPTY_BYTES;
      throw err;
    }
  }

  #run(chunk: Uint8Array): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      switch (this.#state) {
        case S_HEAD:
          pos = this.#head(chunk, pos);
          break;
        case S_BODY:
          pos = this.#bodyBytes(chunk, pos);
          break;
        case S_CHUNK_SIZE:
          pos = this.#chunkSize(chunk, pos);
          break;
        case S_CHUNK_DATA:
          pos = this.#chunkData(chunk, pos);
          break;
        case S_CHUNK_END:
          pos = this.#chunkEnd(chunk, pos);
          break;
        case S_TRAILER:
          pos = this.#trailer(chunk, pos);
          break;
        default:
          // S_STOPPED: keep what follows the message that stopped decoding
          this.#rest = pos === 0 ? chunk : chunk.subarray(pos);
          return;
      }
    }
  }

  /**
   * Finds the index just past the blank line that ends the head, or -1 when it is not in this chunk yet. It jumps
   * from LF to LF with indexOf (native on Buffers and Uint8Arrays) and resumes where the last chunk stopped
   * (#lineLen, #cr), so a head arriving one byte at a time is scanned once. It counts lines against maxHeaderCount
   * and records each LF's offset from the head start in #ends, so #parseHead does not search for them again.
   * (A byte-at-a-time JS loop that also checked NUL and CR here measured slower: bench/codec.bench.ts.)
   */
  #findHeadEnd(chunk: Uint8Array, start: number): number {
    const len = chunk.length;
    const offset = this.#headBytes - start;
    const ends = this.#ends;
    let lineStart = start - this.#lineLen;
    let i = start;
    const hadCr = this.#cr;
    this.#cr = false;
    for (;;) {
      const j = chunk.indexOf(LF, i);
      if (j < 0) break;
      const n = j - lineStart;
      if (n === 0 || (n === 1 && (j === start ? hadCr : chunk[j - 1] === CR))) {
        this.#lineLen = 0;
        return j + 1; // the blank line
      }
      const line = this.#lines++;
      if (line >= this.#maxLines) {
        throw limit(
          'ZBUS_ERR_HEADERS_TOO_LARGE',
          `header count exceeds ${this.#maxLines - 1} (maxHeaderCount)`,
        );
      }
      ends[line] = j + offset;
      lineStart = j + 1;
      i = j + 1;
    }
    this.#cr = len > start ? chunk[len - 1] === CR : hadCr;
    this.#lineLen = len - lineStart;
    return -1;
  }

  #head(chunk: Uint8Array, pos: number): number {
    const len = chunk.length;
    if (this.#headBytes === 0) {
      // RFC 9112 §2.2: ignore empty lines before a start line (some clients send CRLF after a POST body).
      while (pos < len) {
        const b = chunk[pos];
        if (b !== CR && b !== LF) break;
        pos++;
      }
      if (pos === len) return len;
    }
    const end = this.#findHeadEnd(chunk, pos);
    if (end < 0) {
      this.#headBytes += len - pos;
      if (this.#headBytes > this.#maxHeaderBytes) {
        throw limit(
          'ZBUS_ERR_HEADERS_TOO_LARGE',
          `header block exceeds ${this.#maxHeaderBytes} bytes (maxHeaderBytes)`,
        );
      }
      if (this.#lines === 0 && this.#headBytes > this.#maxUrlBytes + START_LINE_SLACK) {
        throw limit('ZBUS_ERR_URL_TOO_LONG', `url exceeds ${this.#maxUrlBytes} bytes (maxUrlBytes)`);
      }
      this.#headParts.push(pos === 0 ? chunk : chunk.subarray(pos));
      return len;
    }
    const total = this.#headBytes + (end - pos);
    if (total > this.#maxHeaderBytes) {
      throw limit(
        'ZBUS_ERR_HEADERS_TOO_LARGE',
        `header block exceeds ${this.#maxHeaderBytes} bytes (maxHeaderBytes)`,
      );
    }
    let text: string;
    if (this.#headBytes === 0) {
      text = utf8Slice(chunk, pos, end);
    } else {
      this.#headParts.push(chunk.subarray(pos, end));
      const head = concat(this.#headParts, total);
      this.#headParts = [];
      text = utf8Slice(head, 0, total);
    }
    const lines = this.#lines;
    this.#headBytes = 0;
    this.#lines = 0;
    const msg = this.#parseHead(text, text.length === total, lines);
    if (this.#chunked) {
      this.#msg = msg;
      this.#framing = 0;
      this.#state = S_CHUNK_SIZE;
      return end;
    }
    const cl = this.#contentLength;
    if (cl <= 0) return this.#emit(msg, EMPTY_BYTES, end);
    if (len - end >= cl) return this.#emit(msg, chunk.subarray(end, end + cl), end + cl);
    // split body: one exact-size buffer (cl was checked against maxBodyBytes before this allocation)
    this.#msg = msg;
    this.#body = new Uint8Array(cl);
    this.#body.set(chunk.subarray(end), 0);
    this.#filled = len - end;
    this.#state = S_BODY;
    return len;
  }

  #bodyBytes(chunk: Uint8Array, pos: number): number {
    const need = this.#body.length - this.#filled;
    const avail = chunk.length - pos;
    if (avail < need) {
      this.#body.set(pos === 0 ? chunk : chunk.subarray(pos), this.#filled);
      this.#filled += avail;
      return chunk.length;
    }
    this.#body.set(chunk.subarray(pos, pos + need), this.#filled);
    const body = this.#body;
    const msg = this.#msg as Message;
    this.#body = EMPTY_BYTES;
    this.#filled = 0;
    this.#msg = null;
    return this.#emit(msg, body, pos + need);
  }

  /** Reads one short line (chunk size or trailer) that may be split; returns it, or undefined when incomplete. */
  #readLine(chunk: Uint8Array, pos: number, max: number, what: string): [string, number] | undefined {
    const j = chunk.indexOf(LF, pos);
    const end = j < 0 ? chunk.length : j;
    if (this.#line.length + (end - pos) > max) throw bad(`${what} line exceeds ${max} bytes`);
    this.#line += latin1(chunk, pos, end);
    if (j < 0) return undefined;
    let line = this.#line;
    this.#line = '';
    if (line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
    return [line, j + 1];
  }

  /** Counts framing bytes of a chunked body; a body whose framing outweighs its data is refused. */
  #addFraming(n: number): void {
    this.#framing += n;
    if (this.#framing > this.#maxHeaderBytes + this.#filled) {
      throw limit(
        'ZBUS_ERR_HEADERS_TOO_LARGE',
        `chunked framing of ${this.#framing} bytes exceeds the ${this.#filled} data bytes by more than ` +
          `${this.#maxHeaderBytes} bytes (maxHeaderBytes)`,
      );
    }
  }

  #chunkSize(chunk: Uint8Array, pos: number): number {
    const before = this.#line.length;
    const r = this.#readLine(chunk, pos, MAX_CHUNK_LINE, 'chunk size');
    if (r === undefined) return chunk.length;
    const [line, next] = r;
    this.#addFraming(before + next - pos);
    const semi = line.indexOf(';');
    const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
    if (hex.length === 0 || hex.length > 12 || !/^[0-9a-fA-F]+$/.test(hex)) {
      throw bad(`bad chunk size ${JSON.stringify(line.slice(0, 32))}`);
    }
    const size = Number.parseInt(hex, 16);
    const need = this.#filled + size;
    if (need > this.#maxBodyBytes) {
      throw limit('ZBUS_ERR_BODY_TOO_LARGE', `body exceeds ${this.#maxBodyBytes} bytes (maxBodyBytes)`);
    }
    if (size === 0) {
      this.#state = S_TRAILER;
      return next;
    }
    if (need > this.#body.length) {
      // Doubling keeps the copies linear in the body size; the limit was checked just above.
      const grown = new Uint8Array(Math.min(this.#maxBodyBytes, Math.max(need, this.#body.length * 2, 4096)));
      grown.set(this.#body.subarray(0, this.#filled), 0);
      this.#body = grown;
    }
    this.#chunkLeft = size;
    this.#state = S_CHUNK_DATA;
    return next;
  }

  #chunkData(chunk: Uint8Array, pos: number): number {
    const take = Math.min(this.#chunkLeft, chunk.length - pos);
    this.#body.set(chunk.subarray(pos, pos + take), this.#filled);
    this.#filled += take;
    this.#chunkLeft -= take;
    if (this.#chunkLeft === 0) this.#state = S_CHUNK_END;
    return pos + take;
  }

  #chunkEnd(chunk: Uint8Array, pos: number): number {
    // CRLF after chunk data; a lone LF is tolerated
    const b = chunk[pos];
    this.#addFraming(1);
    if (this.#line === '' && b === CR) {
      this.#line = '\r';
      return pos + 1;
    }
    if (b !== LF) throw bad('chunk data not followed by CRLF');
    this.#line = '';
    this.#state = S_CHUNK_SIZE;
    return pos + 1;
  }

  #trailer(chunk: Uint8Array, pos: number): number {
    const before = this.#line.length;
    const r = this.#readLine(chunk, pos, this.#maxHeaderBytes, 'trailer');
    if (r === undefined) return chunk.length;
    const [line, next] = r;
    this.#addFraming(before + next - pos);
    if (line.length !== 0) return next; // trailer fields are read and dropped
    const filled = this.#filled;
    const body = filled === this.#body.length ? this.#body : this.#body.slice(0, filled);
    const msg = this.#msg as Message;
    this.#body = EMPTY_BYTES;
    this.#filled = 0;
    this.#msg = null;
    return this.#emit(msg, body, next);
  }

  /** Delivers a complete message; returns the position after it (the state says whether to go on). */
  #emit(msg: Message, body: Uint8Array, next: number): number {
    this.#state = S_HEAD;
    this.#chunked = false;
    this.#contentLength = -1;
    if (body.length !== 0) msg.body = body;
    else {
      // zbus-protocol.md §1.1: a `body` header stands in for a missing body
      const h = msg.headers.body;
      if (h !== undefined) {
        msg.body = utf8Encode(h);
        delete msg.headers.body;
      }
    }
    this.#inCallback = true;
    const go = this.#onMessage(msg);
    this.#inCallback = false;
    if (go === false) this.#state = S_STOPPED;
    return next;
  }

  /** Parses a whole head (start line, header lines, blank line) into a Message and the framing fields. */
  #parseHead(s: string, ascii: boolean, lines: number): Message {
    // #findHeadEnd recorded where each line ends; NUL and bare CR are checked here, on the string (native
    // searches beat a byte loop there). When the text has as many characters as the head had bytes, it is ASCII
    // (UTF-8 decoding never lengthens), so those offsets are string indexes too; otherwise each LF is searched again.
    if (s.indexOf('\0') !== -1) throw bad('NUL byte in header block');
    const ends = this.#ends;
    const msg = new Message();
    let eol = ascii ? (ends[0] as number) : s.indexOf('\n');
    let lineEnd = s.charCodeAt(eol - 1) === CR ? eol - 1 : eol;
    // The next CR (s.length when none is left): searched again only once a line passes it, so a head without CRs
    // (bare LF line ends) is scanned once, not once per line to its end.
    let cr = s.indexOf('\r');
    if (cr === -1) cr = s.length;
    if (cr < lineEnd) throw bad('bare CR in start line');
    this.#startLine(msg, s, lineEnd);
    const headers = msg.headers;
    let contentLength = -1;
    let transferEncoding: string | undefined;
    let pos = eol + 1;
    for (let line = 1; line < lines; line++) {
      eol = ascii ? (ends[line] as number) : s.indexOf('\n', pos);
      lineEnd = s.charCodeAt(eol - 1) === CR ? eol - 1 : eol;
      if (cr < pos) {
        cr = s.indexOf('\r', pos);
        if (cr === -1) cr = s.length;
      }
      if (cr < lineEnd) throw bad('bare CR in header block');
      const c0 = s.charCodeAt(pos);
      if (c0 === 32 || c0 === 9) throw bad('obsolete line folding in header block');
      let name: string | undefined;
      let colon = s.indexOf(':', pos);
      if (colon > pos && colon < lineEnd) {
        const known = KNOWN[knownSlot(s, pos, colon)];
        if (known !== undefined && known.length === colon - pos && sameName(s, pos, known)) name = known;
      }
      if (name === undefined) {
        // one pass over the name: find the colon, check token characters
        let upper = false;
        colon = pos;
        for (; ; colon++) {
          if (colon >= lineEnd) {
            throw bad(
              `header line without colon: ${JSON.stringify(s.slice(pos, Math.min(lineEnd, pos + 40)))}`,
            );
          }
          const c = s.charCodeAt(colon);
          if (c === 58) break; // ':'
          const t = c < 128 ? (TOKEN[c] as number) : 0;
          if (t === 0) {
            const end = s.indexOf(':', colon);
            if (end < 0 || end > lineEnd) {
              throw bad(
                `header line without colon: ${JSON.stringify(s.slice(pos, Math.min(lineEnd, pos + 40)))}`,
              );
            }
            throw bad(`bad header name ${JSON.stringify(s.slice(pos, Math.min(end, pos + 40)))}`);
          }
          if (t === 2) upper = true;
        }
        if (colon === pos) throw bad('empty header name');
        name = upper ? s.slice(pos, colon).toLowerCase() : s.slice(pos, colon);
      }
      // trim optional whitespace around the value without allocating when there is none beyond one leading SP
      let vs = colon + 1;
      let ve = lineEnd;
      while (vs < ve) {
        const c = s.charCodeAt(vs);
        if (c !== 32 && c !== 9) break;
        vs++;
      }
      while (ve > vs) {
        const c = s.charCodeAt(ve - 1);
        if (c !== 32 && c !== 9) break;
        ve--;
      }
      const value = s.slice(vs, ve);
      pos = eol + 1;
      switch (name.length) {
        case 12:
          if (name === 'content-type') {
            setContentType(headers, value);
            continue;
          }
          break;
        case 14:
          if (name === 'content-length') {
            const n = this.#parseContentLength(value);
            if (contentLength !== -1 && contentLength !== n) throw bad('conflicting content-length headers');
            contentLength = n;
            continue;
          }
          break;
        case 17:
          if (name === 'transfer-encoding') {
            transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
            continue;
          }
          break;
      }
      headers[name] = value;
    }
    let chunked = false;
    if (transferEncoding !== undefined) {
      if (contentLength !== -1) throw bad('both content-length and transfer-encoding');
      const codings = transferEncoding.toLowerCase().split(',');
      const last = (codings[codings.length - 1] as string).trim();
      if (last !== 'chunked') throw bad(`unsupported transfer-encoding ${JSON.stringify(transferEncoding)}`);
      for (let i = 0; i < codings.length - 1; i++) {
        const c = (codings[i] as string).trim();
        if (c === 'chunked') throw bad('chunked applied twice');
        if (c !== 'identity') throw bad(`unsupported transfer-encoding ${JSON.stringify(transferEncoding)}`);
      }
      chunked = true;
    }
    this.#chunked = chunked;
    this.#contentLength = contentLength;
    return msg;
  }

  #parseContentLength(v: string): number {
    const n = v.length;
    if (n === 0) throw bad('empty content-length');
    let x = 0;
    for (let i = 0; i < n; i++) {
      const d = v.charCodeAt(i) - 48;
      if (d < 0 || d > 9) throw bad(`bad content-length ${JSON.stringify(v.slice(0, 32))}`);
      x = x * 10 + d;
      if (x > this.#maxBodyBytes) {
        throw limit(
          'ZBUS_ERR_BODY_TOO_LARGE',
          `content-length exceeds ${this.#maxBodyBytes} bytes (maxBodyBytes)`,
        );
      }
    }
    return x;
  }

  #startLine(msg: Message, s: string, end: number): void {
    // response: HTTP/1.x SP 3DIGIT [SP reason]
    if (s.charCodeAt(0) === 72 && s.startsWith('HTTP/1.')) {
      const minor = s.charCodeAt(7);
      if ((minor !== 49 && minor !== 48) || s.charCodeAt(8) !== 32 || (end > 12 && s.charCodeAt(12) !== 32)) {
        throw bad(`bad status line ${JSON.stringify(s.slice(0, Math.min(end, 40)))}`);
      }
      let status = 0;
      for (let i = 9; i < 12; i++) {
        const d = s.charCodeAt(i) - 48;
        if (i >= end || d < 0 || d > 9)
          throw bad(`bad status line ${JSON.stringify(s.slice(0, Math.min(end, 40)))}`);
        status = status * 10 + d;
      }
      if (status < 100) throw bad(`bad status code ${status}`);
      msg.status = status;
      if (minor === 48) msg.httpVersion = '1.0';
      return;
    }
    // request: method SP request-target SP HTTP/1.x
    const sp1 = s.indexOf(' ');
    // The last space is the one before the 8-character version, and no space follows it: lastIndexOf is a call
    // into the runtime (0.5 % of the broker's CPU at 10k msg/s, perf), indexOf is not.
    const sp2 = end - 9;
    const after = s.indexOf(' ', sp2 + 1);
    if (sp1 <= 0 || sp2 <= sp1 + 1 || s.charCodeAt(sp2) !== 32 || (after >= 0 && after < end)) {
      throw bad(`bad request line ${JSON.stringify(s.slice(0, Math.min(end, 40)))}`);
    }
    if (!s.startsWith('HTTP/1.1', sp2 + 1)) {
      if (s.startsWith('HTTP/1.0', sp2 + 1)) msg.httpVersion = '1.0';
      else throw bad(`unsupported http version ${JSON.stringify(s.slice(sp2 + 1, end))}`);
    }
    // the common methods come back as constants (no slice, no token check)
    let method: string;
    if (sp1 === 3 && s.startsWith('GET')) method = 'GET';
    else if (sp1 === 4 && s.startsWith('POST')) method = 'POST';
    else {
      method = s.slice(0, sp1);
      if (tokenKind(method) === 0) throw bad(`bad method ${JSON.stringify(method.slice(0, 20))}`);
    }
    if (sp2 - sp1 - 1 > this.#maxUrlBytes) {
      throw limit('ZBUS_ERR_URL_TOO_LONG', `url exceeds ${this.#maxUrlBytes} bytes (maxUrlBytes)`);
    }
    if (s.indexOf(' ', sp1 + 1) !== sp2) throw bad('whitespace in request target');
    const url = s.slice(sp1 + 1, sp2);
    if (url.indexOf('\t') !== -1) throw bad('whitespace in request target');
    msg.method = method;
    msg.url = url;
  }
}

/** `Content-Type: t; charset=c` → `content-type: t` + `encoding: c` (zbus-protocol.md §1.1); other params stay. */
function setContentType(headers: Record<string, string>, value: string): void {
  const semi = value.indexOf(';');
  if (semi < 0) {
    headers['content-type'] = value;
    return;
  }
  const params = value.slice(semi + 1).split(';');
  let type = value.slice(0, semi).trim();
  for (const p of params) {
    const t = p.trim();
    if (t.length === 0) continue;
    const eq = t.indexOf('=');
    if (eq > 0 && t.slice(0, eq).trim().toLowerCase() === 'charset') {
      let cs = t.slice(eq + 1).trim();
      if (cs.length >= 2 && cs.charCodeAt(0) === 34 && cs.charCodeAt(cs.length - 1) === 34)
        cs = cs.slice(1, -1);
      headers.encoding = cs;
    } else {
      type += `; ${t}`;
    }
  }
  headers['content-type'] = type;
}

let oneShotResult: Message | undefined;
let oneShot: MessageDecoder | undefined;
let oneShotBusy = false;

function takeOne(m: Message): boolean {
  oneShotResult = m;
  return false;
}

/**
 * Decodes one whole message from one buffer (a WebSocket frame's payload). Throws ProtocolError when the bytes are
 * incomplete or malformed, or hold more than one message (trailing CR/LF bytes are ignored).
 */
export function decodeMessage(bytes: Uint8Array, limits?: DecoderLimits): Message {
  // One shared decoder serves the default limits (decoding is synchronous; `busy` guards re-entry from a caller's
  // own onMessage). Other limits get a decoder of their own.
  let d: MessageDecoder;
  const shared = limits === undefined && !oneShotBusy;
  if (shared) {
    oneShot ??= new MessageDecoder(takeOne);
    d = oneShot;
    resetDecoder(d);
    oneShotBusy = true;
  } else {
    d = new MessageDecoder(takeOne, limits);
  }
  oneShotResult = undefined;
  try {
    d.push(bytes);
  } finally {
    if (shared) oneShotBusy = false;
  }
  const got = oneShotResult as Message | undefined;
  oneShotResult = undefined;
  if (got === undefined) throw bad('incomplete message');
  const rest = d.remaining();
  for (let i = 0; i < rest.length; i++) {
    const b = rest[i];
    if (b !== CR && b !== LF) throw bad('bytes after the message');
  }
  if (shared) resetDecoder(d); // drop the reference to `bytes`
  return got;
}
