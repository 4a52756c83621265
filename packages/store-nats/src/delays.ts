// Delayed messages that survive any node, on nats-server 2.9 (no message schedules there). A delayed message
// goes to the replicated work-queue stream `<P>_DELAYS` (subject `<p>.d.<topic>`). Every broker pulls from one
// shared durable consumer of it: a message not yet due is nak'ed with the time left as its delay, so the timer
// lives in JetStream's replicated consumer state, not in any zbus process; a due one is published to its topic
// (Nats-Msg-Id `delay:<seq>`, so a broker killed between the publish and the ack cannot store it twice) and
// then acked, which removes it. After a consumer leader change JetStream redelivers pending messages once their
// AckWait has passed, so a node dying makes a due message at most AckWait late.
import {
  AckPolicy,
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import type { AppendInput, StoreError } from '@zbus/server';
import type { Names } from './names.js';
import type { Publisher } from './publisher.js';
import { Puller, parseAck } from './puller.js';
import { decodeDelayed, encodeDelayed } from './record.js';

const CONSUMER = 'movers';
/** Redelivery of a pending delayed message after a consumer leader change or a broker that died holding it. */
const ACK_WAIT_MS = 5_000;
const BATCH = 256;
const RETRY_MS = 500;

/** What the delays use of the store (NatsStore), so that this file needs neither the store nor the topic. */
export interface DelayStore {
  readonly names: Names;
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly replicas: number;
  readonly publisher: Publisher;
  ensureStream(config: Partial<StreamConfig> & { name: string }): Promise<void>;
  publishError(err: unknown, topic: string): StoreError;
  logError(err: unknown, msg: string, topic?: string): void;
  topicByKey(key: string): DelayTopic | undefined;
}

/** What the delays use of a topic (NatsTopic): where a message is held, and where it goes when due. */
export interface DelayTopic {
  readonly key: string;
  readonly name: string;
  readonly dedupeWindowMs: number;
  publish(id: string, tag: string | undefined, data: Uint8Array, msgId: string | undefined): Promise<unknown>;
}

export class Delays {
  #puller: Puller | undefined;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(readonly store: DelayStore) {}

  get stream(): string {
    return this.store.names.delayStream;
  }

  /** Creates the stream and the shared consumer when missing, then starts pulling. */
  async start(): Promise<void> {
    const jsm = this.store.jsm;
    const config = {
      name: this.stream,
      subjects: [this.store.names.delaySubjects],
      storage: StorageType.File,
      num_replicas: this.store.replicas,
      retention: RetentionPolicy.Workqueue,
      discard: DiscardPolicy.Old,
      duplicate_window: 120_000 * 1e6,
    };
    await this.store.ensureStream(config);
    await jsm.consumers
      .add(this.stream, {
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ACK_WAIT_MS * 1e6,
        max_deliver: -1,
        max_ack_pending: -1,
      })
      .catch((err: unknown) => {
        if (!/already (exists|in use)/i.test(String(err))) throw err;
      });
    this.#puller = new Puller(this.store.nc, `$JS.API.CONSUMER.MSG.NEXT.${this.stream}.${CONSUMER}`, {
      message: (m) => void this.#take(m),
      ended: (why) => {
        if (this.#closed) return;
        if (why === 'error' || why === 'lost') {
          this.#retry = setTimeout(() => {
            this.#retry = undefined;
            this.#pull();
          }, RETRY_MS);
          this.#retry.unref();
        } else this.#pull();
      },
    });
    this.#pull();
  }

  #pull(): void {
    if (!this.#closed) this.#puller?.request(BATCH);
  }

  /** After a reconnect the server that held the pull request may be gone. */
  resetPull(): void {
    this.#puller?.reset();
  }

  async add(topic: DelayTopic, input: AppendInput, dedupe: boolean): Promise<{ duplicate: boolean }> {
    const payload = encodeDelayed(input.deliverAt!, { id: input.id, tag: input.tag, data: input.data });
    const ack = await this.store.publisher
      .publish(
        this.store.names.delaySubject(topic.key),
        payload,
        dedupe ? `${topic.key}:${input.id}` : undefined,
      )
      .catch((err: unknown) => {
        throw this.store.publishError(err, topic.name);
      });
    return { duplicate: ack.duplicate };
  }

  async #take(m: Msg): Promise<void> {
    const topicKey = m.subject.slice(this.store.names.delaySubject('').length);
    let d: ReturnType<typeof decodeDelayed>;
    try {
      d = decodeDelayed(m.data);
    } catch (err) {
      this.store.logError(err, 'dropping a delayed message that is not a zbus record');
      m.respond('+TERM');
      return;
    }
    const left = d.deliverAt - Date.now();
    if (left > 0) {
      m.respond(`-NAK ${JSON.stringify({ delay: Math.ceil(left) * 1e6 })}`);
      return;
    }
    const topic = this.store.topicByKey(topicKey);
    if (topic === undefined) {
      m.respond('+TERM'); // the topic was removed meanwhile
      return;
    }
    const seq = parseAck(m.reply ?? '').seq;
    try {
      await topic.publish(d.id, d.tag, d.data, topic.dedupeWindowMs > 0 ? d.id : `delay:${seq}`);
      m.respond('+ACK');
    } catch (err) {
      this.store.logError(err, 'releasing a delayed message failed; retried after AckWait', topic.name);
    }
  }

  /** Delayed messages of a topic still held. */
  async count(topic: DelayTopic): Promise<number> {
    const subject = this.store.names.delaySubject(topic.key);
    const si = await this.store.jsm.streams.info(this.stream, { subjects_filter: subject });
    return si.state.subjects?.[subject] ?? 0;
  }

  async purge(topic: DelayTopic): Promise<void> {
    await this.store.jsm.streams.purge(this.stream, { filter: this.store.names.delaySubject(topic.key) });
  }

  close(): void {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#puller?.close();
  }
}
