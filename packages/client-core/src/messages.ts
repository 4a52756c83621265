import { createHeaders, Message, ZbusError } from '@zbus/protocol';
import { type CodecOption, resolveCodec } from '@zbus/rpc';

/** A body: text, bytes, or a value encoded with the message's codec (JSON by default). */
export type Body = string | Uint8Array | ArrayBuffer | object | number | boolean | null;

/** A message to publish, in object form. Extra headers go in `headers` (wire names, e.g. `origin_url`). */
export interface PublishInput {
  topic: string;
  body?: Body;
  /** Tag for group filters, at most 127 chars. */
  tag?: string;
  /** Message id (at most 39 chars); the client makes a UUID when absent. The broker dedupes by it. */
  id?: string;
  /** Deliver after this many ms (survives broker restarts). */
  delay?: number;
  /** Deliver at this epoch time, ms. */
  deliverAt?: number;
  /** Codec for bodies that are neither text nor bytes (e.g. `msgpackCodec` from `@zbus/rpc/msgpack`). @default 'json' */
  codec?: CodecOption;
  /** Content type; set from the body when absent (`text/plain`, or the codec's). */
  contentType?: string;
  /** More headers. */
  headers?: Record<string, string | number | boolean | undefined>;
  /** Request URL kept with the message (delivered as `url`). @default '/' */
  url?: string;
  /** Request method kept with the message. @default 'GET' (0.11 clients send GET too) */
  method?: string;
}

/** Sets `body` on `msg`: strings as UTF-8 text, bytes as they are, other values with `codec`. */
export function setBody(msg: Message, body: Body | undefined, codec: CodecOption = 'json'): void {
  if (body === undefined) return;
  if (typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer) {
    msg.setBody(body);
    return;
  }
  const c = resolveCodec(codec);
  if (msg.contentType === undefined) msg.set('content-type', c.contentType);
  msg.setBody(c.encode(body));
}

/**
 * Builds the produce request for `input`. A `Message` is copied (headers only; the body bytes are shared), so
 * publishing one message object twice sends two messages with their own ids rather than a duplicate the
 * broker would drop; set `id` yourself to get deduplication.
 */
export function toProduceMessage(input: PublishInput | Message, codec?: CodecOption): Message {
  if (input instanceof Message) {
    if (!input.topic) throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'a message to publish needs a topic');
    const msg = input.clone();
    msg.set('cmd', 'produce');
    return msg;
  }
  if (input === null || typeof input !== 'object' || typeof input.topic !== 'string' || input.topic === '') {
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'a message to publish needs a topic');
  }
  const msg = new Message();
  if (input.url !== undefined) msg.url = input.url;
  if (input.method !== undefined) msg.method = input.method;
  if (input.headers !== undefined) {
    for (const [k, v] of Object.entries(input.headers)) if (v !== undefined) msg.set(k, v);
  }
  // Lower-case names and string values: stored as they are (`set` lower-cases and converts, per call).
  const h = msg.headers;
  h.cmd = 'produce';
  h.topic = input.topic;
  if (input.tag !== undefined) h.tag = String(input.tag);
  if (input.id !== undefined) h.id = String(input.id);
  if (input.delay !== undefined) msg.set('delay', input.delay);
  if (input.deliverAt !== undefined) msg.set('deliver_at', input.deliverAt);
  if (input.contentType !== undefined) msg.set('content-type', input.contentType);
  setBody(msg, input.body, input.codec ?? codec);
  return msg;
}

/**
 * Undoes the broker's rewrite of a delivered message (zbus-protocol.md §7.6), as 0.11 clients do: `id` from
 * `origin_id`, `url`/`method` from `origin_url`/`origin_method`, `status` from `origin_status` (a stored
 * request has none). The consume request's id is dropped.
 */
export function restoreDelivery(msg: Message): Message {
  const src = msg.headers;
  const url = src.origin_url;
  if (url !== undefined) msg.url = url;
  const method = src.origin_method;
  if (method !== undefined) msg.method = method;
  // A stored request has no origin_status: the delivery becomes a request again. Assigned, not deleted, so
  // Message objects keep one shape (a `delete` would turn each delivered message into a slow dictionary).
  msg.status = msg.originStatus;
  // A new header bag without the origin_* headers, for the same reason (deleting four headers per delivery
  // turned every header bag into a dictionary).
  const headers = createHeaders();
  for (const k in src) {
    if (k.length > 7 && k.startsWith('origin_')) {
      if (k === 'origin_id') headers.id = src[k] as string;
      else if (k === 'origin_url' || k === 'origin_method' || k === 'origin_status') continue;
      else headers[k] = src[k] as string;
    } else if (k !== 'id' || src.origin_id === undefined) {
      headers[k] = src[k] as string;
    }
  }
  msg.headers = headers;
  return msg;
}

// Ids are 128 random bits in the shape of a UUID (36 chars; 0.11 allows 39). Random, not a counter: with
// `dedupeWindowMs` the broker drops a second message with an id it has seen, so a client that could predict
// another's next ids (from one it consumed) could publish them first and have that client's messages dropped.
// The bytes come from the platform's CSPRNG, 64 KiB (the most getRandomValues gives at once) per draw.
const ID_POOL = new Uint8Array(65_536);
let idAt = ID_POOL.length;
const HEX_DIGITS = '0123456789abcdef';
/** The char codes of the id being made: one flat string from them, not a concatenation of 20 pieces. */
const idCodes: number[] = [];

/** A message id: 128 random bits, UUID-shaped (8-4-4-4-12 hex digits). */
export function newId(): string {
  if (idAt === ID_POOL.length) {
    globalThis.crypto.getRandomValues(ID_POOL);
    idAt = 0;
  }
  for (let i = 0, j = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) idCodes[j++] = 45; // '-'
    const b = ID_POOL[idAt++] as number;
    idCodes[j++] = HEX_DIGITS.charCodeAt(b >> 4);
    idCodes[j++] = HEX_DIGITS.charCodeAt(b & 15);
  }
  return String.fromCharCode(...idCodes);
}
