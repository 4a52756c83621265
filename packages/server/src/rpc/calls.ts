// RPC requests in flight through the broker: produced to an RPC topic, waiting for the service's `route`.
// One coarse sweep timer serves every call (no timer per request); a call past its deadline gets 504. A `route`
// reaches a session only as the answer to one of these calls (issue 14 item 4).
import type { Message } from '@zbus/protocol';
import { type Clock, systemClock, type TimerRef } from '../store/clock.js';

/** Who waits for a call's answer: a session here, or (rpc/relay.ts) a caller on another broker. */
export interface Caller {
  readonly id: string;
  /** Hands the routed reply over; false when it could not be delivered. */
  deliverRouted(reply: Message): boolean;
}

interface Call {
  session: Caller;
  id: string;
  /** The topic the call was made to, as the store spells it: only a router allowed on it may answer. */
  topic: string;
  deadline: number;
  onTimeout: () => void;
}

const SWEEP_MS = 50;

export class RpcCalls {
  /**
   * Calls by caller id, then by request id: no `caller\0id` string is built per call, and a caller that goes
   * away drops its calls without a scan of everyone's. A caller's map stays while it has calls and until the
   * next sweep after its last one, so a caller making one call after another does not allocate a map each time.
   */
  readonly #byCaller = new Map<string, Map<string, Call>>();
  #size = 0;
  #timer: TimerRef | undefined;
  readonly #sweepFn = () => this.#sweep();

  /** `clock` times the calls out (the broker's; tests pass a manual one). */
  constructor(readonly clock: Clock = systemClock) {}

  get size(): number {
    return this.#size;
  }

  add(session: Caller, id: string, topic: string, timeoutMs: number, onTimeout: () => void): void {
    let calls = this.#byCaller.get(session.id);
    if (calls === undefined) {
      calls = new Map();
      this.#byCaller.set(session.id, calls);
    }
    if (!calls.has(id)) this.#size++;
    calls.set(id, { session, id, topic, deadline: this.clock.now() + timeoutMs, onTimeout });
    this.#timer ??= this.clock.setTimer(this.#sweepFn, SWEEP_MS);
  }

  /** The call `id` of session `sessionId` while it waits for its answer, else undefined. */
  waiting(sessionId: string, id: string): Readonly<Pick<Call, 'session' | 'id' | 'topic'>> | undefined {
    return this.#byCaller.get(sessionId)?.get(id);
  }

  /** The reply arrived: true when the call was still waiting. */
  settle(sessionId: string, id: string): boolean {
    if (this.#byCaller.get(sessionId)?.delete(id) !== true) return false;
    this.#size--;
    return true;
  }

  /** The caller went away. */
  dropSession(session: Caller): void {
    const calls = this.#byCaller.get(session.id);
    if (calls === undefined) return;
    for (const [id, c] of calls) {
      if (c.session !== session) continue; // another caller with the same id (never in practice)
      calls.delete(id);
      this.#size--;
    }
    if (calls.size === 0) this.#byCaller.delete(session.id);
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = this.clock.now();
    for (const [caller, calls] of this.#byCaller) {
      for (const [id, c] of calls) {
        if (c.deadline <= now) {
          calls.delete(id);
          this.#size--;
          c.onTimeout();
        }
      }
      if (calls.size === 0) this.#byCaller.delete(caller);
    }
    // The next sweep while calls wait (an onTimeout above may have added one and armed it already).
    if (this.#size > 0) this.#timer ??= this.clock.setTimer(this.#sweepFn, SWEEP_MS);
  }

  /** Shutdown: every call still waiting is handed to `answer` (the broker replies 503), then forgotten. */
  close(answer?: (session: Caller, id: string) => void): void {
    if (answer)
      for (const calls of this.#byCaller.values()) for (const c of calls.values()) answer(c.session, c.id);
    if (this.#timer) this.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#byCaller.clear();
    this.#size = 0;
  }
}
