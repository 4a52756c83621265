// route: write a message to another session as a response (RPC replies). Never answered to the sender. A route
// reaches a session only as the answer to a call that session made and is still waiting for, on a topic the
// router may serve (its `route` ACL): anything else would let one client push forged replies into any
// session whose id it learnt (issue 14 item 4). The reply to a call that timed out is dropped the same way.
import { Message } from '@zbus/protocol';
import { routed } from '../rpc/calls.js';
import type { CommandContext } from './context.js';
import { intHeader } from './lookup.js';

/** Request-only headers that must not reach the caller (decisions.md §1). */
const DROPPED: ReadonlySet<string> = new Set([
  'cmd',
  'ack',
  'recver',
  'remote-addr',
  'origin_status',
  'token',
]);

export function route(ctx: CommandContext): void {
  const { msg, state } = ctx;
  const id = msg.id;
  // Checked before anything is settled: a route with a status no HTTP reply can carry is refused (400).
  const status = intHeader(ctx, 'origin_status') ?? 200;
  const call = msg.recver !== undefined && id !== undefined ? state.rpc.waiting(msg.recver, id) : undefined;
  // A route that names a topic answers only a call made to that topic; one that names none is checked against
  // the call's topic (0.11 clients name it).
  const named = msg.topic;
  const answers =
    call !== undefined &&
    (named === undefined || named === call.topic || named.toLowerCase() === call.topic.toLowerCase());
  if (answers) state.auth?.check('route', msg.token, call.topic, undefined);
  ctx.ticket.none();
  // The answer settles the service's delivery: its consume_window gets the credit back (dispatcher.answered).
  if (named !== undefined && id !== undefined) state.dispatcher.answered(ctx.session, named, id);
  if (!answers) {
    state.metrics.rpcUnroutableReplies++;
    return;
  }
  state.rpc.settleCall(call);
  // A new header bag without the request-only headers: deleting them would turn the decoded bag into a slow
  // dictionary object.
  const reply = new Message();
  reply.status = status;
  const headers = reply.headers;
  const from = msg.headers;
  for (const k in from) if (!DROPPED.has(k)) headers[k] = from[k] as string;
  reply.body = msg.body;
  if (!routed(call, reply)) state.metrics.rpcUnroutableReplies++;
}
