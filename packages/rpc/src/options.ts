import { ZbusError } from '@zbus/protocol';
import { type BodyCodec, type CodecOption, resolveCodec } from './codec.js';

/** Options of {@link RpcProcessor}. */
export interface RpcProcessorOptions {
  /**
   * Put the stack of thrown errors in status-600 replies. Off by default so that services do not leak
   * their internals to callers.
   * @default false
   */
  stackTrace?: boolean;
  /**
   * Read numbers, `true`, `false` and `null` among URL params (`GET /MyRpc/math/plus/1/2`) as JSON values.
   * @default true
   */
  coerceUrlParams?: boolean;
  /**
   * Answer a request with an empty method (and no method registered under `''`) with the method list.
   * @default true
   */
  methodList?: boolean;
  /**
   * Codecs the processor reads besides JSON, matched by the request's content type; it answers in the
   * request's codec. `[msgpackCodec]` (from `@zbus/rpc/msgpack`) serves msgpack callers.
   * @default []
   */
  codecs?: readonly BodyCodec[];
}

export const PROCESSOR_DEFAULTS = {
  stackTrace: false,
  coerceUrlParams: true,
  methodList: true,
  codecs: [],
} as const satisfies Required<RpcProcessorOptions>;

export function resolveProcessorOptions(
  options: RpcProcessorOptions,
): Readonly<Required<RpcProcessorOptions>> {
  const o = { ...PROCESSOR_DEFAULTS, ...stripUndefined(options) };
  for (const key of ['stackTrace', 'coerceUrlParams', 'methodList'] as const) {
    if (typeof o[key] !== 'boolean') {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `${key} must be a boolean, got ${typeof o[key]}`);
    }
  }
  if (!Array.isArray(o.codecs)) throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'codecs must be an array');
  const codecs = Object.freeze(o.codecs.map((c, i) => resolveCodec(c, `codecs[${i}]`)));
  return Object.freeze({ ...o, codecs });
}

/** Options of {@link RpcInvoker}. */
export interface RpcInvokerOptions {
  /** The service name: the RPC topic requests are produced to. */
  topic: string;
  /**
   * Module used by `invoke(method, ...params)`; `''` is the service's default module.
   * @default ''
   */
  module?: string;
  /**
   * Milliseconds to wait for a reply, unless a call says otherwise.
   * @default 10000
   */
  timeout?: number;
  /**
   * Body codec of requests: `'json'`, or a codec such as `msgpackCodec` from `@zbus/rpc/msgpack`. Replies are
   * decoded by their content type.
   * @default 'json'
   */
  codec?: CodecOption;
  /** Auth token sent with every request. */
  token?: string;
}

export const DEFAULT_RPC_TIMEOUT = 10_000;

export interface ResolvedInvokerOptions {
  readonly topic: string;
  readonly module: string;
  readonly timeout: number;
  readonly codec: BodyCodec;
  readonly token: string | undefined;
}

export function resolveInvokerOptions(options: RpcInvokerOptions): ResolvedInvokerOptions {
  if (options === null || typeof options !== 'object') {
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'RpcInvoker options must be an object with a topic');
  }
  const { topic, module = '', timeout = DEFAULT_RPC_TIMEOUT, codec = 'json', token } = options;
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'topic (the service name) is required');
  }
  if (typeof module !== 'string') throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'module must be a string');
  checkTimeout(timeout, 'timeout');
  if (token !== undefined && typeof token !== 'string') {
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'token must be a string');
  }
  return Object.freeze({ topic, module, timeout, codec: resolveCodec(codec), token });
}

export function checkTimeout(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ZbusError(
      'ZBUS_ERR_INVALID_ARGUMENT',
      `${name} must be a positive number of ms, got ${String(value)}`,
    );
  }
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
