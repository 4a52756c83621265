import { packageConfig } from '../../tsup.shared';

// `msgpack` is its own entry (`@zbus/rpc/msgpack`): the only module that imports msgpackr.
export default packageConfig({
  entry: { index: 'src/index.ts', msgpack: 'src/msgpack.ts' },
  platform: 'neutral',
});
