// JetStream publishes on the produce hot path: one wildcard inbox subscription for every acknowledgement and one
// coarse timer for every deadline, instead of a request (a timer and a promise chain) per message. A publish
// that finds no stream leader (503: nothing was stored) is sent again a few times while a leader is elected.
import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { StoreError } from '@zbus/server';

export interface PubAck {
  seq: number;
  duplicate: boolean;
}

interface Pending {
  subject: string;
  payload: Uint8Array;
  msgId: string | undefined;
  deadline: number;
  attempts: number;
  resolve(a: PubAck): void;
  reject(e: unknown): void;
}

const SWEEP_MS = 100;
/** Sends of one publish while no stream leader answers (nothing is stored by a 503). */
const MAX_ATTEMPTS = 20;
const RETRY_MS = 250;
const decoder = new TextDecoder();

export class Publisher {
  readonly #inbox = createInbox();
  readonly #prefixLen = this.#inbox.length + 1;
  readonly #sub: Subscription;
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly nc: NatsConnection,
    readonly timeoutMs: number,
  ) {
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (_err, m) => this.#ack(m) });
  }

  publish(subject: string, payload: Uint8Array, msgId: string | undefined): Promise<PubAck> {
    return new Promise((resolve, reject) => {
      const p: Pending = {
        subject,
        payload,
        msgId,
        deadline: Date.now() + this.timeoutMs,
        attempts: 0,
        resolve,
        reject,
      };
      this.#send(p);
    });
  }

  #send(p: Pending): void {
    const id = ++this.#seq;
    p.attempts++;
    this.#pending.set(id, p);
    let h: ReturnType<typeof headers> | undefined;
    if (p.msgId !== undefined) {
      h = headers();
      h.set('Nats-Msg-Id', p.msgId);
    }
    try {
      this.nc.publish(p.subject, p.payload, { reply: `${this.#inbox}.${id}`, headers: h });
    } catch (err) {
      this.#pending.delete(id);
      p.reject(err);
      return;
    }
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#timer.unref();
    }
  }

  #ack(m: Msg): void {
    const id = Number(m.subject.slice(this.#prefixLen));
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    if (m.headers?.code === 503) {
      // No responders: no stream leader right now. Nothing was stored, so sending again is safe.
      if (p.attempts < MAX_ATTEMPTS && Date.now() + RETRY_MS < p.deadline) {
        setTimeout(() => this.#send(p), RETRY_MS).unref();
      } else p.reject(new StoreError('ZBUS_ERR_CLOSED', `no JetStream stream leader for ${p.subject} (503)`));
      return;
    }
    let a: { seq?: number; duplicate?: boolean; error?: { code?: number; description?: string } };
    try {
      a = JSON.parse(decoder.decode(m.data)) as typeof a;
    } catch (err) {
      p.reject(err);
      return;
    }
    if (a.error || typeof a.seq !== 'number') {
      p.reject(new Error(a.error?.description ?? `unexpected publish acknowledgement ${m.string()}`));
      return;
    }
    p.resolve({ seq: a.seq, duplicate: a.duplicate === true });
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#pending.delete(id);
      p.reject(new Error(`publish to ${p.subject}: timeout`));
    }
    if (this.#pending.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sub.unsubscribe();
    for (const p of this.#pending.values()) p.reject(new StoreError('ZBUS_ERR_CLOSED', 'store is closed'));
    this.#pending.clear();
  }
}
