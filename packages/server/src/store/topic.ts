// A disk topic: a directory holding `topic.json` (name as declared, mask, config), the segmented log, the delay
// journal and `groups/`. One coarse timer per topic serves ack deadlines and delayed messages (armed for the
// earliest of them, never one per message); a second one, armed only when a group moved, checkpoints positions.
import fs from 'node:fs';
import path from 'node:path';
import { declareOnce } from './declare-once.js';
import { Dedupe, type DedupeEntry } from './dedupe.js';
import { DelayQueue } from './delay-queue.js';
import { fsyncDir, writeFileAtomic } from './fs-util.js';
import { DiskGroup, type GroupState } from './group.js';
import { Cursor, type PendingAppend, SegmentedLog } from './log.js';
import { nameKey, validateName } from './names.js';
import { recordId, recordTimestamp } from './record.js';
import {
  type AppendInput,
  type AppendResult,
  type DeadLetterInfo,
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
/** How long a group's moved position may stay in memory only. */
const CHECKPOINT_MS = 200;

/** What a topic needs from its store. */
export interface StoreContext {
  readonly dataDir: string;
  readonly fsync: FsyncPolicy;
  readonly segmentBytes: number;
  readonly topicDefaults: NonNullable<StoreOptions['topicDefaults']>;
  readonly groupDefaults: NonNullable<StoreOptions['groupDefaults']>;
  readonly log: StoreLogger | undefined;
  readonly deadLetterFn: StoreOptions['deadLetter'];
  /** The `<topic>.dlq` topic, declared on first use. */
  dlqTopic(topicName: string): Promise<Topic>;
}

interface TopicMeta {
  name: string;
  mask: number;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  config: TopicConfig;
}

export class DiskTopic implements Topic {
  name: string;
  mask: number;
  config: TopicConfig;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  log!: SegmentedLog;
  delay!: DelayQueue;
  dedupe: Dedupe | undefined;
  readonly groupsMap = new Map<string, DiskGroup>();
  #declaring = new Map<string, Promise<DiskGroup>>();
  readonly listeners = new Set<() => void>();
  closed = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #ckptTimer: NodeJS.Timeout | undefined;
  #ageTimer: NodeJS.Timeout | undefined;
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
  }

  static async create(
    store: StoreContext,
    dir: string,
    name: string,
    config: TopicConfig,
  ): Promise<DiskTopic> {
    await fs.promises.mkdir(path.join(dir, 'groups'), { recursive: true });
    const now = Date.now();
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
    await t.#init();
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
    const t = new DiskTopic(store, dir, meta);
    await t.#init();
    return t;
  }

  get fsyncPolicy(): FsyncPolicy {
    return this.config.fsync ?? this.store.topicDefaults.fsync ?? this.store.fsync;
  }
  get retention(): RetentionPolicy | undefined {
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

  keyOf(name: string): string {
    return nameKey(name);
  }

  async #init(): Promise<void> {
    this.log = await SegmentedLog.open({
      dir: this.dir,
      name: this.name,
      segmentBytes: this.store.segmentBytes,
      fsync: this.fsyncPolicy,
      maxRecordBytes: MAX_RECORD_BYTES,
      log: this.store.log,
      onVisible: () => this.notify(),
      onRoll: () => void this.applyRetention(),
    });
    this.delay = await DelayQueue.open(this.dir);
    for (const f of await fs.promises.readdir(this.groupsDir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const g = await DiskGroup.open(this, f.slice(0, -5));
        this.groupsMap.set(nameKey(g.name), g);
      } catch (err) {
        this.logError(err, `cannot open group file ${f}`);
      }
    }
    if (this.dedupeWindowMs > 0) await this.#rebuildDedupe();
    await this.applyRetention();
    this.#armAgeTimer();
    let next = this.delay.nextDue();
    for (const g of this.groupsMap.values()) {
      for (const e of g.pending.values()) if (e.deadline < next) next = e.deadline;
    }
    if (next < Number.POSITIVE_INFINITY) this.armTimer(next);
  }

  async #rebuildDedupe(): Promise<void> {
    const window = this.dedupeWindowMs;
    const d = new Dedupe(window);
    this.dedupe = d;
    const from = await this.log.seekTime(Date.now() - window);
    const c = new Cursor(256 * 1024);
    await this.log.position(c, from);
    while (await this.log.peek(c)) {
      const ts = recordTimestamp(c.win.buf, c.p);
      d.set(recordId(c.win.buf, c.p), {
        offset: c.recOffset,
        timestamp: ts,
        expires: ts + window,
        deliverAt: undefined,
        pending: undefined,
      });
      this.log.advance(c);
    }
    for (const m of this.delay.heap) {
      d.set(m.id, {
        offset: -1,
        timestamp: m.deliverAt,
        expires: Date.now() + window,
        deliverAt: m.deliverAt,
        pending: undefined,
      });
    }
  }

  async redeclare(config: TopicConfig): Promise<void> {
    this.mask = config.mask & ~STORE_MASK_MEMORY;
    this.config = { ...config, mask: this.mask };
    if (config.creator === undefined && this.creator) this.config.creator = this.creator;
    this.lastUpdatedTime = Date.now();
    this.log.fsync = this.fsyncPolicy;
    const w = this.dedupeWindowMs;
    if (w > 0 && this.dedupe === undefined) this.dedupe = new Dedupe(w);
    else if (this.dedupe) this.dedupe.windowMs = w;
    if (w === 0) this.dedupe = undefined;
    await this.#saveMeta();
    this.#armAgeTimer();
    await this.applyRetention();
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

  #removed = false;

  /** ZBUS_ERR_NOT_FOUND once removed, ZBUS_ERR_CLOSED once the store closed. */
  #closedError(): StoreError {
    return this.#removed
      ? new StoreError('ZBUS_ERR_NOT_FOUND', `topic ${this.name} not found`)
      : new StoreError('ZBUS_ERR_CLOSED', `topic ${this.name} is closed`);
  }

  // ---------------------------------------------------------------- append

  append(input: AppendInput): Promise<AppendResult> {
    if (this.closed) return Promise.reject(this.#closedError());
    const { id, tag, data } = input;
    if (data.length > this.maxMessageBytes) {
      return Promise.reject(
        new StoreError(
          'ZBUS_ERR_BODY_TOO_LARGE',
          `message of ${data.length} bytes exceeds ${this.maxMessageBytes} bytes (maxMessageBytes)`,
        ),
      );
    }
    if (id.length > 16383 || (tag !== undefined && tag.length > 16383)) {
      if (Buffer.byteLength(id) > 0xffff || (tag !== undefined && Buffer.byteLength(tag) > 0xffff)) {
        return Promise.reject(new StoreError('ZBUS_ERR_BODY_TOO_LARGE', 'id or tag longer than 65535 bytes'));
      }
    }
    const maxBacklog = this.maxBacklog;
    if (maxBacklog > 0 && this.groupsMap.size > 0) {
      let min = Number.POSITIVE_INFINITY;
      for (const g of this.groupsMap.values()) if (g.position < min) min = g.position;
      if (this.log.nextOffset - Math.max(min, this.log.firstOffset) >= maxBacklog) {
        return Promise.reject(
          new StoreError('ZBUS_ERR_LIMIT', `topic ${this.name} backlog is full (maxBacklog=${maxBacklog})`),
        );
      }
    }
    const dd = this.dedupe;
    const now = Date.now();
    if (dd !== undefined) {
      const hit = dd.get(id, now);
      if (hit !== undefined) return this.#duplicate(hit.pending, hit.offset, hit.timestamp, hit.deliverAt);
    }
    if (input.deliverAt !== undefined && input.deliverAt > now) return this.#delayed(input, now);
    const p = this.#appendNow(id, tag, data);
    if (dd !== undefined) {
      // The offset is known now (assigned in enqueue); the entry stays pending until the write resolves.
      const entry: DedupeEntry = {
        offset: this.log.nextOffset - 1,
        timestamp: now,
        expires: now + dd.windowMs,
        deliverAt: undefined,
        pending: p,
      };
      dd.set(id, entry);
      p.then(
        (r) => {
          entry.pending = undefined;
          entry.offset = r.offset;
          entry.timestamp = r.timestamp;
        },
        () => dd.map.get(id) === entry && dd.map.delete(id),
      );
    }
    return p;
  }

  async #duplicate(
    pending: Promise<AppendResult> | undefined,
    offset: number,
    timestamp: number,
    deliverAt: number | undefined,
  ): Promise<AppendResult> {
    if (pending !== undefined) {
      const r = await pending;
      return { ...r, duplicate: true };
    }
    const r: AppendResult = { offset, timestamp, durability: this.log.durability(), duplicate: true };
    if (deliverAt !== undefined) r.deliverAt = deliverAt;
    return r;
  }

  #appendNow(id: string, tag: string | undefined, data: Uint8Array): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      const p: PendingAppend = { offset: 0, timestamp: 0, id, tag, data, resolve, reject };
      this.log.enqueue(p);
    });
  }

  async #delayed(input: AppendInput, now: number): Promise<AppendResult> {
    const deliverAt = input.deliverAt!;
    const dd = this.dedupe;
    if (dd !== undefined) {
      dd.set(input.id, {
        offset: -1,
        timestamp: now,
        expires: now + dd.windowMs,
        deliverAt,
        pending: undefined,
      });
    }
    await this.delay.add(deliverAt, input.id, input.tag, input.data, this.fsyncPolicy === 'always');
    this.armTimer(deliverAt);
    return { offset: -1, timestamp: now, durability: this.log.durability(), duplicate: false, deliverAt };
  }

  // ---------------------------------------------------------------- timers

  /** Make sure the topic's timer fires no later than `at`. */
  armTimer(at: number): void {
    if (this.closed || at >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => void this.#tick(), Math.max(1, at - Date.now()));
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.closed) return;
    const now = Date.now();
    for (const m of this.delay.takeDue(now)) {
      this.#appendNow(m.id, m.tag, m.data).then(
        () => this.delay.done(m.seq),
        (err) => {
          if (!this.closed)
            this.logError(err, 'releasing a delayed message failed; it stays held until restart');
        },
      );
    }
    let next = this.delay.nextDue();
    let ready = false;
    for (const g of this.groupsMap.values()) {
      try {
        const r = await g.tick(now);
        if (r.ready) ready = true;
        if (r.nextDeadline < next) next = r.nextDeadline;
      } catch (err) {
        this.logError(err, 'ack timer failed');
      }
    }
    if (ready) this.notify();
    if (next < Number.POSITIVE_INFINITY) this.armTimer(Math.max(next, Date.now() + 1));
  }

  scheduleCheckpoint(): void {
    if (this.#ckptTimer || this.closed) return;
    this.#ckptTimer = setTimeout(() => {
      this.#ckptTimer = undefined;
      void this.checkpoint(false);
    }, CHECKPOINT_MS);
    this.#ckptTimer.unref();
  }

  async checkpoint(sync: boolean): Promise<void> {
    for (const g of this.groupsMap.values()) {
      if (!g.dirty && !sync) continue;
      await g.checkpoint(sync).catch((err) => this.logError(err, 'group checkpoint failed'));
    }
  }

  #armAgeTimer(): void {
    if (this.#ageTimer) clearInterval(this.#ageTimer);
    this.#ageTimer = undefined;
    const age = this.retention?.maxAgeMs;
    if (age === undefined || age <= 0 || this.closed) return;
    this.#ageTimer = setInterval(() => void this.applyRetention(), Math.min(Math.max(age / 2, 100), 60_000));
    this.#ageTimer.unref();
  }

  /** Delete whole sealed segments beyond the retention limits; move groups past them. */
  async applyRetention(): Promise<void> {
    const r = this.retention;
    if (r === undefined || this.closed) return;
    const now = Date.now();
    try {
      // Sizes and counts keep at least the limit: the oldest segment goes only if what remains still meets it.
      const n = await this.log.dropHead((seg, log) => {
        const rest = log.segments[1]!;
        if (r.maxBytes !== undefined && r.maxBytes > 0 && log.bytes - seg.size >= r.maxBytes) return true;
        if (r.maxMessages !== undefined && r.maxMessages > 0 && log.visibleEnd - rest.base >= r.maxMessages) {
          return true;
        }
        if (r.maxAgeMs !== undefined && r.maxAgeMs > 0 && seg.lastTimestamp < now - r.maxAgeMs) return true;
        return false;
      });
      if (n > 0) {
        const first = this.log.firstOffset;
        for (const g of this.groupsMap.values()) g.dropBelow(first);
      }
    } catch (err) {
      this.logError(err, 'retention failed');
    }
  }

  // ---------------------------------------------------------------- reads, groups

  async read(offset: number): Promise<StoredRecord | undefined> {
    if (this.closed) return undefined;
    return this.log.read(offset);
  }

  /** The position a new (or re-declared) group starts at; undefined: keep the current one. */
  async resolveStart(config: GroupConfig, isNew: boolean): Promise<number | undefined> {
    const start = config.start;
    let pos: number | undefined;
    if (start?.copy !== undefined) {
      const g = this.groupsMap.get(nameKey(start.copy));
      if (g) pos = g.position;
    }
    if (pos === undefined && isNew) {
      // 0.11 (zbus-protocol.md §7.3): copy the most advanced group, so a new group does not replay history.
      let max = -1;
      for (const g of this.groupsMap.values()) if (g.position > max) max = g.position;
      pos = max >= 0 ? max : this.log.firstOffset;
    }
    if (start?.offset !== undefined) {
      if (start.msgId !== undefined) {
        const rec = await this.log.read(start.offset);
        if (rec === undefined || rec.id !== start.msgId) {
          throw new StoreError(
            'ZBUS_ERR_SEEK',
            `seek by offset failed: offset ${start.offset} does not hold message ${start.msgId}`,
          );
        }
      }
      pos = Math.min(Math.max(start.offset, this.log.firstOffset), this.log.visibleEnd);
    } else if (start?.time !== undefined) {
      pos = await this.log.seekTime(start.time);
    }
    return pos;
  }

  async declareGroup(name: string, config: GroupConfig): Promise<Group> {
    validateName('group', name);
    if (this.closed) throw this.#closedError();
    const key = nameKey(name);
    return declareOnce(
      this.groupsMap,
      this.#declaring,
      key,
      async () => {
        const pos = (await this.resolveStart(config, true)) ?? this.log.firstOffset;
        const now = Date.now();
        const st: GroupState = {
          name,
          filter: config.filter ?? '',
          mask: config.mask ?? 0,
          position: pos,
          ackWindow: config.ackWindow,
          ackTimeoutMs: config.ackTimeoutMs,
          maxDeliver: config.maxDeliver,
          creator: config.creator ?? '',
          createdTime: now,
          lastUpdatedTime: now,
          deadLettered: 0,
        };
        const g = await DiskGroup.open(this, key, st);
        if (this.closed) {
          await g.destroy(false);
          throw this.#closedError();
        }
        this.groupsMap.set(key, g);
        return g;
      },
      (g) => g.update(config),
    );
  }

  group(name: string): Group | undefined {
    return this.groupsMap.get(nameKey(name));
  }

  groups(): Group[] {
    return [...this.groupsMap.values()];
  }

  async removeGroup(name: string): Promise<boolean> {
    const key = nameKey(name);
    const g = this.groupsMap.get(key);
    if (g === undefined) return false;
    this.groupsMap.delete(key);
    await g.destroy(true);
    return true;
  }

  async empty(): Promise<void> {
    if (this.closed) throw this.#closedError();
    await this.log.truncateAll();
    await this.delay.clear();
    this.dedupe?.clear();
    for (const g of this.groupsMap.values()) await g.empty();
    this.lastUpdatedTime = Date.now();
  }

  info(): TopicInfo {
    const log = this.log;
    return {
      topicName: this.name,
      mask: this.mask,
      messageDepth: log.visibleEnd,
      firstOffset: log.firstOffset,
      nextOffset: log.visibleEnd,
      bytes: log.bytes,
      corruptRecords: log.corrupt.size,
      delayed: this.delay.size,
      creator: this.creator,
      createdTime: this.createdTime,
      lastUpdatedTime: this.lastUpdatedTime,
      groups: [...this.groupsMap.values()].map((g) => g.info()),
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

  async deadLetter(rec: StoredRecord, group: string, deliveries: number): Promise<void> {
    const info: DeadLetterInfo = {
      topic: this.name,
      group,
      offset: rec.offset,
      id: rec.id,
      deliveries,
      reason: 'max_deliver',
    };
    const data = this.store.deadLetterFn ? this.store.deadLetterFn(rec.data, info) : rec.data;
    const dlq = await this.store.dlqTopic(this.name);
    await dlq.append(rec.tag === undefined ? { id: rec.id, data } : { id: rec.id, tag: rec.tag, data });
  }

  logError(err: unknown, msg: string): void {
    this.store.log?.error({ topic: this.name, err }, msg);
  }

  #stopTimers(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#ckptTimer) clearTimeout(this.#ckptTimer);
    if (this.#ageTimer) clearInterval(this.#ageTimer);
    this.#timer = undefined;
    this.#ckptTimer = undefined;
    this.#ageTimer = undefined;
  }

  /** Flush and fsync everything (log, journals, group positions). */
  async flush(): Promise<void> {
    if (this.closed) return;
    await this.log.sync();
    await this.delay.journal.flush(true);
    await this.checkpoint(true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.log.idle();
    await this.log.sync().catch(() => {});
    this.closed = true;
    this.#stopTimers();
    for (const g of this.groupsMap.values()) await g.close();
    await this.delay.journal.close(true);
    await this.log.close();
  }

  /** Remove the topic: in-flight calls end (undefined or ZBUS_ERR_NOT_FOUND), then the directory goes. */
  async destroy(): Promise<void> {
    if (this.closed) return;
    this.#removed = true;
    this.closed = true;
    this.#stopTimers();
    this.log.abort(this.#closedError());
    for (const g of this.groupsMap.values()) await g.destroy(false);
    await this.delay.journal.close(false);
    await this.log.close();
    this.listeners.clear();
    // Rename first (atomic), then delete: a crash half-way through the delete must not leave a directory that
    // a later declare of the same name would pick up. `..` cannot appear in a topic name, so no topic uses it.
    const trash = path.join(
      path.dirname(this.dir),
      `${TRASH_PREFIX}${Date.now()}-${path.basename(this.dir)}`,
    );
    await fs.promises.rename(this.dir, trash);
    await fs.promises.rm(trash, { recursive: true, force: true });
  }
}
