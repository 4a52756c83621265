// The contract between the broker and its durable store. The store knows nothing of sockets or of the wire
// format: a record is opaque bytes plus the few fields it indexes (id, tag, timestamp).
// Durations are milliseconds, sizes bytes, times epoch milliseconds.
//
// Two stores implement it: the embedded one (store.ts) and, in @zbus/store-nats, one on a NATS JetStream cluster
// shared by several brokers. For the second, lookups (topic(), groups(), info()) are synchronous reads of a
// cached view kept up to date by the store, offsets are the only handle on a delivery (an ack may reach a broker
// other than the one that delivered it), and whatever talks to storage returns a promise.
import type { Clock } from './clock.js';
import type { CommitStats } from './commit-stats.js';

/** When an append is acknowledged. `always`: after fsync (group commit); `interval`: fsync every N ms; `never`. */
export type FsyncPolicy = 'always' | 'never' | { intervalMs: number };

/**
 * What guarantee an append met when its promise resolved. `replicated`: stored by a quorum of the replicas of a
 * shared store (docs/scale-out.md).
 */
export type Durability = 'fsync' | 'interval' | 'none' | 'memory' | 'replicated';

/** 0.11 mask bits the store cares about (same numbering as the protocol). */
export const STORE_MASK_MEMORY = 1;
export const STORE_MASK_EXCLUSIVE = 16;
export const STORE_MASK_DELETE_ON_EXIT = 32;
export const STORE_MASK_ACK_REQUIRED = 64;

export interface RetentionPolicy {
  /** Delete whole segments once the topic's bytes on disk exceed this. */
  maxBytes?: number;
  /** Delete whole segments whose newest record is older than this. */
  maxAgeMs?: number;
  /** Delete whole segments once the topic holds more messages than this. */
  maxMessages?: number;
}

export interface TopicConfig {
  /** 0.11 topic mask; MEMORY (1) makes a bounded in-memory topic; fixed at creation. */
  mask: number;
  creator?: string;
  /** Overrides the store's policy for this topic. */
  fsync?: FsyncPolicy;
  retention?: RetentionPolicy;
  /** Appends larger than this fail with ZBUS_ERR_BODY_TOO_LARGE. */
  maxMessageBytes?: number;
  /** Memory topics: capacity in messages. Disk topics: max backlog of the slowest group (0 = unlimited). */
  maxBacklog?: number;
  /** A produce whose id was seen within this window is acknowledged without a second copy (0 = off). */
  dedupeWindowMs?: number;
}

export interface AppendInput {
  id: string;
  tag?: string;
  /** The opaque message bytes. */
  data: Uint8Array;
  /** Hold the message until this time; it becomes visible to groups then (survives restart). */
  deliverAt?: number;
}

export interface AppendResult {
  /** Per-topic sequence number (0, 1, 2, ...); -1 while a delayed message is still held. */
  offset: number;
  timestamp: number;
  durability: Durability;
  /** True when the id was seen within the dedupe window and nothing new was written. */
  duplicate: boolean;
  /** Set for delayed messages. */
  deliverAt?: number;
}

export interface StoredRecord {
  offset: number;
  timestamp: number;
  id: string;
  tag: string | undefined;
  data: Uint8Array;
}

export interface Delivery extends StoredRecord {
  /** 0 on a first delivery, n on the n-th redelivery. */
  retry: number;
}

export interface GroupStart {
  /** Copy the position of this group (if it exists). */
  copy?: string;
  /** Start at this offset. */
  offset?: number;
  /** With `offset`: the id stored there must equal this, else ZBUS_ERR_SEEK. */
  msgId?: string;
  /** Start at the first record stored at or after this time. */
  time?: number;
}

export interface GroupConfig {
  /** 0.11 tag filter (`*`, `#`, `;`); empty or absent: everything. */
  filter?: string;
  mask?: number;
  start?: GroupStart;
  /** Max unacked deliveries in ack mode (default 100). */
  ackWindow?: number;
  /** Redeliver an unacked message after this (default 10 s). */
  ackTimeoutMs?: number;
  /** After this many deliveries the message goes to `<topic>.dlq` (default 5). */
  maxDeliver?: number;
  creator?: string;
}

export interface GroupInfo {
  topicName: string;
  groupName: string;
  mask: number;
  filter: string;
  /** Messages not yet read by this group (that pass no filter test yet). */
  backlog: number;
  unacked: number;
  deadLettered: number;
  /** Next offset this group will read. */
  position: number;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
}

export interface TopicInfo {
  topicName: string;
  mask: number;
  /** Messages ever written (0.11 `messageDepth`). */
  messageDepth: number;
  /** First offset still stored (after retention/empty). */
  firstOffset: number;
  /** Next offset to be written. */
  nextOffset: number;
  bytes: number;
  corruptRecords: number;
  delayed: number;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  groups: GroupInfo[];
}

export interface Group {
  readonly name: string;
  readonly topic: Topic;
  readonly mask: number;
  readonly filter: string;
  /**
   * The next record for this group: an expired unacked delivery first (retry + 1), else the next record that
   * passes the filter. Undefined when nothing is ready or the ack window is full. In ack mode the delivery is
   * tracked with a deadline; otherwise the position is advanced (at-most-once). Overlapping calls on one group
   * each get a distinct record.
   */
  next(): Promise<Delivery | undefined>;
  /**
   * Up to `max` records as next() would return them one by one (fewer when nothing more is ready, the ack window
   * fills, or they add up to `maxBytes` of data; at least one when any is ready), in one serial step of the group.
   * Optional: the dispatcher falls back to next().
   */
  nextBatch?(max: number, maxBytes: number): Promise<Delivery[]>;
  /**
   * What next() would return, when the store can tell without waiting (the record is in memory and nothing else
   * on the group is in flight): a delivery, or undefined when nothing is ready. Null when it cannot; then call
   * next() or nextBatch(). Optional: a consumer that keeps up is served without a promise per message.
   */
  nextNow?(): Delivery | undefined | null;
  /**
   * True when acked; false when the offset was not pending. A store that settles in memory answers at once (a
   * boolean, no promise per ack); one that talks to storage returns a promise.
   */
  ack(offset: number): boolean | Promise<boolean>;
  /**
   * Make the offset deliverable again, now or after `delayMs`. `reason` (why the consumer gave it back) is kept
   * with the delivery and given to the dead-letter hook if the message ends up there.
   */
  nack(offset: number, delayMs?: number, reason?: string): boolean | Promise<boolean>;
  /** Extend the deadline of a pending delivery by the group's ack timeout. */
  touch(offset: number): boolean | Promise<boolean>;
  /** Move the position to the end of the log and drop pending acks. */
  empty(): Promise<void>;
  /** Change filter, mask and position as a re-declare does. */
  update(config: GroupConfig): Promise<void>;
  info(): GroupInfo;
}

export interface Topic {
  readonly name: string;
  readonly mask: number;
  readonly config: Readonly<TopicConfig>;
  append(input: AppendInput): Promise<AppendResult>;
  /**
   * append() done at once, throwing what it would reject with: offered by topics that keep messages in memory,
   * so that a produce to one (an RPC call) needs no promise.
   */
  appendNow?(input: AppendInput): AppendResult;
  /**
   * append() answered through `stored` or `refused` (either may be called before appendThen returns) instead of
   * a promise: offered by topics that write to a log, so that a produce to one makes no promise of its own.
   */
  appendThen?(input: AppendInput, stored: (r: AppendResult) => void, refused: (err: unknown) => void): void;
  /** Random read by offset; undefined when not stored (or corrupt). */
  read(offset: number): Promise<StoredRecord | undefined>;
  /** Create or update a group (group names are case-insensitive). */
  declareGroup(name: string, config: GroupConfig): Promise<Group>;
  group(name: string): Group | undefined;
  groups(): Group[];
  removeGroup(name: string): Promise<boolean>;
  /** Remove every message; groups move to the end. */
  empty(): Promise<void>;
  info(): TopicInfo;
  /**
   * `listener` runs whenever a group may have something new to deliver: an append, a redelivery or a
   * delayed message coming due, a nack. Returns a function that removes the listener.
   */
  onAvailable(listener: () => void): () => void;
}

export interface StoreOptions {
  /** Data directory; one sub-directory per topic. */
  dataDir: string;
  /** @default 'always' */
  fsync?: FsyncPolicy;
  /** @default 64 MiB */
  segmentBytes?: number;
  /** Defaults for new topics. */
  topicDefaults?: Partial<Omit<TopicConfig, 'mask' | 'creator'>>;
  /** Defaults for new groups. */
  groupDefaults?: Pick<GroupConfig, 'ackWindow' | 'ackTimeoutMs' | 'maxDeliver'>;
  /** Structured logger (pino-compatible subset). */
  log?: StoreLogger;
  /** Time and timers (tests pass a manual clock). @default the system clock */
  clock?: Clock;
  /**
   * Most files the store keeps open at once (segments, indexes, journals); the least recently used idle one is
   * closed to make room. 0 or unset: half the process's open-file limit (`ulimit -n`), at least 64.
   */
  maxOpenFiles?: number;
  /**
   * fsync=always: longest time (ms) the oldest written append waits for the producers expected to share its
   * fdatasync while a slot for one is free (log-writer.ts). 0: no wait. @default 1
   */
  groupCommitWaitMs?: number;
  /**
   * Bytes all memory topics hold together (their messages and delayed messages); an append past it, once the
   * messages every group has read are dropped, fails with ZBUS_ERR_LIMIT. @default 256 MiB
   */
  maxMemoryTopicBytes?: number;
  /**
   * Bytes of recently written messages that disk topics keep in memory for consumers at the tail, all topics
   * together (each keeps up to 1 MiB); past it the topics written least recently give theirs up. @default 64 MiB
   */
  tailCacheBytes?: number;
  /**
   * Rewrites a record's bytes before it is appended to `<topic>.dlq` (the broker adds headers saying why and
   * from where; the store itself never parses the bytes). Default: the bytes unchanged.
   */
  deadLetter?: (data: Uint8Array, info: DeadLetterInfo) => Uint8Array;
  /**
   * Run once over a data directory (store/migrate-creators.ts): the creator that stored topics and groups keep.
   * Earlier versions stored the declaring token there. Default: no migration.
   */
  migrateCreator?: (creator: string) => string;
  /**
   * Called after a write batch made records visible and its readers (onAvailable listeners) ran, still in the
   * writer's turn of the event loop: the broker sends what they wrote (deliveries) now rather than at the end
   * of the next turn. Not after an fdatasync (fsync=always): that turn's end sends the acks and deliveries of
   * every generation it completed in one run of writes.
   */
  afterWake?: () => void;
}

export interface DeadLetterInfo {
  topic: string;
  group: string;
  offset: number;
  id: string;
  deliveries: number;
  reason: 'max_deliver';
  /** The last `reason` a consumer gave when it nacked the message. */
  error?: string;
}

export interface StoreLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

export interface Store {
  readonly dataDir: string;
  /** Topic names are case-insensitive. */
  topic(name: string): Topic | undefined;
  /** Create the topic, or return it (a re-declare may change everything but the MEMORY bit). */
  declareTopic(name: string, config: TopicConfig): Promise<Topic>;
  removeTopic(name: string): Promise<boolean>;
  topics(): Topic[];
  /** How group commit does under fsync=always (stores that fsync their own log files). */
  readonly commits?: CommitStats;
  /** fsync everything written so far. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Errors the store throws. Codes are the broker's `ZBUS_ERR_*` codes so that the broker maps them to a status
 * without knowing the store: ZBUS_ERR_BAD_NAME (400), ZBUS_ERR_BODY_TOO_LARGE (413), ZBUS_ERR_LIMIT (429:
 * memory topic full, max backlog), ZBUS_ERR_NOT_FOUND (404), ZBUS_ERR_SEEK (500: start msgId mismatch),
 * ZBUS_ERR_NO_SPACE (507: disk full), ZBUS_ERR_CLOSED (503), ZBUS_ERR_STORE (500).
 */
export type StoreErrorCode =
  | 'ZBUS_ERR_BAD_NAME'
  | 'ZBUS_ERR_BODY_TOO_LARGE'
  | 'ZBUS_ERR_LIMIT'
  | 'ZBUS_ERR_NOT_FOUND'
  | 'ZBUS_ERR_SEEK'
  | 'ZBUS_ERR_NO_SPACE'
  | 'ZBUS_ERR_CLOSED'
  | 'ZBUS_ERR_STORE';

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
