// Backpressure of one connection, TCP and WebSocket alike (issue 14 item 9). The bytes queued toward the peer are
// the socket's write queue plus the plain-HTTP replies held back for order; the requests in progress are those
// the broker is still working on.
//
//   queued >= writeHighWaterMark, or requests >= maxInflightPerConnection
//        -> stop taking requests (the transport pauses its socket and keeps what it read), no pushes, reads by
//           offset wait their turn (Session.readTurn)
//   queued < writeHighWaterMark and requests below the cap       -> take requests again
//   queued > maxWriteQueueBytes                                  -> close at once (no reply could shrink it)
//   queued >= writeHighWaterMark and no byte taken by the peer for writeStallTimeoutMs -> close
import type { Socket } from 'node:net';
import type { Session } from '../session.js';
import type { ConnectionHost } from './host.js';

/** What the transport does when the flow decides. */
export interface FlowHooks {
  /** Stop taking requests from the peer. */
  pause(): void;
  /** Take requests again (what was read meanwhile first). */
  resume(): void;
  /** Close the connection now: the peer does not read what it asked for. */
  kill(): void;
}

export class ConnectionFlow {
  readonly #socket: Socket;
  readonly #session: Session;
  readonly #host: ConnectionHost;
  readonly #hooks: FlowHooks;
  #paused = false;
  #stall: NodeJS.Timeout | undefined;
  /** Bytes the peer had taken when the stall timer was armed. */
  #flushedAtArm = 0;
  #killed = false;

  constructor(socket: Socket, session: Session, host: ConnectionHost, hooks: FlowHooks) {
    this.#socket = socket;
    this.#session = session;
    this.#host = host;
    this.#hooks = hooks;
  }

  /** Reading is stopped (past the in-flight cap or the high-water mark). */
  get paused(): boolean {
    return this.#paused;
  }

  /** Bytes queued toward the peer: the socket's write queue and the replies held for order. */
  get queuedBytes(): number {
    return this.#socket.writableLength + this.#session.heldBytes;
  }

  /** Below the high-water mark: pushes and reads by offset may go on. */
  get writable(): boolean {
    return !this.#killed && this.queuedBytes < this.#host.options.writeHighWaterMark;
  }

  #overCap(): boolean {
    const max = this.#host.options.maxInflightPerConnection;
    return this.#session.inflight >= max || this.#session.pendingOrdered >= max;
  }

  /**
   * After a request was taken or a message written: enforce the hard bound, arm the stall timer, and stop
   * reading past a limit. True when reading is (now) stopped.
   */
  check(): boolean {
    if (this.#killed) return true;
    const o = this.#host.options;
    const queued = this.queuedBytes;
    if (queued > o.maxWriteQueueBytes) {
      this.#kill(`${queued} bytes queued, over ${o.maxWriteQueueBytes} (maxWriteQueueBytes)`);
      return true;
    }
    const over = queued >= o.writeHighWaterMark;
    if (over) this.#armStall();
    if (!this.#paused && (over || this.#overCap())) {
      this.#paused = true;
      this.#host.metrics.connectionsPaused++;
      this.#hooks.pause();
    }
    return this.#paused;
  }

  /** A request finished, a reply left or the socket drained: read again once below both limits. */
  relieve(): void {
    if (this.#killed) return;
    const below = this.queuedBytes < this.#host.options.writeHighWaterMark;
    if (below) this.#clearStall();
    if (this.#paused && below && !this.#overCap()) {
      this.#paused = false;
      this.#host.metrics.connectionsPaused--;
      this.#hooks.resume();
    }
  }

  /** The connection is gone: no timer may outlive it. */
  closed(): void {
    this.#clearStall();
    if (this.#paused) {
      this.#paused = false;
      this.#host.metrics.connectionsPaused--;
    }
    this.#killed = true;
  }

  /** Bytes the peer has taken off the socket so far (written bytes minus what still waits in the queue). */
  #flushed(): number {
    return this.#socket.bytesWritten - this.#socket.writableLength;
  }

  #armStall(): void {
    const ms = this.#host.options.writeStallTimeoutMs;
    if (this.#stall || ms === 0) return;
    this.#flushedAtArm = this.#flushed();
    this.#stall = setTimeout(() => this.#stallExpired(), ms);
    this.#stall.unref();
  }

  #clearStall(): void {
    if (this.#stall) clearTimeout(this.#stall);
    this.#stall = undefined;
  }

  #stallExpired(): void {
    this.#stall = undefined;
    if (this.#killed || this.queuedBytes < this.#host.options.writeHighWaterMark) return;
    if (this.#flushed() !== this.#flushedAtArm) {
      this.#armStall(); // slow, but reading: give it another period
      return;
    }
    const ms = this.#host.options.writeStallTimeoutMs;
    this.#kill(`${this.queuedBytes} bytes queued and none taken for ${ms} ms (writeStallTimeoutMs)`);
  }

  #kill(why: string): void {
    this.#host.metrics.slowConnectionsClosed++;
    this.#host.log.warn(
      { session: this.#session.id, remote: this.#session.remoteAddress },
      `closing a slow reader: ${why}`,
    );
    this.closed();
    this.#hooks.kill();
  }
}
