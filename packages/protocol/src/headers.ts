/**
 * Command, header, mask and status constants of the zbus 0.11 wire protocol (zbus-protocol.md §2, §5, §7.2)
 * plus the zbus-ts additions of decisions.md §2-§3. Header names are spelled exactly as on the wire.
 */

/** Command names (`cmd` header values). */
export const Cmd = {
  Produce: 'produce',
  Consume: 'consume',
  Unconsume: 'unconsume',
  Ack: 'ack',
  Nack: 'nack',
  Touch: 'touch',
  Route: 'route',
  Declare: 'declare',
  Query: 'query',
  Remove: 'remove',
  Empty: 'empty',
  Server: 'server',
  Tracker: 'tracker',
  TrackSub: 'track_sub',
  TrackPub: 'track_pub',
  Ssl: 'ssl',
  Heartbeat: 'heartbeat',
  Ping: 'ping',
  Rpc: 'rpc',
  Home: 'home',
  Login: 'login',
  Logout: 'logout',
  Js: 'js',
  Css: 'css',
  Img: 'img',
  Page: 'page',
  Favicon: 'favicon.ico',
} as const;

/** A command name. */
export type CmdName = (typeof Cmd)[keyof typeof Cmd];

/** Every command name; a first URL path segment in this set selects the 0.8 URL form (decisions.md §1). */
export const COMMANDS: ReadonlySet<string> = new Set<string>(Object.values(Cmd));

/** Header names (all lower case, as on the wire). */
export const Header = {
  Cmd: 'cmd',
  Topic: 'topic',
  TopicMask: 'topic_mask',
  ConsumeGroup: 'consume_group',
  GroupNameAuto: 'group_name_auto',
  GroupFilter: 'group_filter',
  GroupMask: 'group_mask',
  GroupStartCopy: 'group_start_copy',
  GroupStartOffset: 'group_start_offset',
  GroupStartMsgid: 'group_start_msgid',
  GroupStartTime: 'group_start_time',
  GroupAckWindow: 'group_ack_window',
  GroupAckTimeout: 'group_ack_timeout',
  TopicRetentionBytes: 'topic_retention_bytes',
  TopicRetentionMs: 'topic_retention_ms',
  TopicRetentionMessages: 'topic_retention_messages',
  ConsumeWindow: 'consume_window',
  ConsumeTimeout: 'consume_timeout',
  Offset: 'offset',
  Tag: 'tag',
  Id: 'id',
  Ack: 'ack',
  Token: 'token',
  Sender: 'sender',
  Recver: 'recver',
  Host: 'host',
  RemoteAddr: 'remote-addr',
  OriginId: 'origin_id',
  OriginUrl: 'origin_url',
  OriginMethod: 'origin_method',
  OriginStatus: 'origin_status',
  Timestamp: 'timestamp',
  Retry: 'retry',
  Version: 'version',
  Encoding: 'encoding',
  Server: 'server',
  Body: 'body',
  Delay: 'delay',
  DeliverAt: 'deliver_at',
  Durable: 'durable',
  ErrorCode: 'error_code',
  Timeout: 'timeout',
  MaxDeliver: 'max_deliver',
  Module: 'module',
  ContentType: 'content-type',
  ContentLength: 'content-length',
  TransferEncoding: 'transfer-encoding',
  Connection: 'connection',
  Upgrade: 'upgrade',
  Cookie: 'cookie',
  SetCookie: 'set-cookie',
  Location: 'location',
} as const;

/** A known header name. */
export type HeaderName = (typeof Header)[keyof typeof Header];

/** Topic and group masks, 0.11 numbering (zbus-protocol.md §7.2). */
export const Mask = {
  Disk: 0,
  Memory: 1,
  Rpc: 2,
  Proxy: 4,
  Pause: 8,
  Exclusive: 16,
  DeleteOnExit: 32,
  AckRequired: 64,
} as const;

/** Status codes used by zbus (zbus-protocol.md §3); 600 carries an RPC business error. */
export const Status = {
  Ok: 200,
  Found: 302,
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  PayloadTooLarge: 413,
  UriTooLong: 414,
  TooManyRequests: 429,
  HeadersTooLarge: 431,
  InternalError: 500,
  NotImplemented: 501,
  BadGateway: 502,
  ServiceUnavailable: 503,
  GatewayTimeout: 504,
  InsufficientStorage: 507,
  RpcError: 600,
} as const;

const REASONS: Record<number, string> = {
  100: 'Continue',
  101: 'Switching Protocols',
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
  507: 'Insufficient Storage',
  600: 'Error',
};

/** The reason phrase written after a status code ("Unknown" for codes without one). */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Unknown';
}
