// `@zbus/client-core`: the transport-agnostic client (no Node built-ins, no DOM-only APIs beyond timers and
// text coding), shared by `@zbus/client` (TCP) and `@zbus/client-browser` (WebSocket). Give it a
// TransportFactory and it does the rest. Explicit exports only (style.md §4).

export type {
  ConsumeGroupInfo,
  ServerAddress,
  ServerInfo,
  TopicInfo,
  TopicRetention,
  TrackerInfo,
} from '@zbus/protocol';
export type { MqAdminOptions, ServerResult } from './admin.js';
export { MqAdmin } from './admin.js';
export type {
  BoundBrokerOptions,
  BoundClientOptions,
  TransportBinding,
  TransportBindingSpec,
} from './bind.js';
export { bindTransport } from './bind.js';
export type { BrokerEvents, BrokerOptions, BrokerStats, ClientSource, RouteKind } from './broker.js';
export { BROKER_DEFAULTS, Broker } from './broker.js';
// the type of Producer's protected `budget` (for subclasses such as the Node client's Producer)
export type { Budget } from './budget.js';
export type {
  ClientState,
  ClientStats,
  ConsumeOptions,
  DeclareOptions,
  GroupOptions,
  MqClientEvents,
  NackOptions,
  ProduceOptions,
  ProduceResult,
  RequestOptions,
} from './client.js';
export { ackTime, expectOk, MqClient, produceResult } from './client.js';
export type { ReplyMap } from './connection.js';
export { queuedSize } from './connection.js';
export type {
  ConsumedMessage,
  ConsumerEvents,
  ConsumerOptions,
  ConsumerState,
  DeliveryControl,
  MessageHandler,
  NackBackoff,
} from './consumer.js';
export { CONSUMER_DEFAULTS, Consumer, NACK_BACKOFF_DEFAULTS } from './consumer.js';
export type { AsyncDisposableResource } from './dispose.js';
export type { LogFn, Logger } from './logger.js';
export { consoleLogger, silentLogger } from './logger.js';
export type { Body, PublishInput } from './messages.js';
export { restoreDelivery, setBody, toProduceMessage } from './messages.js';
export type { MqClientOptions, ResolvedClientOptions } from './options.js';
export { CLIENT_DEFAULTS } from './options.js';
export type { ProducerOptions, PublishOptions, RetryPolicy } from './producer.js';
export { PRODUCER_DEFAULTS, Producer, RETRY_DEFAULTS } from './producer.js';
export type { RouteTable, ServerSelector, ServerSelectors } from './route-table.js';
export { defaultSelectors, VOTE_FACTOR } from './route-table.js';
export { brokerRpcConnector } from './rpc.js';
export type { Transport, TransportConnectOptions, TransportFactory, TransportHandlers } from './transport.js';
