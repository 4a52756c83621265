import type { ConsumeGroupInfo, ServerInfo, TopicInfo, TopicRetention, TrackerInfo } from '@zbus/protocol';
import { Cmd, errorFromReply, Header, Message, MessageDecoder, ZbusError } from '@zbus/protocol';
import { Deadlines } from './deadlines.js';
import { Emitter } from './emitter.js';
import { newId, type PublishInput, restoreDelivery, toProduceMessage } from './messages.js';
import { type MqClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.js';
import { backoffDelay, type TimerHandle, unref } from './timers.js';
import type { Transport } from './transport.js';

/** Options of one request. */
export interface RequestOptions {
  /** Milliseconds to wait for the reply; the client's `timeout` when absent. */
  timeout?: number;
}

/** Where a consume group starts and how it behaves (declare headers `group_*`). */
export interface GroupOptions {
  /** Group name; the topic name when absent (the default group). */
  name?: string;
  /** Let the broker pick the name (`group_name_auto`). */
  nameAuto?: boolean;
  /** Tag filter (`Stock.HK.#`, `*.account.#`, several separated by `;`). */
  filter?: string;
  /** Group mask: `Mask.AckRequired`, `Mask.Exclusive`, `Mask.DeleteOnExit`, ... */
  mask?: number;
  /** Copy the position of this group. */
  startCopy?: string;
  /** Start at this offset. */
  startOffset?: number;
  /** With `startOffset`: the id expected there. */
  startMsgid?: string;
  /** Start at the first message stored at or after this epoch time, ms. */
  startTime?: number;
  /** Unacked messages allowed before delivery stops (ack-required groups). */
  ackWindow?: number;
  /** Milliseconds before an unacked message is redelivered. */
  ackTimeout?: number;
}

/** Options of `declare`. */
export interface DeclareOptions extends RequestOptions {
  /** Topic mask (`Mask.Memory`, `Mask.Rpc`, ...); only honoured when the topic is created. */
  topicMask?: number;
  /** A group to create or update with the topic; a string is the group name. */
  group?: string | GroupOptions;
  /**
   * How much of the topic the broker keeps (`topic_retention_*`): whole old segments go once a limit is passed.
   * 0 lifts a limit; a limit left out keeps its current value.
   */
  retention?: TopicRetention;
}

/** Options of a one-shot `consume`. */
export interface ConsumeOptions extends RequestOptions {
  /** Group; the topic's default group when absent. */
  group?: string;
  /** Read the message at this offset instead of the group's next one. */
  offset?: number;
}

/** What the broker said about a stored message. */
export interface ProduceResult {
  /** The message id (`id` header). */
  id: string;
  topic: string;
  /** Per-topic sequence number (opaque to 0.11 clients). */
  offset: number | undefined;
  /** What the ack guarantees: `fsync`, `interval`, `none` or `memory` (`durable` header). */
  durability: string | undefined;
  /** Broker time of the ack, ms (the reply body). */
  serverTime: number | undefined;
  /** The server that stored it (the address the client connected to). */
  server: string | undefined;
  /** The raw reply. */
  reply: Message;
}

/** Options of `produce`. */
export interface ProduceOptions extends RequestOptions {
  /**
   * Wait for the broker's ack. With `false` the message is written with `ack: false` and the promise resolves
   * once it is handed to the connection (fire-and-forget).
   * @default true
   */
  ack?: boolean;
}

/** Connection states. */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

/** Events of an {@link MqClient}. */
export type MqClientEvents = {
  /** A connection is up (`reconnect` true after a loss); re-declares already ran. */
  connected: [info: { reconnect: boolean }];
  /** The connection was lost or closed. */
  disconnected: [error: Error | undefined];
  /** A message from the broker that no request or stream is waiting for. */
  message: [msg: Message];
  /** Something went wrong outside any request (a decode error, a failed reconnect attempt). */
  error: [error: Error];
};

interface Pending {
  msg: Message;
  resolve(m: Message): void;
  reject(e: Error): void;
  /** Reply timeout, ms (the key of its deadline queue). */
  timeout: number;
  deadline: number;
  /** Written to a connection (so a loss of that connection fails it). */
  sent: boolean;
  done: boolean;
}

interface Stream {
  onMessage(m: Message): void;
  onEnd(err: Error): void;
}

interface Outgoing {
  msg: Message;
  pending: Pending | undefined;
}

function closedError(reason: string, cause?: unknown): ZbusError {
  return new ZbusError('ZBUS_ERR_CONNECTION_CLOSED', reason, cause === undefined ? undefined : { cause });
}

/** Checks a reply: resolves on 200, throws the typed error otherwise. */
export function expectOk(reply: Message): Message {
  if (reply.status === 200) return reply;
  throw errorFromReply(reply);
}

function parseJsonReply<T>(reply: Message): T {
  expectOk(reply);
  try {
    return reply.json<T>();
  } catch (err) {
    throw new ZbusError('ZBUS_ERR_BAD_MESSAGE', `expected JSON in the ${reply.headers.cmd ?? ''} reply`, {
      cause: err,
    });
  }
}

/** Sets `group_*` headers from group options. */
export function setGroupHeaders(msg: Message, group: string | GroupOptions | undefined): void {
  if (group === undefined) return;
  if (typeof group === 'string') {
    msg.set('consume_group', group);
    return;
  }
  if (group.name !== undefined) msg.set('consume_group', group.name);
  if (group.nameAuto) msg.set('group_name_auto', 'true');
  if (group.filter !== undefined) msg.set('group_filter', group.filter);
  if (group.mask !== undefined) msg.set('group_mask', group.mask);
  if (group.startCopy !== undefined) msg.set('group_start_copy', group.startCopy);
  if (group.startOffset !== undefined) msg.set('group_start_offset', group.startOffset);
  if (group.startMsgid !== undefined) msg.set('group_start_msgid', group.startMsgid);
  if (group.startTime !== undefined) msg.set('group_start_time', group.startTime);
  if (group.ackWindow !== undefined) msg.set('group_ack_window', group.ackWindow);
  if (group.ackTimeout !== undefined) msg.set('group_ack_timeout', group.ackTimeout);
}

/**
 * One connection to a broker, transport-agnostic (style.md §2). Requests are pipelined: each gets an `id`
 * and the reply with the same `id` resolves it, in whatever order replies come (zbus-protocol.md §1.2).
 * Pushes for a consume go to the stream registered for its id; anything else is a `message` event.
 *
 * After a connection that was up is lost, the client reconnects with exponential backoff and jitter,
 * re-declares what it declared, then emits `connected` (consumers re-consume on it). Requests written to
 * the lost connection fail with `ZBUS_ERR_CONNECTION_CLOSED` (the broker may or may not have seen them);
 * requests made while disconnected wait for the next connection, within their timeouts.
 */
export class MqClient {
  readonly address: string;
  readonly options: ResolvedClientOptions;
  readonly #events = new Emitter<MqClientEvents>();
  readonly #pending = new Map<string, Pending>();
  readonly #streams = new Map<string, Stream>();
  readonly #declares = new Map<string, Message>();
  readonly #deadlines = new Deadlines<Pending>((p) => {
    this.#pending.delete(p.msg.headers.id as string);
    this.#settle(p, undefined, this.#timeoutError(p.msg, p.timeout));
  });
  #outbox: Outgoing[] = [];
  #state: ClientState = 'idle';
  #transport: Transport | undefined;
  #connecting: Promise<void> | undefined;
  #everConnected = false;
  #attempt = 0;
  #reconnectTimer: TimerHandle | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #closing: Promise<void> | undefined;
  #pinging = false;
  /** Id of the liveness ping in flight: `close()` does not wait for it. */
  #livenessPing: string | undefined;
  #idleWaiters: (() => void)[] = [];

  constructor(address: string, options: MqClientOptions) {
    if (typeof address !== 'string' || address.length === 0) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'MqClient needs an address (host:port)');
    }
    this.address = address;
    this.options = resolveClientOptions(options);
  }

  get state(): ClientState {
    return this.#state;
  }

  /** Whether a connection is up. */
  get connected(): boolean {
    return this.#state === 'open';
  }

  /** Requests waiting for a reply. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  on<E extends keyof MqClientEvents>(event: E, listener: (...args: MqClientEvents[E]) => void): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof MqClientEvents>(event: E, listener: (...args: MqClientEvents[E]) => void): void {
    this.#events.off(event, listener);
  }

  /**
   * Connects (once; later calls share the attempt). The first connection is tried once and a failure rejects
   * with `ZBUS_ERR_CONNECTION_CLOSED`; losses after that are repaired in the background.
   */
  connect(): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    if (this.#state === 'closing' || this.#state === 'closed') {
      return Promise.reject(closedError('client is closed'));
    }
    if (this.#connecting) return this.#connecting;
    if (this.#state === 'reconnecting') {
      // A reconnect is scheduled: try now.
      if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
    }
    this.#state = this.#everConnected ? 'reconnecting' : 'connecting';
    const first = !this.#everConnected && this.options.retryInitialConnect;
    const attempt = (first ? this.#openRetrying() : this.#open()).finally(() => {
      if (this.#connecting === attempt) this.#connecting = undefined;
    });
    this.#connecting = attempt;
    return attempt;
  }

  #isClosing(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  /** `retryInitialConnect`: the first connection is tried until it works or the client is closed. */
  async #openRetrying(): Promise<void> {
    const { reconnectDelay, reconnectMaxDelay, reconnectJitter } = this.options;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#open();
        return;
      } catch (err) {
        if (this.#state === 'closing' || this.#state === 'closed') throw err;
        this.#events.emit('error', err as Error);
        this.#state = 'connecting';
      }
      await new Promise((r) =>
        setTimeout(r, backoffDelay(attempt, reconnectDelay, reconnectMaxDelay, reconnectJitter)),
      );
      if (this.#isClosing()) throw closedError('client closed while connecting');
    }
  }

  async #open(): Promise<void> {
    let transport: Transport;
    const closed = (error?: Error) => this.#onClosed(transport, error);
    try {
      const decoder = new MessageDecoder((m) => this.#onMessage(m), this.options.limits);
      transport = await this.options.transport({
        address: this.address,
        connectTimeout: this.options.connectTimeout,
        handlers: {
          data: (chunk) => {
            try {
              decoder.push(chunk);
            } catch (err) {
              this.#events.emit('error', err as Error);
              transport?.close();
            }
          },
          closed,
        },
      });
    } catch (err) {
      const e = closedError(
        `cannot connect to ${this.address}: ${(err as Error)?.message ?? String(err)}`,
        err,
      );
      if (this.#state === 'closing' || this.#state === 'closed') throw e;
      if (this.#everConnected) {
        this.#events.emit('error', e);
        this.#scheduleReconnect();
      } else if (!this.options.retryInitialConnect) {
        this.#state = 'idle';
        this.#failQueued(e);
      }
      throw e;
    }
    if (this.#state === 'closing' || this.#state === 'closed') {
      transport.close();
      throw closedError('client closed while connecting');
    }
    this.#transport = transport;
    const reconnect = this.#everConnected;
    this.#everConnected = true;
    this.#attempt = 0;
    // Re-declare before anything queued goes out, so a restarted broker has the topics and groups again.
    if (reconnect && this.#declares.size > 0) {
      await Promise.all(
        [...this.#declares.values()].map((d) =>
          this.#invokeNow(d.clone(), this.options.timeout).catch(() => {}),
        ),
      );
      if (this.#transport !== transport) return; // lost again meanwhile; the next attempt redoes it
    }
    this.#state = 'open';
    this.#startHeartbeat();
    this.#flush();
    this.#events.emit('connected', { reconnect });
  }

  #onClosed(transport: Transport | undefined, error?: Error): void {
    if (transport === undefined || this.#transport !== transport) return;
    this.#transport = undefined;
    this.#stopHeartbeat();
    const err = closedError(
      error ? `connection to ${this.address} lost: ${error.message}` : `connection to ${this.address} closed`,
      error,
    );
    // Requests written to this connection may or may not have reached the broker: fail them.
    for (const [id, p] of this.#pending) {
      if (!p.sent) continue;
      this.#pending.delete(id);
      this.#settle(p, undefined, err);
    }
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s.onEnd(err);
    this.#notifyIdle();
    this.#events.emit('disconnected', error);
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.options.reconnect) this.#scheduleReconnect();
    else {
      this.#state = 'idle';
      this.#failQueued(err);
    }
  }

  #scheduleReconnect(): void {
    this.#state = 'reconnecting';
    if (this.#reconnectTimer !== undefined) return;
    const { reconnectDelay, reconnectMaxDelay, reconnectJitter } = this.options;
    const wait = backoffDelay(this.#attempt++, reconnectDelay, reconnectMaxDelay, reconnectJitter);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state !== 'reconnecting') return;
      if (this.#connecting) {
        // An attempt is still running (re-declaring on a connection that died meanwhile): try again later.
        this.#scheduleReconnect();
        return;
      }
      this.connect().catch(() => {
        // reported through the `error` event; the next attempt is already scheduled
      });
    }, wait);
  }

  #startHeartbeat(): void {
    this.#stopHeartbeat();
    const every = this.options.heartbeatInterval;
    if (every <= 0) return;
    this.#heartbeatTimer = unref(
      setInterval(() => {
        if (this.#state !== 'open') return;
        this.heartbeat();
        this.#checkLiveness();
      }, every),
    );
  }

  /** An unanswered ping means a dead connection (half-open TCP, stalled proxy): drop it and reconnect. */
  #checkLiveness(): void {
    const timeout = this.options.pingTimeout;
    const transport = this.#transport;
    if (timeout <= 0 || this.#pinging || transport === undefined) return;
    this.#pinging = true;
    const msg = new Message({ headers: { cmd: Cmd.Ping } });
    this.invoke(msg, { timeout })
      .catch((err: unknown) => {
        if ((err as ZbusError).code !== 'ZBUS_ERR_TIMEOUT' || this.#transport !== transport) return;
        this.#events.emit(
          'error',
          closedError(`no answer to ping from ${this.address} within ${timeout} ms (pingTimeout)`),
        );
        transport.close();
      })
      .finally(() => {
        this.#pinging = false;
        this.#livenessPing = undefined;
      });
    this.#livenessPing = msg.headers.id;
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  #onMessage(m: Message): void {
    const id = m.headers.id;
    if (id !== undefined && m.status !== undefined) {
      const s = this.#streams.get(id);
      if (s !== undefined) {
        s.onMessage(m);
        return;
      }
      const p = this.#pending.get(id);
      if (p !== undefined) {
        this.#pending.delete(id);
        this.#settle(p, m);
        return;
      }
    }
    this.#events.emit('message', m);
  }

  #settle(p: Pending, reply: Message | undefined, err?: Error): void {
    if (p.done) return;
    p.done = true;
    this.#deadlines.settled(p.timeout);
    if (err !== undefined) p.reject(err);
    else p.resolve(reply as Message);
    if (this.#pending.size === 0) this.#notifyIdle();
  }

  #notifyIdle(): void {
    if (this.#pending.size !== 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #prepare(msg: Message): string {
    let id = msg.headers.id;
    if (id === undefined || id === '') {
      id = newId();
      msg.headers.id = id;
    }
    const token = this.options.token;
    if (token !== undefined && msg.headers.token === undefined) msg.headers.token = token;
    return id;
  }

  #write(msg: Message): void {
    const t = this.#transport;
    if (t === undefined) throw closedError('not connected');
    t.send(msg);
  }

  #flush(): void {
    const queue = this.#outbox;
    this.#outbox = [];
    for (const o of queue) {
      if (o.pending?.done) continue;
      if (this.#state !== 'open') {
        this.#outbox.push(o);
        continue;
      }
      try {
        this.#write(o.msg);
        if (o.pending) o.pending.sent = true;
      } catch (err) {
        if (o.pending) {
          this.#pending.delete(o.msg.headers.id as string);
          this.#settle(o.pending, undefined, err as Error);
        }
      }
    }
  }

  #failQueued(err: Error): void {
    const queue = this.#outbox;
    this.#outbox = [];
    for (const o of queue) {
      if (o.pending && !o.pending.done) {
        this.#pending.delete(o.msg.headers.id as string);
        this.#settle(o.pending, undefined, err);
      }
    }
  }

  #enqueue(o: Outgoing): void {
    if (this.#outbox.length >= this.options.maxQueued) {
      throw new ZbusError(
        'ZBUS_ERR_LIMIT',
        `${this.#outbox.length} messages are waiting for a connection to ${this.address} (maxQueued)`,
      );
    }
    this.#outbox.push(o);
    if (this.#state === 'idle') this.connect().catch(() => {});
  }

  /** Sends without waiting for the queue: used for re-declares during a reconnect. */
  #invokeNow(msg: Message, timeout: number): Promise<Message> {
    return new Promise<Message>((resolve, reject) => {
      const id = this.#prepare(msg);
      const p: Pending = { msg, resolve, reject, timeout, deadline: 0, sent: true, done: false };
      this.#deadlines.add(p, timeout);
      this.#pending.set(id, p);
      try {
        this.#write(msg);
      } catch (err) {
        this.#pending.delete(id);
        this.#settle(p, undefined, err as Error);
      }
    });
  }

  #timeoutError(msg: Message, timeout: number): ZbusError {
    const what = [msg.headers.cmd, msg.headers.topic].filter(Boolean).join(' ');
    return new ZbusError('ZBUS_ERR_TIMEOUT', `${what || 'request'} timed out after ${timeout} ms (timeout)`);
  }

  /**
   * Sends a request and resolves with the message that carries its `id` (any status: check it, or use the
   * typed methods, which throw typed errors). Rejects with `ZBUS_ERR_TIMEOUT` after `timeout` ms and with
   * `ZBUS_ERR_CONNECTION_CLOSED` when the connection it went out on is lost.
   */
  invoke(msg: Message, options: RequestOptions = {}): Promise<Message> {
    if (this.#state === 'closing' || this.#state === 'closed') {
      return Promise.reject(closedError('client is closed'));
    }
    const timeout = options.timeout ?? this.options.timeout;
    if (typeof timeout !== 'number' || !(timeout > 0)) {
      return Promise.reject(
        new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `timeout must be > 0, got ${timeout}`),
      );
    }
    return new Promise<Message>((resolve, reject) => {
      const id = this.#prepare(msg);
      if (this.#pending.has(id)) {
        reject(new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `a request with id ${id} is already waiting`));
        return;
      }
      const p: Pending = { msg, resolve, reject, timeout, deadline: 0, sent: false, done: false };
      this.#deadlines.add(p, timeout);
      this.#pending.set(id, p);
      if (this.#state === 'open') {
        try {
          this.#write(msg);
          p.sent = true;
        } catch (err) {
          this.#pending.delete(id);
          this.#settle(p, undefined, err as Error);
        }
        return;
      }
      try {
        this.#enqueue({ msg, pending: p });
      } catch (err) {
        this.#pending.delete(id);
        this.#settle(p, undefined, err as Error);
      }
    });
  }

  /**
   * Sends a message that gets no reply (`route`, `heartbeat`, produce with `ack: false`). While disconnected
   * it waits for the connection (up to `maxQueued` messages). Returns the message's id.
   */
  send(msg: Message): string {
    if (this.#state === 'closing' || this.#state === 'closed') throw closedError('client is closed');
    const id = this.#prepare(msg);
    if (this.#state === 'open') this.#write(msg);
    else this.#enqueue({ msg, pending: undefined });
    return id;
  }

  /**
   * Sends `msg` (a request whose replies are pushes, such as a consume with a window) and passes every
   * message carrying its id to `onMessage` until `cancel()` or until the connection ends (`onEnd`). Needs an
   * open connection.
   */
  stream(
    msg: Message,
    onMessage: (m: Message) => void,
    onEnd: (err: Error) => void,
  ): { id: string; cancel(): void } {
    if (this.#state !== 'open') throw closedError(`not connected to ${this.address}`);
    const id = this.#prepare(msg);
    const s: Stream = { onMessage, onEnd };
    this.#streams.set(id, s);
    try {
      this.#write(msg);
    } catch (err) {
      this.#streams.delete(id);
      throw err;
    }
    return {
      id,
      cancel: () => {
        if (this.#streams.get(id) === s) this.#streams.delete(id);
      },
    };
  }

  /** Waits until no request is waiting for a reply. */
  #whenIdle(timeout: number): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeout);
      this.#idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * Closes the client: new requests are refused, requests not yet written fail, requests in flight get up to
   * `closeTimeout` ms to be answered (then fail), streams end, the connection closes.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const wasOpen = this.#state === 'open';
    this.#state = 'closing';
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#failQueued(closedError('client closed before the message was sent'));
    const ping = this.#livenessPing === undefined ? undefined : this.#pending.get(this.#livenessPing);
    if (ping !== undefined) {
      this.#pending.delete(this.#livenessPing as string);
      this.#settle(ping, undefined, closedError('client closed'));
    }
    this.#closing = (async () => {
      if (wasOpen) await this.#whenIdle(this.options.closeTimeout);
      this.#stopHeartbeat();
      const err = closedError('client closed');
      for (const [id, p] of this.#pending) {
        this.#pending.delete(id);
        this.#settle(p, undefined, err);
      }
      const streams = [...this.#streams.values()];
      this.#streams.clear();
      for (const s of streams) s.onEnd(err);
      const t = this.#transport;
      this.#transport = undefined;
      this.#state = 'closed';
      if (t !== undefined) {
        t.close();
        this.#events.emit('disconnected', undefined);
      }
    })();
    return this.#closing;
  }

  // ---- typed commands (zbus-protocol.md §5) -------------------------------------------------------------

  /**
   * Stores a message. Resolves with the broker's ack (offset, durability); with `ack: false`, resolves with
   * `undefined` once the message is handed to the connection. Produce to an RPC topic is never acked: use
   * `RpcInvoker`, or `ack: false`.
   */
  async produce(
    input: PublishInput | Message,
    options: ProduceOptions = {},
  ): Promise<ProduceResult | undefined> {
    const msg = toProduceMessage(input);
    if (options.ack === false) {
      msg.set('ack', 'false');
      this.send(msg);
      return undefined;
    }
    const reply = expectOk(await this.invoke(msg, options));
    return produceResult(msg, reply, this.address);
  }

  /**
   * Takes one message from a group (window 1): resolves with the delivered message, restored as 0.11
   * clients do (`id` from `origin_id`, url/method/status from `origin_*`), or `undefined` when nothing came
   * within `timeout` (sent as the broker's `consume_timeout`).
   */
  async consume(topic: string, options: ConsumeOptions = {}): Promise<Message | undefined> {
    const timeout = options.timeout ?? this.options.timeout;
    const msg = new Message({ headers: { cmd: Cmd.Consume, topic } });
    if (options.group !== undefined) msg.set('consume_group', options.group);
    if (options.offset !== undefined) msg.set('offset', options.offset);
    msg.set('consume_window', 1);
    msg.set('consume_timeout', timeout);
    let reply: Message;
    try {
      // The broker answers an empty 200 at `consume_timeout`; leave it room to do so.
      reply = await this.invoke(msg, { timeout: timeout + Math.min(timeout, 2_000) });
    } catch (err) {
      if ((err as ZbusError).code === 'ZBUS_ERR_TIMEOUT') return undefined;
      throw err;
    }
    expectOk(reply);
    if (reply.headers.origin_id === undefined) return undefined;
    return restoreDelivery(reply);
  }

  /**
   * Stops this connection's pending consumes on a group. The broker does not answer a successful `unconsume`
   * (0.9.3+), only a failed one (404 for a missing group). A `ping` after it is the barrier: the broker handles
   * a connection's requests in order, so once the ping is answered without an unconsume error, the unconsume
   * took effect and every delivery sent before it has arrived.
   */
  async unconsume(topic: string, group?: string, options: RequestOptions = {}): Promise<void> {
    const msg = new Message({ headers: { cmd: Cmd.Unconsume, topic } });
    if (group !== undefined) msg.set('consume_group', group);
    const answer = this.invoke(msg, options);
    const id = msg.headers.id as string;
    const barrier = this.invoke(new Message({ headers: { cmd: Cmd.Ping } }), options);
    // Whichever loses the race must not end as an unhandled rejection.
    answer.catch(() => {});
    barrier.catch(() => {});
    const first = await Promise.race([answer.then((r) => r), barrier.then(() => undefined)]);
    if (first === undefined) {
      // No error came before the barrier: success. Forget the request the broker will never answer.
      const p = this.#pending.get(id);
      if (p !== undefined) {
        this.#pending.delete(id);
        this.#settle(p, new Message({ status: 200, headers: { id } }));
      }
      await answer;
      return;
    }
    expectOk(first);
  }

  /** Acknowledges the message at `offset` in an ack-required group. */
  ack(topic: string, group: string, offset: number | string, options: RequestOptions = {}): Promise<void> {
    return this.#groupDelivery(Cmd.Ack, topic, group, offset, options);
  }

  /** Gives a message back for redelivery, after `delay` ms when set. */
  nack(
    topic: string,
    group: string,
    offset: number | string,
    options: RequestOptions & { delay?: number } = {},
  ): Promise<void> {
    return this.#groupDelivery(Cmd.Nack, topic, group, offset, options, options.delay);
  }

  /** Extends the ack deadline of a message being worked on. */
  touch(topic: string, group: string, offset: number | string, options: RequestOptions = {}): Promise<void> {
    return this.#groupDelivery(Cmd.Touch, topic, group, offset, options);
  }

  /** ack, nack and touch: one delivery of a group, by offset, answered 200. */
  async #groupDelivery(
    cmd: string,
    topic: string,
    group: string,
    offset: number | string,
    options: RequestOptions,
    delay?: number,
  ): Promise<void> {
    const msg = new Message({ headers: { cmd, topic, consume_group: group, offset: String(offset) } });
    if (delay !== undefined) msg.set('delay', delay);
    expectOk(await this.invoke(msg, options));
  }

  /**
   * Sends `msg` to the session `recver` through the broker (how RPC replies travel). A response's status
   * travels as `origin_status`. No reply.
   */
  route(msg: Message, recver?: string): void {
    const m = msg;
    if (recver !== undefined) m.set('recver', recver);
    if (!m.headers.recver)
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'route needs a recver (session id)');
    if (m.status !== undefined) {
      if (m.headers.origin_status === undefined) m.set('origin_status', m.status);
      delete m.status;
    }
    m.set('cmd', Cmd.Route);
    m.set('ack', 'false');
    this.send(m);
  }

  /**
   * Creates or updates a topic and, when `group` is given, a group. Remembered: after a reconnect the client
   * declares it again. Resolves with `ConsumeGroupInfo` when a group was named, else `TopicInfo`.
   */
  async declare(topic: string, options: DeclareOptions = {}): Promise<TopicInfo | ConsumeGroupInfo> {
    const msg = new Message({ headers: { cmd: Cmd.Declare, topic } });
    if (options.topicMask !== undefined) msg.set('topic_mask', options.topicMask);
    const r = options.retention;
    if (r?.bytes !== undefined) msg.set(Header.TopicRetentionBytes, r.bytes);
    if (r?.ms !== undefined) msg.set(Header.TopicRetentionMs, r.ms);
    if (r?.messages !== undefined) msg.set(Header.TopicRetentionMessages, r.messages);
    setGroupHeaders(msg, options.group);
    const reply = await this.invoke(msg.clone(), options);
    const info = parseJsonReply<TopicInfo | ConsumeGroupInfo>(reply);
    // A redeclare must not move a group's position again, nor create another auto-named group.
    const again = msg.clone();
    for (const h of ['group_start_copy', 'group_start_offset', 'group_start_msgid', 'group_start_time']) {
      delete again.headers[h];
    }
    if (again.headers.group_name_auto !== undefined) {
      delete again.headers.group_name_auto;
      if ('groupName' in info && typeof info.groupName === 'string')
        again.set('consume_group', info.groupName);
    }
    delete again.headers.id;
    this.#declares.set(`${topic.toLowerCase()}\n${again.headers.consume_group?.toLowerCase() ?? ''}`, again);
    return info;
  }

  /** `declare` returning `TopicInfo`. */
  async declareTopic(topic: string, topicMask?: number, options: RequestOptions = {}): Promise<TopicInfo> {
    return (await this.declare(
      topic,
      topicMask === undefined ? options : { ...options, topicMask },
    )) as TopicInfo;
  }

  /** `declare` of a group, returning `ConsumeGroupInfo`. */
  async declareGroup(
    topic: string,
    group: string | GroupOptions,
    options: DeclareOptions = {},
  ): Promise<ConsumeGroupInfo> {
    return (await this.declare(topic, { ...options, group })) as ConsumeGroupInfo;
  }

  /** `ServerInfo` with no topic, `TopicInfo` with one, `ConsumeGroupInfo` with a group too. */
  async query(
    topic?: string,
    group?: string,
    options: RequestOptions = {},
  ): Promise<ServerInfo | TopicInfo | ConsumeGroupInfo> {
    const msg = new Message({ headers: { cmd: Cmd.Query } });
    if (topic !== undefined) msg.set('topic', topic);
    if (group !== undefined) msg.set('consume_group', group);
    return parseJsonReply(await this.invoke(msg, options));
  }

  queryServer(options: RequestOptions = {}): Promise<ServerInfo> {
    return this.query(undefined, undefined, options) as Promise<ServerInfo>;
  }

  queryTopic(topic: string, options: RequestOptions = {}): Promise<TopicInfo> {
    return this.query(topic, undefined, options) as Promise<TopicInfo>;
  }

  queryGroup(topic: string, group: string, options: RequestOptions = {}): Promise<ConsumeGroupInfo> {
    return this.query(topic, group, options) as Promise<ConsumeGroupInfo>;
  }

  /** Deletes a group, or the whole topic when no group is given. */
  async remove(topic: string, group?: string, options: RequestOptions = {}): Promise<void> {
    const msg = new Message({ headers: { cmd: Cmd.Remove, topic } });
    if (group !== undefined) msg.set('consume_group', group);
    expectOk(await this.invoke(msg, options));
    for (const key of [...this.#declares.keys()]) {
      const [t, g] = key.split('\n');
      if (t === topic.toLowerCase() && (group === undefined || g === group.toLowerCase()))
        this.#declares.delete(key);
    }
  }

  /** Removes a topic's messages, or moves one group to the end. */
  async empty(topic: string, group?: string, options: RequestOptions = {}): Promise<void> {
    const msg = new Message({ headers: { cmd: Cmd.Empty, topic } });
    if (group !== undefined) msg.set('consume_group', group);
    expectOk(await this.invoke(msg, options));
  }

  /** This broker's `ServerInfo`. */
  async server(options: RequestOptions = {}): Promise<ServerInfo> {
    return parseJsonReply(await this.invoke(new Message({ headers: { cmd: Cmd.Server } }), options));
  }

  /** `TrackerInfo`: every server the broker tracks. */
  async tracker(options: RequestOptions = {}): Promise<TrackerInfo> {
    return parseJsonReply(await this.invoke(new Message({ headers: { cmd: Cmd.Tracker } }), options));
  }

  /**
   * Round trip to the broker (`ping`, never auth-checked). The broker handles a connection's requests in order,
   * so a resolved ping also means everything sent before it was handled. Resolves with the time it took, ms.
   */
  async ping(options: RequestOptions = {}): Promise<number> {
    const started = Date.now();
    await this.invoke(new Message({ headers: { cmd: Cmd.Ping } }), options);
    return Date.now() - started;
  }

  /** Sends a heartbeat (never answered). No-op while disconnected. */
  heartbeat(): void {
    if (this.#state !== 'open') return;
    try {
      this.#write(new Message({ headers: { cmd: Cmd.Heartbeat } }));
    } catch {
      // the connection is going away; the close handler deals with it
    }
  }
}

export function produceResult(msg: Message, reply: Message, server?: string): ProduceResult {
  const body = reply.bodyText().trim();
  const time = body === '' ? Number.NaN : Number(body);
  return {
    id: reply.headers.id ?? msg.headers.id ?? '',
    topic: msg.headers.topic ?? '',
    offset: reply.offset,
    durability: reply.headers.durable,
    serverTime: Number.isFinite(time) ? time : undefined,
    server,
    reply,
  };
}
