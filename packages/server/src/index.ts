// @zbus/server: the zbus broker as a library. `createBroker(options)` then `listen()`; `close()` is graceful.

export type { ConsumeGroupInfo, ServerAddress, ServerInfo, TopicInfo, TrackerInfo } from '@zbus/protocol';
export { type Broker, createBroker } from './broker.js';
export type {
  AuthConfig,
  AuthTokenEntry,
  BrokerOptions,
  ResolvedBrokerOptions,
  TlsOptions,
} from './options.js';
export { DEFAULTS, parseFsyncPolicy, resolveOptions } from './options.js';
export type { FsyncPolicy } from './store/types.js';
