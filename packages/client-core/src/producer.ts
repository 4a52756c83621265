import { type Message, ZbusError } from '@zbus/protocol';
import { type CodecOption, resolveCodec } from '@zbus/rpc';
import type { ClientSource } from './broker.js';
import type { MqClient, ProduceResult, RequestOptions } from './client.js';
import { type PublishInput, toProduceMessage } from './messages.js';
import { positive } from './options.js';
import { Semaphore } from './semaphore.js';
import { backoffDelay, delay } from './timers.js';

/**
 * Republishing a failed publish on another server (opt-in). The message keeps its id, so a server that did
 * store the first copy drops a second one sent to it (dedupe by id); a copy stored on a server that died before
 * answering is delivered once that server returns: with retries, delivery is at-least-once.
 */
export interface RetryPolicy {
  /** Tries in all, the first included (1: no retry). */
  attempts: number;
  /**
   * Milliseconds before the first retry; doubles with every further retry (at most 8x), +-20% jitter.
   * @default 50
   */
  backoffMs?: number;
  /**
   * Error codes that are retried.
   * @default ['ZBUS_ERR_CONNECTION_CLOSED', 'ZBUS_ERR_CLOSED']: the connection was lost (the server may or
   * may not have stored the message), or the server is shutting down.
   */
  codes?: readonly string[];
}

export const RETRY_DEFAULTS = {
  backoffMs: 50,
  codes: ['ZBUS_ERR_CONNECTION_CLOSED', 'ZBUS_ERR_CLOSED'],
} as const;

/** Options of a {@link Producer}. */
export interface ProducerOptions {
  /**
   * Publishes awaiting their ack at once; more wait for a slot (bounds memory under bursts).
   * @default 10000
   */
  maxInFlight?: number;
  /** Default reply timeout of publishes, ms; the client's `timeout` when absent. */
  timeout?: number;
  /** Codec of object bodies: `'json'`, or e.g. `msgpackCodec` from `@zbus/rpc/msgpack`. @default 'json' */
  codec?: CodecOption;
  /**
   * Republish on another server when a publish fails with a connection error (the server died or is shutting
   * down). Off by default: the publish rejects with `ZBUS_ERR_CONNECTION_CLOSED` and the caller decides.
   */
  retry?: RetryPolicy;
}

/** Options of one publish. */
export interface PublishOptions extends RequestOptions {
  /** `false`: fire-and-forget (`ack: false`); the promise resolves once the message is handed to the connection. */
  ack?: boolean;
}

/**
 * Publishes messages over shared, pipelined connections (one per server; a tracker-aware Broker picks the
 * server per topic): many publishes ride a connection at once without waiting
 * for each other, and each resolves with the broker's ack (offset, durability).
 *
 * ```ts
 * const producer = new Producer(broker);
 * const { offset, durability } = await producer.publish({ topic: 'orders', body: { id: 1 } });
 * ```
 */
export class Producer {
  readonly options: Readonly<ProducerOptions>;
  readonly #source: ClientSource | MqClient;
  readonly #slots: Semaphore;
  /** The source's servers are known (a tracker-aware Broker answered once). */
  #tracked = false;

  constructor(source: ClientSource | MqClient, options: ProducerOptions = {}) {
    this.#source = source;
    const maxInFlight = options.maxInFlight ?? 10_000;
    positive(maxInFlight, 'maxInFlight');
    if (options.timeout !== undefined) positive(options.timeout, 'timeout');
    const retry = options.retry;
    if (retry !== undefined) {
      if (!Number.isInteger(retry.attempts) || retry.attempts < 1)
        throw new ZbusError(
          'ZBUS_ERR_INVALID_ARGUMENT',
          `retry.attempts must be an integer >= 1, got ${String(retry.attempts)}`,
        );
      if (retry.backoffMs !== undefined) positive(retry.backoffMs, 'retry.backoffMs', true);
    }
    if (options.codec !== undefined) resolveCodec(options.codec);
    this.options = Object.freeze({ ...options, maxInFlight });
    this.#slots = new Semaphore(maxInFlight);
  }

  /** The connection a publish to `topic` goes out on now. */
  client(topic?: string): MqClient {
    const s = this.#source;
    return 'createClient' in s ? s.client(topic) : s;
  }

  /** The connection for a try: the first server routing offers that was not tried yet. */
  #pick(topic: string, tried: ReadonlySet<string>): MqClient {
    const s = this.#source;
    if (!('createClient' in s)) return s;
    if (tried.size === 0 || s.route === undefined || s.clientAt === undefined) return s.client(topic);
    const servers = s.route('produce', topic);
    const next = servers.find((a) => !tried.has(a)) ?? servers[0];
    return next === undefined ? s.client(topic) : s.clientAt(next);
  }

  /** Publishes are waiting for their ack. */
  get inFlight(): number {
    return this.#slots.inUse;
  }

  /** Publishes one message; resolves with the broker's ack. */
  publish(msg: PublishInput | Message, options?: PublishOptions & { ack?: true }): Promise<ProduceResult>;
  /** Fire-and-forget: resolves once the message is handed to the connection. */
  publish(msg: PublishInput | Message, options: PublishOptions & { ack: false }): Promise<undefined>;
  publish(msg: PublishInput | Message, options?: PublishOptions): Promise<ProduceResult | undefined>;
  async publish(
    msg: PublishInput | Message,
    options: PublishOptions = {},
  ): Promise<ProduceResult | undefined> {
    const input = this.#withCodec(msg);
    if (!this.#tracked) {
      const s = this.#source;
      if ('tracked' in s && s.tracked !== undefined) await s.tracked();
      this.#tracked = true;
    }
    const topic = input.topic as string;
    if (options.ack === false) return this.client(topic).produce(input, { ack: false });
    const wait = this.#slots.acquire();
    if (wait) await wait;
    try {
      const timeout = options.timeout ?? this.options.timeout;
      const opts = timeout === undefined ? {} : { timeout };
      const retry = this.options.retry;
      if (retry === undefined || retry.attempts <= 1) {
        return (await this.client(topic).produce(input, opts)) as ProduceResult;
      }
      // One message (one id) for every try, so a server that got it twice keeps one copy.
      const prepared = toProduceMessage(input);
      const codes = retry.codes ?? RETRY_DEFAULTS.codes;
      const base = retry.backoffMs ?? RETRY_DEFAULTS.backoffMs;
      const tried = new Set<string>();
      for (let attempt = 1; ; attempt++) {
        const client = this.#pick(topic, tried);
        try {
          return (await client.produce(prepared, opts)) as ProduceResult;
        } catch (err) {
          const code = (err as ZbusError)?.code;
          if (attempt >= retry.attempts || typeof code !== 'string' || !codes.includes(code)) throw err;
          tried.add(client.address);
          if (base > 0) await delay(backoffDelay(attempt - 1, base, base * 8, 0.2));
        }
      }
    } finally {
      this.#slots.release();
    }
  }

  /**
   * Publishes many messages at once (pipelined); resolves with the acks in order, or rejects with the first
   * failure (the others still went out). With `ack: false`, resolves once all are handed over.
   */
  publishBatch(
    msgs: readonly (PublishInput | Message)[],
    options?: PublishOptions & { ack?: true },
  ): Promise<ProduceResult[]>;
  publishBatch(
    msgs: readonly (PublishInput | Message)[],
    options: PublishOptions & { ack: false },
  ): Promise<undefined[]>;
  publishBatch(
    msgs: readonly (PublishInput | Message)[],
    options: PublishOptions = {},
  ): Promise<(ProduceResult | undefined)[]> {
    return Promise.all(msgs.map((m) => this.publish(m, options)));
  }

  /** Waits for publishes in flight (the shared connection stays open; close the broker to close it). */
  async flush(): Promise<void> {
    await this.#slots.idle();
  }

  /** Same as `flush()`: a producer owns no connection. */
  close(): Promise<void> {
    return this.flush();
  }

  #withCodec(msg: PublishInput | Message): PublishInput | Message {
    const codec = this.options.codec;
    if (codec !== undefined && isPublishInput(msg) && msg.codec === undefined) return { ...msg, codec };
    return msg;
  }
}

function isPublishInput(m: PublishInput | Message): m is PublishInput {
  return !('headers' in m && 'body' in m && typeof (m as Message).set === 'function');
}
