// A memory topic (mask MEMORY, zbus-protocol.md §7.8): a bounded ring of messages with the disk topic's
// interface. Unlike 0.11 (one shared FIFO that silently drops the oldest), each group has its own position and an
// append that would overwrite a message some group has not read yet fails with ZBUS_ERR_LIMIT. Nothing touches the
// disk; memory topics are gone after a restart. Acks are not tracked (as in 0.11): next() always advances.
import { Alarm, type Clock, systemClock } from './clock.js';
import { compileFilter, type TagMatcher } from './filter.js';
import { maxPosition, resolveStart, type StartSource } from './group-start.js';
import { nameKey, ownString, validateName } from './names.js';
import {
  type AppendInput,
  type AppendResult,
  type Delivery,
  type Group,
  type GroupConfig,
  type GroupInfo,
  STORE_MASK_MEMORY,
  type StoredRecord,
  StoreError,
  type Topic,
  type TopicConfig,
  type TopicInfo,
} from './types.js';

export const DEFAULT_MEMORY_CAPACITY = 1000;
/** @default 256 MiB */
export const DEFAULT_MEMORY_TOPIC_BYTES = 256 * 1024 * 1024;
/** What a held message costs beyond its data, charged to the budget: the record, its id and tag, the ring slot. */
const RECORD_OVERHEAD_BYTES = 128;
const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/** The chunks records are copied into: at least this big, at most this big. */
const MIN_CHUNK_BYTES = 1024;
const MAX_CHUNK_BYTES = 64 * 1024;

/**
 * Where a memory topic keeps the bytes of its records: copies (an appended message may be a view into a larger
 * socket chunk), packed into chunks the topic fills in order instead of a buffer per record, whose allocation
 * would cost more than the rest of the append. The ring drops records in the order it took them, so a chunk is
 * freed once its last record is dropped. Bytes held past the records' own are bounded: a chunk is an eighth of
 * the bytes the ring holds (a quiet topic's chunks stay small), a record over an eighth of a chunk gets a buffer
 * of its own, and only the oldest and the newest chunk hold bytes of dropped records or none yet.
 */
export class RecordArena {
  #chunk = new Uint8Array(0);
  #used = 0;

  /** A copy of `data`; `heldBytes` is what the ring holds now (it sizes the next chunk). */
  copy(data: Uint8Array, heldBytes: number): Uint8Array {
    const n = data.length;
    if (this.#used + n > this.#chunk.length) {
      const size = Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, heldBytes >>> 3));
      if (n > size >>> 3) {
        const own = new Uint8Array(n);
        own.set(data);
        return own;
      }
      this.#chunk = new Uint8Array(size);
      this.#used = 0;
    }
    const out = this.#chunk.subarray(this.#used, this.#used + n);
    out.set(data);
    this.#used += n;
    return out;
  }
}

/**
 * The bytes that all memory topics of a store hold together: their messages in the rings and their delayed
 * messages. The capacity of a ring counts messages, not bytes, and topics can be many: without one bound for all
 * of them, clients allowed to produce could make the broker hold gigabytes. When a message does not fit, messages
 * every group has read (which a ring keeps only until it needs the slot) are dropped first, from any topic; if
 * that is not enough the append fails with ZBUS_ERR_LIMIT.
 */
export class MemoryBudget {
  held = 0;
  readonly #topics = new Set<MemoryTopic>();

  constructor(readonly limit: number = DEFAULT_MEMORY_TOPIC_BYTES) {}

  add(topic: MemoryTopic): void {
    this.#topics.add(topic);
  }

  remove(topic: MemoryTopic): void {
    this.#topics.delete(topic);
  }

  /** Takes `n` bytes for `topic`, first dropping read messages (its own, then other topics'); false when full. */
  take(n: number, topic: MemoryTopic): boolean {
    if (this.held + n > this.limit) {
      topic.dropRead(this.held + n - this.limit);
      for (const t of this.#topics) {
        if (this.held + n <= this.limit) break;
        if (t !== topic) t.dropRead(this.held + n - this.limit);
      }
      if (this.held + n > this.limit) return false;
    }
    this.held += n;
    return true;
  }
}

/** Bytes a message costs the budget while held. */
function heldBytes(r: { id: string; tag?: string | undefined; data: Uint8Array }): number {
  return r.data.length + r.id.length + (r.tag?.length ?? 0) + RECORD_OVERHEAD_BYTES;
}

class MemoryGroup implements Group {
  name: string;
  mask: number;
  filter: string;
  #match: TagMatcher;
  position: number;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  removed = false;

  constructor(
    readonly topic: MemoryTopic,
    name: string,
    config: GroupConfig,
    position: number,
  ) {
    this.name = name;
    this.mask = config.mask ?? 0;
    this.filter = config.filter ?? '';
    this.#match = compileFilter(this.filter);
    this.position = position;
    this.creator = config.creator ?? '';
    this.createdTime = topic.clock.now();
    this.lastUpdatedTime = this.createdTime;
  }

  async next(): Promise<Delivery | undefined> {
    return this.nextNow();
  }

  /** next() at once: a memory topic never waits for anything (the dispatcher's path without a promise). */
  nextNow(): Delivery | undefined {
    const t = this.topic;
    for (;;) {
      if (this.removed || t.closed) return undefined;
      if (this.position < t.firstOffset) this.position = t.firstOffset;
      if (this.position >= t.nextOffset) return undefined;
      const r = t.at(this.position)!;
      this.position++;
      if (!this.#match(r.tag)) continue;
      return { offset: r.offset, timestamp: r.timestamp, id: r.id, tag: r.tag, data: r.data, retry: 0 };
    }
  }

  ack(): boolean {
    return false;
  }
  nack(): boolean {
    return false;
  }
  touch(): boolean {
    return false;
  }

  async empty(): Promise<void> {
    this.position = this.topic.nextOffset;
  }

  async update(config: GroupConfig): Promise<void> {
    this.filter = config.filter ?? '';
    this.#match = compileFilter(this.filter);
    if (config.mask !== undefined) this.mask = config.mask;
    const pos = await resolveStart(config, false, this.topic);
    if (pos !== undefined) this.position = pos;
    this.lastUpdatedTime = this.topic.clock.now();
  }

  info(): GroupInfo {
    const t = this.topic;
    return {
      topicName: t.name,
      groupName: this.name,
      mask: this.mask,
      filter: this.filter,
      backlog: Math.max(0, t.nextOffset - Math.max(this.position, t.firstOffset)),
      unacked: 0,
      deadLettered: 0,
      position: this.position,
      creator: this.creator,
      createdTime: this.createdTime,
      lastUpdatedTime: this.lastUpdatedTime,
    };
  }
}

export class MemoryTopic implements Topic, StartSource {
  name: string;
  mask: number;
  config: TopicConfig;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  #ring: (StoredRecord | undefined)[];
  firstOffset = 0;
  nextOffset = 0;
  #bytes = 0;
  #groups = new Map<string, MemoryGroup>();
  #listeners = new Set<() => void>();
  #delayed = new Set<Alarm>();
  #delayedBytes = 0;
  readonly #arena = new RecordArena();
  closed = false;

  readonly #budget: MemoryBudget;

  constructor(
    name: string,
    config: TopicConfig,
    /** `budget`: shared by the store's memory topics; a topic without one has a budget of its own. */
    readonly defaults: { maxBacklog?: number; maxMessageBytes?: number; budget?: MemoryBudget },
    readonly clock: Clock = systemClock,
  ) {
    this.#budget = defaults.budget ?? new MemoryBudget();
    this.#budget.add(this);
    this.name = name;
    this.mask = config.mask | STORE_MASK_MEMORY;
    this.config = { ...config, mask: this.mask };
    this.creator = config.creator ?? '';
    this.createdTime = clock.now();
    this.lastUpdatedTime = this.createdTime;
    this.#ring = new Array(this.capacity);
  }

  get capacity(): number {
    const c = this.config.maxBacklog ?? this.defaults.maxBacklog;
    return c !== undefined && c > 0 ? c : DEFAULT_MEMORY_CAPACITY;
  }

  at(offset: number): StoredRecord | undefined {
    if (offset < this.firstOffset || offset >= this.nextOffset) return undefined;
    return this.#ring[offset % this.#ring.length];
  }

  redeclare(config: TopicConfig): void {
    this.mask = config.mask | STORE_MASK_MEMORY;
    const old = this.capacity;
    this.config = { ...config, mask: this.mask };
    if (this.capacity !== old) {
      // Re-home the ring; keep the newest messages that fit.
      const ring: (StoredRecord | undefined)[] = new Array(this.capacity);
      const first = Math.max(this.firstOffset, this.nextOffset - this.capacity);
      for (let o = first; o < this.nextOffset; o++) ring[o % ring.length] = this.at(o);
      for (let o = this.firstOffset; o < first; o++) this.#release(this.at(o));
      this.#ring = ring;
      this.firstOffset = first;
    }
    this.lastUpdatedTime = this.clock.now();
  }

  async append(input: AppendInput): Promise<AppendResult> {
    return this.appendNow(input);
  }

  appendNow(input: AppendInput): AppendResult {
    if (this.closed) throw new StoreError('ZBUS_ERR_NOT_FOUND', `topic ${this.name} not found`);
    const max = this.config.maxMessageBytes ?? this.defaults.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (input.data.length > max) {
      throw new StoreError(
        'ZBUS_ERR_BODY_TOO_LARGE',
        `message of ${input.data.length} bytes exceeds ${max} bytes (maxMessageBytes)`,
      );
    }
    const now = this.clock.now();
    if (input.deliverAt !== undefined && input.deliverAt > now) {
      // Held in memory only (a memory topic promises nothing across restarts), and charged to the budget until
      // it is due. A buffer of its own: held out of the ring's order, it must not keep a chunk alive.
      const cost = heldBytes(input);
      this.#take(cost);
      const copy = {
        id: ownString(input.id),
        tag: ownString(input.tag),
        data: new Uint8Array(input.data),
      };
      this.#delayedBytes += cost;
      const alarm = new Alarm(this.clock, () => {
        this.#delayed.delete(alarm);
        this.#delayedBytes -= cost;
        this.#budget.held -= cost;
        this.append(copy).catch(() => {});
      });
      alarm.set(input.deliverAt);
      this.#delayed.add(alarm);
      return {
        offset: -1,
        timestamp: now,
        durability: 'memory',
        duplicate: false,
        deliverAt: input.deliverAt,
      };
    }
    const cap = this.#ring.length;
    if (this.nextOffset - this.firstOffset >= cap) {
      if (this.#slowest() <= this.firstOffset) {
        throw new StoreError('ZBUS_ERR_LIMIT', `memory topic ${this.name} is full (maxBacklog=${cap})`);
      }
      this.#dropFirst();
    }
    this.#take(heldBytes(input));
    const offset = this.nextOffset++;
    const data = this.#arena.copy(input.data, this.#bytes);
    this.#ring[offset % cap] = {
      offset,
      timestamp: now,
      id: ownString(input.id),
      tag: ownString(input.tag),
      data,
    };
    this.#bytes += data.length;
    this.notify();
    return { offset, timestamp: now, durability: 'memory', duplicate: false };
  }

  /** Charges `n` bytes to the budget, or fails the append with ZBUS_ERR_LIMIT. */
  #take(n: number): void {
    const b = this.#budget;
    if (!b.take(n, this)) {
      throw new StoreError(
        'ZBUS_ERR_LIMIT',
        `memory topics hold ${b.held} bytes of ${b.limit} (maxMemoryTopicBytes): no room for ${n} more in ${this.name}`,
      );
    }
  }

  /** The position of the group furthest behind (every message before it has been read by all). */
  #slowest(): number {
    let slowest = Number.POSITIVE_INFINITY;
    for (const g of this.#groups.values()) if (g.position < slowest) slowest = g.position;
    return slowest;
  }

  #release(r: StoredRecord | undefined): void {
    if (r === undefined) return;
    this.#bytes -= r.data.length;
    this.#budget.held -= heldBytes(r);
  }

  #dropFirst(): void {
    this.#release(this.at(this.firstOffset));
    this.#ring[this.firstOffset % this.#ring.length] = undefined;
    this.firstOffset++;
  }

  /** Drops the oldest messages that every group has read until `need` bytes are freed or none is left. */
  dropRead(need: number): void {
    const until = Math.min(this.#slowest(), this.nextOffset);
    const goal = this.#budget.held - need;
    while (this.firstOffset < until && this.#budget.held > goal) this.#dropFirst();
  }

  async read(offset: number): Promise<StoredRecord | undefined> {
    return this.at(offset);
  }

  // What group-start.ts needs.
  get endOffset(): number {
    return this.nextOffset;
  }
  positionOf(name: string): number | undefined {
    return this.#groups.get(nameKey(name))?.position;
  }
  maxPosition(): number {
    return maxPosition(this.#groups.values());
  }
  async idAt(offset: number): Promise<string | undefined> {
    return this.at(offset)?.id;
  }
  async seekTime(time: number): Promise<number> {
    let o = this.firstOffset;
    while (o < this.nextOffset && this.at(o)!.timestamp < time) o++;
    return o;
  }

  async declareGroup(given: string, config: GroupConfig): Promise<Group> {
    const name = validateName('group', given);
    const key = nameKey(name);
    const start = this.#groups.has(key) ? undefined : await resolveStart(config, true, this);
    // Looked up after the await: a declare of the same name may have created the group meanwhile.
    const g = this.#groups.get(key);
    if (g) {
      await g.update(config);
      return g;
    }
    const ng = new MemoryGroup(this, name, config, start ?? this.firstOffset);
    this.#groups.set(key, ng);
    return ng;
  }

  group(name: string): Group | undefined {
    return this.#groups.get(nameKey(name));
  }
  groups(): Group[] {
    return [...this.#groups.values()];
  }
  async removeGroup(name: string): Promise<boolean> {
    const key = nameKey(name);
    const g = this.#groups.get(key);
    if (!g) return false;
    g.removed = true;
    this.#groups.delete(key);
    return true;
  }

  async empty(): Promise<void> {
    while (this.firstOffset < this.nextOffset) this.#dropFirst();
    for (const g of this.#groups.values()) g.position = this.nextOffset;
  }

  info(): TopicInfo {
    return {
      topicName: this.name,
      mask: this.mask,
      messageDepth: this.nextOffset,
      firstOffset: this.firstOffset,
      nextOffset: this.nextOffset,
      bytes: this.#bytes,
      corruptRecords: 0,
      delayed: this.#delayed.size,
      creator: this.creator,
      createdTime: this.createdTime,
      lastUpdatedTime: this.lastUpdatedTime,
      groups: [...this.#groups.values()].map((g) => g.info()),
    };
  }

  onAvailable(listener: () => void): () => void {
    const l = () => listener();
    this.#listeners.add(l);
    return () => {
      this.#listeners.delete(l);
    };
  }

  notify(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch {
        // a listener's failure is its own
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.#delayed) a.cancel();
    this.#delayed.clear();
    this.#budget.held -= this.#delayedBytes;
    while (this.firstOffset < this.nextOffset) this.#dropFirst();
    this.#budget.remove(this);
    for (const g of this.#groups.values()) g.removed = true;
    this.#listeners.clear();
  }
}
