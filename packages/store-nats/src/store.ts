// The store on a NATS JetStream cluster. Brokers keep nothing of their own: topics are streams, groups durable
// pull consumers, delayed messages a work-queue stream, and topic and group metadata (mask, creator, settings) a
// KV bucket that every broker watches, so a declare through one broker is seen by every broker. The Store
// contract's synchronous lookups (topic(), groups(), info()) answer from that watched view; refresh() brings
// the counters (backlog, unacked, offsets) up to date before the broker answers a query.
//
// Topics with the RPC or PROXY mask hold requests for services connected to this very broker, so they are
// per-process memory topics here (their metadata is still shared); requests reach a broker that has the service
// over core NATS (cluster.ts).
import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  declareDlq,
  type GroupConfig,
  MemoryBudget,
  maxPosition,
  resolveStart,
  type SharedStore,
  STORE_MASK_MEMORY,
  type StoreChange,
  StoreError,
  type StoreLogger,
  type StoreOptions,
  type Topic,
  type TopicConfig,
  validateName,
} from '@zbus/server';
import { type DelayStore, Delays } from './delays.js';
import { type GroupMeta, type GroupTopic, NatsGroup } from './group.js';
import { NatsLink } from './link.js';
import { LocalTopic } from './local-topic.js';
import { encodeName, Names } from './names.js';
import { Publisher } from './publisher.js';
import { NackReasons, REASON_BUCKET_BYTES, REASON_TTL_MS } from './reasons.js';
import { NatsTopic, type TopicMeta, type TopicStore } from './topic.js';

/** 0.11 masks whose topics hold requests for services on this process (RPC 2, PROXY 4). */
const LOCAL_MASKS = 2 | 4;
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** How long opening the store waits for a JetStream cluster that is electing leaders. */
const STARTUP_MS = 60_000;
/**
 * What JetStream answers while its cluster elects a leader or waits for nodes: timeouts, 503s, "jetstream not
 * enabled" (no meta leader), "no suitable peers" and "insufficient resources" (too few nodes to place replicas).
 */
const TRANSIENT = /timeout|no responders|503|leader|no suitable peers|insufficient resources|not enabled/i;

export interface NatsStoreOptions
  extends Omit<StoreOptions, 'dataDir' | 'fsync' | 'segmentBytes' | 'groupCommitWaitMs'> {
  /** `host:port` of NATS servers (any of the cluster; the client learns the others). */
  servers: string[];
  /** Replicas of every stream and of the KV bucket (R1, R3, R5). @default 3 */
  replicas?: number;
  /** Prefix of every stream, subject and bucket, so that several zbus deployments share a NATS cluster. @default 'zbus' */
  prefix?: string;
  /** Connection options for credentials and TLS (user/pass, token, authenticator, tls). */
  connection?: Omit<ConnectionOptions, 'servers'>;
  /** How long a JetStream API call or publish may take. @default 5000 */
  requestTimeoutMs?: number;
}

type AnyTopic = NatsTopic | LocalTopic;

/** A version at least `major.minor`. */
function atLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export class NatsStore implements SharedStore, TopicStore, DelayStore {
  readonly names: Names;
  readonly replicas: number;
  readonly requestTimeoutMs: number;
  readonly topicDefaults: NonNullable<StoreOptions['topicDefaults']>;
  readonly groupDefaults: NonNullable<StoreOptions['groupDefaults']>;
  readonly deadLetterFn: StoreOptions['deadLetter'];
  readonly delays: Delays;
  /** Shared by this broker's RPC and proxy topics (their requests wait in its memory). */
  readonly #memory: MemoryBudget;
  readonly #log: StoreLogger | undefined;
  readonly #topics = new Map<string, AnyTopic>();
  /** Group entries that arrived before their topic's. */
  readonly #orphans = new Map<string, Map<string, GroupMeta>>();
  readonly #declaring = new Map<string, Promise<unknown>>();
  readonly #listeners = new Set<(c: StoreChange) => void>();
  #multiFilter = false;
  #closed = false;
  #stopWatch: (() => void) | undefined;
  nc!: NatsConnection;
  jsm!: JetStreamManager;
  js!: JetStreamClient;
  kv!: KV;
  link!: NatsLink;
  publisher!: Publisher;
  reasons!: NackReasons;

  private constructor(readonly options: NatsStoreOptions) {
    this.names = new Names(options.prefix ?? 'zbus');
    this.replicas = options.replicas ?? 3;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.topicDefaults = options.topicDefaults ?? {};
    this.groupDefaults = options.groupDefaults ?? {};
    this.deadLetterFn = options.deadLetter;
    this.#log = options.log;
    this.delays = new Delays(this);
    this.#memory = new MemoryBudget(options.maxMemoryTopicBytes);
  }

  /** Connects, creates what is missing (KV bucket, delay stream) and loads every topic and group. */
  static async open(options: NatsStoreOptions): Promise<NatsStore> {
    const s = new NatsStore(options);
    try {
      await s.#open();
    } catch (err) {
      await s.close().catch(() => {});
      throw err;
    }
    return s;
  }

  async #open(): Promise<void> {
    const o = this.options;
    this.nc = await connect({
      name: 'zbus-broker',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5_000,
      ...o.connection,
      servers: o.servers,
    });
    this.#multiFilter = atLeast(this.nc.info?.version ?? '0.0', 2, 10);
    this.jsm = await jetstreamManager(this.nc, { timeout: this.requestTimeoutMs });
    this.js = jetstream(this.nc, { timeout: this.requestTimeoutMs });
    this.publisher = new Publisher(this.nc, this.requestTimeoutMs);
    this.link = new NatsLink(this.nc, this.names, (err, msg) => this.logError(err, msg));
    // A broker may start while the cluster elects leaders (a node just died or restarts): wait for it.
    this.kv = await this.#retry('opening the metadata bucket', () =>
      new Kvm(this.js).create(this.names.metaBucket, { replicas: this.replicas, history: 1 }),
    );
    const reasons = await this.#retry('opening the nack reason bucket', () =>
      new Kvm(this.js).create(this.names.reasonBucket, {
        replicas: this.replicas,
        history: 1,
        ttl: REASON_TTL_MS,
        max_bytes: REASON_BUCKET_BYTES,
      }),
    );
    this.reasons = new NackReasons(reasons);
    await this.#retry('loading the metadata', () => this.#watch());
    await this.#retry('starting the delay stream', () => this.delays.start());
    void this.#followReconnects();
  }

  /**
   * Runs `step` until it succeeds, while JetStream's answers are TRANSIENT, for up to `forMs` after the first such
   * answer (so an attempt that timed out still gets another).
   */
  async #retry<T>(what: string, step: () => Promise<T>, forMs = STARTUP_MS): Promise<T> {
    let until: number | undefined;
    for (;;) {
      try {
        return await step();
      } catch (err) {
        until ??= Date.now() + forMs;
        if (Date.now() > until || !TRANSIENT.test(String(err))) throw this.storeError(err, what);
        this.#log?.warn({ err }, `${what}: JetStream not ready, retrying`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  get dataDir(): string {
    return `nats://${this.options.servers.join(',')}`;
  }

  /** Brokers on the same NATS cluster with the same prefix share every topic. */
  get sharedId(): string {
    return `nats:${this.nc.info?.cluster ?? this.nc.info?.server_id ?? '?'}/${this.names.prefix}`;
  }

  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  /** True when a filter of several patterns must be applied by the broker (servers before 2.10). */
  filterOnBroker(filter: string): boolean {
    return !this.#multiFilter && filter.split(';').filter((p) => p !== '').length > 1;
  }

  keyOf(name: string): string {
    return encodeName(name);
  }

  logError(err: unknown, msg: string, topic?: string): void {
    if (!this.#closed) this.#log?.error({ err, topic }, msg);
  }

  /** Listen for topics and groups that appear, change or go through any broker. */
  onChange(listener: (c: StoreChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(c: StoreChange): void {
    for (const l of this.#listeners) l(c);
  }

  // ---------------------------------------------------------------- errors

  storeError(err: unknown, what: string): StoreError {
    if (err instanceof StoreError) return err;
    const text = err instanceof Error ? err.message : String(err);
    if (/no responders|503|not enabled/i.test(text)) {
      return new StoreError('ZBUS_ERR_CLOSED', `JetStream is not available for ${what}: ${text}`, {
        cause: err,
      });
    }
    return new StoreError('ZBUS_ERR_STORE', `${what} failed: ${text}`, { cause: err });
  }

  publishError(err: unknown, topic: string): StoreError {
    const text = err instanceof Error ? err.message : String(err);
    if (/maximum (messages|bytes)/i.test(text)) {
      return new StoreError('ZBUS_ERR_LIMIT', `topic ${topic} is full (${text})`, { cause: err });
    }
    if (/message size exceeds|maximum payload/i.test(text)) {
      return new StoreError('ZBUS_ERR_BODY_TOO_LARGE', `message too large for ${topic} (${text})`, {
        cause: err,
      });
    }
    if (/timeout/i.test(text)) {
      return new StoreError(
        'ZBUS_ERR_STORE',
        `JetStream did not confirm the message to ${topic} in time; it may or may not be stored (${text})`,
        { cause: err },
      );
    }
    return this.storeError(err, `publishing to ${topic}`);
  }

  // ---------------------------------------------------------------- the watched view

  /** Replays the bucket's last values, then keeps applying changes; resolves once the replay is done. */
  async #watch(): Promise<void> {
    const prefix = `$KV.${this.names.metaBucket}.`;
    const stream = `KV_${this.names.metaBucket}`;
    const si = await this.jsm.streams.info(stream);
    const c = await this.js.consumers.get(stream, { deliver_policy: DeliverPolicy.LastPerSubject });
    let loaded!: () => void;
    const ready = new Promise<void>((r) => {
      loaded = r;
    });
    if (si.state.messages === 0) loaded();
    const messages = await c.consume({
      callback: (m) => {
        const op = m.headers?.get('KV-Operation');
        try {
          this.#apply(m.subject.slice(prefix.length), op === 'DEL' || op === 'PURGE' ? undefined : m.json());
        } catch (err) {
          this.logError(err, `cannot apply metadata ${m.subject}`);
        }
        if (m.info.pending === 0) loaded();
      },
    });
    this.#stopWatch = () => void messages.stop();
    await ready;
  }

  /** One KV entry: `t.<topic>`, `g.<topic>.<group>`, `d.<topic>.<group>` (dead letters); undefined: deleted. */
  #apply(key: string, value: unknown): void {
    const [kind, tk, gk] = key.split('.');
    if (tk === undefined) return;
    if (kind === 't') {
      if (value === undefined) this.#dropTopic(tk);
      else this.#putTopic(tk, value as TopicMeta);
    } else if (kind === 'g' && gk !== undefined) {
      if (value === undefined) this.#dropGroup(tk, gk);
      else this.#putGroup(tk, gk, value as GroupMeta);
    } else if (kind === 'd' && gk !== undefined) {
      const t = this.#topics.get(tk);
      const g = t instanceof NatsTopic ? t.groupsMap.get(gk) : undefined;
      if (g) g.deadLettered = Number(value) || 0;
    }
  }

  #putTopic(tk: string, meta: TopicMeta): AnyTopic {
    const t = this.#topics.get(tk);
    if (t instanceof NatsTopic) {
      const changed = t.meta.lastUpdatedTime !== meta.lastUpdatedTime || t.meta.mask !== meta.mask;
      t.meta = meta;
      if (changed) this.#emit({ kind: 'topic', topic: meta.name, removed: false });
      return t;
    }
    if (t instanceof LocalTopic) {
      t.redeclare(meta.config);
      return t;
    }
    const created: AnyTopic =
      (meta.mask & LOCAL_MASKS) !== 0
        ? new LocalTopic(
            meta.name,
            { ...meta.config, mask: meta.mask | STORE_MASK_MEMORY },
            {
              maxBacklog: this.topicDefaults.maxBacklog,
              maxMessageBytes: this.topicDefaults.maxMessageBytes,
              budget: this.#memory,
            },
            (group, config) => this.#shareLocalGroup(tk, group, config),
            async (group) => {
              await this.kv.delete(`g.${tk}.${encodeName(group)}`);
            },
          )
        : new NatsTopic(this, tk, meta);
    this.#topics.set(tk, created);
    const orphans = this.#orphans.get(tk);
    this.#orphans.delete(tk);
    if (orphans) for (const [gk, gm] of orphans) this.#putGroup(tk, gk, gm);
    if (created instanceof NatsTopic) void created.refresh().catch(() => {});
    this.#emit({ kind: 'topic', topic: meta.name, removed: false });
    return created;
  }

  #dropTopic(tk: string): void {
    const t = this.#topics.get(tk);
    this.#orphans.delete(tk);
    if (!t) return;
    this.#topics.delete(tk);
    t.close();
    this.#emit({ kind: 'topic', topic: t.name, removed: true });
  }

  #putGroup(tk: string, gk: string, meta: GroupMeta): NatsGroup | undefined {
    const t = this.#topics.get(tk);
    if (t === undefined) {
      const waiting = this.#orphans.get(tk) ?? new Map<string, GroupMeta>();
      this.#orphans.set(tk, waiting);
      waiting.set(gk, meta);
      return undefined;
    }
    if (t instanceof LocalTopic) {
      void t.adopt(meta.name, { filter: meta.filter, mask: meta.mask, creator: meta.creator });
      return undefined;
    }
    let g = t.groupsMap.get(gk);
    if (g) {
      if (g.meta.lastUpdatedTime === meta.lastUpdatedTime && g.meta.generation === meta.generation) return g;
      g.applyMeta(meta);
    } else {
      g = new NatsGroup(t, gk, meta);
      t.groupsMap.set(gk, g);
    }
    this.#emit({ kind: 'group', topic: t.name, group: meta.name, removed: false });
    return g;
  }

  #dropGroup(tk: string, gk: string): void {
    this.#orphans.get(tk)?.delete(gk);
    const t = this.#topics.get(tk);
    if (t instanceof LocalTopic) {
      const name = t.groups().find((x) => encodeName(x.name) === gk)?.name;
      if (name !== undefined) {
        void t
          .drop(name)
          .then(() => this.#emit({ kind: 'group', topic: t.name, group: name, removed: true }));
      }
      return;
    }
    if (!t) return;
    const g = t.groupsMap.get(gk);
    if (!g) return;
    t.groupsMap.delete(gk);
    g.close();
    this.#emit({ kind: 'group', topic: t.name, group: g.name, removed: true });
  }

  async #shareLocalGroup(tk: string, name: string, config: GroupConfig): Promise<void> {
    const now = Date.now();
    const meta: GroupMeta = {
      name,
      filter: config.filter ?? '',
      mask: config.mask ?? 0,
      creator: config.creator ?? '',
      createdTime: now,
      lastUpdatedTime: now,
      generation: 0,
      startOffset: 0,
    };
    await this.kv.put(`g.${tk}.${encodeName(name)}`, json(meta));
  }

  topicByKey(tk: string): NatsTopic | undefined {
    const t = this.#topics.get(tk);
    return t instanceof NatsTopic ? t : undefined;
  }

  // ---------------------------------------------------------------- Store

  #check(): void {
    if (this.#closed) throw new StoreError('ZBUS_ERR_CLOSED', 'store is closed');
  }

  topic(name: string): Topic | undefined {
    return this.#topics.get(encodeName(name));
  }

  topics(): Topic[] {
    return [...this.#topics.values()];
  }

  /**
   * Brings the counters of one topic (or every topic) up to date. One topic's failure is the caller's: a query
   * answered from counters JetStream could not confirm (a broker just restarted has none yet) would report an
   * empty topic. The listing of every topic is best effort.
   */
  async refresh(name?: string): Promise<void> {
    if (name !== undefined) {
      const t = this.#topics.get(encodeName(name));
      if (t instanceof NatsTopic) {
        await t.refresh().catch((err: unknown) => {
          throw this.storeError(err, `reading the state of ${name}`);
        });
      }
      return;
    }
    await Promise.all(
      [...this.#topics.values()].map((t) =>
        t instanceof NatsTopic ? t.refresh().catch(() => {}) : undefined,
      ),
    );
  }

  /**
   * Runs a declare: one at a time per name on this broker (the KV entry serialises them across brokers), and
   * again while JetStream's answers are TRANSIENT, for up to requestTimeoutMs, so that a declare during an election
   * or a node's restart waits it out rather than failing at once. Every step of a declare is safe to run again.
   */
  #once<T>(key: string, what: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#declaring.get(key) ?? Promise.resolve();
    const p = prev.catch(() => {}).then(() => this.#retry(what, fn, this.requestTimeoutMs));
    this.#declaring.set(key, p);
    void p
      .catch(() => {})
      .finally(() => {
        if (this.#declaring.get(key) === p) this.#declaring.delete(key);
      });
    return p;
  }

  declareTopic(given: string, config: TopicConfig): Promise<Topic> {
    this.#check();
    const name = validateName('topic', given);
    const tk = encodeName(name);
    return this.#once(`t.${tk}`, `declaring topic ${name}`, () => this.#declareTopic(name, tk, config));
  }

  async #declareTopic(name: string, tk: string, config: TopicConfig): Promise<Topic> {
    const entry = await this.kv.get(`t.${tk}`);
    const current =
      entry && entry.operation === 'PUT' && entry.length > 0 ? (entry.json() as TopicMeta) : undefined;
    const now = Date.now();
    // The MEMORY bit (the storage type of the stream) is fixed at creation, as in the local store.
    const mask = current
      ? (config.mask & ~STORE_MASK_MEMORY) | (current.mask & STORE_MASK_MEMORY)
      : config.mask;
    const meta: TopicMeta = {
      name: current?.name ?? name,
      mask,
      creator: current?.creator ?? config.creator ?? '',
      createdTime: current?.createdTime ?? now,
      lastUpdatedTime: now,
      config: { ...config, mask, creator: current?.creator ?? config.creator },
    };
    if ((mask & LOCAL_MASKS) === 0) await this.ensureStream(new NatsTopic(this, tk, meta).streamConfig());
    await this.kv.put(`t.${tk}`, json(meta));
    const t = this.#putTopic(tk, meta);
    if (t instanceof NatsTopic) await t.refresh().catch(() => {});
    return t;
  }

  async removeTopic(name: string): Promise<boolean> {
    this.#check();
    const tk = encodeName(name);
    const t = this.#topics.get(tk);
    if (t === undefined) return false;
    // The KV entry goes first: every broker drops the topic as soon as it sees that.
    await this.kv.delete(`t.${tk}`);
    if (t instanceof NatsTopic) {
      for (const gk of t.groupsMap.keys()) {
        await this.kv.delete(`g.${tk}.${gk}`);
        await this.kv.delete(`d.${tk}.${gk}`);
      }
      await this.delays.purge(t).catch(() => {});
      await this.jsm.streams.delete(t.stream).catch((err: unknown) => {
        if (!/not found/i.test(String(err))) throw this.storeError(err, `removing ${name}`);
      });
    }
    this.#dropTopic(tk);
    return true;
  }

  /** Creates the stream, or updates it when its config differs. */
  async ensureStream(config: Partial<StreamConfig> & { name: string }): Promise<void> {
    try {
      await this.jsm.streams.add(config);
    } catch (err) {
      if (!/already in use|already exists/i.test(String(err)))
        throw this.storeError(err, `creating ${config.name}`);
      await this.jsm.streams.update(config.name, config).catch((e: unknown) => {
        throw this.storeError(e, `updating ${config.name}`);
      });
    }
  }

  dlqTopic(topicName: string): Promise<Topic> {
    return declareDlq(this, topicName);
  }

  // ---------------------------------------------------------------- groups

  #consumerConfig(
    t: Pick<GroupTopic, 'key'>,
    g: Pick<NatsGroup, 'consumerName' | 'ackMode' | 'ackWindow' | 'ackTimeoutMs' | 'filter'>,
    startOffset: number,
  ): Partial<ConsumerConfig> {
    const patterns = g.filter.split(';').filter((p) => p !== '');
    const c: Partial<ConsumerConfig> = {
      durable_name: g.consumerName,
      ack_policy: g.ackMode ? AckPolicy.Explicit : AckPolicy.All,
      ack_wait: g.ackTimeoutMs * 1e6,
      max_ack_pending: g.ackMode ? g.ackWindow : -1,
      max_deliver: -1,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(startOffset, 0) + 1,
    };
    if (patterns.length === 1) c.filter_subject = this.names.filterSubject(t.key, patterns[0]);
    else if (patterns.length > 1) {
      if (this.#multiFilter) c.filter_subjects = patterns.map((p) => this.names.filterSubject(t.key, p));
      else c.filter_subject = this.names.filterSubject(t.key, undefined);
    }
    return c;
  }

  /**
   * Creates the group's consumer, or finds it as it is (the same config). Every declare of a group ends with it:
   * the KV entry that names a group and its consumer are two steps, and a declare that failed between them (a
   * timeout, a node lost) left a group that delivers nothing until a later declare makes its consumer.
   */
  async ensureConsumer(g: NatsGroup): Promise<void> {
    const t = g.topic;
    await this.jsm.consumers
      .add(t.stream, this.#consumerConfig(t, g, g.meta.startOffset))
      .catch((err: unknown) => {
        if (!/already exists/i.test(String(err))) throw this.storeError(err, `creating group ${g.name}`);
      });
  }

  /** The offset a new or re-declared group starts at (undefined: keep the current one), as the local store does. */
  async #resolveStart(t: GroupTopic, config: GroupConfig, isNew: boolean): Promise<number | undefined> {
    await t.refresh();
    return resolveStart(config, isNew, {
      firstOffset: t.firstOffset,
      endOffset: t.nextOffset,
      positionOf: (name) => t.group(name)?.info().position,
      maxPosition: () => maxPosition(t.groups().map((g) => g.info())),
      idAt: async (offset) => (await t.read(offset))?.id,
      seekTime: (time) => t.seekTime(time),
    });
  }

  declareGroup(t: NatsTopic, name: string, config: GroupConfig): Promise<NatsGroup> {
    const gk = encodeName(name);
    return this.#once(`g.${t.key}.${gk}`, `declaring group ${name}`, () =>
      this.#declareGroup(t, name, gk, config),
    );
  }

  async #declareGroup(t: NatsTopic, name: string, gk: string, config: GroupConfig): Promise<NatsGroup> {
    const key = `g.${t.key}.${gk}`;
    if (t.groupsMap.has(gk)) {
      const g = await this.#adoptGroup(t, gk, config);
      if (g) return g;
      // Another broker removed the group and this one has not seen it yet: declare it anew.
      this.#dropGroup(t.key, gk);
    }
    const start = (await this.#resolveStart(t, config, true)) ?? t.firstOffset;
    const now = Date.now();
    const meta: GroupMeta = {
      name,
      filter: config.filter ?? '',
      mask: config.mask ?? 0,
      ackWindow: config.ackWindow,
      ackTimeoutMs: config.ackTimeoutMs,
      maxDeliver: config.maxDeliver,
      creator: config.creator ?? '',
      createdTime: now,
      lastUpdatedTime: now,
      generation: 1,
      startOffset: start,
    };
    try {
      // The KV create claims the name across brokers; the loser adopts the winner's group.
      await this.kv.create(key, json(meta));
    } catch (err) {
      const g = await this.#adoptGroup(t, gk, config);
      if (!g) throw this.storeError(err, `declaring group ${name}`);
      return g;
    }
    const g = this.#putGroup(t.key, gk, meta)!;
    await this.ensureConsumer(g);
    await g.refresh().catch(() => {});
    return g;
  }

  /**
   * Re-declares a group as its KV entry is now (undefined when it has none). This broker's own copy may lag another
   * broker's re-declare by the KV watch's delay; acting on it could make the old generation's consumer again.
   */
  async #adoptGroup(t: NatsTopic, gk: string, config: GroupConfig): Promise<NatsGroup | undefined> {
    const entry = await this.kv.get(`g.${t.key}.${gk}`);
    if (!entry || entry.operation !== 'PUT') return undefined;
    const g = this.#putGroup(t.key, gk, entry.json() as GroupMeta)!;
    await this.updateGroup(g, config);
    await this.ensureConsumer(g);
    return g;
  }

  /** A re-declare: a new consumer (next generation) when the start, filter or ack settings change. */
  async updateGroup(g: NatsGroup, config: GroupConfig): Promise<void> {
    const t = g.topic;
    const m = g.meta;
    const next: GroupMeta = {
      ...m,
      filter: config.filter ?? '',
      mask: config.mask ?? m.mask,
      ackWindow: config.ackWindow ?? m.ackWindow,
      ackTimeoutMs: config.ackTimeoutMs ?? m.ackTimeoutMs,
      maxDeliver: config.maxDeliver ?? m.maxDeliver,
    };
    const probe = new NatsGroup(t, g.key, next);
    const replace =
      config.start !== undefined ||
      next.filter !== m.filter ||
      probe.ackMode !== g.ackMode ||
      probe.ackWindow !== g.ackWindow ||
      probe.ackTimeoutMs !== g.ackTimeoutMs;
    if (!replace && next.mask === m.mask && next.maxDeliver === m.maxDeliver) return;
    next.lastUpdatedTime = Date.now();
    const old = g.consumerName;
    if (replace) {
      await g.refresh().catch(() => {});
      const pos = (await this.#resolveStart(t, config, false)) ?? g.resumeOffset();
      next.generation = m.generation + 1;
      next.startOffset = pos;
      const fresh = new NatsGroup(t, g.key, next);
      await this.jsm.consumers.add(t.stream, this.#consumerConfig(t, fresh, pos)).catch((err: unknown) => {
        throw this.storeError(err, `re-declaring group ${g.name}`);
      });
    }
    await this.kv.put(`g.${t.key}.${g.key}`, json(next));
    this.#putGroup(t.key, g.key, next);
    if (replace) await this.jsm.consumers.delete(t.stream, old).catch(() => {});
    await g.refresh().catch(() => {});
  }

  async replaceConsumer(g: NatsGroup, config: GroupConfig): Promise<void> {
    await this.updateGroup(g, { filter: g.filter, mask: g.mask, ...config });
  }

  async removeGroup(t: NatsTopic, g: NatsGroup): Promise<void> {
    await this.kv.delete(`g.${t.key}.${g.key}`);
    await this.kv.delete(`d.${t.key}.${g.key}`);
    await this.jsm.consumers.delete(t.stream, g.consumerName).catch(() => {});
    this.#dropGroup(t.key, g.key);
  }

  /** One more dead letter for the group: a compare-and-set loop on its counter. */
  async countDeadLetter(g: NatsGroup): Promise<void> {
    const key = `d.${g.topic.key}.${g.key}`;
    for (let i = 0; i < 10; i++) {
      const e = await this.kv.get(key);
      const n = e && e.operation === 'PUT' ? Number(e.string()) || 0 : 0;
      try {
        if (e && e.operation === 'PUT') await this.kv.update(key, String(n + 1), e.revision);
        else await this.kv.create(key, String(n + 1));
        g.deadLettered = n + 1;
        return;
      } catch {
        // another broker counted at the same time: read again
      }
    }
  }

  // ---------------------------------------------------------------- lifecycle

  async #followReconnects(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type !== 'reconnect') continue;
      // Pull requests lived on the server we lost: ask again on the new one.
      this.delays.resetPull();
      for (const t of this.#topics.values()) {
        if (t instanceof NatsTopic) for (const g of t.groupsMap.values()) g.resetPull();
      }
    }
  }

  async flush(): Promise<void> {
    this.#check();
    await this.nc.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatch?.();
    this.delays.close();
    this.publisher?.close();
    for (const t of this.#topics.values()) t.close();
    this.#topics.clear();
    if (this.nc && !this.nc.isClosed()) {
      await this.nc.flush().catch(() => {});
      await this.nc.close();
    }
  }
}
