// RPC by URL (zbus-protocol.md §4.2): a bodiless request to an RPC topic, `/<topic>/<module>/<method>/...` or the
// 0.8 `/rpc/<topic>/<method>/...?module=`, becomes the JSON request `{module, method, params}`.
import { type Message, type ResolvedCommand, rpcRequestFromPath } from '@zbus/protocol';
import { hasRpcMask } from '../commands/produce.js';
import type { Topic } from '../store/types.js';

/** Gives `msg` (a `produce` or `rpc` to `topic`) the JSON body its URL names, when it is an RPC call by URL. */
export function applyRpcByUrl(msg: Message, resolved: ResolvedCommand, topic: Topic | undefined): void {
  if (resolved.form === 'header' || msg.body.length > 0) return;
  if (resolved.cmd !== 'rpc' && (!topic || !hasRpcMask(topic))) return;
  // The URL as resolveCommand parsed it: not parsed a second time.
  const req = rpcRequestFromPath(resolved.path, resolved.query);
  if (!req) return;
  // A Buffer from Node's pool: TextEncoder (Message.setBody) allocates a backing store per call.
  msg.body = Buffer.from(JSON.stringify(req), 'utf8');
  msg.headers['content-type'] = 'application/json';
}
