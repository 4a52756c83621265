// Idle connections (idleTimeoutMs): one alarm on the broker's clock sweeps every connection a few times per
// timeout and closes those that read and wrote nothing across a whole timeout. No timer per connection and
// nothing per read or write: activity is the socket's byte counters, compared at each sweep. Sweeps are counted,
// not wall-clock times compared, so a clock that steps closes nobody early.
import type { Socket } from 'node:net';
import { Alarm, type Clock } from '../store/clock.js';

/** Sweeps per timeout: a silent connection is closed between 1 and 1.25 timeouts after its last byte. */
const SWEEPS = 4;

interface Watched {
  /** Bytes read plus written at the last sweep that saw a change. */
  bytes: number;
  /** Sweeps in a row that saw no change (-1 until the first sweep after it was watched). */
  quiet: number;
  expire: () => void;
}

const activity = (s: Socket) => s.bytesRead + s.bytesWritten;

export class IdleWatch {
  readonly #watched = new Map<Socket, Watched>();
  readonly #alarm: Alarm;
  readonly #step: number;

  constructor(clock: Clock, timeoutMs: number) {
    this.#step = Math.ceil(timeoutMs / SWEEPS);
    this.#alarm = new Alarm(clock, () => this.#sweep());
  }

  /**
   * Closes `socket` through `expire` once it stays silent for the timeout. Watching a socket again replaces its
   * `expire` (a WebSocket taking over a TCP connection's socket) and keeps its count.
   */
  watch(socket: Socket, expire: () => void): void {
    const w = this.#watched.get(socket);
    if (w !== undefined) {
      w.expire = expire;
      return;
    }
    this.#watched.set(socket, { bytes: activity(socket), quiet: -1, expire });
    socket.once('close', () => this.#watched.delete(socket));
    if (this.#alarm.at === Number.POSITIVE_INFINITY) this.#alarm.setIn(this.#step);
  }

  close(): void {
    this.#alarm.cancel();
    this.#watched.clear();
  }

  #sweep(): void {
    for (const [socket, w] of this.#watched) {
      const bytes = activity(socket);
      if (bytes !== w.bytes) {
        w.bytes = bytes;
        w.quiet = 0;
      } else if (++w.quiet >= SWEEPS) {
        // After a pause of the whole process this sweep runs before the bytes that came meanwhile are read: look
        // again once this turn's I/O has run; a read in between keeps the connection.
        setImmediate(() => {
          if (this.#watched.get(socket) !== w || activity(socket) !== bytes) return;
          this.#watched.delete(socket);
          w.expire();
        });
      }
    }
    if (this.#watched.size > 0) this.#alarm.setIn(this.#step);
  }
}
