// One TCP (or TLS) connection speaking HTTP/1.1 messages: raw zbus clients, curl, browsers and `ab` alike.
// An `Upgrade: websocket` request hands the socket to `ws` (see websocket.ts).
import type { Socket } from 'node:net';
import {
  encodeHead,
  encodeMessage,
  knowHeaderNames,
  LimitError,
  type Message,
  MessageDecoder,
  ProtocolError,
  writeHead,
  ZbusError,
} from '@zbus/protocol';
import { type AckHead, CheckedReply, checkedText, writeAck } from '../checked-reply.js';
import { Session, type SessionWire } from '../session.js';
import { ConnectionFlow } from './flow.js';
import type { ConnectionHost } from './host.js';

/** Header names are lower case; both must be present for a WebSocket handshake (RFC 6455 §4.2.1). */
function isWebSocketUpgrade(msg: Message): boolean {
  const upgrade = msg.headers.upgrade;
  return upgrade !== undefined && upgrade.toLowerCase() === 'websocket' && msg.status === undefined;
}

// Names curl, browsers and `ab` send with every request, decoded as interned constants like zbus's own.
knowHeaderNames(['user-agent', 'accept', 'accept-encoding', 'accept-language', 'origin', 'referer']);

/**
 * Checked replies are joined, as bytes in the head slab (or as one string), into runs of up to this many before
 * the socket gets them, so that the replies of one turn count as queued bytes (backpressure) a few at a time, not
 * only once the turn ends.
 */
const MAX_TEXT = 16 * 1024;

/** Room a produce's ack is given in the head slab (it takes about 150 bytes). */
const ACK_ROOM = 512;

/** Bodies up to this size are copied behind the head into one buffer; larger ones are written as they are. */
const COPY_BODY_MAX = 4096;

/**
 * The slab the heads of deliveries and small replies are written into: each is a view of it, handed to the socket
 * as it is (one chunk, written as bytes), where a head string given to the socket is encoded again in C++ and, with
 * a body or a delivery's stored lines behind it, turns the write into a writev. A full slab is replaced, never
 * reused: the socket may still hold views of it.
 */
const HEAD_SLAB_BYTES = 64 * 1024;
let headSlab = Buffer.allocUnsafe(HEAD_SLAB_BYTES);
let headAt = 0;

/** What a large message puts behind its head in the slab: nothing (its stored lines and body go as they are). */
const NO_BODY = new Uint8Array(0);

/**
 * The head of `msg` with `body` behind it, as one view of the head slab; undefined when they might not fit in one.
 * The head is encodeHead's string written by one Buffer#write: fewer instructions than writeHead's loop over its
 * characters (a ping reply 6,058 against 7,674, callgrind). Deliveries, many more per second, take
 * slabDeliveryHead: garbage, not instructions, is what their head costs.
 */
function slabBytes(msg: Message, body: Uint8Array): Buffer | undefined {
  const head = encodeHead(msg);
  const most = 3 * head.length + body.length; // UTF-8 takes at most 3 bytes per UTF-16 unit
  if (most > HEAD_SLAB_BYTES) return undefined;
  if (headAt + most > HEAD_SLAB_BYTES) {
    headSlab = Buffer.allocUnsafe(HEAD_SLAB_BYTES);
    headAt = 0;
  }
  const start = headAt;
  let end = start + headSlab.write(head, start, 'utf8');
  if (body.length > 0) {
    headSlab.set(body, end);
    end += body.length;
  }
  headAt = end;
  return headSlab.subarray(start, end);
}

/** Room kept for a delivery's head in the slab: its ids, group name and numbers are far shorter. */
const DELIVERY_HEAD_ROOM = 1024;

/**
 * The head of a delivery as a view of the head slab, written by writeHead: no head string is built and flattened
 * (about 800 bytes of garbage per delivery in the broker's sampling heap profile at 10k msg/s). Undefined when it is
 * not ASCII.
 */
function slabDeliveryHead(msg: Message): Buffer | undefined {
  if (headAt + DELIVERY_HEAD_ROOM > HEAD_SLAB_BYTES) {
    headSlab = Buffer.allocUnsafe(HEAD_SLAB_BYTES);
    headAt = 0;
  }
  const start = headAt;
  const end = writeHead(msg, headSlab, start);
  if (end < 0) return undefined;
  headAt = end;
  return headSlab.subarray(start, end);
}

export class TcpConnection implements SessionWire {
  readonly session: Session;
  readonly #socket: Socket;
  readonly #host: ConnectionHost;
  #decoder: MessageDecoder;
  /** Bytes read past the message after which reading stopped (backpressure); decoded when reading resumes. */
  #held: Uint8Array | undefined;
  #stopped = false;
  /** Wrote in this turn: endTurn hands over what is held and uncorks. */
  #inTurn = false;
  /** The socket is corked: a write other than an ack (or a run of acks past MAX_TEXT) came in this turn. */
  #corked = false;
  /** A delivery was written since the cork: endTurn sends this connection first. */
  #delivering = false;
  readonly #flow: ConnectionFlow;
  #upgraded = false;
  /** Checked replies written in this turn and not yet handed to the socket, joined (see write). */
  #text = '';
  /** Or produce acks written as bytes: [#runStart, #runEnd) of #runSlab, the head slab they were written into. */
  #runSlab: Buffer | undefined;
  #runStart = 0;
  #runEnd = 0;
  /** The bytes of this connection's last ack up to its offset (writeAck). */
  readonly #ackHead: { head: AckHead | undefined } = { head: undefined };
  #closing = false;
  /** The peer sent FIN: it sends no more requests, but still gets every reply before we close. */
  #peerEnded = false;
  /** An `Upgrade: websocket` request decoded from the chunk being pushed; handed over once push() returns. */
  #upgradeReq: Message | undefined;
  /** Armed while a message is partly received: it must be complete within idleTimeoutMs (slowloris). */
  #partialTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, host: ConnectionHost, firstChunk?: Uint8Array) {
    this.#socket = socket;
    this.#host = host;
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.session = new Session(this, remote, 'tcp');
    this.#flow = new ConnectionFlow(socket, this.session, host, {
      pause: () => socket.pause(),
      resume: () => this.#resume(),
      kill: () => this.destroy(),
    });
    this.#decoder = this.#newDecoder();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#onDrain());
    socket.on('end', () => this.#onEnd());
    socket.on('error', () => {}); // 'close' follows; resets are normal for clients
    socket.on('close', () => {
      this.#clearPartial();
      this.#flow.closed();
      this.session.closedByTransport();
    });
    host.idle?.watch(socket, () => {
      if (this.#closing) return;
      host.log.debug({ session: this.session.id }, 'idle timeout');
      socket.destroy();
    });
    host.attach(this.session);
    if (firstChunk) this.#onData(firstChunk);
  }

  #newDecoder(): MessageDecoder {
    const o = this.#host.options;
    return new MessageDecoder((msg) => this.#onMessage(msg), {
      maxHeaderBytes: o.maxHeaderBytes,
      maxHeaderCount: o.maxHeaderCount,
      maxBodyBytes: o.maxBodyBytes,
    });
  }

  /**
   * The decoder stopped after a message past which reading stopped: keep what it had not decoded yet (the rest
   * of the chunk) and start a fresh decoder; the kept bytes go first when reading resumes.
   */
  #stopAtCap(): void {
    this.#stopped = false;
    const rest = this.#decoder.remaining();
    this.#decoder = this.#newDecoder();
    if (rest.length > 0) this.#held = rest;
  }

  get writable(): boolean {
    return !this.#closing && this.#flow.writable;
  }

  get queuedBytes(): number {
    return this.#flow.queuedBytes;
  }

  #onData(chunk: Uint8Array): void {
    if (this.#upgraded || this.#closing) return;
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.#clearPartial();
      this.#fail(err as ZbusError);
      return;
    }
    const waiting = this.#decoder.awaitingBody;
    if (waiting !== undefined && waiting.headers.expect !== undefined) this.#maybeContinue(waiting);
    if (this.#stopped) this.#stopAtCap();
    const req = this.#upgradeReq;
    if (req) {
      // The decoder keeps the bytes after the upgrade request (frames sent right behind the handshake) only
      // once push() returns, so the socket is handed over here rather than from inside the callback.
      this.#upgradeReq = undefined;
      this.#host.upgrade(this.#socket, req, this.#decoder.remaining(), this.session);
      return;
    }
    this.#watchPartial();
  }

  /**
   * Slowloris: the idle timer restarts with every byte, so a peer trickling a header one byte a second would
   * hold the connection (and its buffered head) forever. A message that has started must be complete within
   * idleTimeoutMs of the chunk that began it; otherwise the peer gets 408 and the connection is closed.
   */
  #watchPartial(): void {
    const ms = this.#host.options.idleTimeoutMs;
    if (ms <= 0) return;
    if (this.#decoder.bufferedBytes === 0) this.#clearPartial();
    else this.#partialTimer ??= setTimeout(() => this.#partialExpired(), ms);
  }

  #clearPartial(): void {
    if (this.#partialTimer) clearTimeout(this.#partialTimer);
    this.#partialTimer = undefined;
  }

  #partialExpired(): void {
    this.#partialTimer = undefined;
    if (this.#closing || this.#upgraded || this.#decoder.bufferedBytes === 0) return;
    if (this.#flow.paused) {
      // We stopped reading (backpressure): the peer is not the slow one. Look again later.
      this.#watchPartial();
      return;
    }
    const ms = this.#host.options.idleTimeoutMs;
    this.#host.log.debug({ session: this.session.id }, 'message not complete in time');
    this.#fail(
      new ZbusError('ZBUS_ERR_TIMEOUT', `message not complete within ${ms} ms (idleTimeoutMs)`, {
        status: 408,
      }),
    );
  }

  #onMessage(msg: Message): boolean {
    // A message completed: the next one gets a full idleTimeoutMs of its own.
    this.#clearPartial();
    if (isWebSocketUpgrade(msg)) {
      this.#upgraded = true;
      this.#socket.removeAllListeners('data');
      this.#socket.removeAllListeners('drain');
      this.#socket.removeAllListeners('end');
      this.#upgradeReq = msg;
      return false;
    }
    this.#host.handle(this.session, msg);
    if (this.#flow.check() && !this.#closing) {
      // Stop inside this chunk too: a pipelining client may have sent thousands of requests in one read, and
      // each could add a reply to a queue already past the high-water mark.
      this.#stopped = true;
      return false;
    }
    return !this.#closing;
  }

  /**
   * `Expect: 100-continue` (curl sends it before bodies over 1 MB, then waits a second for the interim reply):
   * when a head that asks for it was decoded and none of its body has come, say "100 Continue" before the body
   * comes. Only when no earlier reply is still pending, so the interim reply cannot overtake one. The decoder
   * found the head already: no search of the bytes for it per chunk; a body limit still answered 413 on the head.
   */
  #maybeContinue(req: Message): void {
    if (req.headers.expect?.toLowerCase() !== '100-continue') return;
    if (this.session.pendingOrdered > 0) return;
    this.#socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  /** Malformed bytes or a limit: answer once with the status, then close (the stream is out of sync). */
  #fail(err: ZbusError): void {
    if (!(err instanceof ProtocolError || err instanceof LimitError)) {
      this.#host.log.error({ err }, 'decoder failed');
    }
    this.#host.metrics.protocolError(err.code ?? 'ZBUS_ERR_BAD_MESSAGE');
    this.write(this.#host.errorReply(err), true);
  }

  /** The host calls this when a request of this connection finished or its reply left. */
  requestDone(): void {
    if (this.#flow.paused) this.#flow.relieve();
    if (this.#peerEnded) this.#closeWhenAnswered();
  }

  /**
   * The server socket allows half-open connections: a client that sends its requests and then FIN (`nc`,
   * `curl --data @- < file`, a script piping into a socket) still reads. Close once every request it sent has
   * been decoded and answered; a request still in the bytes held back by backpressure counts as unanswered.
   */
  #onEnd(): void {
    this.#peerEnded = true;
    this.session.peerEnded();
    this.#closeWhenAnswered();
  }

  #closeWhenAnswered(): void {
    if (this.#closing || this.#upgraded || this.#held !== undefined) return;
    if (this.session.unanswered === 0 && this.session.inflight === 0) this.close();
  }

  /** The flow lets us read again: first what was read before it stopped us, then the socket. */
  #resume(): void {
    const held = this.#held;
    this.#held = undefined;
    if (held) this.#onData(held);
    if (!this.#flow.paused) this.#socket.resume();
    if (this.#peerEnded) this.#closeWhenAnswered();
  }

  #onDrain(): void {
    this.#flow.relieve();
    this.session.drained();
  }

  /**
   * Writes are held or corked until the end of this turn's I/O callbacks (setImmediate, not nextTick: Node runs
   * the nextTick queue after every single I/O callback) so that everything produced for one connection in that
   * turn leaves in one write: replies resolved together by a group commit, and the deliveries to an RPC
   * service of requests that arrived on many caller connections (a third fewer broker CPU per RPC call).
   * One setImmediate per turn uncorks every connection that wrote in it.
   */
  write(msg: Message, closeAfter = false): void {
    const socket = this.#socket;
    if (this.#closing || socket.destroyed) return;
    if (!this.#inTurn) {
      this.#inTurn = true;
      if (writtenThisTurn.push(this) === 1) turnEnd = setImmediate(endTurn);
    }
    if (closeAfter) msg.set('connection', 'close');
    if (msg instanceof CheckedReply) {
      // A produce's ack: joined to the others of this turn and handed to the socket as one chunk at the end of
      // it, where a chunk per ack cost the socket's stream more than writing the ack itself. No cork for it: a
      // connection that only acks hands the socket one chunk per turn, and cork and uncork around it cost about
      // 750 instructions per ack (callgrind).
      this.#writeChecked(msg);
    } else if (msg.headTail === undefined && msg.body.length <= COPY_BODY_MAX) {
      this.#cork();
      this.#handOver();
      // A reply: head and body in one slab-cut buffer, one chunk for the socket (a string chunk would be
      // encoded again in C++, and a second chunk turns the write into a writev).
      socket.write(slabBytes(msg, msg.body) ?? encodeMessage(msg));
    } else {
      this.#cork();
      this.#handOver();
      if (msg.headTail !== undefined) this.#delivering = true;
      const head = msg.headTail === undefined ? undefined : slabDeliveryHead(msg);
      socket.write(head ?? slabBytes(msg, NO_BODY) ?? encodeHead(msg), 'utf8');
      // A delivery's stored header lines and a large body go as they are (views of the stored record): no
      // copy, one writev.
      if (msg.headTail !== undefined) socket.write(msg.headTail);
      if (msg.body.length > 0) socket.write(msg.body);
    }
    if (closeAfter) this.close();
    else this.#flow.check();
  }

  /**
   * A checked reply joins this turn's run: a produce's ack as bytes behind the run's in the head slab, while no
   * other write took the slab after them; any other checked reply as text.
   */
  #writeChecked(msg: CheckedReply): void {
    if (this.#text === '') {
      if (this.#runSlab !== headSlab || this.#runEnd !== headAt || headAt + ACK_ROOM > HEAD_SLAB_BYTES) {
        this.#flushText();
        if (headAt + ACK_ROOM > HEAD_SLAB_BYTES) {
          headSlab = Buffer.allocUnsafe(HEAD_SLAB_BYTES);
          headAt = 0;
        }
        this.#runSlab = headSlab;
        this.#runStart = headAt;
        this.#runEnd = headAt;
      }
      const end = writeAck(msg, this.#ackHead, headSlab, headAt);
      if (end >= 0) {
        headAt = end;
        this.#runEnd = end;
        if (end - this.#runStart >= MAX_TEXT) this.#flushText();
        return;
      }
      this.#flushText();
    }
    this.#text += checkedText(msg);
    if (this.#text.length >= MAX_TEXT) this.#flushText();
  }

  /**
   * Hands the checked replies joined so far to the socket (before any other write, to keep their order), corked:
   * whatever else the turn writes leaves with them.
   */
  #flushText(): void {
    if (this.#runSlab === undefined && this.#text === '') return;
    this.#cork();
    this.#handOver();
  }

  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#socket.cork();
  }

  #handOver(): void {
    const run = this.#runSlab;
    if (run !== undefined) {
      this.#runSlab = undefined;
      if (this.#runEnd > this.#runStart) this.#socket.write(run.subarray(this.#runStart, this.#runEnd));
    }
    if (this.#text === '') return;
    this.#socket.write(this.#text, 'utf8');
    this.#text = '';
  }

  /** Sends what this turn wrote; with `deliveries`, only if a delivery is among it. */
  uncork(deliveries = false): void {
    if (!this.#inTurn || (deliveries && !this.#delivering)) return;
    this.#inTurn = false;
    this.#delivering = false;
    // Acks alone (held as one run of bytes or as one string: writeChecked keeps one of them at a time) go to an
    // uncorked socket; any other write corked it.
    this.#handOver();
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#clearPartial();
    this.uncork();
    this.#socket.end();
    // A peer that never reads must not keep the socket open forever.
    setTimeout(() => this.#socket.destroy(), 2000).unref();
  }

  destroy(): void {
    this.#closing = true;
    this.#clearPartial();
    this.#socket.destroy();
  }
}

/** Connections that wrote in the current turn of the event loop (endTurn uncorks them once at its end). */
const writtenThisTurn: TcpConnection[] = [];
/** The setImmediate that runs endTurn, while one is due. */
let turnEnd: NodeJS.Immediate | undefined;

/**
 * Sends what every connection wrote so far in this turn, now. For writes made inside a setImmediate callback
 * (the store's write batch, which delivers what it made visible), whose endTurn would otherwise wait a whole
 * turn of the event loop, polling and all, for the next check phase.
 */
export function flushWrites(): void {
  // Its immediate is cancelled too: left due, it would cost the loop a turn (an epoll_pwait) doing nothing.
  if (turnEnd !== undefined) clearImmediate(turnEnd);
  endTurn();
}

function endTurn(): void {
  turnEnd = undefined;
  // Deliveries first: a consumer waits on them, while a produce's ack can wait one write longer (a write to a
  // local socket costs 10-20 us, most of it waking the reader).
  for (let i = 0; i < writtenThisTurn.length; i++) (writtenThisTurn[i] as TcpConnection).uncork(true);
  for (let i = 0; i < writtenThisTurn.length; i++) (writtenThisTurn[i] as TcpConnection).uncork();
  writtenThisTurn.length = 0;
}
