import { errorFromReply, type Message, RpcError, type ZbusError } from '@zbus/protocol';
import { type BodyCodec, decodeBody } from './codec.js';
import type { RpcErrorBody } from './processor.js';

/**
 * The error a non-200 RPC reply stands for. Status 600 (the service threw) becomes `ZBUS_ERR_RPC` carrying
 * the remote `{message, name, code, stack}` as `remote` (a JSON body, or one of `codecs`); any other status goes
 * through the protocol's `errorFromReply` (503 no responders, 504 timeout, 403, 404, ...).
 */
export function rpcErrorFromReply(
  reply: Message,
  label: string,
  codecs: readonly BodyCodec[] = [],
): ZbusError {
  if (reply.status !== 600) return errorFromReply(reply);
  let decoded: unknown;
  try {
    decoded = decodeBody(reply.contentType, reply.body, codecs);
  } catch {
    decoded = undefined;
  }
  const remote = toRemote(decoded);
  // The remote message is the error's message, as callers of 0.11 services expect; `label` only helps
  // when the service sent nothing readable.
  return new RpcError(remote.message || `${label} failed`, { ...remote }, { status: 600 });
}

function toRemote(decoded: unknown): RpcErrorBody {
  if (decoded !== null && typeof decoded === 'object' && !Array.isArray(decoded)) {
    const o = decoded as Record<string, unknown>;
    const remote: RpcErrorBody = {
      message: typeof o.message === 'string' ? o.message : JSON.stringify(decoded),
      name: typeof o.name === 'string' ? o.name : 'Error',
    };
    if (typeof o.code === 'string' || typeof o.code === 'number') remote.code = String(o.code);
    if (typeof o.stack === 'string') remote.stack = o.stack;
    // 0.11 Java services send `stackTrace` as an array of frames.
    else if (Array.isArray(o.stackTrace))
      remote.stack = o.stackTrace.map((f) => JSON.stringify(f)).join('\n');
    return remote;
  }
  if (typeof decoded === 'string') return { message: decoded, name: 'Error' };
  return { message: 'remote error', name: 'Error' };
}
