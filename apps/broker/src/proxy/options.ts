// Options of `zbus proxy` (zbus-protocol.md §12 `httpProxy`): one source of truth for the library function,
// the CLI flags and the JSON config file.

/** One entry topic and where its requests go. */
export interface ProxyEntryOptions {
  /** The entry topic: callers reach the target through `http://<broker>/<entry>/<path>`. */
  entry: string;
  /** Target base URL(s), `http://host:port[/base]`; several are used round-robin. */
  target: string | string[];
  /**
   * Connections consuming the entry topic.
   * @default 4
   */
  connections?: number;
  /**
   * Requests in flight per connection (the consume window).
   * @default 16
   */
  window?: number;
  /** Token for this entry's connections; the proxy's `token` when absent. */
  token?: string;
  /**
   * Milliseconds the target has to answer (headers and body). Keep it at or below the broker's RPC timeout
   * (10 s by default), which answers 504 on its own after that.
   * @default 10000
   */
  timeout?: number;
  /** Header names not sent to the target; `x-internal-*` matches a prefix. @default [] */
  sendFilter?: string[];
  /** Header names of the target's response not returned to the caller; `prefix*` as above. @default [] */
  recvFilter?: string[];
  /**
   * Largest request or response body, bytes. A larger request is refused with 413 and never forwarded; a
   * larger response is cut off and answered with 502. Keep it below the broker's `--max-body`.
   * @default 8388608
   */
  maxBodyBytes?: number;
}

/** Options of {@link startProxy}. */
export interface ProxyOptions {
  /**
   * The broker to connect to (outbound), `host:port`.
   * @default '127.0.0.1:15555'
   */
  broker?: string;
  /** Token for every entry that has none. */
  token?: string;
  /** The entries; at least one. */
  entries: ProxyEntryOptions[];
  /**
   * First delay, ms, before connecting again after the broker could not be reached; doubles up to
   * `reconnectMaxDelay`.
   * @default 100
   */
  reconnectDelay?: number;
  /**
   * Largest reconnect delay, ms.
   * @default 5000
   */
  reconnectMaxDelay?: number;
  /** Receives what the proxy has to say (connected, retrying, failures). Silent when absent. */
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export const ENTRY_DEFAULTS = {
  connections: 4,
  window: 16,
  timeout: 10_000,
  sendFilter: [] as string[],
  recvFilter: [] as string[],
  maxBodyBytes: 8 * 1024 * 1024,
} satisfies Required<Omit<ProxyEntryOptions, 'entry' | 'target' | 'token'>>;

export const PROXY_DEFAULTS = {
  broker: '127.0.0.1:15555',
  reconnectDelay: 100,
  reconnectMaxDelay: 5_000,
} satisfies Required<Omit<ProxyOptions, 'token' | 'entries' | 'log'>>;

export interface ResolvedEntry {
  readonly entry: string;
  readonly targets: readonly URL[];
  readonly connections: number;
  readonly window: number;
  readonly token: string | undefined;
  readonly timeout: number;
  readonly sendFilter: readonly string[];
  readonly recvFilter: readonly string[];
  readonly maxBodyBytes: number;
}

export interface ResolvedProxyOptions {
  readonly broker: string;
  readonly entries: readonly ResolvedEntry[];
  readonly reconnectDelay: number;
  readonly reconnectMaxDelay: number;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** A bad option: the message names it. */
export class ProxyConfigError extends Error {
  readonly code = 'ZBUS_ERR_INVALID_ARGUMENT';
  constructor(message: string) {
    super(message);
    this.name = 'ProxyConfigError';
  }
}

function int(value: unknown, name: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ProxyConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function names(value: unknown, name: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) {
    throw new ProxyConfigError(`${name} must be a list of header names, got ${JSON.stringify(value)}`);
  }
  return value.map((v: string) => v.toLowerCase());
}

function targetUrl(value: unknown, name: string): URL {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new ProxyConfigError(`${name} is not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProxyConfigError(`${name} must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ProxyConfigError(`${name} must have no query or fragment, got ${JSON.stringify(value)}`);
  }
  return url;
}

/** Topic names the broker accepts in a URL: no `/`, `?`, `#` or blanks. */
const ENTRY_NAME = /^[^/?#\s]+$/;

function resolveEntry(e: ProxyEntryOptions, i: number, token: string | undefined): ResolvedEntry {
  const at = `entries[${i}]`;
  if (e === null || typeof e !== 'object') throw new ProxyConfigError(`${at} must be an object`);
  if (typeof e.entry !== 'string' || !ENTRY_NAME.test(e.entry)) {
    throw new ProxyConfigError(`${at}.entry must be a topic name, got ${JSON.stringify(e.entry)}`);
  }
  const list = Array.isArray(e.target) ? e.target : [e.target];
  if (list.length === 0 || e.target === undefined) {
    throw new ProxyConfigError(`${at}.target needs at least one URL`);
  }
  const o = { ...ENTRY_DEFAULTS };
  for (const [k, v] of Object.entries(e)) if (v !== undefined) (o as Record<string, unknown>)[k] = v;
  if (e.token !== undefined && typeof e.token !== 'string')
    throw new ProxyConfigError(`${at}.token must be a string`);
  return Object.freeze({
    entry: e.entry,
    targets: Object.freeze(list.map((t, j) => targetUrl(t, `${at}.target[${j}]`))),
    connections: int(o.connections, `${at}.connections`, 1),
    window: int(o.window, `${at}.window`, 1),
    token: e.token ?? token,
    timeout: int(o.timeout, `${at}.timeout`, 1),
    sendFilter: Object.freeze(names(o.sendFilter, `${at}.sendFilter`)),
    recvFilter: Object.freeze(names(o.recvFilter, `${at}.recvFilter`)),
    maxBodyBytes: int(o.maxBodyBytes, `${at}.maxBodyBytes`, 0),
  });
}

/** Spreads `options` over the defaults, checks every value and returns a frozen copy. */
export function resolveProxyOptions(options: ProxyOptions): ResolvedProxyOptions {
  if (options === null || typeof options !== 'object')
    throw new ProxyConfigError('options must be an object');
  if (!Array.isArray(options.entries) || options.entries.length === 0) {
    throw new ProxyConfigError('entries needs at least one entry');
  }
  const broker = options.broker ?? PROXY_DEFAULTS.broker;
  if (typeof broker !== 'string' || !/^[^\s:]+:\d+$|^\[[^\]]+\]:\d+$/.test(broker)) {
    throw new ProxyConfigError(`broker must be host:port, got ${JSON.stringify(broker)}`);
  }
  if (options.token !== undefined && typeof options.token !== 'string')
    throw new ProxyConfigError('token must be a string');
  const entries = options.entries.map((e, i) => resolveEntry(e, i, options.token));
  const seen = new Set<string>();
  for (const e of entries) {
    const key = e.entry.toLowerCase(); // topic names are case-insensitive
    if (seen.has(key)) throw new ProxyConfigError(`entry ${e.entry} is listed twice`);
    seen.add(key);
  }
  const reconnectDelay = int(options.reconnectDelay ?? PROXY_DEFAULTS.reconnectDelay, 'reconnectDelay', 1);
  const reconnectMaxDelay = int(
    options.reconnectMaxDelay ?? PROXY_DEFAULTS.reconnectMaxDelay,
    'reconnectMaxDelay',
    reconnectDelay,
  );
  const log = options.log ?? (() => {});
  if (typeof log !== 'function') throw new ProxyConfigError('log must be a function');
  return Object.freeze({ broker, entries: Object.freeze(entries), reconnectDelay, reconnectMaxDelay, log });
}
