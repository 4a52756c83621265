import { Message } from './message.js';

/*
 * zbus.js message objects (zbus-protocol.md §4.4): the keys `status`, `method`, `url` and `body` are special; every
 * other key is a header, camelCase in JS and snake_case on the wire (`consumeGroup` ↔ `consume_group`).
 */

const SPECIAL = new Set(['status', 'method', 'url', 'body']);

/** `consumeGroup` → `consume_group`. */
export function toSnakeCase(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `consume_group` → `consumeGroup`. */
export function toCamelCase(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** A Message from a zbus.js-style object; an object body becomes JSON with content-type application/json. */
export function messageFromObject(obj: Record<string, unknown>): Message {
  const msg = new Message();
  if (typeof obj.status === 'number') msg.status = obj.status;
  else if (typeof obj.status === 'string' && obj.status !== '') msg.status = Number(obj.status);
  if (typeof obj.method === 'string') msg.method = obj.method;
  if (typeof obj.url === 'string') msg.url = obj.url;
  for (const key of Object.keys(obj)) {
    if (SPECIAL.has(key)) continue;
    const v = obj[key];
    if (v === undefined || v === null) continue;
    const value = typeof v === 'object' ? JSON.stringify(v) : String(v);
    msg.headers[toSnakeCase(key)] = value;
  }
  const body = obj.body;
  if (body !== undefined && body !== null) {
    if (ArrayBuffer.isView(body) && !(body instanceof Uint8Array)) {
      msg.body = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    } else {
      msg.setBody(body as string | Uint8Array | ArrayBuffer | object);
    }
  }
  return msg;
}

/**
 * A zbus.js-style object from a Message: `status` (responses) or `method` and `url` (requests), headers as camelCase
 * keys, and `body` parsed per content-type (application/json → parsed, falling back to the text when it is not JSON;
 * text/* → string; anything else → bytes). An empty body gives no `body` key.
 */
export function messageToObject(msg: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (msg.status !== undefined) out.status = msg.status;
  else {
    out.method = msg.method;
    out.url = msg.url;
  }
  for (const k in msg.headers) {
    const key = toCamelCase(k);
    if (SPECIAL.has(key)) continue;
    out[key] = msg.headers[k];
  }
  if (msg.body.length !== 0) {
    const ct = (msg.headers['content-type'] ?? '').toLowerCase();
    if (ct.includes('json')) {
      const text = msg.bodyText();
      try {
        out.body = JSON.parse(text);
      } catch {
        out.body = text;
      }
    } else if (ct.startsWith('text/')) {
      out.body = msg.bodyText();
    } else {
      out.body = msg.body;
    }
  }
  return out;
}
