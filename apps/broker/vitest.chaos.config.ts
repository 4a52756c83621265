// The long form of the fault and hostile-input suite (`pnpm test:chaos`): only test/chaos, one file at a
// time (the figures are not disturbed by the other files), with the long knobs on unless the env says
// otherwise (ZBUS_CHAOS_ROUNDS, ZBUS_CHAOS_FUZZ, ... in test/chaos/helpers.ts). With ZBUS_SOAK=1 (`test:soak`)
// it runs the soak instead (test/chaos/soak.ts, ZBUS_SOAK_MINUTES, default 1).
import { defineConfig } from 'vitest/config';
import { timeScale } from '../../vitest.shared';

const soak = process.env.ZBUS_SOAK === '1';
timeScale(); // sets ZBUS_TEST_TIME_SCALE for the workers: scaled() deadlines follow the machine's load

export default defineConfig({
  test: {
    include: soak ? ['test/chaos/soak.ts'] : ['test/chaos/**/*.test.ts'],
    env: { ZBUS_CHAOS_LONG: process.env.ZBUS_CHAOS_LONG ?? '1' },
    fileParallelism: false,
    testTimeout: 30 * 60_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: {
      json: `${import.meta.dirname}/../../artifacts/test-results/broker-${soak ? 'soak' : 'chaos'}.json`,
    },
  },
});
