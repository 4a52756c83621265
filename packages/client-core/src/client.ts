import type { ConsumeGroupInfo, ServerInfo, TopicInfo, TopicRetention, TrackerInfo } from '@zbus/protocol';
import { Cmd, errorFromReply, Header, Message, ZbusError } from '@zbus/protocol';
import {
  type ClientState,
  type ClientStats,
  Connection,
  type MqClientEvents,
  type ReplyMap,
} from './connection.js';
import { Emitter } from './emitter.js';
import { type PublishInput, restoreDelivery, toProduceMessage } from './messages.js';
import { type MqClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.js';

export type { ClientState, ClientStats, MqClientEvents };

/** Options of one request. */
export interface RequestOptions {
  /** Milliseconds to wait for the reply; the client's `timeout` when absent. */
  timeout?: number;
  /** Aborts the request: it rejects with the signal's reason (a reply that comes later is ignored). */
  signal?: AbortSignal;
}

/** Options of `nack`. */
export interface NackOptions extends RequestOptions {
  /** Redeliver after this many ms instead of at once. */
  delay?: number;
  /**
   * Why the message is given back (sent as the `reason` header, at most 256 characters): kept with the
   * delivery, and written as `dlq_error` on the dead letter if the message ends up in `<topic>.dlq`.
   */
  reason?: string;
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
  /** Deliveries before a message moves to `<topic>.dlq` (`group_max_deliver`; the broker's `maxDeliver` when absent). */
  maxDeliver?: number;
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

/** A `declare` of `topic` with its topic options (mask, retention); the group headers come separately. */
function declareRequest(topic: string, options: DeclareOptions): Message {
  const msg = new Message({ headers: { cmd: Cmd.Declare, topic } });
  // `set` leaves out a header whose value is undefined
  msg.set('topic_mask', options.topicMask);
  const r = options.retention;
  msg.set(Header.TopicRetentionBytes, r?.bytes);
  msg.set(Header.TopicRetentionMs, r?.ms);
  msg.set(Header.TopicRetentionMessages, r?.messages);
  return msg;
}

/** Sets `group_*` headers from group options (`set` leaves out the ones that are undefined). */
export function setGroupHeaders(msg: Message, group: string | GroupOptions | undefined): void {
  if (typeof group !== 'object') {
    msg.set('consume_group', group);
    return;
  }
  msg.set('consume_group', group.name);
  if (group.nameAuto) msg.set('group_name_auto', 'true');
  msg.set('group_filter', group.filter);
  msg.set('group_mask', group.mask);
  msg.set('group_start_copy', group.startCopy);
  msg.set('group_start_offset', group.startOffset);
  msg.set('group_start_msgid', group.startMsgid);
  msg.set('group_start_time', group.startTime);
  msg.set('group_ack_window', group.ackWindow);
  msg.set('group_ack_timeout', group.ackTimeout);
  msg.set('group_max_deliver', group.maxDeliver);
}

/**
 * The API over one connection to a broker: `invoke`/`send`/`stream` for raw messages and a typed method for
 * every command (zbus-protocol.md §5). The connection itself (pipelining, reconnect, heartbeat, the outbound
 * queue) is the `Connection` underneath.
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
  readonly #conn: Connection;
  /** A produce's result from its ack: made once, not a closure per publish. */
  readonly #toProduceResult: ReplyMap<ProduceResult> = (reply, request, error) =>
    produceResult(reply, request, error, this.address);
  /** What `declare` created, sent again after a reconnect (topic + group, lower case → request). */
  readonly #declares = new Map<string, Message>();

  constructor(address: string, options: MqClientOptions) {
    if (typeof address !== 'string' || address.length === 0) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'MqClient needs an address (host:port)');
    }
    this.address = address;
    this.options = resolveClientOptions(options);
    this.#conn = new Connection(address, this.options, this.#events, () => this.#redeclare());
  }

  get state(): ClientState {
    return this.#conn.state;
  }

  /** Whether a connection is up. */
  get connected(): boolean {
    return this.#conn.state === 'open';
  }

  /** Requests waiting for a reply. */
  get pendingCount(): number {
    return this.#conn.pendingCount;
  }

  /**
   * A new connection to the same server with the same options. With it an `MqClient` is a source of its own:
   * `new Producer(client)`, `new Consumer(client, ...)` (one new connection per consumer connection) and
   * `new MqAdmin(client)` work without a `Broker`, which adds tracker-aware routing over several brokers.
   */
  createClient(options: Partial<Omit<MqClientOptions, 'transport'>> = {}): MqClient {
    return new MqClient(this.address, { ...this.options, ...options });
  }

  /** Where the connection stands: state, reconnects, requests in flight, queued bytes, backpressure, rtt. */
  stats(): ClientStats {
    return this.#conn.stats();
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
    return this.#conn.connect();
  }

  /** Re-declares, on a new connection, what was declared (before anything queued goes out). */
  async #redeclare(): Promise<void> {
    if (this.#declares.size === 0) return;
    await Promise.all(
      [...this.#declares.values()].map((d) =>
        this.#conn.requestNow(d.clone(), this.options.timeout).catch(() => {}),
      ),
    );
  }

  /**
   * Sends a request and resolves with the message that carries its `id` (any status: check it, or use the
   * typed methods, which throw typed errors). Rejects with `ZBUS_ERR_TIMEOUT` after `timeout` ms, with
   * `ZBUS_ERR_CONNECTION_CLOSED` when the connection it went out on is lost, with `ZBUS_ERR_LIMIT` when
   * `maxQueued`/`maxQueuedBytes` are reached, and with the signal's reason when `signal` aborts.
   */
  invoke(msg: Message, options: RequestOptions = {}): Promise<Message> {
    return this.#conn.request(msg, options.timeout ?? this.options.timeout, options.signal);
  }

  /**
   * Sends a message that gets no reply (`route`, `heartbeat`, produce with `ack: false`). While disconnected,
   * or while the transport is backed up, it waits in the client (up to `maxQueued` and `maxQueuedBytes`).
   * Returns the message's id.
   */
  send(msg: Message): string {
    return this.#conn.post(msg);
  }

  /**
   * Resolves when there is room to write: the transport is not over its high-water mark and less than
   * `maxQueuedBytes` wait in the client. `produce` waits for it; so can any producer of many messages.
   */
  async writable(options: RequestOptions = {}): Promise<void> {
    await this.#conn.writable(options.timeout ?? this.options.timeout, options.signal);
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
    return this.#conn.stream(msg, onMessage, onEnd);
  }

  /**
   * Closes the client: new requests are refused, requests not yet written fail, requests in flight get up to
   * `closeTimeout` ms to be answered (or until `signal` aborts; then they fail), streams end, the connection
   * closes.
   */
  close(options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#conn.close(options.signal);
  }

  /** `await using client = new MqClient(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- typed commands (zbus-protocol.md §5) -------------------------------------------------------------

  /**
   * Stores a message. Resolves with the broker's ack (offset, durability); with `ack: false`, resolves with
   * `undefined` once the message is handed to the connection. Either way it first waits for room when the
   * transport is backed up (`writable()`), so a loop of produces runs at the broker's pace. Produce to an RPC
   * topic is never acked: use `RpcInvoker`, or `ack: false`.
   */
  produce(input: PublishInput | Message, options: ProduceOptions = {}): Promise<ProduceResult | undefined> {
    return this.produceMessage(toProduceMessage(input), options);
  }

  /**
   * `produce` of a request built already (`toProduceMessage`). Not `async`: with room to write, an acked
   * produce is one promise, resolved with the result. @internal
   */
  produceMessage(msg: Message, options: ProduceOptions = {}): Promise<ProduceResult | undefined> {
    const timeout = options.timeout ?? this.options.timeout;
    const room = this.#conn.writable(timeout, options.signal);
    if (room !== undefined || options.ack === false) return this.#produceLater(msg, options, timeout, room);
    return this.#produceAcked(msg, options, timeout);
  }

  /**
   * An acked produce of a request built already, settled by `map` (ack or failure), when it can be written now;
   * `undefined` when it would have to wait for room (then take `produce`). For publish paths that make nothing
   * per message but the request: the Node client's `Producer`.
   */
  produceNow<T>(msg: Message, timeout: number, map: ReplyMap<T>): Promise<T> | undefined {
    return this.#conn.canWrite() ? this.#conn.request(msg, timeout, undefined, true, map) : undefined;
  }

  #produceAcked(msg: Message, options: ProduceOptions, timeout: number): Promise<ProduceResult> {
    return this.#conn.request(msg, timeout, options.signal, true, this.#toProduceResult);
  }

  /** `produceMessage` once there is room to write, and fire-and-forget produces. */
  async #produceLater(
    msg: Message,
    options: ProduceOptions,
    timeout: number,
    room: Promise<void> | undefined,
  ): Promise<ProduceResult | undefined> {
    if (room !== undefined) await room;
    if (options.ack === false) {
      msg.set('ack', 'false');
      this.#conn.post(msg, true);
      return undefined;
    }
    return this.#produceAcked(msg, options, timeout);
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
      reply = await this.#conn.request(msg, timeout + Math.min(timeout, 2_000), options.signal);
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
      this.#conn.resolve(id, new Message({ status: 200, headers: { id } }));
      await answer;
      return;
    }
    expectOk(first);
  }

  /** Acknowledges the message at `offset` in an ack-required group. */
  ack(topic: string, group: string, offset: number | string, options: RequestOptions = {}): Promise<void> {
    return this.#groupDelivery(Cmd.Ack, topic, group, offset, options);
  }

  /** Gives a message back for redelivery, after `delay` ms when set, saying why when `reason` is set. */
  nack(topic: string, group: string, offset: number | string, options: NackOptions = {}): Promise<void> {
    return this.#groupDelivery(Cmd.Nack, topic, group, offset, options);
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
    options: NackOptions,
  ): Promise<void> {
    const msg = new Message({ headers: { cmd, topic, consume_group: group, offset: String(offset) } });
    if (options.delay !== undefined) msg.set('delay', options.delay);
    if (options.reason !== undefined) msg.set('reason', truncate(options.reason, 256));
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
      m.status = undefined; // a request now (not `delete`: Message keeps one shape)
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
    const msg = declareRequest(topic, options);
    setGroupHeaders(msg, options.group);
    const info = parseJsonReply<TopicInfo | ConsumeGroupInfo>(await this.invoke(msg, options));
    // A redeclare must not move a group's position again, nor create another auto-named group.
    const again = declareRequest(topic, options);
    const g = options.group;
    if (typeof g === 'string') again.set('consume_group', g);
    else if (g !== undefined) {
      const named = g.nameAuto && 'groupName' in info && typeof info.groupName === 'string';
      setGroupHeaders(again, {
        name: named ? (info as ConsumeGroupInfo).groupName : g.name,
        filter: g.filter,
        mask: g.mask,
        ackWindow: g.ackWindow,
        ackTimeout: g.ackTimeout,
        maxDeliver: g.maxDeliver,
      });
    }
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
  ping(options: RequestOptions = {}): Promise<number> {
    const msg = new Message({ headers: { cmd: Cmd.Ping } });
    return this.#conn.ping(msg, options.timeout ?? this.options.timeout, options.signal);
  }

  /** Sends a heartbeat (never answered). No-op while disconnected or backed up. */
  heartbeat(): void {
    this.#conn.heartbeat();
  }
}

/** `text` cut to `max` characters (the encoder turns CR, LF and NUL in a header value into spaces). */
function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The broker's time in a produce ack's body (ms since the epoch), or undefined when the body holds none. */
export function ackTime(ack: Message): number | undefined {
  // An empty body is no time (Number('') is 0).
  const time = Number(ack.bodyText().trim() || Number.NaN);
  return Number.isFinite(time) ? time : undefined;
}

/**
 * How every acked produce settles (a `ReplyMap` given the server): the result from the ack, or the error that
 * ended the request, or the ack's own error, thrown. The id is the request's, which keeps nothing else alive
 * (the reply's is a slice of its head).
 */
export function produceResult(
  reply: Message | undefined,
  msg: Message,
  error: Error | undefined,
  server?: string,
): ProduceResult {
  if (error !== undefined) throw error;
  const ack = expectOk(reply as Message);
  return {
    id: msg.headers.id ?? ack.headers.id ?? '',
    topic: msg.headers.topic ?? '',
    offset: ack.offset,
    durability: ack.headers.durable,
    serverTime: ackTime(ack),
    server,
    reply: ack,
  };
}
