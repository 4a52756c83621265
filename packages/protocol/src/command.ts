import { tokenKind } from './decoder.js';
import { cleanValue } from './encoder.js';
import { createError } from './errors.js';
import { COMMANDS } from './headers.js';
import { createHeaders, type Message } from './message.js';
import { utf8Encode } from './text.js';

/** How a request names its command (zbus-protocol.md §4, decisions.md §1). */
export interface ResolvedCommand {
  /** The lower-cased command, also written to the `cmd` header. */
  cmd: string;
  /** `header`: a `cmd` header (the URL is not parsed); `0.8`: `/<cmd>/<topic>/<group>`; `0.11`: `/<topic>/<group>?cmd=`. */
  form: 'header' | '0.8' | '0.11';
  /** URL-decoded path segments; empty ones are kept (`/a//b/` → `['a', '', 'b', '']`); `/` → `[]`. */
  path: readonly string[];
  /** URL-decoded query pairs (first occurrence of a key wins). */
  query: Readonly<Record<string, string>>;
}

/** What the header form resolves to: one shared empty path and query, not two new objects per request. */
const NO_PATH: readonly string[] = Object.freeze([]);
const NO_QUERY: Readonly<Record<string, string>> = Object.freeze(
  Object.create(null) as Record<string, string>,
);

/** An RPC call taken from a URL (zbus-protocol.md §4.2, §4.3). */
export interface RpcRequest {
  module: string;
  method: string;
  params: unknown[];
}

/** Commands whose second path segment (0.11 form) or third (0.8 form) is the consume group. */
const GROUP_COMMANDS: ReadonlySet<string> = new Set([
  'consume',
  'declare',
  'query',
  'remove',
  'empty',
  'unconsume',
  'ack',
  'nack',
  'touch',
]);

function decode(s: string): string {
  if (s.indexOf('%') === -1) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a malformed escape stays as sent
  }
}

/** Splits a URL into decoded path segments and query pairs. */
export function parseUrl(url: string): { path: string[]; query: Record<string, string> } {
  const hash = url.indexOf('#');
  if (hash >= 0) url = url.slice(0, hash);
  const q = url.indexOf('?');
  let p = q >= 0 ? url.slice(0, q) : url;
  // A header bag, not Object.create(null): a fast object, several times quicker to fill (message.ts).
  const query = createHeaders();
  if (q >= 0) {
    // Pair by pair with indexOf: no array of pairs, and no pair sliced out whole. The next `=` is searched for
    // again only once passed, so `?a&a&a...` is scanned once, not once per pair.
    const n = url.length;
    let nextEq = -1;
    for (let start = q + 1; start <= n; ) {
      let end = url.indexOf('&', start);
      if (end < 0) end = n;
      if (end > start) {
        // (an empty pair, `&&`, is harmless: zbus-protocol.md §4.1)
        if (nextEq < start) {
          nextEq = url.indexOf('=', start);
          if (nextEq < 0) nextEq = n;
        }
        const eq = nextEq < end ? nextEq : -1;
        const key = decode(url.slice(start, eq < 0 ? end : eq));
        if (key.length !== 0 && !(key in query)) query[key] = eq < 0 ? '' : decode(url.slice(eq + 1, end));
      }
      start = end + 1;
    }
  }
  // absolute-form targets (a proxy request): keep only the path
  if (!p.startsWith('/')) {
    const scheme = p.indexOf('://');
    if (scheme >= 0) {
      const slash = p.indexOf('/', scheme + 3);
      p = slash >= 0 ? p.slice(slash) : '/';
    }
  }
  if (p.startsWith('/')) p = p.slice(1);
  // Segment by segment with indexOf, as split('/') cuts them: split of a sliced string is a call into the runtime
  // (about 1,500 instructions per request, callgrind), where V8 caches only splits of internalized strings.
  const path: string[] = [];
  for (let start = 0; p.length !== 0; ) {
    const end = p.indexOf('/', start);
    if (end < 0) {
      path.push(decode(p.slice(start)));
      break;
    }
    path.push(decode(p.slice(start, end)));
    start = end + 1;
  }
  return { path, query };
}

/**
 * A topic or group name taken from the URL. One with CR, LF or NUL is refused (400 ZBUS_ERR_BAD_NAME), as the
 * store refuses it: written on one line like other values, `/a%00b` would silently address the topic `a b`.
 */
function urlName(kind: 'topic' | 'group', name: string): string {
  if (cleanValue(name) !== name) {
    throw createError(
      'ZBUS_ERR_BAD_NAME',
      `invalid ${kind} name ${JSON.stringify(name)}: CR, LF and NUL are not allowed`,
    );
  }
  return name;
}

/** `s` lower-cased, or `s` itself when no character changes (toLowerCase copies even then: a string per request). */
function lowerCase(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 65 && c <= 90) || c >= 128) return s.toLowerCase();
  }
  return s;
}

/**
 * Resolves the command of a request IN PLACE (zbus-protocol.md §4, decisions.md §1): a `cmd` header wins and the URL
 * is not parsed; else the 0.8 form applies when the first path segment is a command name; else the 0.11 form. Sets
 * the `cmd`, `topic` and `consume_group` headers, and merges URL-decoded query values as headers only where absent.
 * `/` is `home`; a URL with a path and no `cmd` is `produce`. A `?body=` value stands in for a missing body.
 */
export function resolveCommand(msg: Message): ResolvedCommand {
  const h = msg.headers;
  const header = h.cmd;
  if (header !== undefined) {
    const cmd = lowerCase(header.trim());
    // Stored only when it changed: a store to a header bag is megamorphic (the bags' shapes vary).
    if (cmd !== header) h.cmd = cmd;
    return { cmd, form: 'header', path: NO_PATH, query: NO_QUERY };
  }
  const { path, query } = parseUrl(msg.url);
  for (const k in query) {
    let name = k;
    const kind = tokenKind(name);
    if (kind === 0) continue; // not a possible header name
    if (kind === 2) name = name.toLowerCase();
    // A value from the URL may hold CR, LF or NUL (`%0D%0A`): headers get it on one line, as the encoder would
    // write it, so that every value in the bag is one line (encodeHeaderLines' `clean`). The body keeps its own;
    // a topic or group name is refused instead (urlName).
    if (h[name] === undefined) {
      const v = query[k] as string;
      h[name] =
        name === 'body'
          ? v
          : name === 'topic'
            ? urlName('topic', v)
            : name === 'consume_group'
              ? urlName('group', v)
              : cleanValue(v);
    }
  }
  if (h.body !== undefined) {
    if (msg.body.length === 0) {
      msg.body = utf8Encode(h.body);
      delete h.body;
    } else h.body = cleanValue(h.body);
  }
  const first = path[0];
  let cmd: string;
  let form: '0.8' | '0.11';
  let topic: string | undefined;
  let group: string | undefined;
  if (first !== undefined && COMMANDS.has(first.toLowerCase())) {
    form = '0.8';
    cmd = first.toLowerCase();
    topic = path[1];
    group = path[2];
  } else {
    form = '0.11';
    const q = h.cmd;
    if (q !== undefined && q.trim() !== '') cmd = q.trim().toLowerCase();
    else cmd = path.length === 0 || (path.length === 1 && first === '') ? 'home' : 'produce';
    topic = first;
    group = path[1];
  }
  h.cmd = cmd;
  if (topic !== undefined && topic !== '' && h.topic === undefined) h.topic = urlName('topic', topic);
  if (group !== undefined && group !== '' && GROUP_COMMANDS.has(cmd) && h.consume_group === undefined) {
    h.consume_group = urlName('group', group);
  }
  return { cmd, form, path, query };
}

/**
 * The RPC call a URL names: `/<topic>/<module>/<method>/<p1>/...` (empty segments kept: `/MyRpc//plus/1/2` calls
 * `plus` on the default module ''), or the 0.8 `/rpc/<topic>/<method>/<p...>?module=m`. Params are strings; one
 * trailing slash is ignored. Undefined when the URL names no topic.
 */
export function rpcRequestFromUrl(msg: Message): RpcRequest | undefined {
  const { path, query } = parseUrl(msg.url);
  return rpcRequestFromPath(path, query);
}

/** rpcRequestFromUrl on a URL parsed already (a ResolvedCommand's `path` and `query`). */
export function rpcRequestFromPath(
  path: readonly string[],
  query: Readonly<Record<string, string>>,
): RpcRequest | undefined {
  const end = path.length > 1 && path[path.length - 1] === '' ? path.length - 1 : path.length;
  const first = path[0];
  if (first === undefined || first === '') return undefined;
  if (first.toLowerCase() === 'rpc') {
    if (path[1] === undefined || path[1] === '') return undefined;
    return { module: query.module ?? '', method: end > 2 ? path[2]! : '', params: path.slice(3, end) };
  }
  return { module: end > 1 ? path[1]! : '', method: end > 2 ? path[2]! : '', params: path.slice(3, end) };
}

/**
 * The monitor login cookie's value (zbus-protocol.md §5), URL-decoded: `token`, or `__Host-token` as a broker
 * with TLS names it (a cookie browsers bind to the host and send over TLS only).
 */
export function tokenFromCookie(cookie: string | undefined): string | undefined {
  if (cookie === undefined) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name !== 'token' && name !== '__Host-token') continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return decode(v);
  }
  return undefined;
}
