// `await using` and AbortSignal helpers. The classes name their dispose method `[Symbol.asyncDispose]` (a
// well-known symbol, so bundlers still drop a class nobody uses); its type is declared here as TypeScript's own
// lib and @types/node declare it (the declarations merge), so apps need no `lib: esnext` for the published types.

declare global {
  interface SymbolConstructor {
    /** The method `await using` calls at the end of the scope. */
    readonly asyncDispose: unique symbol;
  }
}

/** What `await using` needs: `MqClient`, `Broker`, `Consumer`, `Producer` and `MqAdmin` are all one. */
export interface AsyncDisposableResource {
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * `promise`, or a rejection with the signal's reason when `signal` aborts first (`onAbort` runs then, to stop
 * the work behind the promise).
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort?: () => void,
): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort?.();
      reject(signal.reason);
    };
    if (signal.aborted) {
      promise.catch(() => {});
      abort();
      return;
    }
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** Callers waiting for work in flight to end (a close), each for at most a timeout or until its signal aborts. */
export class IdleWaiters {
  #waiters: (() => void)[] = [];

  /** Resolves on `notify()`, after `timeout` ms, or when `signal` aborts, whichever comes first. */
  wait(timeout: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, timeout);
      signal?.addEventListener('abort', done, { once: true });
      this.#waiters.push(done);
    });
  }

  /** The work ended: releases every waiter. */
  notify(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
