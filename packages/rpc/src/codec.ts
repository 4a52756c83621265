import { ZbusError } from '@zbus/protocol';

/** How a body is turned into bytes and back. */
export interface BodyCodec {
  /** A short name for messages (`'json'`, `'msgpack'`). */
  readonly name: string;
  /** The `content-type` written on messages encoded with this codec; replies are matched to it by media type. */
  readonly contentType: string;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

/**
 * A codec in options: `'json'` (the default, wire-compatible with 0.11 clients) or a codec object, such as
 * `msgpackCodec` from `@zbus/rpc/msgpack` (opt-in, so that apps that do not use it do not carry `msgpackr`).
 */
export type CodecOption = 'json' | BodyCodec;

export const JSON_CONTENT_TYPE = 'application/json';
export const MSGPACK_CONTENT_TYPE = 'application/x-msgpack';

const MSGPACK_OPT_IN =
  "the msgpack codec is opt-in: install msgpackr and pass msgpackCodec from '@zbus/rpc/msgpack'";

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

function isCodec(c: unknown): c is BodyCodec {
  if (c === null || typeof c !== 'object') return false;
  const o = c as Record<string, unknown>;
  return (
    typeof o.name === 'string' &&
    typeof o.contentType === 'string' &&
    typeof o.encode === 'function' &&
    typeof o.decode === 'function'
  );
}

/** The codec an option names; throws `ZBUS_ERR_INVALID_ARGUMENT` naming `option` when it names none. */
export function resolveCodec(codec: unknown, option = 'codec'): BodyCodec {
  if (codec === undefined || codec === 'json') return jsonCodec;
  if (isCodec(codec)) return codec;
  if (codec === 'msgpack') throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `${option}: ${MSGPACK_OPT_IN}`);
  throw new ZbusError(
    'ZBUS_ERR_INVALID_ARGUMENT',
    `${option} must be 'json' or a codec ({ name, contentType, encode, decode }), got ${String(codec)}`,
  );
}

/** `application/x-msgpack; charset=…` → `application/x-msgpack`. */
function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/**
 * The codec that reads a body with this content type: the one of `codecs` with the same media type, JSON
 * otherwise (0.11 services answer `application/json`, and some send no content type at all). A msgpack body
 * with no msgpack codec at hand is an error that says how to add one, not a JSON parse failure.
 */
export function codecForContentType(
  contentType: string | undefined,
  codecs: readonly BodyCodec[] = [],
): BodyCodec {
  if (!contentType) return jsonCodec;
  const type = mediaType(contentType);
  for (const c of codecs) if (mediaType(c.contentType) === type) return c;
  if (type.includes('msgpack')) {
    throw new ZbusError('ZBUS_ERR_BAD_MESSAGE', `cannot read a ${type} body: ${MSGPACK_OPT_IN}`);
  }
  return jsonCodec;
}

/** Decodes a reply body leniently: by content type with `codecs`, else JSON; text that is not JSON stays text. */
export function decodeBody(
  contentType: string | undefined,
  bytes: Uint8Array,
  codecs: readonly BodyCodec[] = [],
): unknown {
  if (bytes.length === 0) return undefined;
  const codec = codecForContentType(contentType, codecs);
  if (codec !== jsonCodec) return codec.decode(bytes);
  const text = textDecoder.decode(bytes);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
