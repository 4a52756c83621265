// Which headers cross the proxy. A delivered message carries the broker's own headers (zbus-protocol.md §2,
// §7.6) next to the caller's; only the caller's go to the target. The target's response loses what would
// confuse the `route` back (RFC 9110 §7.6.1 hop-by-hop fields, and the broker's routing fields).

/** Set by the broker or the zbus protocol, never by the caller's HTTP request. */
const BROKER_HEADERS = new Set([
  'cmd',
  'topic',
  'id',
  'sender',
  'recver',
  'host',
  'remote-addr',
  'origin_id',
  'origin_url',
  'origin_method',
  'origin_status',
  'consume_group',
  'consume_window',
  'offset',
  'timestamp',
  'token',
  'ack',
  'retry',
  'tag',
  'encoding',
  'error_code',
  'durable',
]);

/** Connection-level fields (RFC 9110 §7.6.1) and framing that the HTTP client or the encoder sets anew. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'content-length',
]);

/** True when `name` (lower case) matches one of `filter`: an exact name, or a prefix written `prefix*`. */
export function filtered(name: string, filter: readonly string[]): boolean {
  for (const f of filter) {
    if (f.endsWith('*') ? name.startsWith(f.slice(0, -1)) : name === f) return true;
  }
  return false;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** Names listed in a `Connection` header are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionNames(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

/**
 * The headers sent to the target: the caller's, minus the broker's and hop-by-hop ones, minus `sendFilter`.
 * The decoder split `Content-Type: t; charset=c` into `content-type` and `encoding` (§1.1); it is joined
 * again. `x-forwarded-for` names the caller (from `remote-addr`), appended to one the caller sent.
 */
export function requestHeaders(
  headers: Record<string, string>,
  url: string,
  sendFilter: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  const hop = connectionNames(headers.connection);
  for (const name of Object.keys(headers)) {
    if (BROKER_HEADERS.has(name) || HOP_BY_HOP.has(name) || hop.includes(name)) continue;
    out[name] = headers[name] as string;
  }
  // The 0.11 URL rules (§4.1) copied each query pair into a header; the query itself goes to the target.
  const q = url.indexOf('?');
  if (q >= 0) {
    for (const pair of url.slice(q + 1).split('&')) {
      const eq = pair.indexOf('=');
      const key = (eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
      const raw = eq < 0 ? '' : pair.slice(eq + 1);
      const value = out[key];
      if (value !== undefined && (value === raw || value === safeDecode(raw))) delete out[key];
    }
  }
  const charset = headers.encoding;
  if (charset !== undefined) {
    out['content-type'] = `${headers['content-type'] ?? 'text/plain'}; charset=${charset}`;
  }
  const remote = headers['remote-addr'];
  if (remote !== undefined) {
    const ip = remote.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    const prior = out['x-forwarded-for'];
    out['x-forwarded-for'] = prior === undefined ? ip : `${prior}, ${ip}`;
  }
  for (const name of Object.keys(out)) if (filtered(name, sendFilter)) delete out[name];
  return out;
}

/**
 * The target's response headers that go back to the caller: minus hop-by-hop, minus anything that would
 * steer the `route` (`recver`, `id`, `cmd`, ...), minus `recvFilter`. Repeated fields (`set-cookie`) arrive
 * as lists; a zbus message holds one value per name, so they are joined with `, `.
 */
export function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
  recvFilter: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  const connection = headers.connection;
  const hop = connectionNames(Array.isArray(connection) ? connection.join(',') : connection);
  for (const [raw, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = raw.toLowerCase();
    if (BROKER_HEADERS.has(name) || HOP_BY_HOP.has(name) || hop.includes(name)) continue;
    if (filtered(name, recvFilter)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
