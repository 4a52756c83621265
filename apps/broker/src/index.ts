// @zbus/broker: the `zbus` binary. As a library it exposes how the CLI turns flags into broker options.

export { PROXY_HELP, proxyOptionsFromArgs } from './proxy/cli.js';
export type { ForwardStats } from './proxy/forward.js';
export type {
  ProxyEntryOptions,
  ProxyOptions,
  ResolvedEntry,
  ResolvedProxyOptions,
} from './proxy/options.js';
export { ENTRY_DEFAULTS, PROXY_DEFAULTS, ProxyConfigError, resolveProxyOptions } from './proxy/options.js';
export type { ZbusProxy } from './proxy/proxy.js';
export { createProxy, PROXY_TOPIC_MASK, startProxy } from './proxy/proxy.js';
export { optionsFromArgs, SERVE_HELP, serve } from './serve.js';
