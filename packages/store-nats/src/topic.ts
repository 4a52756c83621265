// A topic on JetStream: one stream (`<P>_T_<topic>`), offset = stream sequence - 1, so offsets stay per-topic
// sequence numbers. The tag is in the subject (`<p>.t.<topic>.t.<tag tokens>.%`, untagged `<p>.t.<topic>.u`) so
// that groups filter on the server. Dedupe is Nats-Msg-Id within the stream's duplicate window, retention the
// stream's limits, memory topics memory-storage streams that refuse new messages when full.
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import {
  type AppendInput,
  type AppendResult,
  type DeadLetterSink,
  deadLetterData,
  type Group,
  type GroupConfig,
  STORE_MASK_MEMORY,
  type StoredRecord,
  StoreError,
  type StoreOptions,
  type StoreTopicInfo,
  type Topic,
  type TopicConfig,
  validateName,
} from '@zbus/server';
import type { Delays } from './delays.js';
import type { GroupStore, GroupTopic, NatsGroup } from './group.js';
import type { Publisher } from './publisher.js';
import { decodeRecord, encodeRecord } from './record.js';

/** What every broker knows of a topic: its KV entry. */
export interface TopicMeta {
  name: string;
  mask: number;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  config: TopicConfig;
}

/** What a topic and its groups use of the store (NatsStore), so that this file does not need the store. */
export interface TopicStore extends GroupStore, Pick<DeadLetterSink, 'deadLetterFn'> {
  readonly publisher: Publisher;
  readonly delays: Delays;
  readonly replicas: number;
  readonly maxPayload: number;
  readonly topicDefaults: NonNullable<StoreOptions['topicDefaults']>;
  keyOf(name: string): string;
  storeError(err: unknown, what: string): StoreError;
  publishError(err: unknown, topic: string): StoreError;
  dlqTopic(topicName: string): Promise<Topic>;
  declareGroup(t: NatsTopic, name: string, config: GroupConfig): Promise<Group>;
  removeGroup(t: NatsTopic, g: NatsGroup): Promise<void>;
}

const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/** JetStream's default duplicate window; kept when dedupe is off (no Nats-Msg-Id is sent then). */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
/** Bytes the record framing adds in front of the message (version, two lengths). */
const FRAME_BYTES = 5;
/**
 * How long the stream and group state read for maxBacklog is trusted. Other brokers publish and consume too:
 * a publish after this reads it again (one round trip shared by every publish waiting for it), so the limit
 * holds to within what other brokers published in the last BACKLOG_FRESH_MS.
 */
const BACKLOG_FRESH_MS = 100;

export function storedDurability(replicas: number, memory: boolean): AppendResult['durability'] {
  if (replicas > 1) return 'replicated';
  return memory ? 'memory' : 'interval';
}

export class NatsTopic implements Topic, GroupTopic {
  meta: TopicMeta;
  readonly groupsMap = new Map<string, NatsGroup>();
  readonly #listeners = new Set<() => void>();
  #notifyQueued = false;
  closed = false;
  /** Cached stream state (refresh(), publish acks). */
  #state = { firstSeq: 1, lastSeq: 0, bytes: 0, delayed: 0 };
  /** Publishes through this broker not yet acknowledged by JetStream (maxBacklog counts them). */
  #publishing = 0;
  /** When the state maxBacklog reads was last read from JetStream, and the read under way. */
  #stateReadAt = 0;
  #stateRead: Promise<void> | undefined;

  constructor(
    readonly store: TopicStore,
    readonly key: string,
    meta: TopicMeta,
  ) {
    this.meta = meta;
  }

  get name(): string {
    return this.meta.name;
  }
  get mask(): number {
    return this.meta.mask;
  }
  get config(): Readonly<TopicConfig> {
    return this.meta.config;
  }
  get stream(): string {
    return this.store.names.stream(this.key);
  }
  get memory(): boolean {
    return (this.meta.mask & STORE_MASK_MEMORY) !== 0;
  }
  get firstOffset(): number {
    return this.#state.firstSeq - 1;
  }
  get nextOffset(): number {
    return this.#state.lastSeq;
  }
  get maxMessageBytes(): number {
    return (
      this.config.maxMessageBytes ?? this.store.topicDefaults.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    );
  }
  get dedupeWindowMs(): number {
    return this.config.dedupeWindowMs ?? this.store.topicDefaults.dedupeWindowMs ?? 0;
  }
  /** Disk topics: the most messages the slowest group may have left to read (0 = unlimited). */
  get maxBacklog(): number {
    return this.memory ? 0 : (this.config.maxBacklog ?? this.store.topicDefaults.maxBacklog ?? 0);
  }

  /** The stream this topic needs (created or updated by whoever declares it). */
  streamConfig(): Partial<StreamConfig> & { name: string } {
    const c = this.config;
    const r = c.retention ?? this.store.topicDefaults.retention ?? {};
    const capacity = c.maxBacklog ?? this.store.topicDefaults.maxBacklog ?? 0;
    const maxAgeMs = r.maxAgeMs ?? 0;
    let dupMs = this.dedupeWindowMs > 0 ? this.dedupeWindowMs : DEFAULT_DUPLICATE_WINDOW_MS;
    if (maxAgeMs > 0 && dupMs > maxAgeMs) dupMs = maxAgeMs;
    return {
      name: this.stream,
      subjects: [this.store.names.topicSubjects(this.key)],
      storage: this.memory ? StorageType.Memory : StorageType.File,
      num_replicas: this.store.replicas,
      retention: RetentionPolicy.Limits,
      // A memory topic is a bounded queue: a full one refuses (429) rather than dropping unread messages.
      discard: this.memory && capacity > 0 ? DiscardPolicy.New : DiscardPolicy.Old,
      max_msgs: this.memory && capacity > 0 ? capacity : (r.maxMessages ?? -1) || -1,
      max_bytes: (r.maxBytes ?? -1) || -1,
      max_age: maxAgeMs * 1e6,
      max_msg_size: this.maxMessageBytes + FRAME_BYTES + 2 * 65535,
      duplicate_window: dupMs * 1e6,
      allow_direct: true,
    };
  }

  // ---------------------------------------------------------------- append and read

  append(input: AppendInput): Promise<AppendResult> {
    if (this.closed) return Promise.reject(this.#gone());
    if (input.data.length > this.maxMessageBytes) {
      return Promise.reject(
        new StoreError(
          'ZBUS_ERR_BODY_TOO_LARGE',
          `message of ${input.data.length} bytes exceeds ${this.maxMessageBytes} bytes (maxMessageBytes)`,
        ),
      );
    }
    if (this.maxBacklog > 0 && this.groupsMap.size > 0) return this.#appendWithinBacklog(input);
    return this.#appendNow(input);
  }

  #appendNow(input: AppendInput): Promise<AppendResult> {
    const now = Date.now();
    if (input.deliverAt !== undefined && input.deliverAt > now) return this.#delayed(input, now);
    return this.publish(input.id, input.tag, input.data, this.dedupeWindowMs > 0 ? input.id : undefined);
  }

  /**
   * maxBacklog, as the local store enforces it: refused (429) while the slowest group has maxBacklog messages
   * or more left to read, publishes in flight included. Positions and the stream's end come from JetStream at
   * most BACKLOG_FRESH_MS old, advanced by this broker's own publish acknowledgements in between.
   */
  async #appendWithinBacklog(input: AppendInput): Promise<AppendResult> {
    if (Date.now() - this.#stateReadAt > BACKLOG_FRESH_MS) {
      await this.#readState().catch((err: unknown) => {
        throw this.store.storeError(err, `reading the backlog of ${this.name}`);
      });
    }
    const max = this.maxBacklog;
    let slowest = Number.POSITIVE_INFINITY;
    for (const g of this.groupsMap.values()) slowest = Math.min(slowest, g.info().position);
    if (this.#state.lastSeq + this.#publishing - Math.max(slowest, this.firstOffset) >= max) {
      throw new StoreError('ZBUS_ERR_LIMIT', `topic ${this.name} backlog is full (maxBacklog=${max})`);
    }
    return this.#appendNow(input);
  }

  /** Stores one message; `msgId` makes a retry within the duplicate window a no-op. */
  async publish(
    id: string,
    tag: string | undefined,
    data: Uint8Array,
    msgId: string | undefined,
  ): Promise<AppendResult> {
    const payload = encodeRecord({ id, tag, data });
    if (payload.length > this.store.maxPayload) {
      throw new StoreError(
        'ZBUS_ERR_BODY_TOO_LARGE',
        `message of ${payload.length} bytes exceeds the NATS server's max_payload of ${this.store.maxPayload} bytes`,
      );
    }
    const subject = this.store.names.subject(this.key, tag);
    this.#publishing++;
    const ack = await this.store.publisher
      .publish(subject, payload, msgId)
      .catch((err: unknown) => {
        throw this.store.publishError(err, this.name);
      })
      .finally(() => this.#publishing--);
    if (ack.seq > this.#state.lastSeq) this.#state.lastSeq = ack.seq;
    return {
      offset: ack.seq - 1,
      timestamp: Date.now(),
      durability: storedDurability(this.store.replicas, this.memory),
      duplicate: ack.duplicate,
    };
  }

  async #delayed(input: AppendInput, now: number): Promise<AppendResult> {
    const r = await this.store.delays.add(this, input, this.dedupeWindowMs > 0);
    this.#state.delayed++;
    return {
      offset: -1,
      timestamp: now,
      durability: storedDurability(this.store.replicas, false),
      duplicate: r.duplicate,
      deliverAt: input.deliverAt,
    };
  }

  async read(offset: number): Promise<StoredRecord | undefined> {
    if (this.closed || offset < 0) return undefined;
    try {
      const m = await this.store.jsm.streams.getMessage(this.stream, { seq: offset + 1 });
      if (!m) return undefined;
      const rec = decodeRecord(m.data);
      return { offset, timestamp: m.time.getTime(), id: rec.id, tag: rec.tag, data: rec.data };
    } catch (err) {
      if ((err as JetStreamApiError).code === 404 || /not found/i.test(String(err))) return undefined;
      throw this.store.storeError(err, `reading offset ${offset} of ${this.name}`);
    }
  }

  /**
   * Offset of the first message stored at or after `time` (the next offset when there is none). 2.9 has no
   * get-by-time: a throw-away consumer starting at that time says where it would start.
   */
  async seekTime(time: number): Promise<number> {
    try {
      const ci = await this.store.jsm.consumers.add(this.stream, {
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: new Date(time).toISOString(),
        ack_policy: AckPolicy.None,
        inactive_threshold: 5_000 * 1e6,
        mem_storage: true,
        num_replicas: 1,
      });
      await this.store.jsm.consumers.delete(this.stream, ci.name).catch(() => {});
      return ci.delivered.stream_seq;
    } catch (err) {
      throw this.store.storeError(err, `seeking ${this.name} by time`);
    }
  }

  // ---------------------------------------------------------------- groups

  declareGroup(given: string, config: GroupConfig): Promise<Group> {
    const name = validateName('group', given);
    if (this.closed) return Promise.reject(this.#gone());
    return this.store.declareGroup(this, name, config);
  }

  group(name: string): Group | undefined {
    return this.groupsMap.get(this.store.keyOf(name));
  }

  groups(): Group[] {
    return [...this.groupsMap.values()];
  }

  removeGroup(name: string): Promise<boolean> {
    const g = this.groupsMap.get(this.store.keyOf(name));
    if (!g) return Promise.resolve(false);
    return this.store.removeGroup(this, g).then(() => true);
  }

  async empty(): Promise<void> {
    if (this.closed) throw this.#gone();
    await this.store.jsm.streams.purge(this.stream).catch((err: unknown) => {
      throw this.store.storeError(err, `emptying ${this.name}`);
    });
    await this.store.delays.purge(this);
    await this.refresh();
    for (const g of this.groupsMap.values()) await g.empty();
  }

  /** Latest stream, delay and consumer state from JetStream, for info(). */
  async refresh(): Promise<void> {
    if (this.closed) return;
    await this.#readState();
    this.#state.delayed = await this.store.delays.count(this);
  }

  /** The stream's state and every group's, read once for every caller that asks meanwhile. */
  #readState(): Promise<void> {
    this.#stateRead ??= (async () => {
      const startedAt = Date.now();
      try {
        const si = await this.store.jsm.streams.info(this.stream);
        // An empty stream that never held a message reports first_seq 0.
        this.#state.firstSeq = Math.max(si.state.first_seq, 1);
        this.#state.lastSeq = Math.max(si.state.last_seq, this.#state.lastSeq);
        this.#state.bytes = si.state.bytes;
        await Promise.all([...this.groupsMap.values()].map((g) => g.refresh().catch(() => {})));
        this.#stateReadAt = startedAt;
      } finally {
        this.#stateRead = undefined;
      }
    })();
    return this.#stateRead;
  }

  info(): StoreTopicInfo {
    const s = this.#state;
    return {
      topicName: this.name,
      mask: this.mask,
      messageDepth: s.lastSeq,
      firstOffset: s.firstSeq - 1,
      nextOffset: s.lastSeq,
      bytes: s.bytes,
      corruptRecords: 0,
      delayed: s.delayed,
      creator: this.meta.creator,
      createdTime: this.meta.createdTime,
      lastUpdatedTime: this.meta.lastUpdatedTime,
      groups: [...this.groupsMap.values()].map((g) => g.info()),
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
      } catch (err) {
        this.store.logError(err, 'onAvailable listener threw', this.name);
      }
    }
  }

  /** One notify for the messages of one pull batch (they arrive in one read from the socket). */
  notifySoon(): void {
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    setImmediate(() => {
      this.#notifyQueued = false;
      this.notify();
    });
  }

  async deadLetter(rec: StoredRecord, group: string, deliveries: number, error?: string): Promise<void> {
    const data = deadLetterData(this.store, this.name, rec, group, deliveries, error);
    const dlq = (await this.store.dlqTopic(this.name)) as NatsTopic;
    // Moving the same delivery twice (a broker killed between the move and the TERM) stores it once.
    await dlq.publish(rec.id, rec.tag, data, `dlq:${this.key}:${this.store.keyOf(group)}:${rec.offset}`);
  }

  #gone(): StoreError {
    return new StoreError('ZBUS_ERR_NOT_FOUND', `topic ${this.name} not found`);
  }

  /** This broker stops serving the topic (removed anywhere, or the store closes). */
  close(): void {
    this.closed = true;
    for (const g of this.groupsMap.values()) g.close();
    this.#listeners.clear();
  }
}
