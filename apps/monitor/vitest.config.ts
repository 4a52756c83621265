import { packageConfig } from '../../vitest.shared';

export default packageConfig(import.meta.dirname, { testTimeout: 30_000 });
