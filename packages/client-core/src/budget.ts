interface Waiter {
  bytes: number;
  /** Aborted while waiting. */
  gone: boolean;
  resolve(): void;
}

/**
 * Work in flight, bounded by a count and by bytes: `acquire(bytes)` waits, first come first served, while
 * either is used up. One item larger than `maxBytes` still goes when nothing else is in flight.
 */
export class Budget {
  readonly maxCount: number;
  readonly maxBytes: number;
  #count = 0;
  #bytes = 0;
  /**
   * Waiters from #first on, in arrival order; admitted ones before it are cleared. A queue with a head index, not
   * `shift()`: that copies the array per admit once it is large (a producer far over its budget).
   */
  #waiters: (Waiter | undefined)[] = [];
  #first = 0;
  #idle: (() => void)[] = [];

  constructor(maxCount: number, maxBytes: number) {
    this.maxCount = maxCount;
    this.maxBytes = maxBytes;
  }

  /** Items in flight. */
  get count(): number {
    return this.#count;
  }

  /** Their bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  #fits(bytes: number): boolean {
    return this.#count < this.maxCount && (this.#bytes === 0 || this.#bytes + bytes <= this.maxBytes);
  }

  /**
   * Takes room for one item of `bytes`: `undefined` when there is room now (no promise in the common case),
   * else a promise that resolves when there is, or rejects with the signal's reason on abort.
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<void> | undefined {
    if (this.#first === this.#waiters.length && this.#fits(bytes)) {
      this.#count++;
      this.#bytes += bytes;
      return undefined;
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        // left in the queue, skipped when reached: no search of the queue per abort
        w.gone = true;
        reject(signal?.reason);
        this.#admit();
      };
      const w: Waiter = {
        bytes,
        gone: false,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(w);
    });
  }

  release(bytes: number): void {
    this.#count--;
    this.#bytes -= bytes;
    this.#admit();
    if (this.#count === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const f of idle) f();
    }
  }

  #admit(): void {
    const q = this.#waiters;
    while (this.#first < q.length) {
      const w = q[this.#first] as Waiter;
      if (!w.gone) {
        if (!this.#fits(w.bytes)) break;
        this.#count++;
        this.#bytes += w.bytes;
        w.resolve();
      }
      q[this.#first++] = undefined;
    }
    // admitted entries are dropped once they are most of the array
    if (this.#first > 1024 && this.#first * 2 > q.length) {
      this.#waiters = q.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
