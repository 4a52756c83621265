import { Packr } from 'msgpackr';

/** How an RPC body is turned into bytes and back. */
export interface BodyCodec {
  /** The name used in options: `'json'` or `'msgpack'`. */
  readonly name: CodecName;
  /** The `content-type` header value written on messages encoded with this codec. */
  readonly contentType: string;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

export type CodecName = 'json' | 'msgpack';

export const JSON_CONTENT_TYPE = 'application/json';
export const MSGPACK_CONTENT_TYPE = 'application/x-msgpack';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** JSON, wire-compatible with 0.11 clients. `undefined` is written as `null`. */
export const jsonCodec: BodyCodec = {
  name: 'json',
  contentType: JSON_CONTENT_TYPE,
  encode(value) {
    return textEncoder.encode(JSON.stringify(value === undefined ? null : value));
  },
  decode(bytes) {
    if (bytes.length === 0) return undefined;
    return JSON.parse(textDecoder.decode(bytes)) as unknown;
  },
};

// Records (a msgpackr extension) are off so that any msgpack implementation can read the bodies.
const packr = new Packr({ useRecords: false, moreTypes: false });

/** msgpack via `msgpackr`; opt-in, content type `application/x-msgpack`. */
export const msgpackCodec: BodyCodec = {
  name: 'msgpack',
  contentType: MSGPACK_CONTENT_TYPE,
  encode(value) {
    const out = packr.pack(value === undefined ? null : value);
    // msgpackr returns a Buffer on Node; hand out a plain view so callers see one type everywhere.
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  },
  decode(bytes) {
    if (bytes.length === 0) return undefined;
    return packr.unpack(bytes) as unknown;
  },
};

export function codecByName(name: CodecName): BodyCodec {
  return name === 'msgpack' ? msgpackCodec : jsonCodec;
}

/**
 * The codec that reads a body with this content type. msgpack when the type says so, JSON otherwise:
 * 0.11 services answer `application/json`, and some send no content type at all.
 */
export function codecForContentType(contentType: string | undefined): BodyCodec {
  if (contentType && /msgpack/i.test(contentType)) return msgpackCodec;
  return jsonCodec;
}

/** Decodes a reply body leniently: JSON or msgpack by content type; text that is not JSON stays text. */
export function decodeBody(contentType: string | undefined, bytes: Uint8Array): unknown {
  if (bytes.length === 0) return undefined;
  const codec = codecForContentType(contentType);
  if (codec === msgpackCodec) return codec.decode(bytes);
  const text = textDecoder.decode(bytes);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
