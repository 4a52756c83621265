// @zbus/server: the zbus broker as a library. `createBroker(options)` then `listen()`; `close()` is graceful.

export type {
  ConsumeGroupInfo,
  ServerAddress,
  ServerInfo,
  TopicInfo,
  TopicRetention,
  TrackerInfo,
} from '@zbus/protocol';
export { type Broker, createBroker } from './broker.js';
// The store contract, for stores that live in other packages (`@zbus/store-nats`).
export type {
  ClusterLink,
  LinkReply,
  NatsClientOptions,
  SharedStore,
  SharedStoreModule,
  SharedStoreOptions,
  StoreChange,
} from './cluster/shared-store.js';
export type {
  AuthConfig,
  AuthTokenEntry,
  BrokerOptions,
  OptionsWithoutDefault,
  ResolvedBrokerOptions,
  TlsOptions,
} from './options.js';
export { DEFAULTS, InvalidOptionError, parseFsyncPolicy, resolveOptions } from './options.js';
export { Alarm, type Clock, MAX_TIMER_MS, systemClock, type TimerRef } from './store/clock.js';
export { CommitStats, Histogram } from './store/commit-stats.js';
export { type DeadLetterSink, deadLetterData, declareDlq } from './store/dead-letter.js';
export { compileFilter, type TagMatcher } from './store/filter.js';
export { DEFAULT_ACK_TIMEOUT_MS, DEFAULT_ACK_WINDOW, DEFAULT_MAX_DELIVER } from './store/group.js';
export { maxPosition, resolveStart, type StartSource } from './store/group-start.js';
export { MemoryBudget, MemoryTopic } from './store/memory-topic.js';
export { nameKey, validateName } from './store/names.js';
export type {
  AppendInput,
  AppendResult,
  DeadLetterInfo,
  Delivery,
  Durability,
  FsyncPolicy,
  Group,
  GroupConfig,
  GroupInfo as StoreGroupInfo,
  GroupStart,
  RetentionPolicy,
  Store,
  StoredRecord,
  StoreErrorCode,
  StoreLogger,
  StoreOptions,
  Topic,
  TopicConfig,
  TopicInfo as StoreTopicInfo,
} from './store/types.js';
export {
  STORE_MASK_ACK_REQUIRED,
  STORE_MASK_DELETE_ON_EXIT,
  STORE_MASK_EXCLUSIVE,
  STORE_MASK_MEMORY,
  StoreError,
} from './store/types.js';
