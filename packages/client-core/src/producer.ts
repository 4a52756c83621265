import { type Message, ZbusError } from '@zbus/protocol';
import { type CodecOption, resolveCodec } from '@zbus/rpc';
import { Budget } from './budget.js';
import type { DeclareOptions, MqClient, ProduceOptions, ProduceResult, RequestOptions } from './client.js';
import { queuedSize } from './connection.js';
import { type PublishInput, toProduceMessage } from './messages.js';
import { positive } from './options.js';
import { type ClientSource, sourceOf } from './source.js';
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
   * Publishes awaiting their ack (or, with `ack: false`, their turn on the connection) at once; more wait.
   * @default 10000
   */
  maxInFlight?: number;
  /**
   * Bytes of those publishes (bodies plus an estimate of the heads): more wait, so a fast producer of large
   * messages holds a bounded amount of memory whatever the broker's pace. One larger message still goes alone.
   * @default 8388608 (8 MiB)
   */
  maxInFlightBytes?: number;
  /** Default reply timeout of publishes, ms; the client's `timeout` when absent. */
  timeout?: number;
  /** Codec of object bodies: `'json'`, or e.g. `msgpackCodec` from `@zbus/rpc/msgpack`. @default 'json' */
  codec?: CodecOption;
  /**
   * Republish on another server when a publish fails with a connection error (the server died or is shutting
   * down). Off by default: the publish rejects with `ZBUS_ERR_CONNECTION_CLOSED` and the caller decides.
   */
  retry?: RetryPolicy;
  /**
   * Declare a topic that does not exist (a publish answered 404), then publish again, as `zbus pub` does and as a
   * `Consumer` does by default. Off by default: a publish to an undeclared topic fails with `ZBUS_ERR_NOT_FOUND`
   * (and a message saying how to declare it), so a misspelt topic is not created silently.
   * @default false
   */
  declareOnMissing?: boolean;
  /** Mask of topics created by `declareOnMissing` (`Mask.Memory`, ...). */
  topicMask?: number;
}

/** Options of one publish. */
export interface PublishOptions extends RequestOptions {
  /** `false`: fire-and-forget (`ack: false`); the promise resolves once the message is handed to the connection. */
  ack?: boolean;
}

export const PRODUCER_DEFAULTS = { maxInFlight: 10_000, maxInFlightBytes: 8 * 1024 * 1024 } as const;

/**
 * Publishes messages over shared, pipelined connections (one per server; a tracker-aware Broker picks the
 * server per topic): many publishes ride a connection at once without waiting for each other, and each
 * resolves with the broker's ack (offset, durability). Publishes in flight are bounded by count and by bytes,
 * and a connection whose broker reads slower than we write makes publishes wait (backpressure).
 *
 * ```ts
 * const producer = new Producer(broker);
 * const { offset, durability } = await producer.publish({ topic: 'orders', body: { id: 1 } });
 * ```
 */
export class Producer {
  readonly options: Readonly<ProducerOptions & { maxInFlight: number; maxInFlightBytes: number }>;
  readonly #source: ClientSource;
  /** Publishes in flight, by count and bytes (for subclasses with a publish path of their own). */
  protected readonly budget: Budget;
  /** The source's servers are known (a tracker-aware Broker answered once). */
  #tracked = false;

  constructor(source: ClientSource | MqClient, options: ProducerOptions = {}) {
    this.#source = sourceOf(source);
    const maxInFlight = options.maxInFlight ?? PRODUCER_DEFAULTS.maxInFlight;
    const maxInFlightBytes = options.maxInFlightBytes ?? PRODUCER_DEFAULTS.maxInFlightBytes;
    positive(maxInFlight, 'maxInFlight');
    positive(maxInFlightBytes, 'maxInFlightBytes');
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
    this.options = Object.freeze({ ...options, maxInFlight, maxInFlightBytes });
    this.budget = new Budget(maxInFlight, maxInFlightBytes);
  }

  /** The connection a publish to `topic` goes out on now. */
  client(topic?: string): MqClient {
    return this.#source.client(topic);
  }

  /** The connection for a try: the first server routing offers that was not tried yet. */
  #pick(topic: string, tried: ReadonlySet<string>): MqClient {
    const s = this.#source;
    if (tried.size === 0 || s.route === undefined || s.clientAt === undefined) return s.client(topic);
    const servers = s.route('produce', topic);
    const next = servers.find((a) => !tried.has(a)) ?? servers[0];
    return next === undefined ? s.client(topic) : s.clientAt(next);
  }

  /** Publishes in flight (awaiting their ack or their turn on the connection). */
  get inFlight(): number {
    return this.budget.count;
  }

  /** Their bytes. */
  get inFlightBytes(): number {
    return this.budget.bytes;
  }

  /** Publishes one message; resolves with the broker's ack. */
  publish(msg: PublishInput | Message, options?: PublishOptions & { ack?: true }): Promise<ProduceResult>;
  /** Fire-and-forget: resolves once the message is handed to the connection. */
  publish(msg: PublishInput | Message, options: PublishOptions & { ack: false }): Promise<undefined>;
  publish(msg: PublishInput | Message, options?: PublishOptions): Promise<ProduceResult | undefined>;
  async publish(
    input: PublishInput | Message,
    options: PublishOptions = {},
  ): Promise<ProduceResult | undefined> {
    // Built once: every try sends the same message (one id), so a server that got it twice keeps one copy.
    const msg = toProduceMessage(input, this.options.codec);
    if (!this.#tracked) {
      const s = this.#source;
      if (s.tracked !== undefined) await s.tracked();
      this.#tracked = true;
    }
    const bytes = queuedSize(msg);
    const wait = this.budget.acquire(bytes, options.signal);
    if (wait) await wait;
    const opts: ProduceOptions = { ...options, timeout: options.timeout ?? this.options.timeout };
    // The first try is awaited here, not in recover: one promise less per publish in the common case.
    const first = this.client(msg.headers.topic);
    try {
      return await first.produceMessage(msg, opts);
    } catch (err) {
      return await this.recover(msg, opts, first, err);
    } finally {
      this.budget.release(bytes);
    }
  }

  /**
   * After the first try on `client` failed with `error`: declares the topic when it is missing
   * (`declareOnMissing`) and retries (`retry`), or throws.
   */
  protected async recover(
    msg: Message,
    opts: ProduceOptions,
    client: MqClient,
    error: unknown,
  ): Promise<ProduceResult | undefined> {
    const topic = msg.headers.topic as string;
    const retry = this.options.retry;
    const attempts = retry?.attempts ?? 1;
    const codes = retry?.codes ?? RETRY_DEFAULTS.codes;
    const base = retry?.backoffMs ?? RETRY_DEFAULTS.backoffMs;
    const tried = new Set<string>();
    let declared = false;
    let err = error;
    // `err` is the failure of try `attempt` on `client`.
    for (let attempt = 1; ; ) {
      const code = (err as ZbusError)?.code;
      if (code === 'ZBUS_ERR_NOT_FOUND') {
        if (!this.options.declareOnMissing || declared) throw notDeclared(topic, err as ZbusError);
        // Declared where the publish went, then sent there again; this try does not count against `retry`.
        declared = true;
        const declare: DeclareOptions = { timeout: opts.timeout, signal: opts.signal };
        if (this.options.topicMask !== undefined) declare.topicMask = this.options.topicMask;
        await client.declare(topic, declare);
      } else {
        if (attempt >= attempts || typeof code !== 'string' || !codes.includes(code)) throw err;
        tried.add(client.address);
        if (base > 0) await delay(backoffDelay(attempt - 1, base, base * 8, 0.2));
        attempt++;
        client = this.#pick(topic, tried);
      }
      try {
        return await client.produceMessage(msg, opts);
      } catch (e) {
        err = e;
      }
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
    await this.budget.idle();
  }

  /** Same as `flush()`: a producer owns no connection. */
  close(): Promise<void> {
    return this.flush();
  }

  /** `await using producer = new Producer(...)` flushes at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.flush();
  }
}

/** The 404 of a publish, saying how to get past it. */
function notDeclared(topic: string, err: ZbusError): ZbusError {
  return new ZbusError(
    'ZBUS_ERR_NOT_FOUND',
    `${err.message}: declare topic ${topic} first (MqAdmin.declare, or \`zbus declare ${topic}\`), or create ` +
      'the Producer with declareOnMissing: true',
    { cause: err },
  );
}
