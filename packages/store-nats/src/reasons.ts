// Why consumers gave deliveries back (the nack `reason`), kept in JetStream rather than in one broker: the broker
// that dead-letters a message is whichever pulls its last delivery, not necessarily the one that took the nack.
// One KV entry per nacked delivery (`<topic>.<group>.<generation>.<offset>`, the last reason given), read when
// the message is dead-lettered. Entries expire after REASON_TTL_MS instead of being deleted one by one (a
// delivery acked after a nack leaves its entry behind), and the bucket is bounded in bytes: once full, a nack
// still goes through, without its reason.
import type { KV } from '@nats-io/kv';

/** How long a reason is kept: a message dead-lettered later than this after its last nack says no reason. */
export const REASON_TTL_MS = 24 * 60 * 60 * 1000;
/** Most bytes the bucket holds (a reason is at most 256 bytes, as the broker cuts it). */
export const REASON_BUCKET_BYTES = 64 * 1024 * 1024;

export class NackReasons {
  constructor(readonly kv: KV) {}

  /** The entry of delivery `offset` of consumer generation `generation` of a group. */
  key(topicKey: string, groupKey: string, generation: number, offset: number): string {
    return `${topicKey}.${groupKey}.${generation}.${offset}`;
  }

  async keep(key: string, reason: string): Promise<void> {
    await this.kv.put(key, reason);
  }

  /** The last reason kept for `key`, if any. */
  async get(key: string): Promise<string | undefined> {
    const e = await this.kv.get(key);
    return e !== null && e.operation === 'PUT' ? e.string() : undefined;
  }
}
