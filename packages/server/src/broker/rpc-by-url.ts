// RPC by URL (zbus-protocol.md §4.2): a bodiless request to an RPC topic, `/<topic>/<module>/<method>/...` or the
// 0.8 `/rpc/<topic>/<method>/...?module=`, becomes the JSON request `{module, method, params}`.
import { type Message, type ResolvedCommand, rpcRequestFromUrl } from '@zbus/protocol';
import { hasRpcMask } from '../commands/produce.js';
import type { Topic } from '../store/types.js';

/** Gives `msg` (a `produce` or `rpc` to `topic`) the JSON body its URL names, when it is an RPC call by URL. */
export function applyRpcByUrl(
  msg: Message,
  cmd: string,
  form: ResolvedCommand['form'],
  topic: Topic | undefined,
): void {
  if (form === 'header' || msg.body.length > 0) return;
  if (cmd !== 'rpc' && (!topic || !hasRpcMask(topic))) return;
  const req = rpcRequestFromUrl(msg);
  if (!req) return;
  msg.setBody(req);
  msg.set('content-type', 'application/json');
}
