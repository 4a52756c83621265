// The broker: one listener, one store, the command handlers between them. `handle()` is the 0.11 request
// pipeline (zbus-protocol.md §5, "Processing order"): stamp sender/host/remote-addr, assign an id, token
// from the cookie, URL rules, monitor pages, auth, then the command.
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import {
  Cmd,
  encodeMessage,
  keepAlive,
  LimitError,
  type Message,
  resolveCommand,
  rpcRequestFromUrl,
  tokenFromCookie,
  ZbusError,
} from '@zbus/protocol';
import pino, { type Logger } from 'pino';
import { Auth } from './auth/auth.js';
import { migratedCreator } from './auth/creator.js';
import { isLoopback, protectedModeError, unlistedHostError } from './auth/loopback.js';
import {
  cookieCounts,
  crossSiteError,
  crossSiteSafe,
  OriginPolicy,
  type RequestSite,
} from './auth/origin.js';
import { loadSharedStoreModule } from './cluster/shared-store.js';
import type { BrokerState, CommandContext } from './commands/context.js';
import { hasRpcMask, isRpcTopic } from './commands/produce.js';
import { COMMAND_HANDLERS } from './commands/registry.js';
import { publishTrackerInfo } from './commands/tracker.js';
import { errorParts, errorReply } from './errors.js';
import { pathOf, RESERVED_PATHS, serveEndpoint } from './http/endpoints.js';
import { MONITOR_COMMANDS, monitorLoginRedirect, serveMonitor } from './http/monitor.js';
import { serverInfo } from './info.js';
import { Metrics } from './metrics/metrics.js';
import { decodeStored, encodeStored, storedId } from './mq/delivery.js';
import { Dispatcher } from './mq/dispatcher.js';
import { type BrokerOptions, type ResolvedBrokerOptions, resolveOptions } from './options.js';
import { RpcCalls } from './rpc/calls.js';
import { RpcRelay } from './rpc/relay.js';
import { type ReplyTicket, Session } from './session.js';
import { dlqName } from './store/dead-letter.js';
import { openStore } from './store/store.js';
import type { DeadLetterInfo, Store } from './store/types.js';
import { Burst } from './tracker/burst.js';
import { TrackerReporter } from './tracker/reporter.js';
import { TrackerState } from './tracker/tracker.js';
import type { ConnectionHost } from './transport/host.js';
import { createListener, type Listener } from './transport/listener.js';
import { createWebSocketUpgrader } from './transport/websocket.js';

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

/** No auth and not `insecure`: only clients on the loopback interface are served (decisions.md §6). */
function isProtectedMode(o: ResolvedBrokerOptions): boolean {
  return o.auth === undefined && !o.insecure;
}

/**
 * The address 0.11 clients should connect to (decisions.md §1 "Announced address"). In protected mode only
 * loopback clients are served, so a wildcard listener announces loopback: clients that reconnect to the
 * announced address (0.11 `Broker`, ours) stay on it.
 */
function announceAddress(o: ResolvedBrokerOptions, port: number): string {
  if (o.announce) return o.announce;
  if (o.host !== '0.0.0.0' && o.host !== '::' && o.host !== '') return `${o.host}:${port}`;
  if (isProtectedMode(o)) return `127.0.0.1:${port}`;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return `${a.address}:${port}`;
  }
  return `127.0.0.1:${port}`;
}

/** Adds headers saying why and from where to a message moved to `<topic>.dlq`. */
function deadLetter(data: Uint8Array, info: DeadLetterInfo): Uint8Array {
  const m = decodeStored(data);
  m.set('dlq_reason', info.reason);
  m.set('dlq_topic', info.topic);
  m.set('dlq_group', info.group);
  m.set('dlq_offset', info.offset);
  m.set('dlq_deliveries', info.deliveries);
  if (info.error !== undefined) m.set('dlq_error', info.error);
  return encodeStored(m, storedId(m) ?? info.id, dlqName(info.topic));
}

/**
 * The token of a /metrics scrape: `token` header, `?token=`, `Authorization: Bearer`, or (from the broker's own
 * pages only) the `token` cookie.
 */
function metricsToken(msg: Message, session: Session, ownSite: boolean): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(msg.headers.authorization ?? '')?.[1];
  return (
    msg.headers.token ??
    (msg.url.includes('?')
      ? new URLSearchParams(msg.url.slice(msg.url.indexOf('?') + 1)).get('token')
      : null) ??
    bearer ??
    (ownSite ? (tokenFromCookie(msg.headers.cookie) ?? session.cookieToken) : undefined)
  );
}

class BrokerCore implements BrokerState, ConnectionHost, Broker {
  readonly options: ResolvedBrokerOptions;
  readonly log: Logger;
  readonly metrics = new Metrics();
  readonly rpc = new RpcCalls();
  relay: RpcRelay | undefined;
  readonly sessions = new Map<string, Session>();
  readonly tracker: TrackerState;
  #reporter: TrackerReporter | undefined;
  readonly auth: Auth | undefined;
  readonly dispatcher: Dispatcher;
  readonly #origins: OriginPolicy;
  readonly #protectedMode: boolean;
  /** In protected mode: sessions not on the loopback interface (refused at their first request). */
  readonly #outsiders = new WeakSet<Session>();
  announced = '';
  #store: Store | undefined;
  #listener: Listener | undefined;
  #upgrader: ReturnType<typeof createWebSocketUpgrader> | undefined;
  #closing = false;
  #ready = false;
  #inflight = 0;
  #lastRequestAt = 0;
  readonly #pushes = new Burst(() => {
    if (!this.#closing) publishTrackerInfo(this);
  }, CHANGE_COALESCE_MS);

  constructor(options: BrokerOptions) {
    this.options = resolveOptions(options);
    this.log =
      this.options.logger ??
      pino({ level: this.options.logLevel, base: { name: 'zbus' } }, pino.destination(2));
    this.auth = this.options.auth ? new Auth(this.options.auth) : undefined;
    this.#protectedMode = isProtectedMode(this.options);
    this.#origins = new OriginPolicy(this.options.allowOrigins, this.#protectedMode);
    this.dispatcher = new Dispatcher(this.metrics, {
      consumersChanged: (topic) => {
        if (this.relay) this.relay.consumersChanged(topic, this.#isRpcTopic(topic));
        this.changed();
      },
      failed: (err, topic, group) => this.log.error({ err, topic, group }, 'delivery failed'),
    });
    this.tracker = new TrackerState(
      this.log,
      this.options.trackerDeadlineMs,
      this.options.trackerMaxServers,
      () => this.#publishSoon(),
      () => this.announced,
    );
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
    this.#store = await this.#openStore();
    this.#upgrader = createWebSocketUpgrader(this);
    this.#listener = createListener(this, () => !this.#closing);
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
    this.#ready = true;
    return addr;
  }

  async #openStore(): Promise<Store> {
    const o = this.options;
    const common = {
      groupDefaults: { ackWindow: o.ackWindow, ackTimeoutMs: o.ackTimeoutMs, maxDeliver: o.maxDeliver },
      log: this.log,
      deadLetter,
    };
    if (o.store === 'local') {
      return openStore({
        ...common,
        dataDir: o.dataDir,
        fsync: o.fsync,
        segmentBytes: o.segmentBytes,
        migrateCreator: migratedCreator(this.auth),
        maxOpenFiles: o.maxOpenFiles,
      });
    }
    const module = await loadSharedStoreModule(o.store, o.storeModule);
    const store = await module.openSharedStore({
      ...common,
      url: o.store,
      replicas: o.storeReplicas,
      prefix: o.storePrefix,
      nats: o.nats,
    });
    this.relay = new RpcRelay(store.link, this);
    // What other brokers declare or remove shows here too: trackers hear of it, and consumes waiting on a
    // group removed elsewhere get their 404 as they would on this broker.
    store.onChange((c) => {
      if (c.removed) {
        const group = c.kind === 'group' ? c.group : undefined;
        const what = group === undefined ? `Topic(${c.topic})` : `ConsumeGroup(${group})`;
        this.dispatcher.groupRemoved(c.topic, group, (t) =>
          t.send(errorReply(new ZbusError('ZBUS_ERR_NOT_FOUND', `${what} Not Found`), c.topic)),
        );
      }
      this.changed();
    });
    return store;
  }

  #isRpcTopic(name: string): boolean {
    const t = this.#store?.topic(name);
    return t !== undefined && isRpcTopic(t);
  }

  address(): { host: string; port: number } | null {
    const a = this.#listener?.server.address() as AddressInfo | null | undefined;
    return a ? { host: a.address, port: a.port } : null;
  }

  // --- ConnectionHost -------------------------------------------------------------------------------------

  attach(session: Session): void {
    if (this.#protectedMode && !isLoopback(session.remoteAddress)) this.#outsiders.add(session);
    this.sessions.set(session.id, session);
    session.onWritable(() => this.dispatcher.sessionWritable(session));
    session.onPeerEnded((s) => this.dispatcher.sessionEnded(s));
    session.onClose((s) => {
      this.sessions.delete(s.id);
      this.dispatcher.sessionClosed(s);
      this.rpc.dropSession(s);
    });
  }

  upgrade(socket: Socket, req: Message, head: Uint8Array, previous: Session): void {
    previous.closedByTransport(); // the WebSocket gets a session of its own
    this.sessions.delete(previous.id);
    if (this.#closing || !this.#upgrader) {
      socket.destroy();
      return;
    }
    const site = this.#origins.siteOf(req.headers);
    const refusal = this.#outsiders.has(previous)
      ? protectedModeError()
      : this.#siteRefusal(site, req.headers, 'open a WebSocket');
    if (refusal) {
      this.metrics.error(refusal.code);
      const reply = errorReply(refusal);
      reply.set('connection', 'close');
      socket.end(encodeMessage(reply));
      return;
    }
    // The monitor's cookie is bound to the broker's own pages: a WebSocket from an allowed origin brings its own
    // token. Browsers always mark a handshake (Origin), so an unmarked one is no page's.
    this.#upgrader.upgrade(
      socket,
      req,
      head,
      site === 'own' || site === 'unmarked' ? tokenFromCookie(req.headers.cookie) : undefined,
    );
  }

  /** Why a request from `site` is refused whatever it asks (`what`), if it is. */
  #siteRefusal(site: RequestSite, headers: Message['headers'], what: string): ZbusError | undefined {
    if (site === 'unlisted-host') return unlistedHostError(headers.host ?? '');
    if (site === 'foreign') return crossSiteError(headers.origin, what);
    return undefined;
  }

  errorReply(err: ZbusError): Message {
    return errorReply(err);
  }

  handle(session: Session, msg: Message): void {
    this.metrics.requestsTotal++;
    if (this.#closing) this.#lastRequestAt = Date.now();
    if (msg.status !== undefined) return; // a response is never a command
    const clientId = msg.headers.id;
    if (clientId !== undefined) session.acceptsPushes = true;
    const id = clientId === undefined || clientId === '' ? randomUUID() : clientId;
    const ticket = session.ticket(id, clientId === undefined, !keepAlive(msg));
    if (msg.method === 'HEAD') ticket.headOnly = true;
    if (this.#closing) {
      // A heartbeat is never answered, not even now (zbus clients send it in the header).
      if (msg.headers.cmd === Cmd.Heartbeat) ticket.none('heartbeat');
      else this.#fail(ticket, new ZbusError('ZBUS_ERR_CLOSED', 'the broker is shutting down'), msg.topic);
      return;
    }
    const outsider = this.#protectedMode && this.#outsiders.has(session);
    // Read before `host` is overwritten below. WebSocket frames are not browser requests: their handshake was.
    const site: RequestSite = session.kind === 'tcp' ? this.#origins.siteOf(msg.headers) : 'own';
    if (msg.headers.cmd === undefined) {
      const path = pathOf(msg.url);
      if (RESERVED_PATHS.has(path) && !(outsider && path === '/metrics')) {
        // /healthz and /readyz stay open for probes; /metrics names every topic and group, so with auth on
        // it needs a token allowed `metrics` (or `*`/`admin`): header, ?token=, cookie or a Bearer header.
        // A foreign page never reads it: a DNS-rebound page is same-origin to the browser, which shows it
        // every answer.
        const refusal =
          path === '/metrics' ? this.#siteRefusal(site, msg.headers, 'read /metrics') : undefined;
        if (refusal) {
          this.#fail(ticket, refusal);
          return;
        }
        if (
          path === '/metrics' &&
          this.auth &&
          !this.auth.allows('metrics', metricsToken(msg, session, site === 'own' || site === 'unmarked'))
        ) {
          this.#fail(ticket, new ZbusError('ZBUS_ERR_FORBIDDEN', 'Command(metrics) Forbbiden'));
          return;
        }
        ticket.send(serveEndpoint(this, path, this.#ready && !this.#closing));
        return;
      }
    }
    if (outsider) {
      this.#fail(ticket, protectedModeError());
      session.close();
      return;
    }
    if (site === 'unlisted-host') {
      this.#fail(ticket, unlistedHostError(msg.headers.host ?? ''));
      return;
    }
    msg.set('sender', session.id);
    msg.set('host', this.announced);
    msg.set('remote-addr', session.remoteAddress);
    msg.set('id', id);
    let resolved: ReturnType<typeof resolveCommand>;
    try {
      resolved = resolveCommand(msg);
      // The decoder bounds framed bodies; a `body` header or `?body=` stands in for one only now.
      if (msg.body.length > this.options.maxBodyBytes) {
        throw new LimitError(
          'ZBUS_ERR_BODY_TOO_LARGE',
          `body exceeds ${this.options.maxBodyBytes} bytes (maxBodyBytes)`,
        );
      }
    } catch (err) {
      this.#fail(ticket, err, undefined);
      return;
    }
    const cmd = resolved.cmd;
    // The monitor's cookie counts only on requests from the broker's own pages (bound to its origin), after a
    // token in the header or the URL.
    if (msg.headers.token === undefined && cookieCounts(site, cmd, msg.method)) {
      const cookie = tokenFromCookie(msg.headers.cookie) ?? session.cookieToken;
      if (cookie !== undefined) msg.set('token', cookie);
    }
    const monitor = MONITOR_COMMANDS.has(cmd);
    const handler = monitor ? undefined : COMMAND_HANDLERS.get(cmd);
    if (!monitor && !handler) {
      // 0.11: when a topic bears the unknown command's name, nothing is replied (unless that would tell a
      // token about a topic it may not see).
      if (this.store.topic(cmd) && (!this.auth || this.auth.canSee(msg.token, cmd))) ticket.none();
      else
        this.#fail(
          ticket,
          new ZbusError('ZBUS_ERR_UNKNOWN_COMMAND', `Bad format: command(${cmd}) not support`),
        );
      return;
    }
    if (site === 'foreign' && !crossSiteSafe(cmd, msg.method)) {
      this.#fail(ticket, crossSiteError(msg.headers.origin, `run ${cmd}`), msg.topic);
      return;
    }
    // Deny by default (decisions.md §6): every command, monitor pages included, unless it is public.
    if (this.auth) {
      try {
        this.auth.check(cmd, msg.token, msg.topic, msg.consumeGroup);
      } catch (err) {
        const login = monitor ? monitorLoginRedirect(cmd) : undefined;
        if (login) ticket.send(login);
        else this.#fail(ticket, err, msg.topic);
        return;
      }
    }
    if (monitor) {
      this.#track(
        session,
        ticket,
        msg,
        serveMonitor(this, cmd, msg, resolved.path).then((m) => ticket.send(m)),
      );
      return;
    }
    try {
      if (cmd === 'produce' || cmd === 'rpc') this.#rpcByUrl(msg, cmd, resolved.form);
    } catch (err) {
      this.#fail(ticket, err, msg.topic);
      return;
    }
    const ctx: CommandContext = { state: this, session, msg, ticket, resolved };
    let result: void | Promise<void>;
    try {
      result = handler!(ctx);
    } catch (err) {
      this.#fail(ticket, err, msg.topic);
      return;
    }
    if (result) this.#track(session, ticket, msg, result);
  }

  /**
   * RPC by URL (zbus-protocol.md §4.2): a bodiless request to an RPC topic, `/<topic>/<module>/<method>/...`
   * or the 0.8 `/rpc/<topic>/<method>/...?module=`, becomes the JSON request `{module, method, params}`.
   */
  #rpcByUrl(msg: Message, cmd: string, form: string): void {
    if (form === 'header' || msg.body.length > 0) return;
    const topic = msg.topic === undefined ? undefined : this.store.topic(msg.topic);
    if (cmd !== 'rpc' && (!topic || !hasRpcMask(topic))) return;
    const req = rpcRequestFromUrl(msg);
    if (!req) return;
    msg.setBody(req);
    msg.set('content-type', 'application/json');
  }

  /** Counts an async handler in flight (backpressure and graceful shutdown) and replies to its failure. */
  #track(session: Session, ticket: ReplyTicket, msg: Message, p: Promise<unknown>): void {
    session.inflight++;
    this.#inflight++;
    const topic = msg.topic;
    p.catch((err: unknown) => this.#fail(ticket, err, topic)).finally(() => {
      session.inflight--;
      this.#inflight--;
      session.wire.requestDone();
    });
  }

  #fail(ticket: ReplyTicket, err: unknown, topic?: string): void {
    const { code, status } = errorParts(err);
    this.metrics.error(code);
    if (status >= 500 && status !== 503 && status !== 504) this.log.error({ err }, 'command failed');
    if (ticket.done) return;
    ticket.send(errorReply(err, topic));
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
    if (this.#closing) return;
    this.#closing = true;
    this.#ready = false;
    this.#lastRequestAt = Date.now();
    const listener = this.#listener;
    const closed = listener
      ? new Promise<void>((resolve) => listener.server.close(() => resolve()))
      : Promise.resolve();
    // Requests already on the wire still get an answer (503 for new work): wait until nothing is in flight
    // and the connections have been quiet for a moment, bounded by shutdownTimeoutMs.
    const deadline = Date.now() + this.options.shutdownTimeoutMs;
    while (
      Date.now() < deadline &&
      (this.#inflight > 0 || Date.now() - this.#lastRequestAt < SHUTDOWN_QUIET_MS)
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.#pushes.close();
    this.#reporter?.close();
    this.tracker.close();
    this.dispatcher.close((t) =>
      t.send(errorReply(new ZbusError('ZBUS_ERR_CLOSED', 'the broker is shutting down'))),
    );
    this.relay?.close();
    this.rpc.close((session, id) => {
      if (!(session instanceof Session)) return;
      // RPC callers still waiting get 503 rather than a connection closed without an answer.
      const reply = errorReply(new ZbusError('ZBUS_ERR_CLOSED', 'the broker is shutting down'));
      reply.set('id', id);
      const ticket = session.awaitingRoute.get(id);
      session.awaitingRoute.delete(id);
      if (ticket) ticket.send(reply);
      else session.push(reply);
    });
    for (const c of listener?.connections ?? []) c.close();
    this.#upgrader?.close();
    if (this.#store) {
      await this.#store.flush().catch((err: unknown) => this.log.error({ err }, 'flush at shutdown failed'));
      await this.#store.close();
    }
    listener?.destroyAll();
    await closed;
    this.log.flush?.();
  }
}

export function createBroker(options: BrokerOptions = {}): Broker {
  return new BrokerCore(options);
}
