// ack, nack and touch of a delivery in an ack-required group, by `offset`.
import { ZbusError } from '@zbus/protocol';
import type { CommandContext } from './context.js';
import { intHeader, requireGroup, requireTopic } from './lookup.js';
import { okAck } from './reply.js';

function requireOffset(ctx: CommandContext): number {
  const offset = intHeader(ctx, 'offset');
  if (offset === undefined) throw new ZbusError('ZBUS_ERR_BAD_REQUEST', 'Bad Format, Missing offset');
  return offset;
}

/** 0.11 answers an ack only when `ack` is true (the Java ackAsync sends `ack: 0`). */
function answer(ctx: CommandContext, done: boolean): void {
  if (!ctx.msg.ack) {
    ctx.ticket.none();
    return;
  }
  const reply = okAck(Date.now(), ctx.msg.topic);
  if (!done) reply.set('pending', 'false'); // nothing was waiting at that offset
  ctx.ticket.send(reply);
}

export async function ack(ctx: CommandContext): Promise<void> {
  const topic = requireTopic(ctx);
  const group = requireGroup(ctx, topic);
  const offset = requireOffset(ctx);
  const done = await group.ack(offset);
  ctx.state.metrics.acked++;
  ctx.state.dispatcher.acked(ctx.session, topic.name, group.name, offset);
  answer(ctx, done);
}

/** The longest nack `reason` kept with a delivery (memory a client can make us hold is bounded). */
const MAX_REASON = 256;

export async function nack(ctx: CommandContext): Promise<void> {
  const topic = requireTopic(ctx);
  const group = requireGroup(ctx, topic);
  const delay = intHeader(ctx, 'delay');
  const offset = requireOffset(ctx);
  const reason = ctx.msg.headers.reason;
  const done = await group.nack(
    offset,
    delay !== undefined && delay > 0 ? delay : undefined,
    reason === undefined ? undefined : reason.slice(0, MAX_REASON),
  );
  ctx.state.dispatcher.acked(ctx.session, topic.name, group.name, offset);
  answer(ctx, done);
}

export async function touch(ctx: CommandContext): Promise<void> {
  const topic = requireTopic(ctx);
  const group = requireGroup(ctx, topic);
  answer(ctx, await group.touch(requireOffset(ctx)));
}
