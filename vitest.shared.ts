// Shared vitest settings: every package writes a JSON report that `npm test` sums into one closing line.
import { basename } from 'node:path';
import { defineConfig } from 'vitest/config';

export function packageConfig(dir: string, overrides: { testTimeout?: number; include?: string[] } = {}) {
  const name = basename(dir);
  return defineConfig({
    test: {
      include: overrides.include ?? ['test/**/*.test.ts'],
      passWithNoTests: true,
      testTimeout: overrides.testTimeout ?? 20_000,
      hookTimeout: 30_000,
      reporters: ['default', 'json'],
      outputFile: { json: `${dir}/../../artifacts/test-results/${name}.json` },
    },
  });
}
