// Shared vitest settings: every package writes a JSON report that `npm test` sums into one closing line, and
// every deadline a test waits under scales with how busy the machine is (DEVELOPERS.md, "Tests").
import { cpus, loadavg } from 'node:os';
import { basename } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * How many times slower than a quiet machine this one runs now: `ZBUS_TEST_TIME_SCALE` when set, otherwise the
 * load average per core (1 to 10). Deadlines are safety nets for hangs, never measurements: on a machine with
 * four runnable processes per core a test gets a quarter of the time, so it gets four times the deadline.
 * Set here once per package run and handed to the test workers (and @zbus/testkit's `scaled()`) by environment.
 */
export function timeScale(): number {
  const set = Number(process.env.ZBUS_TEST_TIME_SCALE);
  if (set > 0) return set;
  const perCore = (loadavg()[0] ?? 0) / Math.max(1, cpus().length);
  const scale = Math.min(10, Math.max(1, Math.round(perCore * 10) / 10));
  process.env.ZBUS_TEST_TIME_SCALE = String(scale);
  return scale;
}

export function packageConfig(dir: string, overrides: { testTimeout?: number; include?: string[] } = {}) {
  const name = basename(dir);
  const scale = timeScale();
  return defineConfig({
    test: {
      include: overrides.include ?? ['test/**/*.test.ts'],
      passWithNoTests: true,
      testTimeout: Math.round((overrides.testTimeout ?? 20_000) * scale),
      hookTimeout: Math.round(30_000 * scale),
      // expect.poll() waits for a condition; its default (1 s) is a budget a busy machine can exceed.
      expect: { poll: { timeout: Math.round(10_000 * scale), interval: 20 } },
      reporters: ['default', 'json'],
      outputFile: { json: `${dir}/../../artifacts/test-results/${name}.json` },
    },
  });
}
