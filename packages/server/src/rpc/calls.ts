// RPC requests in flight through the broker: produced to an RPC topic, waiting for the service's `route`.
// One coarse sweep timer serves every call (no timer per request); a call past its deadline gets 504.
import type { Session } from '../session.js';

interface Call {
  session: Session;
  id: string;
  deadline: number;
  onTimeout: () => void;
}

const SWEEP_MS = 50;
/** How long a timed-out call is remembered, so that its late reply is dropped (the caller already got 504). */
const REMEMBER_TIMED_OUT_MS = 60_000;
const REMEMBER_TIMED_OUT_MAX = 10_000;

export class RpcCalls {
  readonly #calls = new Map<string, Call>();
  /** Calls answered 504, oldest first: key -> forget-after time. */
  readonly #timedOut = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  get size(): number {
    return this.#calls.size;
  }

  add(session: Session, id: string, timeoutMs: number, onTimeout: () => void): void {
    this.#calls.set(`${session.id}\0${id}`, { session, id, deadline: Date.now() + timeoutMs, onTimeout });
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#timer.unref();
    }
  }

  /** The reply arrived: true when the call was still waiting. */
  settle(sessionId: string, id: string): boolean {
    return this.#calls.delete(`${sessionId}\0${id}`);
  }

  /** True when this call was answered 504: its reply must not reach the caller as a second answer. */
  timedOut(sessionId: string, id: string): boolean {
    const key = `${sessionId}\0${id}`;
    const until = this.#timedOut.get(key);
    if (until === undefined) return false;
    this.#timedOut.delete(key);
    return until > Date.now();
  }

  #rememberTimedOut(key: string, now: number): void {
    for (const [k, until] of this.#timedOut) {
      if (until > now && this.#timedOut.size < REMEMBER_TIMED_OUT_MAX) break;
      this.#timedOut.delete(k);
    }
    this.#timedOut.set(key, now + REMEMBER_TIMED_OUT_MS);
  }

  /** The caller went away. */
  dropSession(session: Session): void {
    for (const [k, c] of this.#calls) if (c.session === session) this.#calls.delete(k);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [k, c] of this.#calls) {
      if (c.deadline <= now) {
        this.#calls.delete(k);
        this.#rememberTimedOut(k, now);
        c.onTimeout();
      }
    }
    if (this.#calls.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Shutdown: every call still waiting is handed to `answer` (the broker replies 503), then forgotten. */
  close(answer?: (session: Session, id: string) => void): void {
    if (answer) for (const c of this.#calls.values()) answer(c.session, c.id);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#calls.clear();
    this.#timedOut.clear();
  }
}
