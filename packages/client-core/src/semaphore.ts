/** A counting semaphore: `acquire()` waits while `limit` holders are in. */
export class Semaphore {
  #inUse = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.#inUse;
  }

  /** Resolves at once when a slot is free (the common case costs no promise tick beyond the await). */
  acquire(): Promise<void> | undefined {
    if (this.#inUse < this.limit) {
      this.#inUse++;
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.#waiters.push(() => {
        this.#inUse++;
        resolve();
      });
    });
  }

  release(): void {
    this.#inUse--;
    const next = this.#waiters.shift();
    if (next) next();
    else if (this.#inUse === 0) this.#onIdle();
  }

  #idle: (() => void)[] = [];

  /** Resolves when nobody holds a slot. */
  idle(): Promise<void> {
    if (this.#inUse === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #onIdle(): void {
    const list = this.#idle;
    this.#idle = [];
    for (const f of list) f();
  }
}
