export type {
  RpcConnection,
  RpcConnector,
  RpcConnectorFactory,
  RpcServeOptions,
  RpcService,
} from './bootstrap.js';
export {
  Bootstrap,
  ClientBootstrap,
  DEFAULT_SERVICE_ADDRESS,
  DEFAULT_SERVICE_MASK,
  DEFAULT_SERVICE_WINDOW,
  ServiceBootstrap,
} from './bootstrap.js';
export type { BodyCodec, CodecOption } from './codec.js';
export {
  codecForContentType,
  decodeBody,
  JSON_CONTENT_TYPE,
  jsonCodec,
  MSGPACK_CONTENT_TYPE,
  resolveCodec,
} from './codec.js';
export { rpcErrorFromReply } from './errors.js';
export type { InvokeOptions, MessageInvoker, RpcCall, RpcProxy, UntypedModule } from './invoker.js';
export { RpcInvoker } from './invoker.js';
export type { ResolvedInvokerOptions, RpcInvokerOptions, RpcProcessorOptions } from './options.js';
export { DEFAULT_RPC_TIMEOUT, PROCESSOR_DEFAULTS } from './options.js';
export type { AddModuleOptions, RpcErrorBody, RpcMethodInfo, RpcRequestBody } from './processor.js';
export { coerceUrlParam, errorBody, RPC_ERROR_STATUS, RpcProcessor, rawRequest } from './processor.js';
