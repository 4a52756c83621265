import { packageConfig } from '../../tsup.shared';

export default packageConfig({
  // `core` is the transport-agnostic client (no Node built-ins), imported by @zbus/client-browser as
  // `@zbus/client/core`. One build with code splitting, so both entries share one copy of the core classes.
  entry: { index: 'src/index.ts', core: 'src/core/index.ts' },
  splitting: true,
  platform: 'node',
});
