// RPC by URL (zbus-protocol.md §4.2): a bodiless request to an RPC topic, `/<topic>/<module>/<method>/...` or the
// 0.8 `/rpc/<topic>/<method>/...?module=`, becomes the JSON request `{module, method, params}`.
import { type Message, type ResolvedCommand, type RpcRequest, rpcRequestFromPath } from '@zbus/protocol';
import { hasRpcMask } from '../commands/produce.js';
import type { Topic } from '../store/types.js';

/** Gives `msg` (a `produce` or `rpc` to `topic`) the JSON body its URL names, when it is an RPC call by URL. */
export function applyRpcByUrl(msg: Message, resolved: ResolvedCommand, topic: Topic | undefined): void {
  if (resolved.form === 'header' || msg.body.length > 0) return;
  if (resolved.cmd !== 'rpc' && (!topic || !hasRpcMask(topic))) return;
  // The URL as resolveCommand parsed it: not parsed a second time.
  const req = rpcRequestFromPath(resolved.path, resolved.query);
  if (!req) return;
  // Buffers from Node's pool: TextEncoder (Message.setBody) allocates a backing store per call. Plain JSON is
  // ASCII, so latin1 writes it without measuring its UTF-8 length first.
  const plain = plainJson(req);
  msg.body = plain === undefined ? Buffer.from(JSON.stringify(req), 'utf8') : Buffer.from(plain, 'latin1');
  msg.headers['content-type'] = 'application/json';
}

/**
 * What JSON.stringify(req) gives, built by hand when every string is printable ASCII with nothing to escape (URL
 * segments almost always are): JSON.stringify of this small object costs about a microsecond, several times the
 * concatenation. Undefined when some string needs escaping.
 */
export function plainJson(req: RpcRequest): string | undefined {
  const { module, method, params } = req;
  if (!isPlain(module) || !isPlain(method)) return undefined;
  let s = `{"module":"${module}","method":"${method}","params":[`;
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (typeof p !== 'string' || !isPlain(p)) return undefined;
    s += i === 0 ? `"${p}"` : `,"${p}"`;
  }
  return `${s}]}`;
}

/** Printable ASCII without `"` and `\`: a JSON string of it is the text in quotes. */
function isPlain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}
