// Shared tsup settings (style.md §4): ESM with types (without `@internal` members) and source maps, built from
// src/index.ts for Node 20. A package's tsup.config.ts passes only what it does differently (entries, platform,
// define, ...).
import { defineConfig, type Options } from 'tsup';

export function packageConfig(overrides: Options = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm'],
    // `@internal` members (cross-module hooks such as Consumer._pump) stay out of the published types.
    dts: { compilerOptions: { stripInternal: true } },
    sourcemap: true,
    clean: true,
    target: 'node20',
    ...overrides,
  });
}
