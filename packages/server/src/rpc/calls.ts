// RPC requests in flight through the broker: produced to an RPC topic, waiting for the service's `route`.
// One sweep timer serves every call (no timer per request): it runs at the earliest deadline, at most once per
// SWEEP_MS, and a call past its deadline gets 504. A `route` reaches a session only as the answer to one of these
// calls (issue 14 item 4).
import type { Message } from '@zbus/protocol';
import { Renewal } from '../mq/renewal.js';
import type { ReplyTicket } from '../session.js';
import { Alarm, type Clock, systemClock } from '../store/clock.js';

/** Who waits for a call's answer: a session here, or (rpc/relay.ts) a caller on another broker. */
export interface Caller {
  readonly id: string;
  /** Hands the routed reply over; false when it could not be delivered. */
  deliverRouted(reply: Message): boolean;
}

/**
 * A class, not an object literal: V8 may tenure a literal's allocation site once a burst of calls outlived a few
 * scavenges, and every later call would be born in the old generation.
 */
class Call {
  constructor(
    readonly session: Caller,
    readonly id: string,
    /** The topic the call was made to, as the store spells it: only a router allowed on it may answer. */
    readonly topic: string,
    readonly deadline: number,
    public onTimeout: () => void,
    /** A plain-HTTP request (RPC by URL) whose answer the routed reply is, in the connection's order. */
    readonly ticket: ReplyTicket | undefined,
    /** The caller's calls, this one among them: settled without looking the caller up again. */
    public of: Map<string, Call>,
  ) {}
}

/** A call as the answering side sees it. */
export type WaitingCall = Readonly<Pick<Call, 'session' | 'id' | 'topic' | 'ticket'>>;

/** Sweeps (each a scan of the calls waiting) come at least this far apart; a timeout is at most this late. */
const SWEEP_MS = 50;

/**
 * What a settled call's onTimeout becomes. The callers' Maps add and delete a call per request, and a churning Map
 * rehashes every few dozen calls; a table it left behind in old space keeps its entries reachable for scavenges
 * until the next mark-compact. A settled call still holding its closure (and through it the request's context
 * and stored bytes) had all of that promoted: about 900 bytes per call at 20k calls/s.
 */
const NO_TIMEOUT = (): void => {};

/**
 * Hands the routed reply to the call's caller: as the answer to its plain-HTTP request (RPC by URL, in the
 * connection's order), else as a push it matches by id. False when it could not be delivered.
 */
export function routed(call: WaitingCall, reply: Message): boolean {
  const ticket = call.ticket;
  if (ticket === undefined) return call.session.deliverRouted(reply);
  if (ticket.session.closed) return false;
  ticket.send(reply);
  return true;
}

export class RpcCalls {
  /**
   * Calls by caller id, then by request id: no `caller\0id` string is built per call, and a caller that goes
   * away drops its calls without a scan of everyone's. A caller's map stays while it has calls and until the
   * next sweep after its last one, so a caller making one call after another does not allocate a map each time.
   */
  readonly #byCaller = new Map<string, Map<string, Call>>();
  #size = 0;
  /** When a caller's Map is replaced by a copy (mq/renewal.ts): it churns, a set per call and a delete per answer. */
  readonly #renewal = new Renewal();
  readonly #sweeps: Alarm;
  #sweptAt = Number.NEGATIVE_INFINITY;

  /** `clock` times the calls out (the broker's; tests pass a manual one). */
  constructor(readonly clock: Clock = systemClock) {
    this.#sweeps = new Alarm(clock, () => this.#sweep());
  }

  get size(): number {
    return this.#size;
  }

  add(
    session: Caller,
    id: string,
    topic: string,
    timeoutMs: number,
    onTimeout: () => void,
    ticket?: ReplyTicket,
  ): void {
    let calls = this.#byCaller.get(session.id);
    if (calls === undefined) {
      calls = new Map();
      this.#byCaller.set(session.id, calls);
    }
    if (!calls.has(id)) this.#size++;
    const deadline = this.clock.now() + timeoutMs;
    calls.set(id, new Call(session, id, topic, deadline, onTimeout, ticket, calls));
    // Deadlines mostly grow with each call: the alarm is rarely moved.
    this.#sweeps.setEarlier(Math.max(deadline, this.#sweptAt + SWEEP_MS));
  }

  /** The call `id` of session `sessionId` while it waits for its answer, else undefined. */
  waiting(sessionId: string, id: string): WaitingCall | undefined {
    return this.#byCaller.get(sessionId)?.get(id);
  }

  /** The reply arrived: true when the call was still waiting. */
  settle(sessionId: string, id: string): boolean {
    return this.take(sessionId, id) !== undefined;
  }

  /** The call waiting() gave was answered: true when it was still waiting. */
  settleCall(call: WaitingCall): boolean {
    const { of, id } = call as Call;
    if (of.get(id) !== call) return false;
    of.delete(id);
    (call as Call).onTimeout = NO_TIMEOUT;
    this.#size--;
    this.#settledFrom(call.session.id, of);
    return true;
  }

  /** settle() that gives the call back (to answer it with routed()). */
  take(sessionId: string, id: string): WaitingCall | undefined {
    const calls = this.#byCaller.get(sessionId);
    const call = calls?.get(id);
    if (call === undefined) return undefined;
    calls!.delete(id);
    call.onTimeout = NO_TIMEOUT;
    this.#size--;
    this.#settledFrom(sessionId, calls!);
    return call;
  }

  /** A call of `calls` (the Map of caller `callerId`) was settled: renews the Map when it is due. */
  #settledFrom(callerId: string, calls: Map<string, Call>): void {
    if (!this.#renewal.due(calls.size)) return;
    const renewed = new Map<string, Call>();
    for (const [id, c] of calls) {
      c.of = renewed;
      renewed.set(id, c);
    }
    if (this.#byCaller.get(callerId) === calls) this.#byCaller.set(callerId, renewed);
  }

  /** The caller went away. */
  dropSession(session: Caller): void {
    const calls = this.#byCaller.get(session.id);
    if (calls === undefined) return;
    for (const [id, c] of calls) {
      if (c.session !== session) continue; // another caller with the same id (never in practice)
      calls.delete(id);
      c.onTimeout = NO_TIMEOUT;
      this.#size--;
    }
    if (calls.size === 0) this.#byCaller.delete(session.id);
  }

  #sweep(): void {
    const now = this.clock.now();
    this.#sweptAt = now;
    let next = Number.POSITIVE_INFINITY;
    for (const [caller, calls] of this.#byCaller) {
      for (const [id, c] of calls) {
        if (c.deadline <= now) {
          calls.delete(id);
          this.#size--;
          c.onTimeout();
        } else if (c.deadline < next) next = c.deadline;
      }
      if (calls.size === 0) this.#byCaller.delete(caller);
    }
    if (next < Number.POSITIVE_INFINITY) this.#sweeps.setEarlier(Math.max(next, now + SWEEP_MS));
  }

  /** Shutdown: every call still waiting is handed to `answer` (the broker replies 503), then forgotten. */
  close(answer?: (session: Caller, id: string, ticket: ReplyTicket | undefined) => void): void {
    if (answer)
      for (const calls of this.#byCaller.values())
        for (const c of calls.values()) answer(c.session, c.id, c.ticket);
    this.#sweeps.cancel();
    this.#byCaller.clear();
    this.#size = 0;
  }
}
