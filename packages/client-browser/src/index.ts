// `@zbus/client-browser`: the zbus client over the browser's WebSocket, the same API as `@zbus/client`.
// Explicit exports only (style.md §4).

export type {
  Body,
  BrokerEvents,
  BrokerOptions,
  ClientSource,
  ClientState,
  ConsumedMessage,
  ConsumeGroupInfo,
  ConsumeOptions,
  ConsumerOptions,
  DeclareOptions,
  DeliveryControl,
  GroupOptions,
  MessageHandler,
  MqAdminOptions,
  MqClientEvents,
  MqClientOptions,
  ProduceOptions,
  ProduceResult,
  ProducerOptions,
  PublishInput,
  PublishOptions,
  RequestOptions,
  RetryPolicy,
  RouteKind,
  RouteTable,
  ServerAddress,
  ServerInfo,
  ServerResult,
  ServerSelector,
  ServerSelectors,
  TopicInfo,
  TopicRetention,
  TrackerInfo,
  Transport,
  TransportConnectOptions,
  TransportFactory,
  TransportHandlers,
} from '@zbus/client-core';
export {
  BROKER_DEFAULTS,
  CLIENT_DEFAULTS,
  Consumer,
  defaultSelectors,
  MqAdmin,
  Producer,
  RETRY_DEFAULTS,
  restoreDelivery,
  VOTE_FACTOR,
} from '@zbus/client-core';
// The message model and typed errors, from the protocol package.
export type { RemoteErrorInfo, ZbusErrorCode } from '@zbus/protocol';
export {
  Cmd,
  Header,
  isZbusError,
  LimitError,
  Mask,
  Message,
  ProtocolError,
  RpcError,
  STATUS_BY_CODE,
  ZbusError,
} from '@zbus/protocol';
// RPC, bound to WebSocket below (bootstraps) or usable with any MqClient (`new RpcInvoker(client, { topic })`).
export type {
  AddModuleOptions,
  BodyCodec,
  CodecOption,
  InvokeOptions,
  MessageInvoker,
  RpcCall,
  RpcErrorBody,
  RpcInvokerOptions,
  RpcMethodInfo,
  RpcProcessorOptions,
  RpcProxy,
} from '@zbus/rpc';
export { RpcInvoker, RpcProcessor, rawRequest } from '@zbus/rpc';
export type { BrowserBrokerOptions, BrowserClientOptions, WsOptions } from './browser.js';
export {
  Broker,
  ClientBootstrap,
  defaultAddress,
  MqClient,
  ServiceBootstrap,
  wsRpcConnector,
} from './browser.js';
export { wakeUp } from './lifecycle.js';
export type { WebSocketTransportOptions } from './websocket.js';
export { TRANSPORT_DEFAULTS, webSocketTransport, webSocketUrl } from './websocket.js';
