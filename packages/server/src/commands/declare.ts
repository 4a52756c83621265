// declare: create or update a topic and/or a group. Without a group, the default group named as the topic
// is created too (decisions.md §1); `group_name_auto` picks a free name (topic, then topic0, topic1, ...).
import { Header, Mask, ZbusError } from '@zbus/protocol';
import { groupInfo, topicInfo } from '../info.js';
import { MAX_MEMORY_CAPACITY, parseFsyncPolicy } from '../options.js';
import type { GroupConfig, Topic, TopicConfig } from '../store/types.js';
import type { CommandContext } from './context.js';
import { boolHeader, intHeader, requireTopicName } from './lookup.js';
import { okJson } from './reply.js';

/** zbus-ts topic settings a declare may carry (docs/protocol.md); absent ones keep their current value. */
const TOPIC_SETTINGS = [
  'topic_fsync',
  'topic_retention_bytes',
  'topic_retention_ms',
  'topic_retention_messages',
  'topic_max_backlog',
  'topic_max_message_bytes',
  'topic_dedupe_window',
] as const;

export function hasTopicSettings(ctx: CommandContext): boolean {
  return TOPIC_SETTINGS.some((h) => ctx.msg.headers[h] !== undefined);
}

/**
 * Who declared: the token's `name` from the auth file, else the client's address. Never the token itself:
 * `creator` is shown to anyone who may query the topic, in tracker reports and on the monitor.
 */
function creatorOf(ctx: CommandContext): string {
  const token = ctx.msg.token;
  return (token !== undefined && ctx.state.auth?.nameOf(token)) || ctx.session.remoteAddress;
}

/** The config of a new topic, or of a re-declared one (`current`), with the request's settings applied. */
export function topicConfig(ctx: CommandContext, mask: number, current?: Topic): TopicConfig {
  const o = ctx.state.options;
  const config: TopicConfig = current ? { ...current.config, mask } : { mask, creator: creatorOf(ctx) };
  if (!current) {
    if ((mask & Mask.Memory) !== 0) config.maxBacklog = o.memoryTopicCapacity;
    if (o.dedupeWindowMs > 0) config.dedupeWindowMs = o.dedupeWindowMs;
    config.maxMessageBytes = o.maxBodyBytes + o.maxHeaderBytes;
  }
  const fsync = ctx.msg.headers.topic_fsync;
  if (fsync !== undefined) {
    try {
      config.fsync = parseFsyncPolicy(fsync);
    } catch {
      throw new ZbusError(
        'ZBUS_ERR_BAD_REQUEST',
        'Bad Format, topic_fsync must be always, never or interval=<ms>',
      );
    }
  }
  const retention = { ...config.retention };
  const bytes = intHeader(ctx, Header.TopicRetentionBytes);
  if (bytes !== undefined) retention.maxBytes = bytes;
  const age = intHeader(ctx, Header.TopicRetentionMs);
  if (age !== undefined) retention.maxAgeMs = age;
  const count = intHeader(ctx, Header.TopicRetentionMessages);
  if (count !== undefined) retention.maxMessages = count;
  if (Object.keys(retention).length > 0) config.retention = retention;
  // A memory topic holds its backlog in one array: its length is bounded like memoryTopicCapacity.
  const memory = (mask & Mask.Memory) !== 0;
  const backlog = intHeader(
    ctx,
    'topic_max_backlog',
    memory ? { max: MAX_MEMORY_CAPACITY, of: 'a memory topic' } : undefined,
  );
  if (backlog !== undefined) config.maxBacklog = backlog;
  const maxBytes = intHeader(ctx, 'topic_max_message_bytes');
  if (maxBytes !== undefined) config.maxMessageBytes = maxBytes;
  const dedupe = intHeader(ctx, 'topic_dedupe_window');
  if (dedupe !== undefined) config.dedupeWindowMs = dedupe;
  return config;
}

function groupConfig(ctx: CommandContext): GroupConfig {
  const h = ctx.msg.headers;
  const config: GroupConfig = {
    filter: h.group_filter ?? '',
    creator: creatorOf(ctx),
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

/**
 * Names (lower-cased) of the topics of a store and of the groups of a topic that declares still in progress are
 * creating. They count against maxTopics and maxGroupsPerTopic, so that pipelined declares cannot all pass the
 * check before the first exists, and `group_name_auto` never hands out a name twice.
 */
const creating = new WeakMap<object, Set<string>>();

function creatingIn(owner: object): Set<string> {
  let keys = creating.get(owner);
  if (!keys) {
    keys = new Set();
    creating.set(owner, keys);
  }
  return keys;
}

/**
 * Holds `name` as being created under `owner` until the returned release; ZBUS_ERR_LIMIT (`limit`) when the
 * `held` ones plus those being created reach `max`. A name already being created is not counted twice, nor one
 * that `exists` already (created, its declare not yet finished).
 */
function reserve(
  owner: object,
  name: string,
  held: number,
  exists: (name: string) => boolean,
  max: number,
  limit: string,
): () => void {
  const keys = creatingIn(owner);
  const key = name.toLowerCase();
  if (keys.has(key)) return () => {};
  let count = held;
  for (const k of keys) if (!exists(k)) count++;
  if (count >= max) throw new ZbusError('ZBUS_ERR_LIMIT', limit);
  keys.add(key);
  return () => keys.delete(key);
}

/**
 * A free group name: the prefix itself, then prefix0, prefix1, ... as 0.11 names them (MessageQueue.nextGroupName,
 * whose prefix is always the topic). The prefix is the named group, else the topic: the Java client's broadcast
 * consumers name the topic and ask for a new group each (createTempBroadcastGroup).
 */
function autoGroupName(topic: Topic, prefix: string): string {
  const taken = creatingIn(topic);
  const free = (n: string) => !topic.group(n) && !taken.has(n.toLowerCase());
  let name = prefix;
  for (let i = 0; !free(name); i++) name = `${prefix}${i}`;
  return name;
}

export async function declare(ctx: CommandContext): Promise<void> {
  const { msg, state } = ctx;
  const name = requireTopicName(ctx);
  const mask = intHeader(ctx, 'topic_mask');
  let topic = state.store.topic(name);
  const named = msg.consumeGroup !== undefined && msg.consumeGroup !== '';
  // With group_name_auto a named group is only the prefix of a new name: an existing group, the topic's
  // default one included, is never re-masked by it.
  const auto = boolHeader(ctx, 'group_name_auto');
  // A token limited to some groups may declare those (creating the topic with its defaults if need be); a mask
  // or setting for the whole topic, or a group name the broker picks, needs the topic without a group limit.
  const topicWide = (mask !== undefined && mask !== (topic?.mask ?? 0)) || hasTopicSettings(ctx) || auto;
  if (topicWide) state.auth?.checkWholeTopic('declare', msg.token, name);
  if (!topic || (mask !== undefined && mask !== topic.mask) || hasTopicSettings(ctx)) {
    const { store, options } = state;
    const release = topic
      ? undefined
      : reserve(
          store,
          name,
          store.topics().length,
          (k) => store.topic(k) !== undefined,
          options.maxTopics,
          `the broker holds ${options.maxTopics} topics (maxTopics)`,
        );
    topic = await store
      .declareTopic(name, topicConfig(ctx, mask ?? topic?.mask ?? 0, topic))
      .finally(release);
  }
  if (named || auto) {
    const groupName = auto ? autoGroupName(topic, named ? msg.consumeGroup! : topic.name) : msg.consumeGroup!;
    const max = state.options.maxGroupsPerTopic;
    const release = topic.group(groupName)
      ? undefined
      : reserve(
          topic,
          groupName,
          topic.groups().length,
          (k) => topic.group(k) !== undefined,
          max,
          `topic ${topic.name} has ${max} groups (maxGroupsPerTopic)`,
        );
    const group = await topic.declareGroup(groupName, groupConfig(ctx)).finally(release);
    state.changed();
    ctx.ticket.send(okJson(groupInfo(state, topic, group), topic.name));
    return;
  }
  if (!topic.group(topic.name)) await topic.declareGroup(topic.name, groupConfig(ctx));
  state.changed();
  ctx.ticket.send(okJson(topicInfo(state, topic), topic.name));
}
