// The broker: one listener, one store, the command handlers between them. This file wires the parts together
// and runs their lifecycle (listen, graceful close); what each part does lives in broker/: the request pipeline
// and connections (requests.ts), who may ask (access.ts), RPC by URL (rpc-by-url.ts), the store (store.ts) and
// the announced address (announce.ts).
import type { AddressInfo } from 'node:net';
import { ZbusError } from '@zbus/protocol';
import pino, { type Logger } from 'pino';
import { Auth } from './auth/auth.js';
import { announceAddress } from './broker/announce.js';
import { Requests } from './broker/requests.js';
import { openBrokerStore } from './broker/store.js';
import type { SharedStore } from './cluster/shared-store.js';
import type { BrokerState } from './commands/context.js';
import { isRpcTopic } from './commands/produce.js';
import { publishTrackerInfo } from './commands/tracker.js';
import { errorReply } from './errors.js';
import { serverInfo } from './info.js';
import { Metrics } from './metrics/metrics.js';
import { Dispatcher } from './mq/dispatcher.js';
import { type BrokerOptions, type ResolvedBrokerOptions, resolveOptions } from './options.js';
import { RpcCalls } from './rpc/calls.js';
import { RpcRelay } from './rpc/relay.js';
import { Session } from './session.js';
import { type Clock, systemClock } from './store/clock.js';
import type { Store } from './store/types.js';
import { Burst } from './tracker/burst.js';
import { TrackerReporter } from './tracker/reporter.js';
import { TrackerState } from './tracker/tracker.js';
import type { Listener } from './transport/listener.js';

export interface Broker {
  /** Opens the store and starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** Graceful: stop accepting, answer in-flight requests, flush the store, close everything. */
  close(): Promise<void>;
  /** The bound address, or null before listen(). */
  address(): { host: string; port: number } | null;
  /** `host:port` announced to clients (ServerInfo). */
  readonly announced: string;
  readonly options: ResolvedBrokerOptions;
  readonly log: Logger;
}

/** Changes after the first of a burst are pushed to `track_sub` sessions at most once per this many ms. */
const CHANGE_COALESCE_MS = 100;
/** At shutdown, connections must be silent this long before they are closed. */
const SHUTDOWN_QUIET_MS = 50;

class BrokerCore implements BrokerState, Broker {
  readonly options: ResolvedBrokerOptions;
  readonly log: Logger;
  readonly metrics = new Metrics();
  readonly clock: Clock;
  readonly rpc: RpcCalls;
  relay: RpcRelay | undefined;
  readonly sessions = new Map<string, Session>();
  readonly tracker: TrackerState;
  #reporter: TrackerReporter | undefined;
  readonly auth: Auth | undefined;
  readonly dispatcher: Dispatcher;
  readonly #requests: Requests;
  announced = '';
  #store: Store | undefined;
  #listener: Listener | undefined;
  readonly #pushes = new Burst(() => {
    if (!this.#requests.closing) publishTrackerInfo(this);
  }, CHANGE_COALESCE_MS);

  constructor(options: BrokerOptions) {
    this.options = resolveOptions(options);
    this.log =
      this.options.logger ??
      pino({ level: this.options.logLevel, base: { name: 'zbus' } }, pino.destination(2));
    this.auth = this.options.auth ? new Auth(this.options.auth) : undefined;
    this.clock = this.options.clock ?? systemClock;
    this.rpc = new RpcCalls(this.clock);
    this.dispatcher = new Dispatcher(
      this.metrics,
      {
        consumersChanged: (topic) => {
          if (this.relay) this.relay.consumersChanged(topic, this.#isRpcTopic(topic));
          this.changed();
        },
        failed: (err, topic, group) => this.log.error({ err, topic, group }, 'delivery failed'),
      },
      this.clock,
    );
    this.tracker = new TrackerState(
      this.log,
      this.options.trackerDeadlineMs,
      this.options.trackerMaxServers,
      () => this.#publishSoon(),
      () => this.announced,
    );
    this.#requests = new Requests(this);
  }

  get store(): Store {
    if (!this.#store) throw new ZbusError('ZBUS_ERR_CLOSED', 'the broker is not listening');
    return this.#store;
  }

  get sslEnabled(): boolean {
    return this.options.tls !== undefined;
  }

  async listen(): Promise<{ host: string; port: number }> {
    const o = this.options;
    const { store, shared } = await openBrokerStore(o, this.log, this.auth);
    this.#store = store;
    if (shared) this.#follow(shared);
    this.#listener = this.#requests.listen();
    const server = this.#listener.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'listener error'));
    const addr = this.address()!;
    this.announced = announceAddress(o, addr.port);
    if (o.trackers.length > 0) {
      this.#reporter = new TrackerReporter(
        o.trackers,
        () => serverInfo(this, o.trackerToken),
        this.log,
        o.trackerReportIntervalMs,
        o.trackerToken,
        o.clusterToken,
      );
    }
    this.#requests.ready();
    return addr;
  }

  /**
   * A store other brokers share: RPC reaches services on them, and what they declare or remove shows here too:
   * trackers hear of it, and consumes waiting on a group removed elsewhere get their 404 as on this broker.
   */
  #follow(shared: SharedStore): void {
    this.relay = new RpcRelay(shared.link, this);
    shared.onChange((c) => {
      if (c.removed) {
        const group = c.kind === 'group' ? c.group : undefined;
        const what = group === undefined ? `Topic(${c.topic})` : `ConsumeGroup(${group})`;
        this.dispatcher.groupRemoved(c.topic, group, (t) =>
          t.send(errorReply(new ZbusError('ZBUS_ERR_NOT_FOUND', `${what} Not Found`), c.topic)),
        );
      }
      this.changed();
    });
  }

  #isRpcTopic(name: string): boolean {
    const t = this.#store?.topic(name);
    return t !== undefined && isRpcTopic(t);
  }

  address(): { host: string; port: number } | null {
    const a = this.#listener?.server.address() as AddressInfo | null | undefined;
    return a ? { host: a.address, port: a.port } : null;
  }

  /** Topics, groups or consumers changed: tell the trackers and the `track_sub` sessions. */
  changed(): void {
    // Every change gets a new infoVersion, even with nobody subscribed here: trackers and the clients that
    // merge their views accept a server's info only when its version moved.
    this.tracker.bump();
    this.#reporter?.changed();
    this.#publishSoon();
  }

  /**
   * Pushes TrackerInfo to `track_sub` sessions: the first change of a burst at once (before the reply of the
   * request that caused it), later ones coalesced (`Burst`).
   */
  #publishSoon(): void {
    if (this.tracker.subscribers.size > 0) this.#pushes.trigger();
  }

  async close(): Promise<void> {
    if (this.#requests.closing) return;
    this.#requests.beginClose();
    const listener = this.#listener;
    const closed = listener
      ? new Promise<void>((resolve) => listener.server.close(() => resolve()))
      : Promise.resolve();
    // Requests already on the wire still get an answer (503 for new work): wait until nothing is in flight
    // and the connections have been quiet for a moment, bounded by shutdownTimeoutMs.
    const deadline = Date.now() + this.options.shutdownTimeoutMs;
    while (Date.now() < deadline && !this.#requests.settled(SHUTDOWN_QUIET_MS)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.#pushes.close();
    this.#reporter?.close();
    this.tracker.close();
    this.dispatcher.close((t) =>
      t.send(errorReply(new ZbusError('ZBUS_ERR_CLOSED', 'the broker is shutting down'))),
    );
    this.relay?.close();
    this.rpc.close((session, id, ticket) => {
      if (!(session instanceof Session)) return;
      // RPC callers still waiting get 503 rather than a connection closed without an answer.
      const reply = errorReply(new ZbusError('ZBUS_ERR_CLOSED', 'the broker is shutting down'));
      reply.set('id', id);
      if (ticket) ticket.send(reply);
      else session.push(reply);
    });
    for (const c of listener?.connections ?? []) c.close();
    this.#requests.closeWebSockets();
    if (this.#store) {
      await this.#store.flush().catch((err: unknown) => this.log.error({ err }, 'flush at shutdown failed'));
      await this.#store.close();
    }
    listener?.destroyAll();
    this.#requests.idle?.close();
    await closed;
    this.log.flush?.();
  }
}

export function createBroker(options: BrokerOptions = {}): Broker {
  return new BrokerCore(options);
}
