// The public surface of @zbus/protocol: explicit named exports only (style.md §2, §4).

export type { ResolvedCommand, RpcRequest } from './command.js';
export {
  parseUrl,
  resolveCommand,
  rpcRequestFromPath,
  rpcRequestFromUrl,
  tokenFromCookie,
} from './command.js';
export { decodeMessage, knowHeaderNames, MessageDecoder } from './decoder.js';
export {
  encodeHead,
  encodeHeaderLine,
  encodeHeaderLines,
  encodeMessage,
  encodeStartLine,
  keepAlive,
  putAscii,
  putDecimal,
  requestTarget,
  writeHead,
} from './encoder.js';
export type { RemoteErrorInfo, ZbusErrorCode, ZbusErrorOptions } from './errors.js';
export {
  createError,
  ERROR_CODES,
  errorFromReply,
  isZbusError,
  isZbusErrorCode,
  LimitError,
  ProtocolError,
  RpcError,
  STATUS_BY_CODE,
  ZbusError,
} from './errors.js';
export type { CmdName, HeaderName } from './headers.js';
export { Cmd, COMMANDS, Header, Mask, reasonPhrase, Status } from './headers.js';
export type {
  ConsumeGroupInfo,
  ServerAddress,
  ServerEvent,
  ServerInfo,
  TopicInfo,
  TopicRetention,
  TrackerInfo,
} from './info.js';
export type { DecoderLimits } from './limits.js';
export { DEFAULT_LIMITS, resolveLimits } from './limits.js';
export type { MessageInit } from './message.js';
export { createHeaders, Message } from './message.js';
export { messageFromObject, messageToObject, toCamelCase, toSnakeCase } from './object.js';
