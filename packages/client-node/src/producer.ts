import {
  ackTime,
  type ClientSource,
  Producer as CoreProducer,
  expectOk,
  type MqClient,
  type ProduceOptions,
  type ProduceResult,
  type ProducerOptions,
  type PublishInput,
  type PublishOptions,
  queuedSize,
  type ReplyMap,
  toProduceMessage,
} from '@zbus/client-core';
import type { Message } from '@zbus/protocol';
import { nextId } from './ids.js';

/**
 * A publish's result as core's `produceResult` makes it, but an instance of a class rather than an object literal:
 * after a burst of publishes outlived a scavenge, V8 may allocate every later object of a literal in the old
 * generation, and each dead one keeps its ack alive through scavenges (the latency bench's producer then promoted
 * 3.3 MB per scavenge, against 0.1 MB). The browser client keeps the literal, for its bundle size.
 */
class Produced implements ProduceResult {
  constructor(
    public id: string,
    public topic: string,
    public offset: number | undefined,
    public durability: string | undefined,
    public serverTime: number | undefined,
    public server: string | undefined,
    public reply: Message,
  ) {}
}

function produced(
  reply: Message | undefined,
  msg: Message,
  error: Error | undefined,
  server: string,
): ProduceResult {
  if (error !== undefined) throw error;
  const ack = expectOk(reply as Message);
  return new Produced(
    msg.headers.id ?? ack.headers.id ?? '',
    msg.headers.topic ?? '',
    ack.offset,
    ack.headers.durable,
    serverTime(ack),
    server,
    ack,
  );
}

/**
 * The broker's time in an ack's body, as core's `ackTime` reads it, but read from the bytes when they are
 * 1-15 ASCII digits (what the broker sends): the body's text, trimmed and parsed, cost a string and a call into
 * the runtime per publish. (Exported for its test.)
 */
export function serverTime(ack: Message): number | undefined {
  const b = ack.body;
  const n = b.length;
  if (n > 0 && n < 16 && ack.headers.encoding === undefined) {
    let t = 0;
    let i = 0;
    for (; i < n; i++) {
      const d = (b[i] as number) - 48;
      if (d < 0 || d > 9) break;
      t = t * 10 + d;
    }
    if (i === n) return t;
  }
  return ackTime(ack);
}

/**
 * The core `Producer` with a publish path for Node. A publish given no options, once one publish went through
 * (the servers are known) and while there is room on the connection, returns the produce request's own promise,
 * settled by a function made once per connection: no async function, no await, no options object per publish
 * (that is a fifth of a publish's allocation). The browser client keeps the core's one path, for its bundle size.
 */
export class Producer extends CoreProducer {
  /** How a publish on each connection settles: made once per connection. */
  readonly #settlers = new WeakMap<MqClient, ReplyMap<ProduceResult>>();
  /** The produce options of a publish given none. */
  readonly #defaults: ProduceOptions;
  /** A publish went through the core path: the source knows its servers. */
  #ready = false;
  readonly #becameReady = () => {
    this.#ready = true;
  };

  constructor(source: ClientSource | MqClient, options: ProducerOptions = {}) {
    super(source, options);
    this.#defaults = options.timeout === undefined ? {} : { timeout: options.timeout };
  }

  override publish(
    msg: PublishInput | Message,
    options?: PublishOptions & { ack?: true },
  ): Promise<ProduceResult>;
  override publish(msg: PublishInput | Message, options: PublishOptions & { ack: false }): Promise<undefined>;
  override publish(msg: PublishInput | Message, options?: PublishOptions): Promise<ProduceResult | undefined>;
  override publish(
    input: PublishInput | Message,
    options?: PublishOptions,
  ): Promise<ProduceResult | undefined> {
    if (options !== undefined) return super.publish(input, options);
    if (!this.#ready) {
      // The core path until one publish went through: it waits for a tracker-aware Broker to know its servers.
      const first = super.publish(input);
      first.then(this.#becameReady, () => {});
      return first;
    }
    let msg: Message;
    try {
      // Built once: every try sends the same message (one id), so a server that got it twice keeps one copy.
      msg = toProduceMessage(input, this.options.codec);
    } catch (err) {
      return Promise.reject(err);
    }
    if (msg.headers.id === undefined) msg.headers.id = nextId();
    const wait = this.budget.acquire(queuedSize(msg));
    return wait === undefined ? this.#send(msg) : wait.then(() => this.#send(msg));
  }

  /** Sends a publish that holds its `queuedSize` of the budget; the budget is given back when it settles. */
  #send(msg: Message): Promise<ProduceResult> {
    const client = this.client(msg.headers.topic);
    const timeout = this.#defaults.timeout ?? client.options.timeout;
    const sent = client.produceNow(msg, timeout, this.#settlerFor(client));
    if (sent !== undefined) return sent;
    // No room on the connection now: wait for it, as the core path does, then try again.
    return client.writable({ timeout }).then(
      () => this.#send(msg),
      (err) => this.#failed(msg, client, err),
    );
  }

  #settlerFor(client: MqClient): ReplyMap<ProduceResult> {
    let settle = this.#settlers.get(client);
    if (settle === undefined) {
      settle = (reply, request, error) => {
        let result: ProduceResult;
        try {
          result = produced(reply, request, error, client.address);
        } catch (err) {
          return this.#failed(request, client, err);
        }
        this.budget.release(queuedSize(request));
        return result;
      };
      this.#settlers.set(client, settle);
    }
    return settle;
  }

  /** A failed first try: recovered (declare, retry) or rejected as the core path does; then the budget is freed. */
  #failed(msg: Message, client: MqClient, error: unknown): Promise<ProduceResult> {
    const release = () => this.budget.release(queuedSize(msg));
    return (this.recover(msg, this.#defaults, client, error) as Promise<ProduceResult>).finally(release);
  }
}
