// A consume group on JetStream: a durable pull consumer of the topic's stream, shared by every broker. Each
// broker pulls from it only as many messages as its waiting consumers have credit for (the dispatcher's
// nextBatch), holds them until they are handed out, and acks, naks or touches by the reply subject JetStream
// gave the delivery. An ack that reaches another broker (a client that failed over) is sent on a subject built
// from the offset: JetStream keys pending deliveries by stream sequence.
//
// Ack-required groups use AckPolicy.Explicit (AckWait = the ack timeout, MaxAckPending = the ack window); other
// groups use AckPolicy.All, and a broker acks the last message it handed out, so what it pulled but never handed
// out (a broker killed) is delivered again after AckWait instead of being lost. JetStream's own MaxDeliver stays
// unlimited: the broker moves a message to `<topic>.dlq` on the delivery after max deliver and then terminates
// it, so a broker dying half-way only repeats the move (its Nats-Msg-Id dedupes it).
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import {
  compileFilter,
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_ACK_WINDOW,
  DEFAULT_MAX_DELIVER,
  type Delivery,
  type Group,
  type GroupConfig,
  STORE_MASK_ACK_REQUIRED,
  type StoredRecord,
  type StoreGroupInfo,
  type StoreOptions,
  type TagMatcher,
  type Topic,
} from '@zbus/server';
import type { Names } from './names.js';
import { Puller, parseAck } from './puller.js';
import type { NackReasons } from './reasons.js';
import { decodeRecord } from './record.js';

/**
 * Most messages one pull request asks for. A broker asks only for what its waiting consumers have credit for:
 * what it pulls and does not hand out is held from every other broker until AckWait runs out.
 */
const MAX_PULL = 256;
/** Wait before asking again after a pull request failed (no consumer, no leader). */
const RETRY_MS = 250;

/** What every broker knows of a group: its KV entry. */
export interface GroupMeta {
  name: string;
  filter: string;
  mask: number;
  ackWindow?: number;
  ackTimeoutMs?: number;
  maxDeliver?: number;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  /** Bumped whenever the consumer is replaced (seek, filter or ack mode changed). */
  generation: number;
  /** Offset the current consumer started at. */
  startOffset: number;
}

/** What a group uses of the store (NatsStore), so that this file needs neither the store nor the topic. */
export interface GroupStore {
  readonly names: Names;
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly groupDefaults: NonNullable<StoreOptions['groupDefaults']>;
  readonly requestTimeoutMs: number;
  readonly reasons: NackReasons;
  filterOnBroker(filter: string): boolean;
  logError(err: unknown, msg: string, topic?: string): void;
  countDeadLetter(g: NatsGroup): Promise<void>;
  replaceConsumer(g: NatsGroup, config: GroupConfig): Promise<void>;
  updateGroup(g: NatsGroup, config: GroupConfig): Promise<void>;
}

/** What a group, and the store re-declaring it, use of its topic (NatsTopic). */
export interface GroupTopic extends Topic {
  readonly store: GroupStore;
  readonly key: string;
  readonly stream: string;
  readonly firstOffset: number;
  readonly nextOffset: number;
  refresh(): Promise<void>;
  seekTime(time: number): Promise<number>;
  notify(): void;
  notifySoon(): void;
  deadLetter(rec: StoredRecord, group: string, deliveries: number, error?: string): Promise<void>;
}

interface Held {
  d: Delivery;
  reply: string;
}

export class NatsGroup implements Group {
  meta: GroupMeta;
  #match: TagMatcher | undefined;
  #puller: Puller | undefined;
  readonly #buffer: Held[] = [];
  /** Ack mode: deliveries this broker handed out, offset -> reply subject. */
  readonly #handed = new Map<number, string>();
  #retry: NodeJS.Timeout | undefined;
  removed = false;
  deadLettered = 0;
  /** Cached consumer state (refresh()). */
  #stats = { pending: 0, ackPending: 0, delivered: 0, ackFloor: 0 };

  constructor(
    readonly topic: GroupTopic,
    readonly key: string,
    meta: GroupMeta,
  ) {
    this.meta = meta;
    this.#match = topic.store.filterOnBroker(meta.filter) ? compileFilter(meta.filter) : undefined;
  }

  get name(): string {
    return this.meta.name;
  }
  get mask(): number {
    return this.meta.mask;
  }
  get filter(): string {
    return this.meta.filter;
  }
  get consumerName(): string {
    return this.topic.store.names.consumer(this.key, this.meta.generation);
  }
  get ackMode(): boolean {
    return (
      (this.meta.mask & STORE_MASK_ACK_REQUIRED) !== 0 ||
      (this.meta.mask === 0 && (this.topic.mask & STORE_MASK_ACK_REQUIRED) !== 0)
    );
  }
  get maxDeliver(): number {
    return this.meta.maxDeliver ?? this.topic.store.groupDefaults.maxDeliver ?? DEFAULT_MAX_DELIVER;
  }
  get ackWindow(): number {
    return this.meta.ackWindow ?? this.topic.store.groupDefaults.ackWindow ?? DEFAULT_ACK_WINDOW;
  }
  get ackTimeoutMs(): number {
    return this.meta.ackTimeoutMs ?? this.topic.store.groupDefaults.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  }

  /** Another broker replaced the consumer (or this one did): drop what was pulled from the old one. */
  applyMeta(meta: GroupMeta): void {
    const replaced = meta.generation !== this.meta.generation;
    this.meta = meta;
    this.#match = this.topic.store.filterOnBroker(meta.filter) ? compileFilter(meta.filter) : undefined;
    if (!replaced) return;
    this.#buffer.length = 0;
    this.#handed.clear();
    this.#puller?.close();
    this.#puller = undefined;
    this.topic.notify();
  }

  #pull(n: number): void {
    if (this.removed || this.#retry) return;
    if (!this.#puller) {
      const api = `$JS.API.CONSUMER.MSG.NEXT.${this.topic.stream}.${this.consumerName}`;
      this.#puller = new Puller(this.topic.store.nc, api, {
        message: (m) => this.#received(m),
        ended: (why) => {
          if (this.removed) return;
          if (why === 'error' || why === 'lost') {
            // Ask again a little later (no leader yet, consumer being replaced), through the dispatcher, so
            // that a group nobody waits on any more stops pulling.
            this.#retry = setTimeout(() => {
              this.#retry = undefined;
              this.topic.notify();
            }, RETRY_MS);
            this.#retry.unref();
          } else if (why === 'expired') {
            this.topic.notify();
          } else {
            // Filled: the Puller ends a request before handing over its last message, so look once that is
            // kept or not. Nothing kept (filtered out, dead-lettered): whoever still waits asks again; asking
            // sooner would pull a second batch while the first is still on its way.
            queueMicrotask(() => {
              if (this.#buffer.length === 0) this.topic.notify();
            });
          }
        },
      });
    }
    this.#puller.request(Math.min(n, MAX_PULL));
  }

  /** After a reconnect the server holding the pull request may be gone. */
  resetPull(): void {
    this.#puller?.reset();
  }

  #received(m: Msg): void {
    if (this.removed) return;
    const reply = m.reply ?? '';
    const a = parseAck(reply);
    let rec: ReturnType<typeof decodeRecord>;
    try {
      rec = decodeRecord(m.data);
    } catch (err) {
      this.topic.store.logError(err, 'dropping a message that is not a zbus record', this.topic.name);
      m.respond('+TERM');
      return;
    }
    if (this.#match && !this.#match(rec.tag)) {
      // Several patterns on a server without filter_subjects: the broker filters, and acks what it skips.
      if (this.ackMode) m.respond('+ACK');
      return;
    }
    const d: Delivery = {
      offset: a.seq - 1,
      timestamp: Math.floor(a.tsNanos / 1e6),
      id: rec.id,
      tag: rec.tag,
      data: rec.data,
      retry: a.deliveries - 1,
    };
    if (this.ackMode && a.deliveries > this.maxDeliver) {
      void this.#deadLetter(d, reply, a.deliveries - 1);
      return;
    }
    this.#buffer.push({ d, reply });
    this.topic.notifySoon();
  }

  async #deadLetter(d: Delivery, reply: string, deliveries: number): Promise<void> {
    try {
      const reason = await this.topic.store.reasons.get(this.#reasonKey(d.offset));
      await this.topic.deadLetter(d, this.name, deliveries, reason);
      this.topic.store.nc.publish(reply, '+TERM');
      await this.topic.store.countDeadLetter(this);
    } catch (err) {
      // Left pending: JetStream delivers it again after AckWait and the move is retried then.
      this.topic.store.logError(
        err,
        'dead-letter move failed; retried on the next delivery',
        this.topic.name,
      );
    }
  }

  next(): Promise<Delivery | undefined> {
    return this.nextBatch(1, Number.POSITIVE_INFINITY).then((b) => b[0]);
  }

  async nextBatch(max: number, maxBytes: number): Promise<Delivery[]> {
    if (this.removed) return [];
    const out: Delivery[] = [];
    let bytes = 0;
    let last: string | undefined;
    while (out.length < max && bytes < maxBytes && this.#buffer.length > 0) {
      const h = this.#buffer.shift()!;
      out.push(h.d);
      bytes += h.d.data.length;
      if (this.ackMode) this.#handed.set(h.d.offset, h.reply);
      else last = h.reply;
    }
    // AckPolicy.All: one ack covers everything handed out up to it.
    if (last !== undefined) this.topic.store.nc.publish(last, '+ACK');
    if (out.length < max) this.#pull(max - out.length);
    return out;
  }

  /** The subject of a delivery this broker did not hand out. JetStream finds it by stream sequence. */
  async #replyFor(offset: number, needsDeliverySeq: boolean): Promise<string> {
    const known = this.#handed.get(offset);
    if (known !== undefined) return known;
    let dseq = 0;
    if (needsDeliverySeq) {
      // A nak is checked against the consumer's delivered range: any sequence inside it will do.
      const ci = await this.topic.store.jsm.consumers.info(this.topic.stream, this.consumerName);
      dseq = ci.delivered.consumer_seq;
    }
    return `$JS.ACK.${this.topic.stream}.${this.consumerName}.1.${offset + 1}.${dseq}.0.0`;
  }

  async #send(offset: number, body: string, needsDeliverySeq: boolean): Promise<boolean> {
    if (this.removed) return false;
    const subject = await this.#replyFor(offset, needsDeliverySeq);
    await this.topic.store.nc.request(subject, body, { timeout: this.topic.store.requestTimeoutMs });
    return true;
  }

  async ack(offset: number): Promise<boolean> {
    if (!this.ackMode) return false;
    const done = await this.#send(offset, '+ACK', false);
    this.#handed.delete(offset);
    return done;
  }

  async nack(offset: number, delayMs?: number, reason?: string): Promise<boolean> {
    if (!this.ackMode) return false;
    // Kept before the nak: the redelivery may be dead-lettered at once, by any broker.
    if (reason !== undefined) {
      await this.topic.store.reasons.keep(this.#reasonKey(offset), reason).catch((err: unknown) => {
        this.topic.store.logError(
          err,
          'nack reason not kept; its dead letter will not say why',
          this.topic.name,
        );
      });
    }
    const body =
      delayMs !== undefined && delayMs > 0 ? `-NAK ${JSON.stringify({ delay: delayMs * 1e6 })}` : '-NAK';
    const done = await this.#send(offset, body, true);
    this.#handed.delete(offset);
    return done;
  }

  #reasonKey(offset: number): string {
    return this.topic.store.reasons.key(this.topic.key, this.key, this.meta.generation, offset);
  }

  async touch(offset: number): Promise<boolean> {
    if (!this.ackMode) return false;
    return this.#send(offset, '+WPI', false);
  }

  async empty(): Promise<void> {
    await this.topic.store.replaceConsumer(this, { start: { offset: this.topic.nextOffset } });
  }

  async update(config: GroupConfig): Promise<void> {
    await this.topic.store.updateGroup(this, config);
  }

  /** Latest consumer state from JetStream, for info(). */
  async refresh(): Promise<void> {
    if (this.removed) return;
    const end = this.topic.nextOffset;
    const ci = await this.topic.store.jsm.consumers.info(this.topic.stream, this.consumerName);
    this.#stats = {
      pending: ci.num_pending,
      ackPending: ci.num_ack_pending,
      // Nothing left for the group (its filter skips the rest): it has read up to the end, as a local group
      // that skipped the rest has.
      delivered: ci.num_pending === 0 ? Math.max(ci.delivered.stream_seq, end) : ci.delivered.stream_seq,
      ackFloor: ci.ack_floor.stream_seq,
    };
  }

  /** Where a replacement consumer starts when no start is given: after the acked floor in ack mode. */
  resumeOffset(): number {
    const s = this.#stats;
    return Math.max(this.ackMode ? s.ackFloor : s.delivered, this.meta.startOffset, this.topic.firstOffset);
  }

  info(): StoreGroupInfo {
    const s = this.#stats;
    return {
      topicName: this.topic.name,
      groupName: this.name,
      mask: this.mask,
      filter: this.filter,
      backlog: s.pending,
      unacked: s.ackPending,
      deadLettered: this.deadLettered,
      position: Math.max(s.delivered, this.meta.startOffset, this.topic.firstOffset),
      creator: this.meta.creator,
      createdTime: this.meta.createdTime,
      lastUpdatedTime: this.meta.lastUpdatedTime,
    };
  }

  /** Stop pulling. Ack mode: what was pulled but never handed out goes back at once (nak) for other brokers. */
  close(): void {
    this.removed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#puller?.close();
    this.#puller = undefined;
    if (this.ackMode) for (const h of this.#buffer) this.topic.store.nc.publish(h.reply, '-NAK');
    this.#buffer.length = 0;
    this.#handed.clear();
  }
}
