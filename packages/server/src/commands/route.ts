// route: write a message to another session as a response (RPC replies). Never answered to the sender.
import { Message } from '@zbus/protocol';
import type { CommandContext } from './context.js';

/** Request-only headers that must not reach the caller (decisions.md §1). */
const DROPPED = ['cmd', 'ack', 'recver', 'remote-addr', 'origin_status', 'token'] as const;

export function route(ctx: CommandContext): void {
  const { msg, state } = ctx;
  ctx.ticket.none();
  // The answer settles the service's delivery: its consume_window gets the credit back (dispatcher.answered).
  if (msg.topic !== undefined && msg.id !== undefined)
    state.dispatcher.answered(ctx.session, msg.topic, msg.id);
  const recver = msg.recver;
  const id = msg.id;
  const target = recver === undefined ? undefined : state.sessions.get(recver);
  const status = msg.originStatus ?? 200;
  const reply = new Message({ status, headers: msg.headers, body: msg.body });
  for (const h of DROPPED) reply.delete(h);
  const waited = target !== undefined && id !== undefined && state.rpc.settle(target.id, id);
  // A reply whose call timed out (the caller already got 504) or whose caller left is counted, not delivered:
  // it would be a second answer to one request, or, for a plain-HTTP caller, an unsolicited response.
  const late = !waited && target !== undefined && id !== undefined && state.rpc.timedOut(target.id, id);
  if (!target || late || (!waited && !target.acceptsPushes) || !target.deliverRouted(reply)) {
    state.metrics.rpcUnroutableReplies++;
  }
}
