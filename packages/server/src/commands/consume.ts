// consume: long-poll for messages of a group (or read one by `offset`); unconsume: stop.
import { ZbusError } from '@zbus/protocol';
import { buildDelivery } from '../mq/delivery.js';
import { STORE_MASK_EXCLUSIVE, type Topic } from '../store/types.js';
import type { CommandContext } from './context.js';
import { groupName, intHeader, requireGroup, requireTopic } from './lookup.js';

/** Synchronous but for a read by offset: queuing a long-poll awaits nothing, so it costs no promise. */
export function consume(ctx: CommandContext): void | Promise<void> {
  const { state, session, ticket } = ctx;
  const topic = requireTopic(ctx);
  const offset = intHeader(ctx, 'offset');
  if (offset !== undefined) return consumeAt(ctx, topic, offset);
  const group = requireGroup(ctx, topic);
  if ((group.mask & STORE_MASK_EXCLUSIVE) !== 0) {
    const others = state.dispatcher.consumersOf(topic.name, group.name).filter((s) => s !== session);
    if (others.length > 0) {
      throw new ZbusError('ZBUS_ERR_EXCLUSIVE', `ConsumeGroup(${group.name}) exclusive, forbbiden`);
    }
  }
  // A plain-HTTP long-poll can carry exactly one message back.
  const asked = intHeader(ctx, 'consume_window') ?? 1;
  const window = ticket.ordered ? 1 : Math.min(Math.max(asked, 1), state.options.maxConsumeWindow);
  const timeoutMs = intHeader(ctx, 'consume_timeout');
  state.dispatcher.addPull(session, topic, group, ticket.id, ticket, window, timeoutMs);
}

/**
 * Random read: one message by offset, 404 when there is none. Reads of one session take turns, so a client that
 * pipelines them without reading the answers holds one message past its high-water mark.
 */
async function consumeAt(ctx: CommandContext, topic: Topic, offset: number): Promise<void> {
  const turn = ctx.session.readTurn();
  if (turn) await turn;
  try {
    const rec = await topic.read(offset);
    if (!rec) throw new ZbusError('ZBUS_ERR_NOT_FOUND', `Message Not Found: offset=${offset}`);
    ctx.ticket.send(buildDelivery(rec, ctx.ticket.id, topic.name, ctx.msg.consumeGroup));
  } finally {
    ctx.session.readDone();
  }
}

export function unconsume(ctx: CommandContext): void {
  const topic = requireTopic(ctx);
  const name = groupName(ctx, topic);
  if (!topic.group(name)) throw new ZbusError('ZBUS_ERR_NOT_FOUND', `ConsumeGroup(${name}) Not Found`);
  ctx.state.dispatcher.unconsume(ctx.session, topic.name, name);
  ctx.ticket.none(); // no reply on success (0.9.3+)
}
