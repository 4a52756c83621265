// A clock that moves only when a test says so, for code that takes an injected clock (the store's `Clock`:
// `now`, `setTimer`, `clearTimer`; a broker's `clock` option). Timer logic is then tested without waiting on the
// wall clock.
import { scaled } from './scale.js';

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Longest delay a real setTimeout honours; asking for more is a bug the manual clock reports. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ManualClock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<ManualTimer>();
  readonly #waiters: Array<{ at: number; resolve: () => void }> = [];

  /** Starts at `start` (epoch ms; default: the real time now, so stored timestamps look ordinary). */
  constructor(start = Date.now()) {
    this.#now = start;
  }

  now = (): number => this.#now;

  setTimer = (fn: () => void, ms: number): object => {
    // Node would run an out-of-range timer after 1 ms: code under test must never ask for one.
    if (!(ms >= 0 && ms <= MAX_TIMER_MS)) throw new RangeError(`timer of ${ms} ms is out of range`);
    const t: ManualTimer = { at: this.#now + ms, seq: this.#seq++, fn };
    this.#timers.add(t);
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i]!;
      if (w.at !== t.at) continue;
      this.#waiters.splice(i, 1);
      w.resolve();
    }
    return t;
  };

  clearTimer = (timer: object): void => {
    this.#timers.delete(timer as ManualTimer);
  };

  /** Timers armed and not yet run. */
  get pending(): number {
    return this.#timers.size;
  }

  /** The due time of the earliest armed timer, or +Infinity. */
  get nextAt(): number {
    let at = Number.POSITIVE_INFINITY;
    for (const t of this.#timers) if (t.at < at) at = t.at;
    return at;
  }

  /**
   * Resolves when code under test next arms a timer due at `at` (a latch for "the broker has taken my request and
   * started its timer"). Ask before sending the request. Timers already pending do not count: another one due at
   * the same time (a store's periodic checkpoint) would open the latch before the request has arrived. Rejects
   * after `timeoutMs` (scaled) of real time.
   */
  armed(at: number, timeoutMs = 5000): Promise<void> {
    const limit = scaled(timeoutMs);
    return new Promise((resolve, reject) => {
      const w = {
        at,
        resolve: () => {
          clearTimeout(safety);
          resolve();
        },
      };
      const safety = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`no timer due at ${at} (now + ${at - this.#now} ms) armed within ${limit} ms`));
      }, limit);
      this.#waiters.push(w);
    });
  }

  /**
   * Move time forward by `ms`, running every timer that comes due on the way, in due order, each with the clock
   * at its due time (timers armed by a running timer run too if they fall within the step).
   */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) {
          next = t;
        }
      }
      if (next === undefined) break;
      this.#timers.delete(next);
      if (next.at > this.#now) this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }
}
