// `@zbus/client`: the Node.js client. Explicit exports only (style.md §4).

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
// RPC, bound to TCP above (bootstraps) or usable with any MqClient (`new RpcInvoker(client, { topic })`).
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
export type { HttpClientOptions } from './http.js';
export { HttpClient } from './http.js';
export type { NodeBrokerOptions, NodeClientOptions } from './node.js';
export {
  Broker,
  ClientBootstrap,
  DEFAULT_ADDRESS,
  MqClient,
  ServiceBootstrap,
  tcpRpcConnector,
} from './node.js';
export type { TcpTransportOptions } from './transport/tcp.js';
export { parseHostPort, tcpTransport } from './transport/tcp.js';
