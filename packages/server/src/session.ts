// A session is one client connection (TCP or WebSocket) as command handlers see it: an id, an address and a
// way to write messages. Handlers never see the socket; transports implement `SessionWire`.
import { randomUUID } from 'node:crypto';
import { Message, ZbusError } from '@zbus/protocol';

/** Roughly the bytes a message takes on the wire: its body, its headers (and stored ones), a status line. */
function wireSize(msg: Message): number {
  let n = msg.body.length + (msg.headTail?.length ?? 0) + 64;
  const h = msg.headers;
  for (const k in h) n += k.length + (h[k] as string).length + 4;
  return n;
}

/** What a transport gives a session: the only place bytes leave the broker. */
export interface SessionWire {
  /** Write one message (a reply or a push). */
  write(msg: Message, closeAfter?: boolean): void;
  /** False while the connection's queued writes are above the high-water mark. */
  readonly writable: boolean;
  /** Bytes queued toward the peer and not yet taken by it (the /metrics gauge sums them). */
  readonly queuedBytes: number;
  /** Close the connection (after flushing what was written). */
  close(): void;
  /** A request of this connection finished or its reply left (reading may resume, a half-closed peer may be done). */
  requestDone(): void;
}

/** Counts requests in flight whose handlers answer later (ReplyTicket.answersLater). */
export interface TicketHolder {
  released(session: Session): void;
}

/**
 * The reply handle of one request. Requests that carry their own `id` (zbus clients) are answered as soon as
 * the reply is ready, in any order (zbus-protocol.md §1.2). Requests without one (curl, browsers, `ab`) are
 * plain HTTP: their replies must go out in request order, so they wait in the session's ordered queue.
 */
export class ReplyTicket {
  /** The reply, once the handler produced it (ordered tickets only). */
  reply: Message | undefined;
  /** What the held reply counts toward the session's heldBytes. */
  replyBytes = 0;
  done = false;
  /** A HEAD request: its reply carries the head only (a body would corrupt the next reply on the connection). */
  headOnly = false;
  /**
   * No `id` on this request nor ever before on its connection, and not WebSocket: curl, a browser's fetch,
   * `ab`. No zbus client reads such a connection. Decided when the request arrives, so a later request
   * cannot change how this one is answered.
   */
  readonly plainHttp: boolean;
  /**
   * Set by a handler that answers later from a callback rather than a promise (a produce to a disk topic): the
   * request counts as in flight until the ticket is answered, as a pending promise would.
   */
  answersLater = false;
  /** Who counts this request in flight (set by the request pipeline when `answersLater`); told once it is answered. */
  holder: TicketHolder | undefined;

  constructor(
    readonly session: Session,
    readonly id: string,
    readonly ordered: boolean,
    readonly closeAfter: boolean,
  ) {
    this.plainHttp = ordered && !session.acceptsPushes;
  }

  /** Send the reply; later calls are ignored (a request gets at most one reply). */
  send(msg: Message): void {
    if (this.done) return;
    msg.headers.id = this.id;
    if (this.headOnly && msg.body.length > 0) msg.body = new Uint8Array(0);
    if (this.closeAfter) msg.set('connection', 'close'); // not the default Keep-Alive: the broker closes after it
    this.done = true;
    this.session.finish(this, msg);
    if (this.holder !== undefined) this.#release();
  }

  #release(): void {
    const holder = this.holder!;
    this.holder = undefined;
    holder.released(this.session);
  }

  /**
   * The request gets no reply, as in 0.11. This is the one place that decides what "no reply" means
   * (docs/protocol.md, "Requests 0.11 leaves unanswered"):
   * - a `heartbeat` is never answered, on any transport: zbus.js sends it without an `id` and hands any
   *   message it did not ask for to its tracker handler, which throws on it;
   * - anything else 0.11 leaves unanswered (`ack: false`, `route`, `unconsume`, ...) is answered only on a
   *   plain-HTTP request (`plainHttp`): an HTTP client waits for a response to each request, and its later
   *   requests with it, so it gets an empty 200. Where a zbus client may be listening (WebSocket, or a
   *   connection that sends `id`s) the request stays unanswered.
   */
  none(command: 'heartbeat' | 'other' = 'other'): void {
    if (this.done) return;
    if (this.plainHttp && command !== 'heartbeat') {
      this.send(new Message({ status: 200 }));
      return;
    }
    this.done = true;
    this.session.finish(this, undefined);
    if (this.holder !== undefined) this.#release();
  }
}

export class Session {
  readonly id = randomUUID();
  closed = false;
  /** Token from the first authenticated request; used to filter tracker pushes. */
  token: string | undefined;
  /** Groups this session consumes from, as `topic\0group` keys (cleanup on close). */
  readonly groups = new Set<string>();
  /** Token from the cookie of a WebSocket handshake: frames carry no cookies of their own. */
  cookieToken: string | undefined;
  /** Set by `track_sub`. */
  trackerSubscriber = false;
  /** Requests being processed; the transport stops reading past the configured cap. */
  inflight = 0;
  /**
   * True for WebSocket sessions and for connections that sent their own request ids (zbus clients): they
   * match messages by id and take unsolicited pushes. A plain-HTTP connection never gets one.
   */
  acceptsPushes: boolean;

  readonly #ordered: ReplyTicket[] = [];
  #heldBytes = 0;
  /** A read by offset is building its reply (they go one at a time). */
  #reading = false;
  readonly #readTurns: Array<{ resolve(): void; reject(err: unknown): void }> = [];
  /** Tickets handed out and not yet answered. */
  #unanswered = 0;
  readonly #closeListeners: Array<(s: Session) => void> = [];
  readonly #endListeners: Array<(s: Session) => void> = [];
  readonly #writableListeners: Array<() => void> = [];

  constructor(
    readonly wire: SessionWire,
    readonly remoteAddress: string,
    readonly kind: 'tcp' | 'ws',
  ) {
    this.acceptsPushes = kind === 'ws';
  }

  get writable(): boolean {
    return !this.closed && this.wire.writable;
  }

  /** Requests of this session still waiting for their reply (or for the decision to send none). */
  get unanswered(): number {
    return this.#unanswered;
  }

  /** Bytes of plain-HTTP replies that are ready but wait for an earlier one (they count as queued). */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /**
   * The turn to build a reply from stored data (a read by offset): one at a time per session, and only while the
   * connection is below its high-water mark, so pipelined reads queue at most one message past it however many
   * were sent (issue 14 item 9). Undefined when the turn is taken at once (no promise on the common path), else a
   * promise of it. Call readDone() once the reply was handed over.
   */
  readTurn(): Promise<void> | undefined {
    if (this.closed) return Promise.reject(new ZbusError('ZBUS_ERR_CLOSED', 'the connection is closed'));
    if (!this.#reading && this.#readTurns.length === 0 && this.writable) {
      this.#reading = true;
      return undefined;
    }
    return new Promise((resolve, reject) => this.#readTurns.push({ resolve, reject }));
  }

  readDone(): void {
    this.#reading = false;
    this.#nextRead();
  }

  #nextRead(): void {
    if (this.#reading || this.#readTurns.length === 0 || !this.writable) return;
    this.#reading = true;
    this.#readTurns.shift()!.resolve();
  }

  /** Plain-HTTP requests whose replies have not left yet. */
  get pendingOrdered(): number {
    return this.#ordered.length;
  }

  ticket(id: string, ordered: boolean, closeAfter: boolean): ReplyTicket {
    const t = new ReplyTicket(this, id, ordered, closeAfter);
    this.#unanswered++;
    if (ordered) this.#ordered.push(t);
    return t;
  }

  /** Called by a ticket. Ordered replies leave only when every earlier ordered reply has left. */
  finish(ticket: ReplyTicket, msg: Message | undefined): void {
    if (this.closed) return;
    this.#unanswered--;
    if (!ticket.ordered) {
      if (msg) this.wire.write(msg, ticket.closeAfter);
      else if (ticket.closeAfter) this.wire.close();
      this.wire.requestDone();
      return;
    }
    ticket.reply = msg;
    const q = this.#ordered;
    // A reply that waits behind an earlier one counts toward the bytes queued toward the connection.
    if (msg && q[0] !== ticket) {
      ticket.replyBytes = wireSize(msg);
      this.#heldBytes += ticket.replyBytes;
    }
    const before = q.length;
    while (q.length > 0 && q[0]!.done) {
      const t = q.shift()!;
      this.#heldBytes -= t.replyBytes;
      if (t.reply) this.wire.write(t.reply, t.closeAfter);
      else if (t.closeAfter) this.wire.close();
      t.reply = undefined;
      if (t.closeAfter) return;
    }
    // Held replies count against the connection's in-flight cap and its queued bytes: reading may resume.
    if (q.length < before) {
      this.wire.requestDone();
      this.#nextRead();
    }
  }

  /** A push: a delivered message or a routed reply. */
  push(msg: Message): void {
    if (!this.closed) this.wire.write(msg);
  }

  /** A routed reply (`route` with `recver` = this session) to a call it made with its own id: a push. */
  deliverRouted(msg: Message): boolean {
    if (this.closed) return false;
    this.wire.write(msg);
    return true;
  }

  onClose(fn: (s: Session) => void): void {
    this.#closeListeners.push(fn);
  }

  /** The peer half-closed its side: no more requests will come, replies still go out. */
  onPeerEnded(fn: (s: Session) => void): void {
    this.#endListeners.push(fn);
  }

  onWritable(fn: () => void): void {
    this.#writableListeners.push(fn);
  }

  /** Transport: the connection drained below its high-water mark. */
  drained(): void {
    this.#nextRead();
    for (const fn of this.#writableListeners) fn();
  }

  /** Transport: the peer sent FIN (see onPeerEnded). */
  peerEnded(): void {
    if (this.closed) return;
    for (const fn of this.#endListeners) fn(this);
    this.#endListeners.length = 0;
  }

  /** Transport: the connection is gone. Runs the close listeners once. */
  closedByTransport(): void {
    if (this.closed) return;
    this.closed = true;
    this.#ordered.length = 0;
    this.#heldBytes = 0;
    const gone = new ZbusError('ZBUS_ERR_CLOSED', 'the connection is closed');
    for (const turn of this.#readTurns.splice(0)) turn.reject(gone);
    for (const fn of this.#closeListeners) fn(this);
    this.#closeListeners.length = 0;
    this.#endListeners.length = 0;
    this.#writableListeners.length = 0;
  }

  close(): void {
    this.wire.close();
  }
}
