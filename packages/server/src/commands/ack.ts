// ack, nack and touch of a delivery in an ack-required group, by `offset`. Synchronous when the store's group
// answers synchronously (the local store does): an ack costs no promise, no microtask and no in-flight tracking.
import { ZbusError } from '@zbus/protocol';
import type { Group } from '../store/types.js';
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

export function ack(ctx: CommandContext): void | Promise<void> {
  const topic = requireTopic(ctx);
  const group = requireGroup(ctx, topic);
  const offset = requireOffset(ctx);
  const result = group.ack(offset);
  if (typeof result === 'boolean') return countedAck(ctx, group, offset, result);
  return result.then((done) => countedAck(ctx, group, offset, done));
}

function countedAck(ctx: CommandContext, group: Group, offset: number, done: boolean): void {
  ctx.state.metrics.acked++;
  settled(ctx, group, offset, done);
}

/** The delivery is settled: its consumer's window gets the credit back, and the ack is answered. */
function settled(ctx: CommandContext, group: Group, offset: number, done: boolean): void {
  ctx.state.dispatcher.acked(ctx.session, group, offset, done);
  answer(ctx, done);
}

/** The longest nack `reason` kept with a delivery (memory a client can make us hold is bounded). */
const MAX_REASON = 256;

export function nack(ctx: CommandContext): void | Promise<void> {
  const topic = requireTopic(ctx);
  const group = requireGroup(ctx, topic);
  const delay = intHeader(ctx, 'delay');
  const offset = requireOffset(ctx);
  const reason = ctx.msg.headers.reason;
  const result = group.nack(
    offset,
    delay !== undefined && delay > 0 ? delay : undefined,
    reason === undefined ? undefined : reason.slice(0, MAX_REASON),
  );
  if (typeof result === 'boolean') return settled(ctx, group, offset, result);
  return result.then((done) => settled(ctx, group, offset, done));
}

export function touch(ctx: CommandContext): void | Promise<void> {
  const topic = requireTopic(ctx);
  const group = requireGroup(ctx, topic);
  const result = group.touch(requireOffset(ctx));
  if (typeof result === 'boolean') return answer(ctx, result);
  return result.then((done) => answer(ctx, done));
}
