// The broker's side of every connection (ConnectionHost): sessions attach, WebSocket handshakes, and `handle()`,
// the 0.11 request pipeline (zbus-protocol.md §5, "Processing order"): stamp sender/host/remote-addr, assign an
// id, token from the cookie, URL rules, monitor pages, auth, then the command. It counts what is in flight, so
// that a graceful close can wait for it.
import type { Socket } from 'node:net';
import {
  Cmd,
  encodeMessage,
  keepAlive,
  LimitError,
  type Message,
  type ResolvedCommand,
  resolveCommand,
  ZbusError,
} from '@zbus/protocol';
import type { Logger } from 'pino';
import type { BrokerState, CommandContext } from '../commands/context.js';
import { COMMAND_HANDLERS } from '../commands/registry.js';
import { replyFailure } from '../commands/reply.js';
import { errorReply } from '../errors.js';
import { isReservedPath, pathOf, serveEndpoint } from '../http/endpoints.js';
import { MONITOR_COMMANDS, monitorLoginRedirect, serveMonitor } from '../http/monitor.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ResolvedBrokerOptions } from '../options.js';
import type { ReplyTicket, Session, TicketHolder } from '../session.js';
import type { Topic } from '../store/types.js';
import type { ConnectionHost } from '../transport/host.js';
import { IdleWatch } from '../transport/idle.js';
import { createListener, type Listener } from '../transport/listener.js';
import { createWebSocketUpgrader } from '../transport/websocket.js';
import { Access } from './access.js';
import { newRequestId } from './request-id.js';
import { applyRpcByUrl } from './rpc-by-url.js';

export class Requests implements ConnectionHost, TicketHolder {
  readonly options: ResolvedBrokerOptions;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly idle: IdleWatch | undefined;
  readonly #state: BrokerState;
  readonly #access: Access;
  #upgrader: ReturnType<typeof createWebSocketUpgrader> | undefined;
  #closing = false;
  #ready = false;
  #inflight = 0;
  #lastRequestAt = 0;

  constructor(state: BrokerState) {
    this.#state = state;
    this.options = state.options;
    this.log = state.log;
    this.metrics = state.metrics;
    this.idle =
      this.options.idleTimeoutMs > 0 ? new IdleWatch(state.clock, this.options.idleTimeoutMs) : undefined;
    this.#access = new Access(state.options, state.auth);
  }

  /** Set by a graceful close: new work gets 503, and the broker stops publishing. */
  get closing(): boolean {
    return this.#closing;
  }

  /** The listener (and the WebSocket layer behind it) that hands this object its connections. */
  listen(): Listener {
    this.#upgrader = createWebSocketUpgrader(this);
    return createListener(this, () => !this.#closing);
  }

  /** The store is open and the listener bound: /readyz says so. */
  ready(): void {
    this.#ready = true;
  }

  /** Starts a graceful close: from now on only answers to requests already on the wire. */
  beginClose(): void {
    this.#closing = true;
    this.#ready = false;
    this.#lastRequestAt = Date.now();
  }

  /** Nothing in flight, and no request for `quietMs`: the connections may be closed. */
  settled(quietMs: number): boolean {
    return this.#inflight === 0 && Date.now() - this.#lastRequestAt >= quietMs;
  }

  closeWebSockets(): void {
    this.#upgrader?.close();
  }

  attach(session: Session): void {
    const { dispatcher, rpc, sessions } = this.#state;
    this.#access.admit(session);
    sessions.set(session.id, session);
    session.onWritable(() => dispatcher.sessionWritable(session));
    session.onPeerEnded((s) => dispatcher.sessionEnded(s));
    session.onClose((s) => {
      sessions.delete(s.id);
      dispatcher.sessionClosed(s);
      rpc.dropSession(s);
    });
  }

  upgrade(socket: Socket, req: Message, head: Uint8Array, previous: Session): void {
    previous.closedByTransport(); // the WebSocket gets a session of its own
    this.#state.sessions.delete(previous.id);
    if (this.#closing || !this.#upgrader) {
      socket.destroy();
      return;
    }
    const admitted = this.#access.handshake(req, previous);
    if ('refusal' in admitted) {
      this.metrics.error(admitted.refusal.code);
      const reply = errorReply(admitted.refusal);
      reply.set('connection', 'close');
      socket.end(encodeMessage(reply));
      return;
    }
    this.#upgrader.upgrade(socket, req, head, admitted.cookieToken);
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
    const id = clientId === undefined || clientId === '' ? newRequestId() : clientId;
    const ticket = session.ticket(id, clientId === undefined, !keepAlive(msg));
    if (msg.method === 'HEAD') ticket.headOnly = true;
    if (this.#closing) {
      // A heartbeat is never answered, not even now (zbus clients send it in the header).
      if (msg.headers.cmd === Cmd.Heartbeat) ticket.none('heartbeat');
      else this.#fail(ticket, new ZbusError('ZBUS_ERR_CLOSED', 'the broker is shutting down'), msg.topic);
      return;
    }
    const outsider = this.#access.isOutsider(session);
    const site = this.#access.siteOf(session, msg);
    if (msg.headers.cmd === undefined) {
      const path = pathOf(msg.url);
      // /healthz and /readyz stay open for probes; /metrics is guarded (access.ts).
      if (isReservedPath(path) && !(outsider && path === '/metrics')) {
        const refusal = path === '/metrics' ? this.#access.metricsRefusal(msg, session, site) : undefined;
        if (refusal) this.#fail(ticket, refusal);
        else ticket.send(serveEndpoint(this.#state, path, this.#ready && !this.#closing));
        return;
      }
    }
    const refusal = this.#access.requestRefusal(session, msg, site);
    if (refusal) {
      this.#fail(ticket, refusal);
      if (outsider) session.close();
      return;
    }
    const h = msg.headers;
    h.sender = session.id;
    h.host = this.#state.announced;
    h['remote-addr'] = session.remoteAddress;
    // Stored only when it changed: a store to a header bag is megamorphic (the bags' shapes vary).
    if (id !== clientId) h.id = id;
    let resolved: ResolvedCommand;
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
    this.#access.takeCookie(msg, session, site, cmd);
    // One lookup for the commands that carry messages (no monitor page shares a command's name).
    const handler = COMMAND_HANDLERS.get(cmd);
    const monitor = handler === undefined && MONITOR_COMMANDS.has(cmd);
    if (!monitor && !handler) {
      // 0.11: when a topic bears the unknown command's name, nothing is replied (unless that would tell a
      // token about a topic it may not see).
      const { store, auth } = this.#state;
      if (store.topic(cmd) && (!auth || auth.canSee(msg.token, cmd))) ticket.none();
      else
        this.#fail(
          ticket,
          new ZbusError('ZBUS_ERR_UNKNOWN_COMMAND', `Bad format: command(${cmd}) not support`),
        );
      return;
    }
    try {
      this.#access.check(cmd, msg, site);
    } catch (err) {
      const login = monitor ? monitorLoginRedirect(cmd) : undefined;
      if (login) ticket.send(login);
      else this.#fail(ticket, err, msg.topic);
      return;
    }
    if (monitor) {
      this.#track(
        session,
        ticket,
        msg,
        serveMonitor(this.#state, cmd, msg, resolved.path).then((m) => ticket.send(m)),
      );
      return;
    }
    let topic: Topic | undefined;
    try {
      if (cmd === 'produce' || cmd === 'rpc') {
        topic = msg.topic === undefined ? undefined : this.#state.store.topic(msg.topic);
        applyRpcByUrl(msg, resolved, topic);
      }
    } catch (err) {
      this.#fail(ticket, err, msg.topic);
      return;
    }
    const ctx: CommandContext = { state: this.#state, session, msg, ticket, resolved, topic };
    let result: void | Promise<void>;
    try {
      result = handler!(ctx);
    } catch (err) {
      this.#fail(ticket, err, msg.topic);
      return;
    }
    if (result) this.#track(session, ticket, msg, result);
    else if (ticket.answersLater && !ticket.done) {
      // Counted as a promise would be (#track), released when the ticket is answered.
      session.inflight++;
      this.#inflight++;
      ticket.holder = this;
    }
  }

  released(session: Session): void {
    this.#done(session);
  }

  /** Counts an async handler in flight (backpressure and graceful shutdown) and replies to its failure. */
  #track(session: Session, ticket: ReplyTicket, msg: Message, p: Promise<unknown>): void {
    session.inflight++;
    this.#inflight++;
    const topic = msg.topic;
    // One reaction, not catch() + finally(): two promises less per request.
    p.then(
      () => this.#done(session),
      (err: unknown) => {
        try {
          this.#fail(ticket, err, topic);
        } finally {
          this.#done(session);
        }
      },
    );
  }

  #done(session: Session): void {
    session.inflight--;
    this.#inflight--;
    session.wire.requestDone();
  }

  #fail(ticket: ReplyTicket, err: unknown, topic?: string): void {
    replyFailure(this.#state, ticket, err, topic);
  }
}
