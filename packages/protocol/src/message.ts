import { decodeText, EMPTY_BYTES, utf8Encode } from './text.js';

/** What a {@link Message} can be built from. */
export interface MessageInit {
  status?: number;
  method?: string;
  url?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

/**
 * Header bags have no Object.prototype in their chain, like Object.create(null) (so `__proto__`, `constructor` or
 * `toString` are plain header names), but they are built by a constructor whose prototype is a null-prototype
 * object: V8 then keeps them as fast hidden-class objects, where Object.create(null) gives dictionary objects that
 * are several times slower to fill (bench/codec.bench.ts).
 */
const HeaderBag = function HeaderBag() {} as unknown as new () => Record<string, string>;
HeaderBag.prototype = Object.create(null);

/** A new, empty header object with no Object.prototype in its chain. */
export function createHeaders(): Record<string, string> {
  return new HeaderBag();
}

function str(h: Record<string, string>, name: string): string | undefined {
  return h[name];
}

function num(h: Record<string, string>, name: string): number | undefined {
  const v = h[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * One zbus message: an HTTP/1.1 request (no `status`) or response (`status` set), with lower-case headers and the
 * body as bytes (zbus-protocol.md §1.1). `headers` has no prototype, so any name (even `__proto__`) is a plain
 * header.
 */
export class Message {
  /** Undefined on requests; a status line makes a response. */
  status?: number;
  method: string;
  url: string;
  /** Lower-case names; a null-prototype object. */
  headers: Record<string, string>;
  /** Empty when there is none. */
  body: Uint8Array;
  /** HTTP version of a decoded message. */
  httpVersion: '1.1' | '1.0';
  /**
   * The rest of the head, already encoded: header lines (each ending in CRLF) and the blank line that ends the
   * head, sent after `headers` as they are. A broker sets it to send stored header bytes without parsing them;
   * decoded messages never have one.
   */
  headTail: Uint8Array | undefined;

  constructor(init?: MessageInit) {
    this.method = 'GET';
    this.url = '/';
    this.headers = new HeaderBag();
    this.body = EMPTY_BYTES;
    this.httpVersion = '1.1';
    this.headTail = undefined;
    if (init === undefined) return;
    if (init.status !== undefined) this.status = init.status;
    if (init.method !== undefined) this.method = init.method;
    if (init.url !== undefined) this.url = init.url;
    if (init.headers !== undefined) {
      for (const k of Object.keys(init.headers)) {
        const v = init.headers[k];
        if (v !== undefined && v !== null) this.headers[k.toLowerCase()] = String(v);
      }
    }
    if (init.body !== undefined)
      this.body = typeof init.body === 'string' ? utf8Encode(init.body) : init.body;
  }

  /** The header's value (the name is matched case-insensitively). */
  get(name: string): string | undefined {
    const v = this.headers[name];
    return v !== undefined ? v : this.headers[name.toLowerCase()];
  }

  /** Sets a header (name lower-cased); `undefined` deletes it. */
  set(name: string, value: string | number | boolean | undefined): this {
    const key = name.toLowerCase();
    if (value === undefined) delete this.headers[key];
    else this.headers[key] = String(value);
    return this;
  }

  /** Deletes a header. */
  delete(name: string): void {
    delete this.headers[name.toLowerCase()];
  }

  get cmd(): string | undefined {
    return str(this.headers, 'cmd');
  }
  set cmd(v: string | undefined) {
    this.set('cmd', v);
  }
  get topic(): string | undefined {
    return str(this.headers, 'topic');
  }
  set topic(v: string | undefined) {
    this.set('topic', v);
  }
  get consumeGroup(): string | undefined {
    return str(this.headers, 'consume_group');
  }
  set consumeGroup(v: string | undefined) {
    this.set('consume_group', v);
  }
  get id(): string | undefined {
    return str(this.headers, 'id');
  }
  set id(v: string | undefined) {
    this.set('id', v);
  }
  get tag(): string | undefined {
    return str(this.headers, 'tag');
  }
  set tag(v: string | undefined) {
    this.set('tag', v);
  }
  get token(): string | undefined {
    return str(this.headers, 'token');
  }
  set token(v: string | undefined) {
    this.set('token', v);
  }
  get sender(): string | undefined {
    return str(this.headers, 'sender');
  }
  set sender(v: string | undefined) {
    this.set('sender', v);
  }
  get recver(): string | undefined {
    return str(this.headers, 'recver');
  }
  set recver(v: string | undefined) {
    this.set('recver', v);
  }
  get originId(): string | undefined {
    return str(this.headers, 'origin_id');
  }
  set originId(v: string | undefined) {
    this.set('origin_id', v);
  }
  get originUrl(): string | undefined {
    return str(this.headers, 'origin_url');
  }
  set originUrl(v: string | undefined) {
    this.set('origin_url', v);
  }
  get originMethod(): string | undefined {
    return str(this.headers, 'origin_method');
  }
  set originMethod(v: string | undefined) {
    this.set('origin_method', v);
  }
  get contentType(): string | undefined {
    return str(this.headers, 'content-type');
  }
  set contentType(v: string | undefined) {
    this.set('content-type', v);
  }
  get encoding(): string | undefined {
    return str(this.headers, 'encoding');
  }
  set encoding(v: string | undefined) {
    this.set('encoding', v);
  }
  get offset(): number | undefined {
    return num(this.headers, 'offset');
  }
  set offset(v: number | undefined) {
    this.set('offset', v);
  }
  get originStatus(): number | undefined {
    return num(this.headers, 'origin_status');
  }
  set originStatus(v: number | undefined) {
    this.set('origin_status', v);
  }
  get retry(): number | undefined {
    return num(this.headers, 'retry');
  }
  set retry(v: number | undefined) {
    this.set('retry', v);
  }
  get timestamp(): number | undefined {
    return num(this.headers, 'timestamp');
  }
  set timestamp(v: number | undefined) {
    this.set('timestamp', v);
  }

  /**
   * Whether the sender wants a reply: true unless the `ack` header is `0` or `false` (default true,
   * zbus-protocol.md §2). Setting `undefined` removes the header.
   */
  get ack(): boolean {
    const v = this.headers.ack;
    if (v === undefined) return true;
    const t = v.trim().toLowerCase();
    return !(t === '0' || t === 'false');
  }
  set ack(v: boolean | undefined) {
    this.set('ack', v === undefined ? undefined : v ? 'true' : 'false');
  }

  /** The body as text: UTF-8, or the `encoding` header's charset when TextDecoder knows it. */
  bodyText(): string {
    if (this.body.length === 0) return '';
    return decodeText(this.body, this.headers.encoding);
  }

  /** The body parsed as JSON (throws SyntaxError when it is not JSON). */
  json<T = unknown>(): T {
    return JSON.parse(this.bodyText()) as T;
  }

  /**
   * Sets the body. A string is UTF-8 encoded (content-type `text/plain` unless one is set); bytes are kept as
   * given; anything else is JSON (content-type `application/json` unless a JSON content-type is set).
   */
  setBody(body: string | Uint8Array | ArrayBuffer | object | number | boolean | null): this {
    if (typeof body === 'string') {
      this.body = utf8Encode(body);
      if (this.headers['content-type'] === undefined) this.headers['content-type'] = 'text/plain';
    } else if (body instanceof Uint8Array) {
      this.body = body;
    } else if (body instanceof ArrayBuffer) {
      this.body = new Uint8Array(body);
    } else {
      this.body = utf8Encode(JSON.stringify(body) ?? 'null');
      const ct = this.headers['content-type'];
      if (ct === undefined || !ct.includes('json')) this.headers['content-type'] = 'application/json';
    }
    return this;
  }

  /** A copy with its own headers object; the body bytes are shared (copy them with `body.slice()` if needed). */
  clone(): Message {
    const m = new Message();
    if (this.status !== undefined) m.status = this.status;
    m.method = this.method;
    m.url = this.url;
    m.httpVersion = this.httpVersion;
    for (const k in this.headers) m.headers[k] = this.headers[k] as string;
    m.body = this.body;
    m.headTail = this.headTail;
    return m;
  }
}
