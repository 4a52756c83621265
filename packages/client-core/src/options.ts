import { type DecoderLimits, ZbusError } from '@zbus/protocol';
import { consoleLogger, type Logger } from './logger.js';
import type { TransportFactory } from './transport.js';

/** Options of {@link MqClient}, shared by every transport. */
export interface MqClientOptions {
  /** Opens connections. The Node `MqClient` fills in TCP/TLS; the browser client fills in WebSocket. */
  transport: TransportFactory;
  /** Auth token added to every request that has none. */
  token?: string;
  /**
   * Milliseconds a request waits for its reply, unless the call says otherwise.
   * @default 10000
   */
  timeout?: number;
  /**
   * Milliseconds a connection attempt may take.
   * @default 5000
   */
  connectTimeout?: number;
  /**
   * Milliseconds between heartbeats (`cmd: heartbeat`, never answered; the broker closes sessions idle for
   * 180 s). `0` turns heartbeats off.
   * @default 60000
   */
  heartbeatInterval?: number;
  /**
   * Reconnect after a connection that was up is lost; requests made meanwhile wait (within their timeouts).
   * @default true
   */
  reconnect?: boolean;
  /**
   * First reconnect delay, ms; doubles on every failed attempt.
   * @default 100
   */
  reconnectDelay?: number;
  /**
   * Largest reconnect delay, ms.
   * @default 5000
   */
  reconnectMaxDelay?: number;
  /**
   * Spread of each reconnect delay, as a fraction of it (0.2 = +-20%).
   * @default 0.2
   */
  reconnectJitter?: number;
  /**
   * With every heartbeat, a `ping` must be answered within this many ms or the connection counts as dead and is
   * replaced (a half-open TCP connection or a stalled WebSocket otherwise goes unnoticed). `0` turns it off.
   * @default 10000
   */
  pingTimeout?: number;
  /**
   * Keep trying the first connection (with the reconnect backoff) instead of failing `connect()`: for
   * processes that may start before the broker. Requests made meanwhile wait, within their timeouts.
   * @default false
   */
  retryInitialConnect?: boolean;
  /**
   * Milliseconds `close()` waits for requests in flight before it closes the connection anyway.
   * @default 10000
   */
  closeTimeout?: number;
  /**
   * Messages that may wait in the client (for a connection, or for the transport to drain); more is an error
   * (`ZBUS_ERR_LIMIT`).
   * @default 100000
   */
  maxQueued?: number;
  /**
   * Bytes (bodies plus an estimate of the heads) that may wait in the client, for a connection or for the
   * transport to drain. Past it `invoke` and `send` fail with `ZBUS_ERR_LIMIT`, while `produce` and the
   * `Producer` wait for room, so a producer faster than the broker (or a broker that stops reading) cannot grow
   * the client's memory without bound. A single larger message may still wait alone.
   * @default 16777216 (16 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * Where the client logs (pino-compatible: `error`, `warn`, `info`, `debug` taking `(object, message)`). Connection
   * losses and failed reconnects are `warn`; handler errors nobody listens for are `error`.
   * @default `consoleLogger`: errors to the console, nothing else
   */
  logger?: Logger;
  /** Limits applied to messages from the broker. @default the protocol's DEFAULT_LIMITS */
  limits?: DecoderLimits;
}

export const CLIENT_DEFAULTS = {
  timeout: 10_000,
  connectTimeout: 5_000,
  heartbeatInterval: 60_000,
  pingTimeout: 10_000,
  retryInitialConnect: false,
  reconnect: true,
  reconnectDelay: 100,
  reconnectMaxDelay: 5_000,
  reconnectJitter: 0.2,
  closeTimeout: 10_000,
  maxQueued: 100_000,
  maxQueuedBytes: 16 * 1024 * 1024,
  logger: consoleLogger,
} as const satisfies Required<Omit<MqClientOptions, 'transport' | 'token' | 'limits'>>;

export interface ResolvedClientOptions {
  readonly transport: TransportFactory;
  readonly token: string | undefined;
  readonly timeout: number;
  readonly connectTimeout: number;
  readonly heartbeatInterval: number;
  readonly pingTimeout: number;
  readonly retryInitialConnect: boolean;
  readonly reconnect: boolean;
  readonly reconnectDelay: number;
  readonly reconnectMaxDelay: number;
  readonly reconnectJitter: number;
  readonly closeTimeout: number;
  readonly maxQueued: number;
  readonly maxQueuedBytes: number;
  readonly logger: Logger;
  readonly limits: DecoderLimits | undefined;
}

function invalid(message: string): ZbusError {
  return new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', message);
}

export function positive(value: unknown, name: string, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw invalid(
      `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(value)}`,
    );
  }
  return value;
}

/** Throws unless `logger` has the four pino-compatible methods the clients call. */
export function checkLogger(logger: unknown, name = 'logger'): asserts logger is Logger {
  const l = logger as Partial<Record<keyof Logger, unknown>> | null;
  if (l === null || typeof l !== 'object') throw invalid(`${name} must be an object (pino-compatible)`);
  for (const level of ['error', 'warn', 'info', 'debug'] as const) {
    if (typeof l[level] !== 'function')
      throw invalid(`${name}.${level} must be a function (pino-compatible)`);
  }
}

export function resolveClientOptions(options: MqClientOptions): ResolvedClientOptions {
  if (options === null || typeof options !== 'object' || typeof options.transport !== 'function') {
    throw invalid('MqClient options need a transport factory');
  }
  const o = { ...CLIENT_DEFAULTS };
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && k in o) (o as Record<string, unknown>)[k] = v;
  }
  positive(o.timeout, 'timeout');
  positive(o.connectTimeout, 'connectTimeout');
  positive(o.heartbeatInterval, 'heartbeatInterval', true);
  positive(o.pingTimeout, 'pingTimeout', true);
  if (typeof o.retryInitialConnect !== 'boolean') throw invalid('retryInitialConnect must be a boolean');
  positive(o.reconnectDelay, 'reconnectDelay');
  positive(o.reconnectMaxDelay, 'reconnectMaxDelay');
  positive(o.closeTimeout, 'closeTimeout', true);
  positive(o.maxQueued, 'maxQueued');
  positive(o.maxQueuedBytes, 'maxQueuedBytes');
  checkLogger(o.logger);
  if (o.reconnectMaxDelay < o.reconnectDelay) {
    throw invalid(
      `reconnectMaxDelay (${o.reconnectMaxDelay}) must be >= reconnectDelay (${o.reconnectDelay})`,
    );
  }
  if (typeof o.reconnectJitter !== 'number' || o.reconnectJitter < 0 || o.reconnectJitter > 1) {
    throw invalid(`reconnectJitter must be between 0 and 1, got ${String(o.reconnectJitter)}`);
  }
  if (typeof o.reconnect !== 'boolean') throw invalid('reconnect must be a boolean');
  if (options.token !== undefined && typeof options.token !== 'string')
    throw invalid('token must be a string');
  return Object.freeze({ ...o, transport: options.transport, token: options.token, limits: options.limits });
}
