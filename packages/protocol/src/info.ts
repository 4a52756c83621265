// The JSON shapes of `query`, `declare`, `server`, `tracker` and `track_sub` replies (zbus-protocol.md §6),
// with the 0.11 field names. The broker builds them and the clients read them; fields marked zbus-ts are
// additions that 0.11 clients ignore.

export interface ServerAddress {
  /** `host:port` */
  address: string;
  sslEnabled: boolean;
}

export interface ConsumeGroupInfo {
  topicName: string;
  groupName: string;
  mask: number;
  filter: string;
  /** Messages the group has not consumed yet. */
  messageCount: number;
  consumerCount: number;
  /** Remote addresses of the consumer sessions. */
  consumerList: string[];
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  /** zbus-ts: deliveries waiting for an ack. */
  unackedCount?: number;
  /** zbus-ts: messages moved to `<topic>.dlq`. */
  deadLetterCount?: number;
  /** zbus-ts: next offset the group reads. */
  position?: number;
}

/**
 * zbus-ts: how much of a topic the broker keeps (the `topic_retention_*` declare headers). Each limit deletes whole
 * sealed segments from the head once it is exceeded, keeping at least the limit; an absent limit is no limit.
 */
export interface TopicRetention {
  /** Bytes on disk (`topic_retention_bytes`). */
  bytes?: number;
  /** Age of a segment's newest message, ms (`topic_retention_ms`). */
  ms?: number;
  /** Messages stored (`topic_retention_messages`). */
  messages?: number;
}

export interface TopicInfo {
  serverAddress: ServerAddress;
  serverVersion: string;
  topicName: string;
  mask: number;
  /** Messages ever written to the topic (0.11 meaning). */
  messageDepth: number;
  consumerCount: number;
  consumeGroupList: ConsumeGroupInfo[];
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  /** zbus-ts: bytes on disk. */
  bytes?: number;
  /** zbus-ts: corrupt records found (never served). */
  corruptRecords?: number;
  /** zbus-ts: delayed messages not yet due. */
  delayedCount?: number;
  /** zbus-ts: first offset still stored. */
  firstOffset?: number;
  /** zbus-ts: next offset to be written. */
  nextOffset?: number;
  /** zbus-ts: the limits set on the topic; absent when messages stay until removed. */
  retention?: TopicRetention;
}

export interface ServerInfo {
  serverAddress: ServerAddress;
  serverVersion: string;
  /** Grows on every change, across restarts too. */
  infoVersion: number;
  trackerList: ServerAddress[];
  topicTable: Record<string, TopicInfo>;
  /**
   * zbus-ts: set when this broker keeps its topics in a store shared with other brokers (`nats:<cluster>/<prefix>`);
   * brokers with the same value serve the same topics, groups and messages, so a client may use any of them.
   */
  sharedStore?: string;
}

export interface TrackerInfo {
  serverAddress: ServerAddress;
  serverVersion: string;
  infoVersion: number;
  /** Keyed by `host:port`, or `[SSL]host:port` for TLS servers. */
  serverTable: Record<string, ServerInfo>;
}

/** What a broker sends its trackers with `track_pub`. */
export interface ServerEvent {
  serverInfo: ServerInfo;
  certificate: string | null;
  live: boolean;
}
