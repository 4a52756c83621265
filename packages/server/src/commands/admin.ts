// query, remove and empty: the admin commands on topics and groups.
import { ZbusError } from '@zbus/protocol';
import { isShared } from '../cluster/shared-store.js';
import { errorReply } from '../errors.js';
import { groupInfo, serverInfo, topicInfo } from '../info.js';
import type { CommandContext } from './context.js';
import { requireGroup, requireTopic } from './lookup.js';
import { okAck, okJson } from './reply.js';

export async function query(ctx: CommandContext): Promise<void> {
  const { msg, state } = ctx;
  const shared = isShared(state.store) ? state.store : undefined;
  if (msg.topic === undefined || msg.topic === '') {
    await shared?.refresh();
    ctx.ticket.send(okJson(serverInfo(state, msg.token)));
    return;
  }
  const topic = requireTopic(ctx);
  // A shared store's counters move with every broker: read them fresh for the answer.
  await shared?.refresh(topic.name);
  if (msg.consumeGroup !== undefined && msg.consumeGroup !== '') {
    ctx.ticket.send(okJson(groupInfo(state, topic, requireGroup(ctx, topic)), topic.name));
    return;
  }
  ctx.ticket.send(okJson(topicInfo(state, topic), topic.name));
}

export async function remove(ctx: CommandContext): Promise<void> {
  const { msg, state } = ctx;
  const topic = requireTopic(ctx);
  const group = msg.consumeGroup;
  if (group !== undefined && group !== '') {
    const g = requireGroup(ctx, topic);
    state.dispatcher.groupRemoved(topic.name, g.name, (t) =>
      t.send(
        errorReply(new ZbusError('ZBUS_ERR_NOT_FOUND', `ConsumeGroup(${g.name}) Not Found`), topic.name),
      ),
    );
    await topic.removeGroup(g.name);
  } else {
    state.dispatcher.groupRemoved(topic.name, undefined, (t) =>
      t.send(errorReply(new ZbusError('ZBUS_ERR_NOT_FOUND', `Topic(${topic.name}) Not Found`), topic.name)),
    );
    await state.store.removeTopic(topic.name);
    state.metrics.forgetTopic(topic.name);
  }
  state.changed();
  ctx.ticket.send(okAck(Date.now(), topic.name));
}

/** 0.11 left `empty` unimplemented; here it drops the topic's messages, or moves one group to the end. */
export async function empty(ctx: CommandContext): Promise<void> {
  const { msg, state } = ctx;
  const topic = requireTopic(ctx);
  const group = msg.consumeGroup;
  if (group !== undefined && group !== '') await requireGroup(ctx, topic).empty();
  else await topic.empty();
  state.changed();
  ctx.ticket.send(okAck(Date.now(), topic.name));
}
