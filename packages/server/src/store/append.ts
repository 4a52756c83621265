// What happens to an append on a disk topic, in order: refused (too large, backlog full), answered as a duplicate
// (an id seen within the dedupe window), held for later (a `deliverAt` in the future), or queued to the log's
// writer, which gives it its offset.
import type { Clock } from './clock.js';
import { type Dedupe, duplicateResult } from './dedupe.js';
import type { DelayQueue } from './delay-queue.js';
import { asStoreError } from './fs-util.js';
import type { LogWriter, PendingAppend } from './log-writer.js';
import { MAX_FIELD_BYTES } from './record.js';
import { type AppendInput, type AppendResult, StoreError } from './types.js';

/** The topic's settings, read on every append (a re-declare may change them). */
export interface AppendSettings {
  readonly maxMessageBytes: number;
  /** Max backlog of the slowest group (0 = unlimited). */
  readonly maxBacklog: number;
  /** A held message is fsynced before its append resolves (policy `always`). */
  readonly fsyncAlways: boolean;
}

/** What the backlog limit needs to know about the topic's groups. */
export interface BacklogSource {
  readonly size: number;
  /** The lowest position of any group. */
  minPosition(): number;
}

export class Appender {
  /** Set while the topic has a dedupe window. */
  dedupe: Dedupe | undefined;

  constructor(
    readonly name: string,
    readonly settings: AppendSettings,
    readonly writer: LogWriter,
    readonly delays: DelayQueue,
    readonly groups: BacklogSource,
    readonly clock: Clock,
  ) {}

  append(input: AppendInput): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => this.appendThen(input, resolve, reject));
  }

  /** append() answered through callbacks: a record queued to the log makes no promise on its way. */
  appendThen(input: AppendInput, stored: (r: AppendResult) => void, refused: (err: unknown) => void): void {
    const refusal = this.#check(input);
    if (refusal !== undefined) {
      refused(refusal);
      return;
    }
    const { id, tag, data } = input;
    const dd = this.dedupe;
    // The clock (Date.now(), a call into V8's runtime) is read here only for a window to look up or a delivery
    // time; otherwise the writer alone reads it, for the record's timestamp.
    const now = dd !== undefined || input.deliverAt !== undefined ? this.clock.now() : 0;
    if (dd !== undefined) {
      const hit = dd.get(id, now);
      if (hit !== undefined) {
        duplicateResult(hit, this.writer.durability()).then(stored, refused);
        return;
      }
    }
    if (input.deliverAt !== undefined && input.deliverAt > now) {
      this.#hold(input, input.deliverAt, now).then(stored, refused);
      return;
    }
    if (dd === undefined) {
      this.writer.enqueue({ offset: 0, timestamp: 0, id, tag, data, resolve: stored, reject: refused });
      return;
    }
    const p = this.appendNow(id, tag, data);
    // The offset is known now (assigned in enqueue); the entry stays pending until the write resolves.
    dd.track(id, this.writer.log.nextOffset - 1, now, p);
    p.then(stored, refused);
  }

  /** Queue a record to the log, past every check (a delayed message coming due). */
  appendNow(id: string, tag: string | undefined, data: Uint8Array): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      const p: PendingAppend = { offset: 0, timestamp: 0, id, tag, data, resolve, reject };
      this.writer.enqueue(p);
    });
  }

  #check(input: AppendInput): StoreError | undefined {
    const { id, tag, data } = input;
    const max = this.settings.maxMessageBytes;
    if (data.length > max) {
      return new StoreError(
        'ZBUS_ERR_BODY_TOO_LARGE',
        `message of ${data.length} bytes exceeds ${max} bytes (maxMessageBytes)`,
      );
    }
    // A UTF-16 length up to a quarter of the limit cannot exceed it in UTF-8: count bytes only past that.
    if (id.length > MAX_FIELD_BYTES >> 2 || (tag !== undefined && tag.length > MAX_FIELD_BYTES >> 2)) {
      if (
        Buffer.byteLength(id) > MAX_FIELD_BYTES ||
        (tag !== undefined && Buffer.byteLength(tag) > MAX_FIELD_BYTES)
      ) {
        return new StoreError('ZBUS_ERR_BODY_TOO_LARGE', `id or tag longer than ${MAX_FIELD_BYTES} bytes`);
      }
    }
    const maxBacklog = this.settings.maxBacklog;
    if (maxBacklog > 0 && this.groups.size > 0) {
      const log = this.writer.log;
      if (log.nextOffset - Math.max(this.groups.minPosition(), log.firstOffset) >= maxBacklog) {
        return new StoreError(
          'ZBUS_ERR_LIMIT',
          `topic ${this.name} backlog is full (maxBacklog=${maxBacklog})`,
        );
      }
    }
    return undefined;
  }

  async #hold(input: AppendInput, deliverAt: number, now: number): Promise<AppendResult> {
    this.dedupe?.hold(input.id, now, deliverAt);
    await asStoreError(
      this.delays.add(deliverAt, input.id, input.tag, input.data, this.settings.fsyncAlways),
      `hold a message of topic ${this.name}`,
    );
    return { offset: -1, timestamp: now, durability: this.writer.durability(), duplicate: false, deliverAt };
  }
}
