import type { Message } from '@zbus/protocol';
import type { CodecName } from '@zbus/rpc';
import type { ClientSource } from './broker.js';
import type { MqClient, ProduceResult, RequestOptions } from './client.js';
import type { PublishInput } from './messages.js';
import { positive } from './options.js';
import { Semaphore } from './semaphore.js';

/** Options of a {@link Producer}. */
export interface ProducerOptions {
  /**
   * Publishes awaiting their ack at once; more wait for a slot (bounds memory under bursts).
   * @default 10000
   */
  maxInFlight?: number;
  /** Default reply timeout of publishes, ms; the client's `timeout` when absent. */
  timeout?: number;
  /** Codec of object bodies. @default 'json' */
  codec?: CodecName;
}

/** Options of one publish. */
export interface PublishOptions extends RequestOptions {
  /** `false`: fire-and-forget (`ack: false`); the promise resolves once the message is handed to the connection. */
  ack?: boolean;
}

/**
 * Publishes messages over one shared, pipelined connection: many publishes ride it at once without waiting
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

  constructor(source: ClientSource | MqClient, options: ProducerOptions = {}) {
    this.#source = source;
    const maxInFlight = options.maxInFlight ?? 10_000;
    positive(maxInFlight, 'maxInFlight');
    if (options.timeout !== undefined) positive(options.timeout, 'timeout');
    this.options = Object.freeze({ ...options, maxInFlight });
    this.#slots = new Semaphore(maxInFlight);
  }

  /** The connection publishes go out on. */
  client(topic?: string): MqClient {
    const s = this.#source;
    return 'createClient' in s ? s.client(topic) : s;
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
    const client = this.client(input.topic);
    if (options.ack === false) return client.produce(input, { ack: false });
    const wait = this.#slots.acquire();
    if (wait) await wait;
    try {
      const timeout = options.timeout ?? this.options.timeout;
      return (await client.produce(input, timeout === undefined ? {} : { timeout })) as ProduceResult;
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
