import { Cmd, errorFromReply, Mask, Message, ZbusError } from '@zbus/protocol';
import type { GroupOptions, MqClient, NackOptions } from './client.js';
import { abortable, IdleWaiters } from './dispose.js';
import { Emitter } from './emitter.js';
import { consoleLogger, type Logger } from './logger.js';
import { restoreDelivery } from './messages.js';
import { checkLogger, positive } from './options.js';
import { type ClientSource, sourceOf } from './source.js';
import { backoffDelay, type TimerHandle } from './timers.js';

/** Acknowledgement control attached to every delivered message. */
export interface DeliveryControl {
  /** Acknowledges the message (refills the window; clears it in ack-required groups). */
  ack(): Promise<void>;
  /** Gives the message back for redelivery, after `delay` ms when set, saying why when `reason` is set. */
  nack(options?: { delay?: number; reason?: string }): Promise<void>;
  /** Extends the message's ack deadline. */
  touch(): Promise<void>;
  /** Whether `ack` or `nack` was called. */
  readonly settled: boolean;
}

/**
 * A delivered message: `id`, url, method and status restored as 0.11 clients do (zbus-protocol.md §7.6);
 * `offset`, `consume_group`, `retry` (1 on the first redelivery) kept; plus `ack`/`nack`/`touch`.
 */
export type ConsumedMessage = Message & DeliveryControl;

/** Handles one message; `client` is the connection it came in on (0.11 `messageHandler(msg, client)`). */
export type MessageHandler = (msg: ConsumedMessage, client: MqClient) => unknown;

/** Options of a {@link Consumer}. */
export interface ConsumerOptions {
  topic: string;
  /** The group to consume: a name, or options with start rules, filter, mask. The topic's default group when absent. */
  group?: string | GroupOptions;
  /** Mask to declare the topic with when it is created. */
  topicMask?: number;
  /**
   * `'auto'`: ack after the handler resolves (or, when iterating, when the next message is asked for), nack
   * when it throws. `'manual'`: call `msg.ack()` / `msg.nack()` yourself; with a window above 1, unacked
   * messages hold the window.
   * @default 'auto'
   */
  ackMode?: 'auto' | 'manual';
  /**
   * Messages the broker may push to one connection before they are acked (`consume_window`); also the
   * number of handlers running at once per connection. 1 is the 0.11 behaviour: one consume per message.
   * @default 1
   */
  window?: number;
  /**
   * Connections consuming in parallel.
   * @default 1
   */
  connectionCount?: number;
  /** Server-side long-poll limit, ms (`consume_timeout`); the consume is re-sent when it runs out. */
  consumeTimeout?: number;
  /**
   * Declare the topic and group before consuming, and again when a consume answers 404 (0.11 `declareOnMissing`).
   * @default true
   */
  declareOnMissing?: boolean;
  /** Called for every message; without one, iterate the consumer with `for await`. */
  handler?: MessageHandler;
  /**
   * Called when a handler throws or the broker refuses a consume; the consumer keeps going. Without it such
   * errors go to the consumer's `error` listeners, and without those to the logger (`error` level), so none is
   * lost.
   */
  onError?: (err: Error, msg?: ConsumedMessage) => void;
  /**
   * How long a message whose handler failed waits before it is redelivered (auto mode nacks it with this
   * `delay`): `delay * 2^retry` ms, at most `maxDelay`, spread by +-`jitter`, so a failing message does not spin
   * through its deliveries into the dead-letter topic within milliseconds. `false` redelivers at once.
   * @default { delay: 500, maxDelay: 30000, jitter: 0.2 }
   */
  nackBackoff?: NackBackoff | false;
  /** Where errors nobody listens for are logged (pino-compatible). @default the client's logger */
  logger?: Logger;
  /** Closes the consumer when aborted (as `close()` does; a `for await` over it ends). */
  signal?: AbortSignal;
  /** Token for this consumer's connections. */
  token?: string;
  /**
   * Milliseconds `close()` waits for running handlers.
   * @default 30000
   */
  closeTimeout?: number;
}

/** The backoff of automatic nacks: `delay * 2^retry` ms, at most `maxDelay`, +-`jitter` (a fraction). */
export interface NackBackoff {
  /** @default 500 */
  delay?: number;
  /** @default 30000 */
  maxDelay?: number;
  /** @default 0.2 */
  jitter?: number;
}

export const NACK_BACKOFF_DEFAULTS = { delay: 500, maxDelay: 30_000, jitter: 0.2 } as const;

export const CONSUMER_DEFAULTS = {
  ackMode: 'auto',
  window: 1,
  connectionCount: 1,
  declareOnMissing: true,
  closeTimeout: 30_000,
} as const;

/** Events of a {@link Consumer}. */
export type ConsumerEvents = {
  /** A handler failed or the broker refused a consume (when no `onError` option is given). */
  error: [error: Error, msg: ConsumedMessage | undefined];
};

const kAckAsync = Symbol('zbus.consumer.ackAsync');
const kAck = Symbol('zbus.consumer.ack');
const kRouted = Symbol('zbus.consumer.routed');

/**
 * Tells the consumer that `msg` was answered with a `route`. Where the broker settles a delivery on that route
 * (an RPC topic, in a group that is not ack-required: dispatcher `answered`), the message counts as settled and
 * auto mode sends no ack after it: one message less per RPC call for the broker to read and handle. Elsewhere
 * the ack goes out as before. @internal
 */
export function answeredByRoute(msg: ConsumedMessage): void {
  (msg as unknown as DeliveredMessage)[kRouted]();
}

/**
 * A delivered message with its ack controls as prototype methods over a few fields: one object per delivery
 * instead of five closures and an `Object.defineProperties` (which also turned every message into a slow
 * dictionary-mode object) on the consume hot path.
 */
class DeliveredMessage extends Message {
  readonly #client: MqClient;
  readonly #topic: string;
  readonly #group: string;
  readonly #offset: string | undefined;
  readonly #routeSettles: boolean;
  #settled = false;

  constructor(src: Message, client: MqClient, topic: string, group: string, routeSettles: boolean) {
    super();
    if (src.status !== undefined) this.status = src.status;
    this.method = src.method;
    this.url = src.url;
    this.headers = src.headers;
    this.body = src.body;
    this.httpVersion = src.httpVersion;
    this.#client = client;
    this.#topic = topic;
    this.#group = group;
    this.#offset = src.headers.offset;
    this.#routeSettles = routeSettles;
  }

  [kRouted](): void {
    if (this.#routeSettles) this.#settled = true;
  }

  get settled(): boolean {
    return this.#settled;
  }

  #need(what: string): string {
    if (this.#offset === undefined)
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `cannot ${what}: the message has no offset`);
    return this.#offset;
  }

  /** `ack()` (Message's `ack` is the header accessor; this class's prototype shadows it, see below). */
  async [kAck](): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    await this.#client.ack(this.#topic, this.#group, this.#need('ack'));
  }

  async nack(options: { delay?: number; reason?: string } = {}): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    const o: NackOptions = {};
    if (options.delay !== undefined) o.delay = options.delay;
    if (options.reason !== undefined) o.reason = options.reason;
    await this.#client.nack(this.#topic, this.#group, this.#need('nack'), o);
  }

  async touch(): Promise<void> {
    await this.#client.touch(this.#topic, this.#group, this.#need('touch'));
  }

  /** Java's ackAsync: an ack with `ack: false`, no reply to wait for. */
  [kAckAsync](): void {
    if (this.#settled) return;
    this.#settled = true;
    // Lower-case names and string values, stored as they are: one ack per delivered message.
    const m = new Message();
    const h = m.headers;
    h.cmd = Cmd.Ack;
    h.topic = this.#topic;
    h.consume_group = this.#group;
    h.offset = this.#need('ack');
    h.ack = 'false';
    this.#client.send(m);
  }
}
// As before, a delivered message's `ack` is the method, not the `ack` header accessor of Message.
Object.defineProperty(DeliveredMessage.prototype, 'ack', {
  value: DeliveredMessage.prototype[kAck],
  enumerable: false,
  configurable: true,
  writable: true,
});

/** Consumer states. */
export type ConsumerState = 'idle' | 'running' | 'paused' | 'closing' | 'closed';

/** One consuming connection. */
class Lane {
  stream: { id: string; cancel(): void } | undefined;
  inFlight = 0;
  failures = 0;
  retryTimer: TimerHandle | undefined;
  /** Declaring (or not yet set up): no consume goes out. */
  declaring = true;
  readonly offConnected: () => void;

  constructor(
    readonly consumer: Consumer,
    readonly client: MqClient,
    /** The server (address connected to) this lane consumes from. */
    readonly server: string,
  ) {
    this.offConnected = client.on('connected', () => consumer._pump(this));
  }
}

/**
 * Consumes a topic's group over `connectionCount` connections (per server: with a tracker-aware Broker that
 * knows several, from every server that holds the topic), with a handler or as an async iterator.
 *
 * ```ts
 * const consumer = new Consumer(broker, { topic: 'orders', group: 'billing', handler: async (m) => bill(m.json()) });
 * await consumer.start();
 * // or: for await (const m of new Consumer(broker, { topic: 'orders' })) { ... }
 * ```
 *
 * `pause()` sends `unconsume` (messages already delivered are still handled); `resume()` consumes again;
 * `close()` stops taking messages, waits for running handlers, and closes the consumer's connections.
 * After a reconnect the consumer consumes again on its own; servers that join (or return) are added, servers
 * that leave are dropped.
 */
export class Consumer implements AsyncIterable<ConsumedMessage> {
  readonly topic: string;
  readonly options: Readonly<ConsumerOptions> & typeof CONSUMER_DEFAULTS;
  /** The group name (known after start when `nameAuto` is used). */
  group: string | undefined;
  readonly #source: ClientSource;
  readonly #lanes: Lane[] = [];
  #state: ConsumerState = 'idle';
  readonly #idle = new IdleWaiters();
  #starting: Promise<void> | undefined;
  /** Servers being added by `#reconcile`. */
  readonly #adding = new Set<string>();
  #offRoutes: (() => void) | undefined;
  // iteration
  /** Delivered, not yet read by the iterator: `done` settles a message that was read, `drop` one never read. */
  #queue: { msg: ConsumedMessage; done: () => void; drop: () => void }[] = [];
  #readers: ((r: IteratorResult<ConsumedMessage>) => void)[] = [];
  #iterating = false;
  /** By server: a route settles a delivery there (see answeredByRoute). */
  readonly #routeSettles = new Map<string, boolean>();
  readonly #events = new Emitter<ConsumerEvents>();
  /** The resolved automatic-nack backoff; undefined: redeliver at once. */
  readonly #backoff: Required<NackBackoff> | undefined;

  constructor(source: ClientSource | MqClient, options: ConsumerOptions) {
    if (
      options === null ||
      typeof options !== 'object' ||
      typeof options.topic !== 'string' ||
      !options.topic
    ) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'a consumer needs a topic');
    }
    const o = { ...CONSUMER_DEFAULTS, ...stripUndefined(options) } as ConsumerOptions &
      typeof CONSUMER_DEFAULTS;
    if (!Number.isInteger(o.window) || o.window < 1) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `window must be an integer >= 1, got ${o.window}`);
    }
    if (!Number.isInteger(o.connectionCount) || o.connectionCount < 1) {
      throw new ZbusError(
        'ZBUS_ERR_INVALID_ARGUMENT',
        `connectionCount must be an integer >= 1, got ${o.connectionCount}`,
      );
    }
    if (o.ackMode !== 'auto' && o.ackMode !== 'manual') {
      throw new ZbusError(
        'ZBUS_ERR_INVALID_ARGUMENT',
        `ackMode must be 'auto' or 'manual', got ${String(o.ackMode)}`,
      );
    }
    if (o.consumeTimeout !== undefined) positive(o.consumeTimeout, 'consumeTimeout');
    positive(o.closeTimeout, 'closeTimeout', true);
    if (o.logger !== undefined) checkLogger(o.logger);
    this.#backoff = resolveBackoff(o.nackBackoff);
    this.#source = sourceOf(source);
    this.topic = options.topic;
    this.options = Object.freeze(o);
    const g = options.group;
    this.group = typeof g === 'string' ? g : g?.name;
    const signal = o.signal;
    if (signal !== undefined) {
      const onAbort = () => {
        this.close().catch(() => {});
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  }

  on<E extends keyof ConsumerEvents>(event: E, listener: (...args: ConsumerEvents[E]) => void): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof ConsumerEvents>(event: E, listener: (...args: ConsumerEvents[E]) => void): void {
    this.#events.off(event, listener);
  }

  get state(): ConsumerState {
    return this.#state;
  }

  /** Handlers running (or messages handed to the iterator and not yet finished). */
  get inFlight(): number {
    let n = 0;
    for (const l of this.#lanes) n += l.inFlight;
    return n;
  }

  /**
   * Connects, declares (when `declareOnMissing`) and starts consuming. An aborted `signal` stops the start: the
   * consumer closes and `start()` rejects with the signal's reason.
   */
  start(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    if (this.#starting === undefined) {
      if (this.#state !== 'idle')
        return Promise.reject(new ZbusError('ZBUS_ERR_CLOSED', 'consumer is closed'));
      this.#starting = this.#start();
    }
    return abortable(this.#starting, options.signal, () => {
      this.close().catch(() => {});
    });
  }

  async #start(): Promise<void> {
    const s = this.#source;
    if (s.tracked !== undefined) await s.tracked();
    const multi = s.route !== undefined && s.createClientAt !== undefined;
    const servers: (string | undefined)[] = multi ? (s.route?.('consume', this.topic) ?? []) : [];
    if (servers.length === 0) servers.push(undefined);
    const opened: Lane[][] = [];
    const errors: unknown[] = [];
    const open = (server: string | undefined) =>
      this.#openServer(server).then(
        (lanes) => void opened.push(lanes),
        (err: unknown) => void errors.push(err),
      );
    const group = this.options.group;
    if (typeof group === 'object' && group.nameAuto && this.group === undefined && servers.length > 1) {
      // The first server names the group; the others declare that name.
      await open(servers[0]);
      await Promise.all(servers.slice(1).map(open));
    } else {
      await Promise.all(servers.map(open));
    }
    if (opened.length === 0) {
      this.#state = 'closed';
      throw errors[0];
    }
    // Some servers of several could not be reached: consume from the others, pick those up on the next update.
    for (const err of errors) this.#report(err instanceof Error ? err : new Error(String(err)));
    const lanes = opened.flat();
    if (this.#state !== 'idle') {
      // closed while starting
      await Promise.all(lanes.map((l) => this.#closeLane(l)));
      return;
    }
    this.#lanes.push(...lanes);
    this.#state = 'running';
    for (const l of lanes) {
      l.declaring = false;
      this._pump(l);
    }
    if (multi && s.onRoutesChanged !== undefined)
      this.#offRoutes = s.onRoutesChanged(() => this.#reconcile());
    // The broker does not answer a consume until it delivers. A ping after it on each connection is a barrier:
    // once answered, the consume is registered (so an RPC service is visible to callers when start() resolves).
    await Promise.all(lanes.map((l) => l.client.ping().catch(() => undefined)));
  }

  /** Connects `connectionCount` lanes to one server and declares there; closes them again on failure. */
  async #openServer(server: string | undefined): Promise<Lane[]> {
    const s = this.#source;
    const clientOptions = this.options.token === undefined ? {} : { token: this.options.token };
    const lanes: Lane[] = [];
    for (let i = 0; i < this.options.connectionCount; i++) {
      const client =
        server === undefined || s.createClientAt === undefined
          ? s.createClient(clientOptions, this.topic)
          : s.createClientAt(server, clientOptions);
      lanes.push(new Lane(this, client, server ?? client.address));
    }
    try {
      await Promise.all(lanes.map((l) => l.client.connect()));
      if (this.options.declareOnMissing) await this.#declare(lanes[0] as Lane);
    } catch (err) {
      await Promise.all(lanes.map((l) => this.#closeLane(l)));
      throw err;
    }
    return lanes;
  }

  async #closeLane(lane: Lane): Promise<void> {
    lane.offConnected();
    if (lane.retryTimer !== undefined) clearTimeout(lane.retryTimer);
    lane.retryTimer = undefined;
    this.#endStream(lane);
    await lane.client.close();
  }

  /**
   * The route table changed (multi-server sources): consume from servers that now hold the topic (a new or a
   * returning server), stop consuming from servers that left.
   */
  #reconcile(): void {
    if (this.#state !== 'running' && this.#state !== 'paused') return;
    const s = this.#source;
    const known = new Set(s.knownServers?.() ?? []);
    const have = new Set(this.#lanes.map((l) => l.server));
    for (const server of have) {
      if (known.has(server)) continue;
      const gone = this.#lanes.filter((l) => l.server === server);
      this.#lanes.splice(0, this.#lanes.length, ...this.#lanes.filter((l) => l.server !== server));
      for (const l of gone) this.#closeLane(l).catch(() => {});
    }
    for (const server of s.route?.('consume', this.topic) ?? []) {
      if (have.has(server) || this.#adding.has(server) || !known.has(server)) continue;
      this.#adding.add(server);
      this.#openServer(server)
        .then(
          async (lanes) => {
            if (this.#state !== 'running' && this.#state !== 'paused') {
              await Promise.all(lanes.map((l) => this.#closeLane(l)));
              return;
            }
            this.#lanes.push(...lanes);
            for (const l of lanes) {
              l.declaring = false;
              this._pump(l);
            }
          },
          (err: unknown) => this.#report(err instanceof Error ? err : new Error(String(err))),
        )
        .finally(() => this.#adding.delete(server));
    }
  }

  async #declare(lane: Lane): Promise<void> {
    const group = this.options.group;
    const groupOpts: GroupOptions | string | undefined =
      typeof group === 'object' && group.nameAuto && this.group !== undefined
        ? { ...group, nameAuto: false, name: this.group }
        : group;
    const info = await lane.client.declare(
      this.topic,
      this.options.topicMask === undefined
        ? { group: groupOpts ?? this.topic }
        : { topicMask: this.options.topicMask, group: groupOpts ?? this.topic },
    );
    if ('groupName' in info && typeof info.groupName === 'string') this.group = info.groupName;
    // Whether a route settles deliveries from this server (answeredByRoute): asked, once per declare, only by
    // consumers that declare an RPC topic (services) in a group that is not ack-required. The topic's mask is
    // the one it was created with, which need not be the one asked for.
    let settles = false;
    const mask = this.options.topicMask;
    if (mask !== undefined && (mask & Mask.Rpc) !== 0 && 'groupName' in info) {
      if ((info.mask & Mask.AckRequired) === 0)
        settles = ((await lane.client.queryTopic(this.topic)).mask & Mask.Rpc) !== 0;
    }
    this.#routeSettles.set(lane.server, settles);
  }

  /** Sends a consume on `lane` when it has room. @internal */
  _pump(lane: Lane): void {
    if (this.#state !== 'running' || lane.stream !== undefined || lane.declaring) return;
    if (lane.retryTimer !== undefined || !lane.client.connected) return;
    const window = this.options.window;
    // Window 1 (0.11): one consume per message, sent when the handler is done. A larger window is one
    // lasting consume whose credit acks refill (decisions.md §2).
    if (window === 1 && lane.inFlight > 0) return;
    const msg = new Message({ headers: { cmd: Cmd.Consume, topic: this.topic } });
    if (this.group !== undefined) msg.set('consume_group', this.group);
    msg.set('consume_window', window);
    if (this.options.consumeTimeout !== undefined) msg.set('consume_timeout', this.options.consumeTimeout);
    try {
      lane.stream = lane.client.stream(
        msg,
        (m) => this.#onReply(lane, m),
        () => {
          lane.stream = undefined; // connection lost: `connected` pumps again
        },
      );
    } catch {
      lane.stream = undefined; // not connected: `connected` pumps again
    }
  }

  #endStream(lane: Lane): void {
    lane.stream?.cancel();
    lane.stream = undefined;
  }

  #onReply(lane: Lane, m: Message): void {
    if (m.status === 200 && m.headers.origin_id !== undefined) {
      lane.failures = 0;
      if (this.options.window === 1) this.#endStream(lane);
      this.#dispatch(lane, m);
      return;
    }
    this.#endStream(lane);
    if (m.status === 200) {
      // consume_timeout ran out with nothing to deliver
      this._pump(lane);
      return;
    }
    const err = errorFromReply(m);
    if (err.code === 'ZBUS_ERR_NOT_FOUND' && this.options.declareOnMissing && !lane.declaring) {
      lane.declaring = true;
      this.#declare(lane)
        .catch((e: unknown) => this.#reportAndRetry(lane, e as Error))
        .finally(() => {
          lane.declaring = false;
          this._pump(lane);
        });
      return;
    }
    this.#reportAndRetry(lane, err);
  }

  #reportAndRetry(lane: Lane, err: Error): void {
    this.#report(err);
    if (lane.retryTimer !== undefined) return;
    const wait = backoffDelay(lane.failures++, 200, 5_000, 0.2);
    lane.retryTimer = setTimeout(() => {
      lane.retryTimer = undefined;
      this._pump(lane);
    }, wait);
  }

  /** An error no caller awaits: to `onError`, else to `error` listeners, else to the logger. Never lost. */
  #report(err: Error, msg?: ConsumedMessage): void {
    const onError = this.options.onError;
    if (onError) {
      try {
        onError(err, msg);
      } catch (e) {
        this.#log(e as Error, undefined, 'zbus consumer onError threw');
      }
      return;
    }
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', err, msg);
    else this.#log(err, msg, msg === undefined ? 'zbus consumer error' : 'zbus consumer handler failed');
  }

  #log(err: Error, msg: ConsumedMessage | undefined, text: string): void {
    const logger = this.options.logger ?? this.#lanes[0]?.client.options.logger ?? consoleLogger;
    const group = this.group ?? this.topic;
    logger.error(
      msg === undefined
        ? { err, topic: this.topic, group }
        : { err, topic: this.topic, group, offset: msg.headers.offset, id: msg.id, retry: msg.retry },
      text,
    );
  }

  /**
   * Hands a delivery to the handler (or the iterator). Methods, not closures: a synchronous handler costs no
   * allocation here beyond the message itself, at one delivery per message.
   */
  #dispatch(lane: Lane, raw: Message): void {
    const msg = this.#control(lane, restoreDelivery(raw));
    lane.inFlight++;
    const handler = this.options.handler;
    if (handler === undefined) {
      this.#enqueue(
        msg,
        () => this.#finish(lane, msg),
        () => this.#done(lane),
      );
      return;
    }
    let result: unknown;
    try {
      result = handler(msg, lane.client);
    } catch (err) {
      this.#finish(lane, msg, err ?? new Error('handler threw'));
      return;
    }
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as Promise<unknown>).then === 'function'
    ) {
      (result as Promise<unknown>).then(
        () => this.#finish(lane, msg),
        (err: unknown) => this.#finish(lane, msg, err ?? new Error('handler rejected')),
      );
    } else {
      this.#finish(lane, msg);
    }
  }

  /** The handler of `msg` is done: in auto mode ack it (or nack it after `error`), then free its place. */
  #finish(lane: Lane, msg: ConsumedMessage, error?: unknown): void {
    const auto = this.options.ackMode === 'auto' && !msg.settled;
    if (auto && error !== undefined) {
      const reason = error instanceof Error ? error.message : String(error);
      const backoff = this.#backoff;
      msg
        .nack(
          backoff === undefined
            ? { reason }
            : {
                reason,
                delay: backoffDelay(msg.retry ?? 0, backoff.delay, backoff.maxDelay, backoff.jitter),
              },
        )
        .catch((e: unknown) => this.#report(e as Error, msg))
        .finally(() => this.#done(lane));
    } else {
      if (auto) {
        // Java's ackAsync: `ack: false`, no reply to wait for; it still refills the window. Synchronous, so
        // a handled message costs no promise.
        try {
          (msg as unknown as DeliveredMessage)[kAckAsync]();
        } catch (e) {
          this.#report(e as Error, msg);
        }
      }
      this.#done(lane);
    }
    if (error !== undefined) this.#report(error instanceof Error ? error : new Error(String(error)), msg);
  }

  #done(lane: Lane): void {
    lane.inFlight--;
    this.#checkIdle();
    this._pump(lane);
  }

  #control(lane: Lane, msg: Message): ConsumedMessage {
    return new DeliveredMessage(
      msg,
      lane.client,
      msg.topic ?? this.topic,
      msg.consumeGroup ?? this.group ?? this.topic,
      this.#routeSettles.get(lane.server) === true,
    ) as unknown as ConsumedMessage;
  }

  #checkIdle(): void {
    if (this.inFlight === 0) this.#idle.notify();
  }

  /** Stops consuming (sends `unconsume`); messages already delivered are still handled. */
  async pause(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'paused';
    await this.#unconsumeAll();
  }

  async #unconsumeAll(): Promise<void> {
    await Promise.all(
      this.#lanes.map(async (lane) => {
        if (lane.retryTimer !== undefined) clearTimeout(lane.retryTimer);
        lane.retryTimer = undefined;
        if (lane.stream === undefined) return;
        if (lane.client.connected) {
          // Deliveries already on the wire arrive before the unconsume's reply; keep the stream until then.
          await lane.client
            .unconsume(this.topic, this.group ?? this.topic, { timeout: 5_000 })
            .catch(() => {});
        }
        this.#endStream(lane);
      }),
    );
  }

  /** Consumes again after `pause()`. */
  resume(): void {
    if (this.#state !== 'paused') return;
    this.#state = 'running';
    for (const l of this.#lanes) this._pump(l);
  }

  /**
   * Stops taking messages, waits up to `closeTimeout` ms (or until `signal` aborts) for running handlers (their
   * acks included), ends iteration, and closes the consumer's connections.
   */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    const started = this.#starting;
    this.#state = 'closing';
    this.#offRoutes?.();
    this.#offRoutes = undefined;
    if (started) await started.catch(() => {});
    await this.#unconsumeAll();
    // Messages queued for the iterator and never read are dropped unacked (the broker delivers them again);
    // acking them would lose them.
    const queued = this.#queue;
    this.#queue = [];
    for (const q of queued) q.drop();
    const current = this.#current;
    this.#current = undefined;
    current?.();
    if (this.inFlight > 0) await this.#idle.wait(this.options.closeTimeout, options.signal);
    // Acks go out without a reply (ackAsync); a ping per connection makes sure the broker has handled them.
    await Promise.all(
      this.#lanes.map((l) =>
        l.client.connected ? l.client.ping({ timeout: 5_000 }).catch(() => undefined) : undefined,
      ),
    );
    this.#state = 'closed';
    for (const r of this.#readers.splice(0)) r({ value: undefined, done: true });
    for (const l of this.#lanes) l.offConnected();
    await Promise.all(this.#lanes.map((l) => l.client.close()));
  }

  /** `await using consumer = new Consumer(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- async iteration ----------------------------------------------------------------------------

  #enqueue(msg: ConsumedMessage, done: () => void, drop: () => void): void {
    const reader = this.#readers.shift();
    if (reader) {
      this.#current = done;
      reader({ value: msg, done: false });
    } else {
      this.#queue.push({ msg, done, drop });
    }
  }

  #current: (() => void) | undefined;

  /**
   * Iterates delivered messages (one reader at a time). The previous message counts as handled when the
   * next one is asked for (auto mode acks it then); `break` closes the consumer.
   */
  [Symbol.asyncIterator](): AsyncIterator<ConsumedMessage> {
    if (this.options.handler !== undefined) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'a consumer with a handler cannot be iterated');
    }
    if (this.#iterating)
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'a consumer has one reader at a time');
    this.#iterating = true;
    const releaseCurrent = () => {
      const c = this.#current;
      this.#current = undefined;
      c?.();
    };
    return {
      next: async () => {
        releaseCurrent();
        if (this.#state === 'idle') await this.start();
        const q = this.#queue.shift();
        if (q) {
          this.#current = q.done;
          return { value: q.msg, done: false };
        }
        if (this.#state === 'closed' || this.#state === 'closing') return { value: undefined, done: true };
        return new Promise<IteratorResult<ConsumedMessage>>((resolve) => this.#readers.push(resolve));
      },
      return: async () => {
        // close() settles the current message once the state is 'closing', so its ack refills no window
        // (a settled message freed synchronously would send the next consume).
        this.#iterating = false;
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }
}

function resolveBackoff(b: NackBackoff | false | undefined): Required<NackBackoff> | undefined {
  if (b === false) return undefined;
  const r = { ...NACK_BACKOFF_DEFAULTS, ...stripUndefined(b ?? {}) };
  positive(r.delay, 'nackBackoff.delay', true);
  positive(r.maxDelay, 'nackBackoff.maxDelay', true);
  if (!(r.jitter >= 0 && r.jitter <= 1)) {
    throw new ZbusError(
      'ZBUS_ERR_INVALID_ARGUMENT',
      `nackBackoff.jitter must be between 0 and 1, got ${r.jitter}`,
    );
  }
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
