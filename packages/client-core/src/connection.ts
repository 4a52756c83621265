// The protocol handler under `MqClient` (nats.js keeps `ProtocolHandler` apart from `NatsConnectionImpl` the
// same way): one transport at a time, the decoder, requests matched to replies by `id`, pushes to streams,
// reconnect with backoff, heartbeat and liveness ping, and the outbound queue with its byte bound. It knows no
// command but `ping` and `heartbeat`; `MqClient` builds the commands on top.

import { Cmd, Message, MessageDecoder, ZbusError } from '@zbus/protocol';
import { Deadlines } from './deadlines.js';
import { IdleWaiters } from './dispose.js';
import type { Emitter } from './emitter.js';
import { newId } from './messages.js';
import type { ResolvedClientOptions } from './options.js';
import { backoffDelay, type TimerHandle, unref } from './timers.js';
import type { Transport } from './transport.js';

/** Connection states. */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

/** Events of an `MqClient`. */
export type MqClientEvents = {
  /** A connection is up (`reconnect` true after a loss); re-declares already ran. */
  connected: [info: { reconnect: boolean }];
  /** The connection was lost or closed. */
  disconnected: [error: Error | undefined];
  /** A message from the broker that no request or stream is waiting for. */
  message: [msg: Message];
  /** Something went wrong outside any request (a decode error, a failed reconnect attempt). */
  error: [error: Error];
  /**
   * The transport's buffer went over its high-water mark (`blocked` true: messages wait in the client, and
   * `produce` waits for room) or drained again (`false`).
   */
  backpressure: [blocked: boolean];
};

/** A snapshot of one connection, as nats.js `stats()` gives. */
export interface ClientStats {
  /** The address connected to. */
  server: string;
  state: ClientState;
  /** Connections made after the first one. */
  reconnects: number;
  /** Requests waiting for their reply. */
  inFlight: number;
  /** Messages waiting in the client (for a connection, or for the transport to drain). */
  queued: number;
  /** Their bytes (bodies plus an estimate of the heads). */
  queuedBytes: number;
  /** Whether the transport is over its high-water mark and the client waits for it to drain. */
  blocked: boolean;
  /** Round trip of the last answered ping, ms (`ping()` or the liveness ping). */
  rtt: number | undefined;
  /** Messages and bytes received, messages written. */
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
}

/** The resolve and reject of the promise `capture` was last given to. */
interface Captured {
  // biome-ignore lint/suspicious/noExplicitAny: any promise's resolve
  resolve(v: any): void;
  reject(e: Error): void;
}
const captured = {} as Captured;

/**
 * `new Promise(capture)` hands the promise's functions over in `captured`, to be taken at once: one executor for
 * every request rather than a closure each.
 */
// biome-ignore lint/suspicious/noExplicitAny: any promise's resolve
function capture(resolve: (v: any) => void, reject: (e: Error) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

/** Bytes a queued message counts for beyond its body: a typical head, without encoding it to measure. */
const HEAD_BYTES = 256;

/**
 * Settles a request: called once, with the reply, or with the error that ended the request without one (timeout,
 * lost connection, abort); what it returns (a value, or a promise of one) settles the request's promise, a throw
 * rejects it. Made once per kind of request, not a closure per request.
 */
export type ReplyMap<T> = (
  reply: Message | undefined,
  request: Message,
  error: Error | undefined,
) => T | PromiseLike<T>;

/**
 * A request waiting for its reply. A class, not an object literal: once a burst of requests outlived a scavenge, V8
 * may allocate every later object of a literal in the old generation, where each dead one keeps its message,
 * promise and reply alive through scavenges until the next mark-compact.
 */
class Pending {
  // biome-ignore lint/suspicious/noExplicitAny: the promise's own resolve, whatever `map` makes
  readonly resolve: (v: any) => void;
  readonly reject: (e: Error) => void;
  map: ReplyMap<unknown> | undefined;
  deadline = 0;
  /** Written to a connection (so a loss of that connection fails it). */
  sent = false;
  done = false;
  /** Its place in the outbox while it waits to be written. */
  out: Outgoing | undefined;
  onAbort: (() => void) | undefined;

  constructor(
    readonly msg: Message,
    settle: Captured,
    /** Reply timeout, ms (the key of its deadline queue). */
    readonly timeout: number,
    readonly signal: AbortSignal | undefined,
  ) {
    this.resolve = settle.resolve;
    this.reject = settle.reject;
  }
}

/** A message waiting in the outbox; `msg` is cleared once it is written or given up. */
interface Outgoing {
  msg: Message | undefined;
  bytes: number;
  pending: Pending | undefined;
}

interface Stream {
  onMessage(m: Message): void;
  onEnd(err: Error): void;
}

/** A `writable()` caller waiting for room. */
interface Waiter {
  resolve(): void;
  reject(e: Error): void;
  timer: TimerHandle | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export function closedError(reason: string, cause?: unknown): ZbusError {
  return new ZbusError('ZBUS_ERR_CONNECTION_CLOSED', reason, cause === undefined ? undefined : { cause });
}

function timeoutError(what: string, timeout: number): ZbusError {
  return new ZbusError('ZBUS_ERR_TIMEOUT', `${what} timed out after ${timeout} ms (timeout)`);
}

/** What a message counts for in the byte bound of the outbox. */
export function queuedSize(msg: Message): number {
  return msg.body.length + HEAD_BYTES;
}

/**
 * One connection to a broker at a time, transport-agnostic (style.md §2). Requests are pipelined: each gets an
 * `id` and the reply with the same `id` resolves it, in whatever order replies come (zbus-protocol.md §1.2).
 * Pushes for a consume go to the stream registered for its id; anything else is a `message` event.
 *
 * Writes go straight to the transport while it takes them. When `send` reports its buffer full, later messages
 * wait in the outbox (bounded by `maxQueued` and `maxQueuedBytes`) until `drain`; they wait there too while the
 * connection is down. After a connection that was up is lost, it reconnects with exponential backoff and jitter,
 * runs `reopened` (the client re-declares), then writes what waited and emits `connected`.
 */
export class Connection {
  readonly address: string;
  readonly options: ResolvedClientOptions;
  readonly #events: Emitter<MqClientEvents>;
  readonly #reopened: () => Promise<void>;
  #pending = new Map<string, Pending>();
  readonly #streams = new Map<string, Stream>();
  readonly #deadlines = new Deadlines<Pending>((p) => {
    this.#pending.delete(p.msg.headers.id as string);
    const what = [p.msg.headers.cmd, p.msg.headers.topic].filter(Boolean).join(' ');
    this.#settle(p, undefined, timeoutError(what || 'request', p.timeout));
  });
  #outbox: Outgoing[] = [];
  /** Messages in the outbox still to be written (given-up ones stay in the array until a flush skips them). */
  #queued = 0;
  #queuedBytes = 0;
  /** The transport said its buffer is full; writes wait in the outbox until `drain`. */
  #blocked = false;
  #waiters: Waiter[] = [];
  #state: ClientState = 'idle';
  #transport: Transport | undefined;
  #connecting: Promise<void> | undefined;
  #everConnected = false;
  #attempt = 0;
  #reconnectTimer: TimerHandle | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #closing: Promise<void> | undefined;
  /** Id of the liveness ping in flight: `close()` does not wait for it. */
  #livenessPing: string | undefined;
  readonly #idle = new IdleWaiters();
  #reconnects = 0;
  #inMsgs = 0;
  #inBytes = 0;
  #outMsgs = 0;
  #rtt: number | undefined;

  constructor(
    address: string,
    options: ResolvedClientOptions,
    events: Emitter<MqClientEvents>,
    reopened: () => Promise<void>,
  ) {
    this.address = address;
    this.options = options;
    this.#events = events;
    this.#reopened = reopened;
  }

  get state(): ClientState {
    return this.#state;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  stats(): ClientStats {
    return {
      server: this.address,
      state: this.#state,
      reconnects: this.#reconnects,
      inFlight: this.#pending.size,
      queued: this.#queued,
      queuedBytes: this.#queuedBytes,
      blocked: this.#blocked,
      rtt: this.#rtt,
      inMsgs: this.#inMsgs,
      inBytes: this.#inBytes,
      outMsgs: this.#outMsgs,
    };
  }

  #isClosing(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  // ---- connecting ------------------------------------------------------------------------------------------

  connect(): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    if (this.#isClosing()) return Promise.reject(closedError('client is closed'));
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

  /** `retryInitialConnect`: the first connection is tried until it works or the client is closed. */
  async #openRetrying(): Promise<void> {
    const { reconnectDelay, reconnectMaxDelay, reconnectJitter } = this.options;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#open();
        return;
      } catch (err) {
        if (this.#isClosing()) throw err;
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
    try {
      const decoder = new MessageDecoder((m) => this.#onMessage(m), this.options.limits);
      transport = await this.options.transport({
        address: this.address,
        connectTimeout: this.options.connectTimeout,
        handlers: {
          data: (chunk) => {
            this.#inBytes += chunk.length;
            try {
              decoder.push(chunk);
            } catch (err) {
              this.#events.emit('error', err as Error);
              transport?.close();
            }
          },
          closed: (error) => this.#onClosed(transport, error),
          drain: () => this.#onDrain(transport),
        },
      });
    } catch (err) {
      const e = closedError(
        `cannot connect to ${this.address}: ${(err as Error)?.message ?? String(err)}`,
        err,
      );
      if (this.#isClosing()) throw e;
      if (this.#everConnected && this.options.reconnect) {
        this.options.logger.warn({ err: e, server: this.address }, 'zbus reconnect failed');
        this.#events.emit('error', e);
        this.#scheduleReconnect();
      } else if (this.#everConnected || !this.options.retryInitialConnect) {
        // reconnect: false, or a first connection that is not retried: the caller hears it, nothing retries.
        this.#state = 'idle';
        this.#failQueued(e);
      }
      throw e;
    }
    if (this.#isClosing()) {
      transport.close();
      throw closedError('client closed while connecting');
    }
    this.#transport = transport;
    const reconnect = this.#everConnected;
    this.#everConnected = true;
    this.#attempt = 0;
    if (reconnect) {
      this.#reconnects++;
      // Before anything queued goes out, so that a restarted broker has the topics and groups again.
      await this.#reopened();
      if (this.#transport !== transport) return; // lost again meanwhile; the next attempt redoes it
    }
    this.#state = 'open';
    this.#startHeartbeat();
    this.#flush();
    if (reconnect) this.options.logger.info({ server: this.address }, 'zbus reconnected');
    this.#events.emit('connected', { reconnect });
  }

  #onClosed(transport: Transport | undefined, error?: Error): void {
    if (transport === undefined || this.#transport !== transport) return;
    this.#transport = undefined;
    this.#blocked = false;
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
    if (this.#isClosing()) return;
    this.options.logger.warn({ err, server: this.address }, 'zbus connection lost');
    if (this.options.reconnect) this.#scheduleReconnect();
    else {
      this.#state = 'idle';
      this.#failQueued(err);
    }
    this.#wakeWriters();
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
        // reported through the `error` event and the logger; the next attempt is already scheduled
      });
    }, wait);
  }

  // ---- heartbeat and liveness ------------------------------------------------------------------------------

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

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  /** An unanswered ping means a dead connection (half-open TCP, stalled proxy): drop it and reconnect. */
  #checkLiveness(): void {
    const timeout = this.options.pingTimeout;
    const transport = this.#transport;
    if (timeout <= 0 || this.#livenessPing !== undefined || transport === undefined) return;
    const msg = new Message({ headers: { cmd: Cmd.Ping } });
    this.ping(msg, timeout)
      .catch((err: unknown) => {
        if ((err as ZbusError).code !== 'ZBUS_ERR_TIMEOUT' || this.#transport !== transport) return;
        this.#events.emit(
          'error',
          closedError(`no answer to ping from ${this.address} within ${timeout} ms (pingTimeout)`),
        );
        transport.close();
      })
      .finally(() => {
        this.#livenessPing = undefined;
      });
    this.#livenessPing = msg.headers.id;
  }

  /** Round trip of `msg` (a `ping`), ms; remembered as the connection's rtt. */
  async ping(msg: Message, timeout: number, signal?: AbortSignal): Promise<number> {
    const started = Date.now();
    await this.request(msg, timeout, signal);
    this.#rtt = Date.now() - started;
    return this.#rtt;
  }

  /** Sends a heartbeat (never answered). No-op while disconnected or backed up. */
  heartbeat(): void {
    if (this.#state !== 'open' || this.#blocked) return;
    try {
      this.#writeNow(new Message({ headers: { cmd: Cmd.Heartbeat } }));
    } catch {
      // the connection is going away; the close handler deals with it
    }
  }

  // ---- inbound ---------------------------------------------------------------------------------------------

  #onMessage(m: Message): void {
    this.#inMsgs++;
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
    const out = p.out;
    if (out !== undefined) {
      // Given up before it was written: it leaves the outbox (and its bytes the bound) now.
      p.out = undefined;
      if (out.msg !== undefined) {
        out.msg = undefined;
        this.#queued--;
        this.#queuedBytes -= out.bytes;
        if (this.#waiters.length > 0) this.#wakeWriters();
      }
    }
    // a request with a signal has its onAbort
    p.signal?.removeEventListener('abort', p.onAbort as () => void);
    if (p.map !== undefined) {
      try {
        p.resolve(p.map(reply, p.msg, err));
      } catch (e) {
        p.reject(e as Error);
      }
    } else if (err !== undefined) p.reject(err);
    else p.resolve(reply);
    this.#notifyIdle();
  }

  /** Settles the request `id` with `reply` if it still waits (a reply the broker will never send). */
  resolve(id: string, reply: Message): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    this.#settle(p, reply);
  }

  #notifyIdle(): void {
    if (this.#pending.size === 0) {
      // A new Map rather than the drained one: once V8 has moved a Map's table to the old generation (a burst), it
      // allocates every table the Map grows or shrinks into there too, and each dead one keeps the requests it held
      // alive through scavenges.
      this.#pending = new Map();
      this.#idle.notify();
    }
  }

  // ---- outbound --------------------------------------------------------------------------------------------

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

  #writeNow(msg: Message): void {
    const t = this.#transport;
    if (t === undefined) throw closedError('not connected');
    const room = t.send(msg);
    this.#outMsgs++;
    if (!room && !this.#blocked) {
      this.#blocked = true;
      this.#events.emit('backpressure', true);
    }
  }

  /** Writes `msg` now if the transport takes it, else puts it in the outbox (bounded unless `force`). */
  #dispatch(msg: Message, pending: Pending | undefined, force: boolean): void {
    if (this.#state === 'open' && !this.#blocked && this.#outbox.length === 0) {
      this.#writeNow(msg);
      if (pending !== undefined) pending.sent = true;
      return;
    }
    const bytes = queuedSize(msg);
    if (!force) {
      if (this.#queued >= this.options.maxQueued) {
        throw new ZbusError(
          'ZBUS_ERR_LIMIT',
          `${this.#queued} messages are waiting to be sent to ${this.address} (maxQueued)`,
        );
      }
      if (this.#queuedBytes > 0 && this.#queuedBytes + bytes > this.options.maxQueuedBytes) {
        throw new ZbusError(
          'ZBUS_ERR_LIMIT',
          `${this.#queuedBytes} bytes are waiting to be sent to ${this.address}; ${bytes} more would pass ` +
            `${this.options.maxQueuedBytes} (maxQueuedBytes)`,
        );
      }
    }
    const o: Outgoing = { msg, bytes, pending };
    if (pending !== undefined) pending.out = o;
    this.#outbox.push(o);
    this.#queued++;
    this.#queuedBytes += bytes;
    if (this.#state === 'idle') this.connect().catch(() => {});
  }

  #onDrain(transport: Transport | undefined): void {
    if (transport === undefined || this.#transport !== transport || !this.#blocked) return;
    this.#blocked = false;
    this.#flush();
    if (!this.#blocked) this.#events.emit('backpressure', false);
  }

  /** Writes what waits in the outbox, in order, until the transport is full again. */
  #flush(): void {
    const queue = this.#outbox;
    let i = 0;
    for (; i < queue.length; i++) {
      if (this.#state !== 'open' || this.#blocked) break;
      const o = queue[i] as Outgoing;
      const msg = o.msg;
      if (msg === undefined) continue;
      o.msg = undefined;
      this.#queued--;
      this.#queuedBytes -= o.bytes;
      const p = o.pending;
      if (p !== undefined) p.out = undefined;
      try {
        this.#writeNow(msg);
        if (p !== undefined) p.sent = true;
      } catch (err) {
        if (p !== undefined) {
          this.#pending.delete(msg.headers.id as string);
          this.#settle(p, undefined, err as Error);
        }
      }
    }
    if (i > 0) this.#outbox = i === queue.length ? [] : queue.slice(i);
    this.#wakeWriters();
  }

  #failQueued(err: Error): void {
    const queue = this.#outbox;
    this.#outbox = [];
    this.#queued = 0;
    this.#queuedBytes = 0;
    for (const o of queue) {
      const p = o.pending;
      if (o.msg === undefined || p === undefined) continue;
      o.msg = undefined;
      p.out = undefined;
      this.#pending.delete(p.msg.headers.id as string);
      this.#settle(p, undefined, err);
    }
  }

  /** Whether a writer may add to the outbox now: the transport is not backed up and the byte bound has room. */
  #hasRoom(): boolean {
    return !this.#blocked && this.#queuedBytes < this.options.maxQueuedBytes;
  }

  /** Whether a request can be written (or queued) now without waiting for room. */
  canWrite(): boolean {
    return !this.#isClosing() && this.#hasRoom();
  }

  /**
   * Resolves when there is room to write (the transport is not over its high-water mark and the outbox is under
   * `maxQueuedBytes`); `undefined` when there is room now, so the common case costs no promise. Rejects after
   * `timeout` ms with `ZBUS_ERR_TIMEOUT`, with the signal's reason on abort, and when the client closes.
   */
  writable(timeout: number, signal?: AbortSignal): Promise<void> | undefined {
    if (this.#isClosing()) return Promise.reject(closedError('client is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#hasRoom()) return undefined;
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined, signal, onAbort: undefined };
      const leave = (err: Error) => {
        const i = this.#waiters.indexOf(w);
        if (i !== -1) this.#waiters.splice(i, 1);
        this.#release(w);
        reject(err);
      };
      w.timer = setTimeout(
        () =>
          leave(
            timeoutError(
              `waiting for room to write to ${this.address} (${this.#queuedBytes} bytes queued)`,
              timeout,
            ),
          ),
        timeout,
      );
      if (signal !== undefined) {
        w.onAbort = () => leave(signal.reason);
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiters.push(w);
    });
  }

  #release(w: Waiter): void {
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
  }

  #wakeWriters(err?: Error): void {
    if (this.#waiters.length === 0 || (err === undefined && !this.#hasRoom())) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      this.#release(w);
      if (err !== undefined) w.reject(err);
      else w.resolve();
    }
  }

  /**
   * Sends a request; resolves with the message that carries its `id`, or settles as `map` says: the caller's
   * result comes from the one promise, not from a `then` per request. `force` skips the outbox bounds (for callers
   * that waited for `writable()`).
   */
  request(msg: Message, timeout: number, signal?: AbortSignal, force?: boolean): Promise<Message>;
  request<T>(
    msg: Message,
    timeout: number,
    signal: AbortSignal | undefined,
    force: boolean,
    map: ReplyMap<T>,
  ): Promise<T>;
  request<T>(
    msg: Message,
    timeout: number,
    signal?: AbortSignal,
    force = false,
    map?: ReplyMap<T>,
  ): Promise<T | Message> {
    if (this.#isClosing()) return Promise.reject(closedError('client is closed'));
    if (typeof timeout !== 'number' || !(timeout > 0)) {
      return Promise.reject(
        new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `timeout must be > 0, got ${timeout}`),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#prepare(msg);
    if (this.#pending.has(id)) {
      return Promise.reject(
        new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `a request with id ${id} is already waiting`),
      );
    }
    const promise = new Promise<T | Message>(capture);
    const p = this.#track(id, msg, captured, timeout, signal);
    p.map = map;
    try {
      this.#dispatch(msg, p, force);
    } catch (err) {
      this.#pending.delete(id);
      this.#settle(p, undefined, err as Error);
    }
    return promise;
  }

  /** Registers a request that waits for its reply: its deadline, its entry in the table, its abort. */
  #track(
    id: string,
    msg: Message,
    settle: Captured,
    timeout: number,
    signal: AbortSignal | undefined,
  ): Pending {
    const p = new Pending(msg, settle, timeout, signal);
    this.#deadlines.add(p, timeout);
    this.#pending.set(id, p);
    if (signal !== undefined) {
      p.onAbort = () => {
        this.#pending.delete(id);
        this.#settle(p, undefined, signal.reason);
      };
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    return p;
  }

  /** Sends without a reply to wait for; returns the message's id. */
  post(msg: Message, force = false): string {
    if (this.#isClosing()) throw closedError('client is closed');
    const id = this.#prepare(msg);
    this.#dispatch(msg, undefined, force);
    return id;
  }

  /** Sends during a reconnect, ahead of the queue (the client's re-declares). */
  requestNow(msg: Message, timeout: number): Promise<Message> {
    const promise = new Promise<Message>(capture);
    const id = this.#prepare(msg);
    const p = this.#track(id, msg, captured, timeout, undefined);
    p.sent = true;
    try {
      this.#writeNow(msg);
    } catch (err) {
      this.#pending.delete(id);
      this.#settle(p, undefined, err as Error);
    }
    return promise;
  }

  /**
   * Sends `msg` and passes every message carrying its id to `onMessage` until `cancel()` or until the connection
   * ends (`onEnd`). Needs an open connection.
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
      this.#dispatch(msg, undefined, true);
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

  // ---- closing ---------------------------------------------------------------------------------------------

  close(signal?: AbortSignal): Promise<void> {
    if (this.#closing) return this.#closing;
    const wasOpen = this.#state === 'open';
    this.#state = 'closing';
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const closed = closedError('client closed before the message was sent');
    this.#failQueued(closed);
    this.#wakeWriters(closed);
    const ping = this.#livenessPing === undefined ? undefined : this.#pending.get(this.#livenessPing);
    if (ping !== undefined) {
      this.#pending.delete(this.#livenessPing as string);
      this.#settle(ping, undefined, closedError('client closed'));
    }
    this.#closing = (async () => {
      // Requests in flight get up to closeTimeout (or until `signal` aborts) to be answered.
      if (wasOpen && this.#pending.size > 0) await this.#idle.wait(this.options.closeTimeout, signal);
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
}
