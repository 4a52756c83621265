import type { ServerInfo, TrackerInfo } from '@zbus/protocol';
import { Cmd, Message, ZbusError } from '@zbus/protocol';
import { type ClientStats, MqClient, type RequestOptions } from './client.js';
import { abortable } from './dispose.js';
import { Emitter } from './emitter.js';
import type { MqClientOptions } from './options.js';
import { positive } from './options.js';
import {
  defaultSelectors,
  type RouteDiff,
  RouteState,
  type RouteTable,
  type ServerSelectors,
} from './route-table.js';
import type { ClientSource, RouteKind } from './source.js';
import { type TimerHandle, unref } from './timers.js';

export type { ClientSource, RouteKind };

/** Options of a {@link Broker}: the client options every connection it makes gets, and how clients are built. */
export interface BrokerOptions extends MqClientOptions {
  /**
   * Builds each client the broker hands out (a subclass, or a hook that watches every client), tracker
   * subscriptions included.
   * @default (address, options) => new MqClient(address, options)
   */
  clientFactory?: (address: string, options: MqClientOptions) => MqClient;
  /**
   * Replaces any of the server selectors (which servers producers, consumers and admin commands use).
   * @default defaultSelectors()
   */
  selectors?: Partial<ServerSelectors>;
  /**
   * Milliseconds `ready()` (and the first publish, consume or admin call) waits for the first TrackerInfo
   * before it routes to the addresses it was given.
   * @default 3000
   */
  readyTimeout?: number;
}

/** Events of a {@link Broker}. */
export type BrokerEvents = {
  /** A server entered the route table (listed by at least half of the live trackers). */
  serverJoin: [server: string, info: ServerInfo];
  /** A server left the route table (its clients are closed; producers and consumers move on). */
  serverLeave: [server: string];
  /** The route table changed (servers, topics, consumer counts). */
  updated: [table: RouteTable];
};

/** A snapshot of a {@link Broker}'s connections (`stats()`). */
export interface BrokerStats {
  /** The servers routed to (addresses to connect to); the given addresses while none is known. */
  servers: string[];
  /** Every connection the broker made: shared ones, consumers' own, and tracker subscriptions. */
  connections: (ClientStats & { role: 'shared' | 'owned' | 'tracker' })[];
  /** Sums over `connections`. */
  inFlight: number;
  reconnects: number;
}

export const BROKER_DEFAULTS = { readyTimeout: 3_000 } as const;

/** A connect attempt that failed makes a server unavailable for this long, ms. */
const FAILED_CONNECT_MS = 1_000;
/** The clients of a server that left the route table are closed this long after, ms (0.11: 1 s). */
const LEAVE_CLOSE_MS = 1_000;

/** Splits `'h1:15555;h2:15555'` (also `,` and blanks) and drops `tcp://`, as 0.11 clients do. */
export function parseAddresses(address: string): string[] {
  if (typeof address !== 'string')
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'address must be a string');
  const list = address
    .split(/[;,\s]+/)
    .map((a) => a.trim().replace(/^tcp:\/\//i, ''))
    .filter((a) => a.length > 0);
  if (list.length === 0)
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `no address in ${JSON.stringify(address)}`);
  return list;
}

interface TrackerLink {
  /** The address as given. */
  readonly address: string;
  readonly client: MqClient;
  /** The first attempt ended (a TrackerInfo, a refused `track_sub`, or a failed connection). */
  settled: boolean;
  readonly off: (() => void)[];
}

/**
 * The entry point for producers, consumers, admins and RPC (zbus-protocol.md §9). `new Broker('h1:p;h2:p')`
 * subscribes (`track_sub`) to every listed address (every zbus broker is a tracker), merges what they say into
 * a {@link RouteTable}, and routes: producers to a server that holds the topic, consumers to every server that
 * holds it, admin commands to every server. Servers are reached at the address they announce, except a
 * tracker's own server, which is reached at the address you gave for that tracker.
 *
 * One address is a cluster of one: the broker is its own tracker. Until the first TrackerInfo arrives (or
 * when no address answers `track_sub`, e.g. an old server) traffic goes to the given addresses, the first
 * one for producers. Tracking starts with `ready()`, or with the first publish, consume or admin call.
 */
export class Broker implements ClientSource {
  readonly addresses: readonly string[];
  readonly options: BrokerOptions;
  readonly #state: RouteState;
  readonly #selectors: ServerSelectors;
  readonly #events = new Emitter<BrokerEvents>();
  readonly #trackers = new Map<string, TrackerLink>();
  readonly #shared = new Map<string, MqClient>();
  readonly #owned = new Set<MqClient>();
  /** Announced address of a tracker's own server → the address it was given as. */
  readonly #aliases = new Map<string, string>();
  /** Connect address → until when it counts as unavailable (a lost or failed connection). */
  readonly #down = new Map<string, number>();
  /** The one server to use when there is nothing to choose from (one address, at most one server known). */
  #single: string | undefined;
  /** Servers that left: their clients close when the timer fires, unless they come back first. */
  readonly #leaving = new Map<string, TimerHandle>();
  #tracking: Promise<void> | undefined;
  #onSettled: (() => void) | undefined;
  #closed = false;

  constructor(address: string, options: BrokerOptions) {
    this.addresses = Object.freeze(parseAddresses(address));
    const readyTimeout = options.readyTimeout ?? BROKER_DEFAULTS.readyTimeout;
    positive(readyTimeout, 'readyTimeout', true);
    this.options = options;
    this.#selectors = { ...defaultSelectors(), ...stripUndefined(options.selectors ?? {}) };
    this.#state = new RouteState((server) => this.#isAvailable(this.#connectAddress(server)));
    this.#single = this.addresses.length === 1 ? this.addresses[0] : undefined;
  }

  /** The merged view of the trackers: servers, topics, availability. */
  get table(): RouteTable {
    return this.#state;
  }

  on<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): void {
    this.#events.off(event, listener);
  }

  onRoutesChanged(listener: () => void): () => void {
    return this.#events.on('updated', () => listener());
  }

  /** The server a topic's published messages go to (address to connect to). */
  select(topic?: string): string {
    return this.route('produce', topic)[0] as string;
  }

  /** The servers for `kind` of traffic on `topic`, as addresses to connect to, best first. */
  route(kind: RouteKind, topic?: string): string[] {
    if (this.#state.servers.size === 0) {
      // Nothing known (yet): the given addresses, reachable ones first.
      const up = this.addresses.filter((a) => this.#isAvailable(a));
      const list =
        up.length > 0 ? [...up, ...this.addresses.filter((a) => !up.includes(a))] : [...this.addresses];
      return list;
    }
    const servers = this.#selectors[kind](this.#state, topic);
    const out: string[] = [];
    for (const s of servers) {
      const a = this.#connectAddress(s);
      if (!out.includes(a)) out.push(a);
    }
    return out.length > 0 ? out : [...this.addresses];
  }

  /** Every known server (addresses to connect to); the given addresses while nothing is known. */
  knownServers(): string[] {
    if (this.#state.servers.size === 0) return [...this.addresses];
    return [...this.#state.servers.keys()].map((s) => this.#connectAddress(s));
  }

  client(topic?: string): MqClient {
    this.#check();
    // One address and at most one server (the common case): nothing to select.
    const single = this.#single;
    return this.clientAt(single ?? this.select(topic));
  }

  clientAt(server: string): MqClient {
    this.#check();
    let c = this.#shared.get(server);
    if (c === undefined || c.state === 'closed' || c.state === 'closing') {
      c = this.#make(server, this.options);
      this.#shared.set(server, c);
      this.#watch(server, c);
    }
    return c;
  }

  createClient(options: Partial<Omit<MqClientOptions, 'transport'>> = {}, topic?: string): MqClient {
    return this.createClientAt(this.select(topic), options);
  }

  createClientAt(server: string, options: Partial<Omit<MqClientOptions, 'transport'>> = {}): MqClient {
    this.#check();
    const c = this.#make(server, { ...this.options, ...options });
    this.#owned.add(c);
    c.on('disconnected', () => {
      if (c.state === 'closed') this.#owned.delete(c);
    });
    return c;
  }

  /**
   * Sends a request to the server that `produce` routing picks for its topic (an RPC call goes to a server
   * whose RPC topic has consumers), so `new RpcInvoker(broker, { topic })` follows the cluster.
   */
  async invoke(msg: Message, options: RequestOptions = {}): Promise<Message> {
    await this.tracked();
    return this.client(msg.headers.topic).invoke(msg, options);
  }

  /**
   * Starts tracking and waits (up to `readyTimeout`) for the first TrackerInfo, then connects to a server;
   * rejects if none can be reached, or with the signal's reason when `signal` aborts first.
   */
  ready(options: { signal?: AbortSignal } = {}): Promise<void> {
    return abortable(
      this.tracked().then(() => this.client().connect()),
      options.signal,
    );
  }

  /**
   * Starts tracking (once) and resolves when the first TrackerInfo came in, when every address failed or
   * refused `track_sub`, or after `readyTimeout` ms, whichever comes first. Never rejects.
   */
  tracked(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#tracking ??= this.#startTracking();
    return this.#tracking;
  }

  /** Where every connection stands: servers, requests in flight, reconnects, queued bytes, rtt. */
  stats(): BrokerStats {
    const connections: BrokerStats['connections'] = [];
    const add = (c: MqClient, role: 'shared' | 'owned' | 'tracker') =>
      connections.push({ ...c.stats(), role });
    for (const c of this.#shared.values()) add(c, 'shared');
    for (const c of this.#owned) add(c, 'owned');
    for (const l of this.#trackers.values()) add(l.client, 'tracker');
    let inFlight = 0;
    let reconnects = 0;
    for (const c of connections) {
      inFlight += c.inFlight;
      reconnects += c.reconnects;
    }
    return { servers: this.knownServers(), connections, inFlight, reconnects };
  }

  /** `await using broker = new Broker(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Closes every client this broker handed out and its tracker subscriptions; `signal` cuts short the wait for
   * requests in flight.
   */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onSettled?.();
    for (const t of this.#leaving.values()) clearTimeout(t);
    this.#leaving.clear();
    const links = [...this.#trackers.values()];
    this.#trackers.clear();
    for (const l of links) for (const off of l.off) off();
    const all = [...links.map((l) => l.client), ...this.#shared.values(), ...this.#owned];
    this.#shared.clear();
    this.#owned.clear();
    await Promise.all(all.map((c) => c.close(options)));
  }

  // ---- tracking --------------------------------------------------------------------------------------------

  #startTracking(): Promise<void> {
    const timeout = this.options.readyTimeout ?? BROKER_DEFAULTS.readyTimeout;
    const done = new Promise<void>((resolve) => {
      const t = timeout > 0 ? setTimeout(finish, timeout) : undefined;
      function finish() {
        if (t !== undefined) clearTimeout(t);
        resolve();
      }
      this.#onSettled = finish;
    });
    for (const address of this.addresses) this.#track(address);
    if (timeout === 0) this.#onSettled?.();
    return done;
  }

  #track(address: string): void {
    // Tracker subscriptions keep trying in the background: a tracker may come up after the client.
    const client = this.#make(address, { ...this.options, retryInitialConnect: true, reconnect: true });
    const link: TrackerLink = { address, client, settled: false, off: [] };
    this.#trackers.set(address, link);
    link.off.push(
      client.on('connected', () => this.#subscribe(link)),
      client.on('message', (m) => {
        if (m.status === 200 && m.headers.cmd === Cmd.TrackPub) this.#onTrackerInfo(link, m);
      }),
      client.on('error', () => this.#settle(link)),
      client.on('disconnected', () => {
        if (this.#closed) return;
        this.#apply(this.#state.removeTracker(address));
      }),
    );
    client.connect().catch(() => this.#settle(link));
  }

  #subscribe(link: TrackerLink): void {
    if (this.#closed) return;
    const msg = new Message({ headers: { cmd: Cmd.TrackSub } });
    try {
      // The reply carries the request id; later pushes carry none and arrive as `message` events.
      const s = link.client.stream(
        msg,
        (m) => {
          s.cancel();
          if (m.status === 200) {
            this.#onTrackerInfo(link, m);
            return;
          }
          this.#settle(link);
          // Not a tracker (an old server, or a token without the right): the address is used as a plain server
          // and this subscription connection is not needed. Other answers (a broker shutting down) are retried
          // on the next connection.
          if (m.status === 400 || m.status === 401 || m.status === 403) link.client.close().catch(() => {});
        },
        () => {},
      );
    } catch {
      // lost again already; `connected` subscribes again
    }
  }

  #onTrackerInfo(link: TrackerLink, m: Message): void {
    if (this.#closed) return;
    let info: TrackerInfo;
    try {
      info = m.json<TrackerInfo>();
    } catch {
      return;
    }
    if (info === null || typeof info !== 'object' || typeof info.serverTable !== 'object') return;
    const self = info.serverAddress?.address;
    if (typeof self === 'string' && self !== '' && self !== link.address)
      this.#aliases.set(self, link.address);
    this.#apply(this.#state.update(link.address, info));
    this.#settle(link, true);
  }

  #settle(link: TrackerLink, info = false): void {
    if (link.settled && !info) return;
    link.settled = true;
    if (info || [...this.#trackers.values()].every((l) => l.settled)) this.#onSettled?.();
  }

  #apply(diff: RouteDiff): void {
    if (!diff.changed) return;
    const servers = this.#state.servers;
    this.#single =
      this.addresses.length !== 1 || servers.size > 1
        ? undefined
        : servers.size === 1
          ? this.#connectAddress(servers.keys().next().value as string)
          : this.addresses[0];
    for (const server of diff.left) {
      // Its clients go (after a moment, as in 0.11, in case the trackers only disagree briefly): requests
      // waiting on them fail (ZBUS_ERR_CONNECTION_CLOSED) instead of waiting for a server that the trackers say
      // is gone. Consumers drop their own lanes on the `updated` that follows.
      const address = this.#connectAddress(server);
      if (!this.#leaving.has(address)) {
        this.#leaving.set(address, unref(setTimeout(() => this.#closeClientsAt(address), LEAVE_CLOSE_MS)));
      }
      this.#events.emit('serverLeave', server);
    }
    for (const server of diff.joined) {
      const address = this.#connectAddress(server);
      const leaving = this.#leaving.get(address);
      if (leaving !== undefined) {
        clearTimeout(leaving);
        this.#leaving.delete(address);
      }
      this.#events.emit('serverJoin', server, this.#state.servers.get(server) as ServerInfo);
    }
    this.#events.emit('updated', this.#state);
  }

  // ---- connections -----------------------------------------------------------------------------------------

  #closeClientsAt(address: string): void {
    this.#leaving.delete(address);
    if (this.#closed) return;
    const c = this.#shared.get(address);
    if (c !== undefined) {
      this.#shared.delete(address);
      c.close().catch(() => {});
    }
    for (const o of this.#owned) {
      if (o.address !== address) continue;
      this.#owned.delete(o);
      o.close().catch(() => {});
    }
    this.#down.delete(address);
  }

  #connectAddress(server: string): string {
    return this.#aliases.get(server) ?? server;
  }

  #isAvailable(address: string): boolean {
    const until = this.#down.get(address);
    if (until === undefined) return true;
    if (until > Date.now()) return false;
    this.#down.delete(address);
    return true;
  }

  /** Watches a shared client: while its connection is down, selectors steer around its server. */
  #watch(address: string, c: MqClient): void {
    c.on('connected', () => this.#down.delete(address));
    c.on('disconnected', () => {
      if (c.state !== 'closing' && c.state !== 'closed' && this.#shared.get(address) === c)
        this.#down.set(address, Number.POSITIVE_INFINITY);
    });
    c.connect().catch(() => {
      if (this.#shared.get(address) === c && c.state !== 'reconnecting')
        this.#down.set(address, Date.now() + FAILED_CONNECT_MS);
    });
  }

  #make(address: string, options: MqClientOptions): MqClient {
    const { clientFactory, selectors: _s, readyTimeout: _r, ...clientOptions } = options as BrokerOptions;
    return clientFactory ? clientFactory(address, clientOptions) : new MqClient(address, clientOptions);
  }

  #check(): void {
    if (this.#closed) throw new ZbusError('ZBUS_ERR_CLOSED', 'broker is closed');
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
