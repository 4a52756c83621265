// Deadlines that scale with the machine's load: a test waits on events, and a deadline is only the safety net
// for a hang, so a busy machine gets proportionally longer ones.

/**
 * `ms` times how many times slower than a quiet machine this one runs now (`ZBUS_TEST_TIME_SCALE`, which the
 * shared vitest config sets from the load average per core; 1 outside vitest). Every deadline a test waits
 * under goes through it: a deadline is a safety net for a hang, never a measurement.
 */
export function scaled(ms: number): number {
  const scale = Number(process.env.ZBUS_TEST_TIME_SCALE);
  return scale > 0 ? Math.round(ms * scale) : ms;
}

/**
 * Resolves with `f()`'s first truthy value, checking every 20 ms, for state that has no event to await (a
 * gauge, a file, another process's output); rejects naming `what` (a function: called then, to show the state
 * at that moment) after `scaled(timeoutMs)`.
 */
export async function waitFor<T>(
  f: () => T | Promise<T>,
  what: string | (() => string),
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const limit = scaled(timeoutMs);
  const end = Date.now() + limit;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) {
      throw new Error(`timed out after ${limit} ms waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
