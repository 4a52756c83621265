/**
 * Work in flight, bounded by a count and by bytes: `acquire(bytes)` waits, first come first served, while
 * either is used up. One item larger than `maxBytes` still goes when nothing else is in flight.
 */
export class Budget {
  readonly maxCount: number;
  readonly maxBytes: number;
  #count = 0;
  #bytes = 0;
  #waiters: { bytes: number; resolve(): void }[] = [];
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
    if (this.#waiters.length === 0 && this.#fits(bytes)) {
      this.#count++;
      this.#bytes += bytes;
      return undefined;
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiters.indexOf(w);
        if (i !== -1) this.#waiters.splice(i, 1);
        reject(signal?.reason);
        this.#admit();
      };
      const w = {
        bytes,
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
    while (this.#waiters.length > 0 && this.#fits((this.#waiters[0] as { bytes: number }).bytes)) {
      const w = this.#waiters.shift() as { bytes: number; resolve(): void };
      this.#count++;
      this.#bytes += w.bytes;
      w.resolve();
    }
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
