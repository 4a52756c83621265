// Builds the 0.11 JSON info shapes (types in @zbus/protocol) from the store and the dispatcher.
import type {
  ConsumeGroupInfo,
  ServerAddress,
  ServerInfo,
  TopicInfo,
  TopicRetention,
  TrackerInfo,
} from '@zbus/protocol';
import { isShared } from './cluster/shared-store.js';
import type { BrokerState } from './commands/context.js';
import type { Group, Topic } from './store/types.js';

/** The protocol version 0.11 clients expect in info replies. */
export const SERVER_VERSION = '0.11.4';

export function serverAddress(state: BrokerState): ServerAddress {
  return { address: state.announced, sslEnabled: state.sslEnabled };
}

export function groupInfo(state: BrokerState, topic: Topic, group: Group): ConsumeGroupInfo {
  const g = group.info();
  const consumers = state.dispatcher.consumersOf(topic.name, group.name);
  return {
    topicName: topic.name,
    groupName: g.groupName,
    mask: g.mask,
    filter: g.filter,
    messageCount: g.backlog,
    consumerCount: consumers.length,
    consumerList: consumers.map((s) => s.remoteAddress),
    creator: g.creator,
    createdTime: g.createdTime,
    lastUpdatedTime: g.lastUpdatedTime,
    unackedCount: g.unacked,
    deadLetterCount: g.deadLettered,
    position: g.position,
  };
}

/** The retention limits in force on a topic (0 and absent mean none), or undefined when it has none. */
function retentionInfo(topic: Topic): TopicRetention | undefined {
  const r = topic.config.retention;
  const out: TopicRetention = {};
  if (r?.maxBytes) out.bytes = r.maxBytes;
  if (r?.maxAgeMs) out.ms = r.maxAgeMs;
  if (r?.maxMessages) out.messages = r.maxMessages;
  return Object.keys(out).length > 0 ? out : undefined;
}

export function topicInfo(state: BrokerState, topic: Topic): TopicInfo {
  const t = topic.info();
  const groups = topic.groups().map((g) => groupInfo(state, topic, g));
  const info: TopicInfo = {
    serverAddress: serverAddress(state),
    serverVersion: SERVER_VERSION,
    topicName: topic.name,
    mask: t.mask,
    messageDepth: t.messageDepth,
    consumerCount: groups.reduce((n, g) => n + g.consumerCount, 0),
    consumeGroupList: groups,
    creator: t.creator,
    createdTime: t.createdTime,
    lastUpdatedTime: t.lastUpdatedTime,
    bytes: t.bytes,
    corruptRecords: t.corruptRecords,
    delayedCount: t.delayed,
    firstOffset: t.firstOffset,
    nextOffset: t.nextOffset,
  };
  const retention = retentionInfo(topic);
  if (retention) info.retention = retention;
  return info;
}

/**
 * A table keyed by names clients choose. It has no prototype: on a plain object, `table['__proto__'] = x` sets
 * the prototype instead of adding a key (the topic vanished from every listing), and `constructor` or
 * `toString` would read as present before they are set.
 */
function nameTable<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** ServerInfo, its topic table filtered to what `token` may see. */
export function serverInfo(state: BrokerState, token: string | undefined): ServerInfo {
  const topicTable = nameTable<TopicInfo>();
  for (const t of state.store.topics()) {
    if (state.auth && !state.auth.canSee(token, t.name)) continue;
    topicTable[t.name] = topicInfo(state, t);
  }
  const info: ServerInfo = {
    serverAddress: serverAddress(state),
    serverVersion: SERVER_VERSION,
    infoVersion: state.tracker.infoVersion,
    trackerList: state.options.trackers.map((address) => ({ address, sslEnabled: false })),
    topicTable,
  };
  if (isShared(state.store)) info.sharedStore = state.store.sharedId;
  return info;
}

/** Table key of a server: `[SSL]` marks TLS servers as 0.11 does. */
export function serverKey(a: ServerAddress): string {
  return a.sslEnabled ? `[SSL]${a.address}` : a.address;
}

/** Strips the topics `token` may not see from another server's info. */
export function filterServerInfo(
  state: BrokerState,
  info: ServerInfo,
  token: string | undefined,
): ServerInfo {
  if (!state.auth) return info;
  const topicTable = nameTable<TopicInfo>();
  for (const [name, t] of Object.entries(info.topicTable ?? {})) {
    if (state.auth.canSee(token, name)) topicTable[name] = t;
  }
  return { ...info, topicTable };
}

export function trackerInfo(state: BrokerState, token: string | undefined): TrackerInfo {
  const self = serverInfo(state, token);
  const serverTable = nameTable<ServerInfo>();
  serverTable[serverKey(self.serverAddress)] = self;
  for (const [key, info] of state.tracker.servers) {
    if (key !== serverKey(self.serverAddress)) serverTable[key] = filterServerInfo(state, info, token);
  }
  return {
    serverAddress: self.serverAddress,
    serverVersion: SERVER_VERSION,
    infoVersion: state.tracker.infoVersion,
    serverTable,
  };
}
