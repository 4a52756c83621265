// A disk topic: a directory holding `topic.json` (name as declared, mask, config), the segmented log, the delay
// journal and `groups/`. This file holds the topic's metadata and lifecycle and puts its parts together:
//
//   append.ts      refuse / dedupe / hold / queue        log-writer.ts  the one writer, group commit
//   dedupe.ts      ids seen within the window           log-reader.ts  cursors, reads, seek by time
//   delay-queue.ts messages held until due              group-table.ts the groups and their timers
//   retention.ts   old segments deleted                 dead-letter.ts exhausted messages to <topic>.dlq
import fs from 'node:fs';
import path from 'node:path';
import { Appender } from './append.js';
import type { Clock } from './clock.js';
import type { CommitStats } from './commit-stats.js';
import { type DeadLetterSink, deadLetter } from './dead-letter.js';
import { Dedupe, rebuildDedupe } from './dedupe.js';
import { DelayQueue } from './delay-queue.js';
import type { FileCache } from './file-cache.js';
import { asStoreError, fsyncDir, TMP_SUFFIX, writeFileAtomic } from './fs-util.js';
import type { TopicPort } from './group.js';
import { GroupTable } from './group-table.js';
import type { TailCache } from './log.js';
import { LogReader } from './log-reader.js';
import { openLog } from './log-recovery.js';
import { LogWriter } from './log-writer.js';
import { Retention } from './retention.js';
import {
  type AppendInput,
  type AppendResult,
  type FsyncPolicy,
  type Group,
  type GroupConfig,
  type RetentionPolicy,
  STORE_MASK_MEMORY,
  type StoredRecord,
  StoreError,
  type StoreLogger,
  type StoreOptions,
  type Topic,
  type TopicConfig,
  type TopicInfo,
} from './types.js';

/** Largest message body accepted when neither the topic nor the store says otherwise. */
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/** Sanity bound for a record's length when reading (a corrupt length must not make us read gigabytes). */
const MAX_RECORD_BYTES = 1024 * 1024 * 1024;
/** Directories being deleted are renamed to start with this first. */
export const TRASH_PREFIX = '..trash-';
let trashSeq = 0;

/** What a topic needs from its store. */
export interface StoreContext extends DeadLetterSink {
  readonly dataDir: string;
  readonly fsync: FsyncPolicy;
  readonly segmentBytes: number;
  readonly groupCommitWaitMs: number;
  readonly topicDefaults: NonNullable<StoreOptions['topicDefaults']>;
  readonly groupDefaults: NonNullable<StoreOptions['groupDefaults']>;
  readonly log: StoreLogger | undefined;
  readonly clock: Clock;
  readonly files: FileCache;
  readonly tailCache: TailCache;
  readonly commits: CommitStats;
  readonly afterWake: StoreOptions['afterWake'];
}

/** Remove temp files a crash left in a topic directory and its `groups/` (atomic writes that never finished). */
async function removeTempFiles(dir: string): Promise<void> {
  for (const d of [dir, path.join(dir, 'groups')]) {
    const names = await fs.promises.readdir(d).catch(() => [] as string[]);
    for (const n of names) {
      if (n.endsWith(TMP_SUFFIX)) await fs.promises.rm(path.join(d, n), { force: true });
    }
  }
}

interface TopicMeta {
  name: string;
  mask: number;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  config: TopicConfig;
}

export class DiskTopic implements Topic, TopicPort {
  name: string;
  mask: number;
  config: TopicConfig;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  reader!: LogReader;
  writer!: LogWriter;
  delays!: DelayQueue;
  appender!: Appender;
  retention!: Retention;
  readonly groupTable: GroupTable;
  readonly listeners = new Set<() => void>();
  closed = false;
  #removed = false;
  readonly groupsDir: string;

  private constructor(
    readonly store: StoreContext,
    readonly dir: string,
    meta: TopicMeta,
  ) {
    this.name = meta.name;
    this.mask = meta.mask & ~STORE_MASK_MEMORY;
    this.config = meta.config;
    this.creator = meta.creator;
    this.createdTime = meta.createdTime;
    this.lastUpdatedTime = meta.lastUpdatedTime;
    this.groupsDir = path.join(dir, 'groups');
    this.groupTable = new GroupTable(this);
  }

  static async create(
    store: StoreContext,
    dir: string,
    name: string,
    config: TopicConfig,
  ): Promise<DiskTopic> {
    // A directory left by a topic that could not be opened is reused, never deleted; a new one is removed again
    // if the topic cannot be created in it (no half-created topic is left behind).
    const existed = await fs.promises.stat(dir).then(
      () => true,
      () => false,
    );
    try {
      return await DiskTopic.#create(store, dir, name, config);
    } catch (err) {
      if (!existed) await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
  }

  static async #create(
    store: StoreContext,
    dir: string,
    name: string,
    config: TopicConfig,
  ): Promise<DiskTopic> {
    await fs.promises.mkdir(path.join(dir, 'groups'), { recursive: true });
    await removeTempFiles(dir);
    const now = store.clock.now();
    const meta: TopicMeta = {
      name,
      mask: config.mask & ~STORE_MASK_MEMORY,
      creator: config.creator ?? '',
      createdTime: now,
      lastUpdatedTime: now,
      config: { ...config, mask: config.mask & ~STORE_MASK_MEMORY },
    };
    await writeFileAtomic(path.join(dir, 'topic.json'), JSON.stringify(meta), true);
    const t = new DiskTopic(store, dir, meta);
    await t.#start();
    if (t.fsyncPolicy !== 'never') {
      // Make the new directory entries themselves durable: the topic, its first segment, groups/.
      await fsyncDir(dir);
      await fsyncDir(store.dataDir);
    }
    return t;
  }

  /** Open an existing topic directory; undefined when it holds no topic. */
  static async open(store: StoreContext, dir: string): Promise<DiskTopic | undefined> {
    let meta: TopicMeta;
    try {
      meta = JSON.parse(await fs.promises.readFile(path.join(dir, 'topic.json'), 'utf8')) as TopicMeta;
    } catch {
      return undefined;
    }
    await fs.promises.mkdir(path.join(dir, 'groups'), { recursive: true });
    await removeTempFiles(dir);
    const t = new DiskTopic(store, dir, meta);
    await t.#start();
    return t;
  }

  // ---------------------------------------------------------------- settings (the topic's, else the store's)

  get fsyncPolicy(): FsyncPolicy {
    return this.config.fsync ?? this.store.topicDefaults.fsync ?? this.store.fsync;
  }
  get retentionPolicy(): RetentionPolicy | undefined {
    return this.config.retention ?? this.store.topicDefaults.retention;
  }
  get maxMessageBytes(): number {
    return (
      this.config.maxMessageBytes ?? this.store.topicDefaults.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    );
  }
  get maxBacklog(): number {
    return this.config.maxBacklog ?? this.store.topicDefaults.maxBacklog ?? 0;
  }
  get dedupeWindowMs(): number {
    return this.config.dedupeWindowMs ?? this.store.topicDefaults.dedupeWindowMs ?? 0;
  }
  get fsyncAlways(): boolean {
    return this.fsyncPolicy === 'always';
  }
  get syncFiles(): boolean {
    return this.fsyncPolicy !== 'never';
  }
  get clock(): Clock {
    return this.store.clock;
  }
  get groupDefaults(): NonNullable<StoreOptions['groupDefaults']> {
    return this.store.groupDefaults;
  }
  /** The contract's view of this topic (for its groups). */
  get topic(): Topic {
    return this;
  }

  get files(): FileCache {
    return this.store.files;
  }

  /** Open the parts; if one fails, close those already open (no file stays open) and rethrow. */
  async #start(): Promise<void> {
    try {
      await this.#init();
    } catch (err) {
      this.closed = true;
      this.retention?.stop();
      await this.groupTable.destroy().catch(() => {});
      await this.delays?.close(false).catch(() => {});
      await this.writer?.close().catch(() => {});
      throw err;
    }
  }

  async #init(): Promise<void> {
    const clock = this.clock;
    const log = await openLog({
      dir: this.dir,
      name: this.name,
      maxRecordBytes: MAX_RECORD_BYTES,
      log: this.store.log,
      files: this.files,
      tailCache: this.store.tailCache,
    });
    this.reader = new LogReader(log);
    this.writer = new LogWriter(log, {
      segmentBytes: this.store.segmentBytes,
      groupWaitMs: this.store.groupCommitWaitMs,
      fsync: this.fsyncPolicy,
      clock,
      commits: this.store.commits,
      onVisible: (inWriteTurn) => {
        this.notify();
        if (inWriteTurn) this.store.afterWake?.();
      },
      onRoll: () => void this.retention.apply(),
    });
    this.retention = new Retention(
      this.writer,
      clock,
      () => this.retentionPolicy,
      (first) => this.groupTable.dropBelow(first),
      (err) => this.logError(err, 'retention failed'),
    );
    this.delays = await DelayQueue.open(this.dir, {
      clock,
      release: (m) => this.appender.appendNow(m.id, m.tag, m.data),
      onError: (err, msg) => this.logError(err, msg),
      wantIds: this.dedupeWindowMs > 0,
      files: this.files,
    });
    this.appender = new Appender(this.name, this, this.writer, this.delays, this.groupTable, clock);
    await this.groupTable.load();
    const window = this.dedupeWindowMs;
    if (window > 0) {
      const held = this.delays.heldAtOpen ?? [];
      this.delays.heldAtOpen = undefined;
      this.appender.dedupe = await rebuildDedupe(window, this.reader, clock.now(), held);
    }
    await this.retention.apply();
    this.retention.start();
    this.delays.start();
  }

  async redeclare(config: TopicConfig): Promise<void> {
    this.mask = config.mask & ~STORE_MASK_MEMORY;
    this.config = { ...config, mask: this.mask };
    if (config.creator === undefined && this.creator) this.config.creator = this.creator;
    this.lastUpdatedTime = this.clock.now();
    this.writer.fsync = this.fsyncPolicy;
    const w = this.dedupeWindowMs;
    const appender = this.appender;
    if (w === 0) appender.dedupe = undefined;
    else if (appender.dedupe === undefined) appender.dedupe = new Dedupe(w);
    else appender.dedupe.windowMs = w;
    await this.#saveMeta();
    this.retention.start();
    await this.retention.apply();
  }

  #saveMeta(): Promise<void> {
    const meta: TopicMeta = {
      name: this.name,
      mask: this.mask,
      creator: this.creator,
      createdTime: this.createdTime,
      lastUpdatedTime: this.lastUpdatedTime,
      config: this.config,
    };
    return writeFileAtomic(path.join(this.dir, 'topic.json'), JSON.stringify(meta), true);
  }

  /** ZBUS_ERR_NOT_FOUND once removed, ZBUS_ERR_CLOSED once the store closed. */
  #closedError(): StoreError {
    return this.#removed
      ? new StoreError('ZBUS_ERR_NOT_FOUND', `topic ${this.name} not found`)
      : new StoreError('ZBUS_ERR_CLOSED', `topic ${this.name} is closed`);
  }

  // ---------------------------------------------------------------- the Topic contract

  append(input: AppendInput): Promise<AppendResult> {
    if (this.closed) return Promise.reject(this.#closedError());
    return this.appender.append(input);
  }

  appendThen(input: AppendInput, stored: (r: AppendResult) => void, refused: (err: unknown) => void): void {
    if (this.closed) refused(this.#closedError());
    else this.appender.appendThen(input, stored, refused);
  }

  async read(offset: number): Promise<StoredRecord | undefined> {
    if (this.closed) return undefined;
    return this.reader.read(offset);
  }

  declareGroup(name: string, config: GroupConfig): Promise<Group> {
    return asStoreError(
      this.groupTable.declare(name, config, () => this.#closedError()),
      `declare group ${name} of topic ${this.name}`,
    );
  }

  group(name: string): Group | undefined {
    return this.groupTable.get(name);
  }

  groups(): Group[] {
    return this.groupTable.all();
  }

  removeGroup(name: string): Promise<boolean> {
    return asStoreError(this.groupTable.remove(name), `remove group ${name} of topic ${this.name}`);
  }

  empty(): Promise<void> {
    if (this.closed) return Promise.reject(this.#closedError());
    return asStoreError(
      (async () => {
        await this.writer.truncateAll();
        await this.delays.clear();
        this.appender.dedupe?.clear();
        await this.groupTable.emptyAll();
        this.lastUpdatedTime = this.clock.now();
      })(),
      `empty topic ${this.name}`,
    );
  }

  info(): TopicInfo {
    const log = this.reader.log;
    return {
      topicName: this.name,
      mask: this.mask,
      messageDepth: log.visibleEnd,
      firstOffset: log.firstOffset,
      nextOffset: log.visibleEnd,
      bytes: log.bytes,
      corruptRecords: log.corrupt.size,
      delayed: this.delays.size,
      creator: this.creator,
      createdTime: this.createdTime,
      lastUpdatedTime: this.lastUpdatedTime,
      groups: this.groupTable.info(),
    };
  }

  onAvailable(listener: () => void): () => void {
    // Wrap so that one listener registered twice can be removed twice independently.
    const l = () => listener();
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  notify(): void {
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.logError(err, 'onAvailable listener threw');
      }
    }
  }

  deadLetter(rec: StoredRecord, group: string, deliveries: number, error?: string): Promise<void> {
    return deadLetter(this.store, this.name, rec, group, deliveries, error);
  }

  logError(err: unknown, msg: string): void {
    this.store.log?.error({ topic: this.name, err }, msg);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Flush and fsync everything (log, journals, group positions). */
  async flush(): Promise<void> {
    if (this.closed) return;
    await this.writer.sync();
    await this.delays.flush();
    await this.groupTable.checkpoint(true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writer.idle();
    await this.writer.sync().catch(() => {});
    this.closed = true;
    this.retention.stop();
    await this.groupTable.close();
    await this.delays.close(true);
    await this.writer.close();
    this.reader.log.recent.clear(); // its bytes leave the store's tail cache
  }

  /** Remove the topic: in-flight calls end (undefined or ZBUS_ERR_NOT_FOUND), then the directory goes. */
  async destroy(): Promise<void> {
    if (this.closed) return;
    this.#removed = true;
    this.closed = true;
    this.retention.stop();
    this.writer.abort(this.#closedError());
    await this.groupTable.destroy();
    await this.delays.close(false);
    await this.writer.close();
    this.reader.log.recent.clear();
    this.listeners.clear();
    // Rename first (atomic), then delete: a crash half-way through the delete must not leave a directory that
    // a later declare of the same name would pick up. `..` cannot appear in a topic name, so no topic uses it;
    // the topic's name is not part of it, so that the longest name still fits.
    const trash = path.join(path.dirname(this.dir), `${TRASH_PREFIX}${this.clock.now()}-${++trashSeq}`);
    await fs.promises.rename(this.dir, trash);
    await fs.promises.rm(trash, { recursive: true, force: true });
  }
}
