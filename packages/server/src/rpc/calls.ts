// RPC requests in flight through the broker: produced to an RPC topic, waiting for the service's `route`.
// One coarse sweep timer serves every call (no timer per request); a call past its deadline gets 504. A `route`
// reaches a session only as the answer to one of these calls (issue 14 item 4).
import type { Message } from '@zbus/protocol';

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
  readonly #calls = new Map<string, Call>();
  #timer: NodeJS.Timeout | undefined;

  get size(): number {
    return this.#calls.size;
  }

  add(session: Caller, id: string, topic: string, timeoutMs: number, onTimeout: () => void): void {
    this.#calls.set(`${session.id}\0${id}`, {
      session,
      id,
      topic,
      deadline: Date.now() + timeoutMs,
      onTimeout,
    });
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#timer.unref();
    }
  }

  /** The call `id` of session `sessionId` while it waits for its answer, else undefined. */
  waiting(sessionId: string, id: string): Readonly<Pick<Call, 'session' | 'id' | 'topic'>> | undefined {
    return this.#calls.get(`${sessionId}\0${id}`);
  }

  /** The reply arrived: true when the call was still waiting. */
  settle(sessionId: string, id: string): boolean {
    return this.#calls.delete(`${sessionId}\0${id}`);
  }

  /** The caller went away. */
  dropSession(session: Caller): void {
    for (const [k, c] of this.#calls) if (c.session === session) this.#calls.delete(k);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [k, c] of this.#calls) {
      if (c.deadline <= now) {
        this.#calls.delete(k);
        c.onTimeout();
      }
    }
    if (this.#calls.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Shutdown: every call still waiting is handed to `answer` (the broker replies 503), then forgotten. */
  close(answer?: (session: Caller, id: string) => void): void {
    if (answer) for (const c of this.#calls.values()) answer(c.session, c.id);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#calls.clear();
  }
}
