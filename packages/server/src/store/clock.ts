// Time for the store (and the broker's own timers): a clock that tests can replace, and the one helper every
// long timer goes through.
//
// Node runs a setTimeout longer than 2^31-1 ms (about 24.8 days) after 1 ms, with a warning: a 30-day delay or
// ack timeout armed directly would fire at once and, re-armed from its handler, spin the CPU forever. `Alarm`
// arms at most MAX_TIMER_MS ahead and re-arms until the due time is reached.

/** Timers and the time, as the store sees them. Times are epoch milliseconds. */
export interface Clock {
  now(): number;
  /** Run `fn` once after `ms` (0 <= ms <= MAX_TIMER_MS); the timer does not keep the process alive. */
  setTimer(fn: () => void, ms: number): TimerRef;
  clearTimer(timer: TimerRef): void;
}

/** An opaque timer handle of a {@link Clock}. */
export type TimerRef = object;

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: Date.now,
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimer(timer) {
    clearTimeout(timer as NodeJS.Timeout);
  },
};

/**
 * One re-armable timer for an absolute due time: `fire` runs once the clock reaches it, however far ahead it is.
 * At most one underlying timer is armed at a time.
 */
export class Alarm {
  #timer: TimerRef | undefined;
  #at = Number.POSITIVE_INFINITY;

  constructor(
    readonly clock: Clock,
    readonly fire: () => void,
  ) {}

  /** The due time armed, or +Infinity. */
  get at(): number {
    return this.#at;
  }

  /** Fire at `at` (replacing any earlier arming); +Infinity or NaN cancels. */
  set(at: number): void {
    if (this.#timer !== undefined) this.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#at = Number.isNaN(at) ? Number.POSITIVE_INFINITY : at;
    if (this.#at !== Number.POSITIVE_INFINITY) this.#arm();
  }

  /** Fire no later than `at`. */
  setEarlier(at: number): void {
    if (at < this.#at) this.set(at);
  }

  /** Fire `ms` from now (a negative or NaN `ms` means now). */
  setIn(ms: number): void {
    this.set(this.clock.now() + (ms > 0 ? ms : 0));
  }

  cancel(): void {
    this.set(Number.POSITIVE_INFINITY);
  }

  #arm(): void {
    const ms = Math.min(Math.max(this.#at - this.clock.now(), 0), MAX_TIMER_MS);
    this.#timer = this.clock.setTimer(() => {
      this.#timer = undefined;
      if (this.clock.now() < this.#at) {
        this.#arm(); // a long delay's next leg (or a timer that ran a little early)
        return;
      }
      this.#at = Number.POSITIVE_INFINITY;
      this.fire();
    }, ms);
  }
}
