import type { Message } from './message.js';

/**
 * Every error code and the status a reply carrying it gets (style.md §6). A code without a status does not compile.
 */
export const STATUS_BY_CODE = {
  ZBUS_ERR_BAD_MESSAGE: 400,
  ZBUS_ERR_BAD_REQUEST: 400,
  ZBUS_ERR_BAD_NAME: 400,
  ZBUS_ERR_INVALID_ARGUMENT: 400,
  ZBUS_ERR_UNKNOWN_COMMAND: 400,
  ZBUS_ERR_EXCLUSIVE: 401,
  ZBUS_ERR_FORBIDDEN: 403,
  ZBUS_ERR_PROTECTED_MODE: 403,
  ZBUS_ERR_CROSS_SITE: 403,
  ZBUS_ERR_NOT_FOUND: 404,
  ZBUS_ERR_BODY_TOO_LARGE: 413,
  ZBUS_ERR_URL_TOO_LONG: 414,
  ZBUS_ERR_LIMIT: 429,
  ZBUS_ERR_HEADERS_TOO_LARGE: 431,
  ZBUS_ERR_INTERNAL: 500,
  ZBUS_ERR_STORE: 500,
  ZBUS_ERR_SEEK: 500,
  ZBUS_ERR_NOT_IMPLEMENTED: 501,
  ZBUS_ERR_BAD_GATEWAY: 502,
  ZBUS_ERR_NO_RESPONDERS: 503,
  ZBUS_ERR_CLOSED: 503,
  ZBUS_ERR_CONNECTION_CLOSED: 503,
  ZBUS_ERR_TIMEOUT: 504,
  ZBUS_ERR_NO_SPACE: 507,
  ZBUS_ERR_RPC: 600,
} as const;

/** A stable error code. */
export type ZbusErrorCode = keyof typeof STATUS_BY_CODE;

/** Every error code, in table order. */
export const ERROR_CODES: readonly ZbusErrorCode[] = Object.freeze(
  Object.keys(STATUS_BY_CODE) as ZbusErrorCode[],
);

/** Options of a {@link ZbusError}: `cause`, and `status` to override the code's status. */
export type ZbusErrorOptions = ErrorOptions & { status?: number };

// The class names of an error's chain live under a registered symbol, so `instanceof` works across two copies of
// this package (undici's Symbol.hasInstance trick, style.md §6).
const kKinds = Symbol.for('zbus.error.kinds');

interface Branded {
  [kKinds]?: unknown;
}

/** The base of every zbus error: a stable `code` for the wire and logs, and the `status` a reply carries. */
export class ZbusError extends Error {
  /** The class name recorded on instances; subclasses set their own. */
  static readonly kind: string = 'ZbusError';

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    const kinds = (value as Branded)[kKinds];
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of instanceof (a subclass too)
    return Array.isArray(kinds) && kinds.includes((this as { kind?: string }).kind);
  }

  readonly code: ZbusErrorCode;
  readonly status: number;

  constructor(code: ZbusErrorCode, message: string, options?: ZbusErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options?.status ?? STATUS_BY_CODE[code] ?? 500;
    const kinds: string[] = [];
    let ctor: unknown = new.target;
    while (typeof ctor === 'function' && typeof (ctor as { kind?: unknown }).kind === 'string') {
      const kind = (ctor as unknown as { kind: string }).kind;
      if (kinds[kinds.length - 1] !== kind) kinds.push(kind);
      ctor = Object.getPrototypeOf(ctor);
    }
    Object.defineProperty(this, kKinds, { value: kinds, enumerable: false });
    this.name = kinds[0] ?? 'ZbusError';
  }
}

/** Malformed bytes on the wire. The connection is closed after the reply. */
export class ProtocolError extends ZbusError {
  static override readonly kind: string = 'ProtocolError';
}

/** Over a configured limit; the message names the option, e.g. "header block exceeds 65536 bytes (maxHeaderBytes)". */
export class LimitError extends ZbusError {
  static override readonly kind: string = 'LimitError';
}

/** The JSON a service sends with status 600 (zbus-protocol.md §8.1). */
export interface RemoteErrorInfo {
  message?: string;
  code?: string;
  name?: string;
  stack?: string;
  [key: string]: unknown;
}

/** A business error thrown by an RPC method on the other side (status 600). */
export class RpcError extends ZbusError {
  static override readonly kind: string = 'RpcError';
  /** The remote exception as sent, when the body was JSON. */
  readonly remote: RemoteErrorInfo | undefined;
  constructor(message: string, remote?: RemoteErrorInfo, options?: ZbusErrorOptions) {
    super('ZBUS_ERR_RPC', message, options);
    this.remote = remote;
  }
}

/** True for any zbus error, from this copy of the package or another one. */
export function isZbusError(e: unknown): e is ZbusError {
  return e instanceof ZbusError;
}

/** True when `code` is a known error code. */
export function isZbusErrorCode(code: unknown): code is ZbusErrorCode {
  return typeof code === 'string' && Object.hasOwn(STATUS_BY_CODE, code);
}

const LIMIT_CODES: ReadonlySet<ZbusErrorCode> = new Set<ZbusErrorCode>([
  'ZBUS_ERR_BODY_TOO_LARGE',
  'ZBUS_ERR_URL_TOO_LONG',
  'ZBUS_ERR_LIMIT',
  'ZBUS_ERR_HEADERS_TOO_LARGE',
]);

/** The code a reply without an `error_code` header gets from its status. */
const CODE_BY_STATUS: Record<number, ZbusErrorCode> = {
  400: 'ZBUS_ERR_BAD_REQUEST',
  401: 'ZBUS_ERR_EXCLUSIVE',
  403: 'ZBUS_ERR_FORBIDDEN',
  404: 'ZBUS_ERR_NOT_FOUND',
  413: 'ZBUS_ERR_BODY_TOO_LARGE',
  414: 'ZBUS_ERR_URL_TOO_LONG',
  429: 'ZBUS_ERR_LIMIT',
  431: 'ZBUS_ERR_HEADERS_TOO_LARGE',
  500: 'ZBUS_ERR_INTERNAL',
  501: 'ZBUS_ERR_NOT_IMPLEMENTED',
  502: 'ZBUS_ERR_BAD_GATEWAY',
  503: 'ZBUS_ERR_NO_RESPONDERS',
  504: 'ZBUS_ERR_TIMEOUT',
  507: 'ZBUS_ERR_NO_SPACE',
  600: 'ZBUS_ERR_RPC',
};

/** Builds the error of `code` with the class of its family (ProtocolError, LimitError, RpcError or ZbusError). */
export function createError(code: ZbusErrorCode, message: string, options?: ZbusErrorOptions): ZbusError {
  if (code === 'ZBUS_ERR_BAD_MESSAGE') return new ProtocolError(code, message, options);
  if (LIMIT_CODES.has(code)) return new LimitError(code, message, options);
  if (code === 'ZBUS_ERR_RPC') return new RpcError(message, undefined, options);
  return new ZbusError(code, message, options);
}

/**
 * Client side: turns an error reply back into an error. The `error_code` header picks the code when it is a known
 * one, else the status does; the body text is the message. Status 600 gives an {@link RpcError} whose `remote` is
 * the parsed JSON `{message, code, name, stack}` when the body is JSON.
 */
export function errorFromReply(msg: Message): ZbusError {
  const status = msg.status ?? 500;
  const header = msg.headers.error_code;
  const text = msg.bodyText();
  if (status === 600 || header === 'ZBUS_ERR_RPC') {
    let remote: RemoteErrorInfo | undefined;
    let message = text;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        remote = parsed as RemoteErrorInfo;
        if (typeof remote.message === 'string') message = remote.message;
      } else if (typeof parsed === 'string') {
        message = parsed;
      }
    } catch {
      // a plain-text error body
    }
    return new RpcError(message || 'rpc error', remote, { status });
  }
  let code: ZbusErrorCode;
  if (isZbusErrorCode(header)) code = header;
  else code = CODE_BY_STATUS[status] ?? (status >= 500 ? 'ZBUS_ERR_INTERNAL' : 'ZBUS_ERR_BAD_REQUEST');
  return createError(code, text || `status ${status}`, { status });
}
