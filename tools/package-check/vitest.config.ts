import { defineConfig, mergeConfig } from 'vitest/config';
import { packageConfig } from '../../vitest.shared';

export default mergeConfig(
  packageConfig(import.meta.dirname, { testTimeout: 120_000 }),
  defineConfig({ test: { globalSetup: ['test/global-setup.ts'] } }),
);
