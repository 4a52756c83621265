// declare: create or update a topic and/or a group. Without a group, the default group named as the topic
// is created too (decisions.md §1); `group_name_auto` picks a free name (topic, then topic1, topic2, ...).
import { Mask } from '@zbus/protocol';
import { groupInfo, topicInfo } from '../info.js';
import type { GroupConfig, Topic, TopicConfig } from '../store/types.js';
import type { CommandContext } from './context.js';
import { boolHeader, intHeader, requireTopicName } from './lookup.js';
import { okJson } from './reply.js';

export function topicConfig(ctx: CommandContext, mask: number): TopicConfig {
  const o = ctx.state.options;
  const config: TopicConfig = { mask, creator: ctx.msg.token ?? ctx.session.remoteAddress };
  if ((mask & Mask.Memory) !== 0) config.maxBacklog = o.memoryTopicCapacity;
  if (o.dedupeWindowMs > 0) config.dedupeWindowMs = o.dedupeWindowMs;
  config.maxMessageBytes = o.maxBodyBytes + o.maxHeaderBytes;
  return config;
}

function groupConfig(ctx: CommandContext): GroupConfig {
  const h = ctx.msg.headers;
  const config: GroupConfig = {
    filter: h.group_filter ?? '',
    creator: ctx.msg.token ?? ctx.session.remoteAddress,
  };
  const mask = intHeader(ctx, 'group_mask');
  if (mask !== undefined) config.mask = mask;
  const start: NonNullable<GroupConfig['start']> = {};
  if (h.group_start_copy) start.copy = h.group_start_copy;
  const offset = intHeader(ctx, 'group_start_offset');
  if (offset !== undefined) start.offset = offset;
  if (h.group_start_msgid) start.msgId = h.group_start_msgid;
  const time = intHeader(ctx, 'group_start_time');
  if (time !== undefined) start.time = time;
  if (Object.keys(start).length > 0) config.start = start;
  const ackWindow = intHeader(ctx, 'group_ack_window');
  if (ackWindow !== undefined) config.ackWindow = ackWindow;
  const ackTimeout = intHeader(ctx, 'group_ack_timeout');
  if (ackTimeout !== undefined) config.ackTimeoutMs = ackTimeout;
  const maxDeliver = intHeader(ctx, 'group_max_deliver');
  if (maxDeliver !== undefined) config.maxDeliver = maxDeliver;
  return config;
}

function autoGroupName(topic: Topic): string {
  if (!topic.group(topic.name)) return topic.name;
  for (let i = 1; ; i++) if (!topic.group(`${topic.name}${i}`)) return `${topic.name}${i}`;
}

export async function declare(ctx: CommandContext): Promise<void> {
  const { msg, state } = ctx;
  const name = requireTopicName(ctx);
  const mask = intHeader(ctx, 'topic_mask');
  let topic = state.store.topic(name);
  if (!topic || (mask !== undefined && mask !== topic.mask)) {
    topic = await state.store.declareTopic(name, topicConfig(ctx, mask ?? topic?.mask ?? 0));
  }
  const auto = boolHeader(ctx, 'group_name_auto');
  const named = msg.consumeGroup !== undefined && msg.consumeGroup !== '';
  if (named || auto) {
    const groupName = named ? msg.consumeGroup! : autoGroupName(topic);
    const group = await topic.declareGroup(groupName, groupConfig(ctx));
    state.changed();
    ctx.ticket.send(okJson(groupInfo(state, topic, group), topic.name));
    return;
  }
  if (!topic.group(topic.name)) await topic.declareGroup(topic.name, groupConfig(ctx));
  state.changed();
  ctx.ticket.send(okJson(topicInfo(state, topic), topic.name));
}
