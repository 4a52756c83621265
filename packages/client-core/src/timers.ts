/** Timer helpers that work with Node and browser timer handles. */

export type TimerHandle = ReturnType<typeof setTimeout>;

/** Lets the process exit while only this timer is left (Node); a no-op in browsers. */
export function unref<T>(t: T): T {
  (t as { unref?: () => void }).unref?.();
  return t;
}

/** Resolves after `ms` (unref'd). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    unref(setTimeout(resolve, ms));
  });
}

/**
 * Exponential backoff with jitter: `min(max, initial * 2^attempt)`, spread by +-`jitter` (a fraction) so that
 * many clients cut off together do not come back together.
 */
export function backoffDelay(
  attempt: number,
  initial: number,
  max: number,
  jitter: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  const spread = base * jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(base + spread));
}
