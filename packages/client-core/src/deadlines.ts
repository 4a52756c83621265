import type { TimerHandle } from './timers.js';

/** Something that can time out. */
export interface Expirable {
  /** Epoch ms at which it expires; set by {@link Deadlines.add}. */
  deadline: number;
  /** Settled: skipped when its deadline comes. */
  done: boolean;
}

interface Queue<T> {
  /** Entries before `head` are cleared: a settled request (its message, its reply) is not kept until a trim. */
  items: (T | undefined)[];
  head: number;
}

/**
 * Request timeouts without a timer per request (style.md §8). Entries with the same timeout expire in the order
 * they were added, so one FIFO per timeout value is sorted by deadline; a single timer waits for the earliest
 * head. Settled entries are dropped from the head as replies come (pipelined replies mostly come in order, so
 * queues stay short); one that settles out of order waits until the head passes it.
 *
 *   timeout 10000: [done][done][p7 10:00:03.120][p8 ...]   ← head moves past settled entries
 *   timeout   500: [p3 10:00:00.800]                        ← timer set for the earliest head
 */
export class Deadlines<T extends Expirable> {
  #queues = new Map<number, Queue<T>>();
  readonly #onExpire: (item: T) => void;
  readonly #now: () => number;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;

  constructor(onExpire: (item: T) => void, now: () => number = Date.now) {
    this.#onExpire = onExpire;
    this.#now = now;
  }

  /** Starts `item`'s clock: it expires `timeout` ms from now unless it is `done` by then. */
  add(item: T, timeout: number): void {
    item.deadline = this.#now() + timeout;
    let q = this.#queues.get(timeout);
    if (q === undefined) {
      q = { items: [], head: 0 };
      this.#queues.set(timeout, q);
    }
    q.items.push(item);
    if (item.deadline < this.#timerAt) this.#schedule(item.deadline);
  }

  /** Tells the queue of `timeout` that one of its entries settled. */
  settled(timeout: number): void {
    const q = this.#queues.get(timeout);
    if (q === undefined) return;
    this.#trim(q, timeout);
    if (this.#queues.size === 0) this.clear();
  }

  /** Drops every entry and the timer. */
  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // A new Map, not clear(): see Connection#notifyIdle.
    this.#queues = new Map();
  }

  #trim(q: Queue<T>, key: number): void {
    const items = q.items;
    while (q.head < items.length && (items[q.head] as T).done) items[q.head++] = undefined;
    if (q.head === items.length) {
      this.#queues.delete(key);
    } else if (q.head > 1024 && q.head * 2 > items.length) {
      q.items = items.slice(q.head);
      q.head = 0;
    }
  }

  #schedule(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - this.#now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#now();
    let next = Infinity;
    for (const [key, q] of [...this.#queues]) {
      while (q.head < q.items.length) {
        const item = q.items[q.head] as T;
        if (item.done) {
          q.items[q.head++] = undefined;
          continue;
        }
        if (item.deadline > now) {
          if (item.deadline < next) next = item.deadline;
          break;
        }
        q.items[q.head++] = undefined;
        this.#onExpire(item);
      }
      this.#trim(q, key);
    }
    if (next < this.#timerAt) this.#schedule(next);
  }
}
