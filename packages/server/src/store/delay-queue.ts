// Delayed messages of one topic, held durably until due, then handed to `release` (which appends them to the
// log). Memory holds a few numbers per message (due time, where its record is: delay-file.ts), never its bytes:
// a binary min-heap on (deliverAt, seq) gives the next due message, and one alarm is armed for it. Due messages
// are read back and released in batches of bounded bytes, in due order; each is marked DONE once the log has it
// (a crash in between releases it again: at least once).
import path from 'node:path';
import { Alarm, type Clock } from './clock.js';
import {
  type DelayedMessage,
  DelayFile,
  encodeAdd,
  encodeDone,
  type HeldEntry,
  type ScanResult,
} from './delay-file.js';
import type { FileCache } from './file-cache.js';

export type { DelayedMessage } from './delay-file.js';

/** A release batch reads at most this many bytes of due messages (at least one message) before appending them. */
const RELEASE_BATCH_BYTES = 4 * 1024 * 1024;
/** Garbage (released records, DONE records) in the file that makes it worth compacting. */
const COMPACT_MIN_GARBAGE_BYTES = 64 * 1024 * 1024;
/** With nothing held, the file is emptied after this many releases or this much garbage. */
const EMPTY_AFTER_DONE = 1024;
const EMPTY_AFTER_BYTES = 1024 * 1024;

function less(a: HeldEntry, b: HeldEntry): boolean {
  return a.deliverAt < b.deliverAt || (a.deliverAt === b.deliverAt && a.seq < b.seq);
}

export interface DelayQueueOptions {
  clock: Clock;
  /** Store a due message in the log; it is forgotten here once this resolves. */
  release: (m: DelayedMessage) => Promise<unknown>;
  onError: (err: unknown, msg: string) => void;
  /** Read the ids of held messages at open (for the dedupe window); see `heldAtOpen`. */
  wantIds: boolean;
  files: FileCache;
}

export class DelayQueue {
  /** Held messages not yet due, earliest first. */
  readonly #heap: HeldEntry[] = [];
  /** Every message not yet DONE: held, or being released. */
  readonly #live = new Map<number, HeldEntry>();
  #liveBytes = 0;
  #nextSeq = 0;
  #doneSinceCompact = 0;
  #compacting = false;
  #releasing = false;
  readonly #alarm: Alarm;
  #closed = false;
  /** With `wantIds`: the ids and due times of the messages held at open, until taken. */
  heldAtOpen: Array<{ id: string; deliverAt: number }> | undefined;

  private constructor(
    readonly file: DelayFile,
    readonly opts: DelayQueueOptions,
  ) {
    this.#alarm = new Alarm(opts.clock, () => void this.#releaseDue());
  }

  /** Open the delay journal of the topic in `dir`; on failure nothing stays open. */
  static async open(dir: string, opts: DelayQueueOptions): Promise<DelayQueue> {
    const { file, scan } = await DelayFile.open(path.join(dir, 'delayed.journal'), opts.files, opts.wantIds);
    try {
      return await DelayQueue.#load(file, scan, opts);
    } catch (err) {
      await file.close(false).catch(() => {});
      throw err;
    }
  }

  static async #load(file: DelayFile, scan: ScanResult, opts: DelayQueueOptions): Promise<DelayQueue> {
    const q = new DelayQueue(file, opts);
    q.#nextSeq = scan.maxSeq + 1;
    for (const e of scan.live) q.#hold(e);
    if (scan.ids !== undefined) {
      q.heldAtOpen = scan.live.map((e) => ({ id: scan.ids!.get(e.seq) ?? '', deliverAt: e.deliverAt }));
    }
    if (scan.corrupt > 0) {
      opts.onError(new Error(`${scan.corrupt} corrupt records`), 'skipped corrupt delayed messages at open');
    }
    if (q.#live.size === 0 && file.size > 0) await file.compact([]);
    return q;
  }

  /** Start releasing what comes due (the topic calls this once it can take appends). */
  start(): void {
    this.#alarm.set(this.nextDue());
  }

  /** Messages held (not yet due or being released). */
  get size(): number {
    return this.#heap.length;
  }

  nextDue(): number {
    return this.#heap[0]?.deliverAt ?? Number.POSITIVE_INFINITY;
  }

  /** Hold a message; resolves when its record is written (and fsynced when `sync`). */
  add(
    deliverAt: number,
    id: string,
    tag: string | undefined,
    data: Uint8Array,
    sync: boolean,
  ): Promise<void> {
    const seq = this.#nextSeq++;
    // The record is a copy: a view into a socket chunk is not kept, and the copy goes once it is written.
    const record = encodeAdd({ seq, deliverAt, id, tag, data });
    const e: HeldEntry = { seq, deliverAt, pos: -1, len: record.length };
    this.#hold(e);
    this.file.add(record, e);
    this.#alarm.setEarlier(deliverAt);
    return this.file.flush(sync);
  }

  #hold(e: HeldEntry): void {
    this.#live.set(e.seq, e);
    this.#liveBytes += e.len;
    this.#push(e);
  }

  /** Read back and release everything due, a bounded batch at a time; re-arm for the next. */
  async #releaseDue(): Promise<void> {
    if (this.#releasing || this.#closed) return;
    this.#releasing = true;
    try {
      for (;;) {
        const now = this.opts.clock.now();
        const batch: HeldEntry[] = [];
        let bytes = 0;
        while (
          this.#heap.length > 0 &&
          this.#heap[0]!.deliverAt <= now &&
          (bytes === 0 || bytes < RELEASE_BATCH_BYTES)
        ) {
          const e = this.#pop();
          batch.push(e);
          bytes += e.len;
        }
        if (batch.length === 0) break;
        await this.#release(batch);
        if (this.#closed) return;
      }
    } finally {
      this.#releasing = false;
    }
    this.#alarm.set(this.nextDue());
  }

  async #release(batch: HeldEntry[]): Promise<void> {
    const appends: Array<Promise<void>> = [];
    for (const e of batch) {
      let m: DelayedMessage | undefined;
      try {
        m = await this.file.read(e);
      } catch (err) {
        if (!this.#closed)
          this.opts.onError(err, 'reading a delayed message failed; it stays held until restart');
        continue;
      }
      if (this.#closed) return;
      if (m === undefined) {
        this.opts.onError(
          new Error(`record of delayed message ${e.seq} is corrupt`),
          'dropped a corrupt delayed message',
        );
        this.#done(e);
        continue;
      }
      // Appends are queued in due order (so offsets follow it) and written together (one group commit).
      appends.push(
        this.opts.release(m).then(
          () => this.#done(e),
          (err) => {
            if (!this.#closed)
              this.opts.onError(err, 'releasing a delayed message failed; it stays held until restart');
          },
        ),
      );
    }
    await Promise.all(appends);
  }

  /** The message is in the log: forget it, and drop garbage from the file now and then. */
  #done(e: HeldEntry): void {
    if (!this.#live.delete(e.seq)) return;
    this.#liveBytes -= e.len;
    this.file.append(encodeDone(e.seq));
    this.#doneSinceCompact++;
    const garbage = this.file.size - this.#liveBytes;
    const empty =
      this.#live.size === 0 && (this.#doneSinceCompact >= EMPTY_AFTER_DONE || garbage >= EMPTY_AFTER_BYTES);
    if (!empty && !(garbage >= COMPACT_MIN_GARBAGE_BYTES && garbage > this.#liveBytes)) return;
    if (this.#compacting) return;
    this.#compacting = true;
    this.#doneSinceCompact = 0;
    this.file
      .compact(this.#live.values())
      .catch((err) => {
        if (!this.#closed) this.opts.onError(err, 'delay journal compaction failed');
      })
      .finally(() => {
        this.#compacting = false;
      });
  }

  /** Drop every held message (topic empty). */
  clear(): Promise<void> {
    this.#heap.length = 0;
    this.#live.clear();
    this.#liveBytes = 0;
    this.#alarm.cancel();
    return this.file.clear();
  }

  /** fsync what was added. */
  flush(): Promise<void> {
    return this.file.flush(true);
  }

  /** Stop releasing; close the file (fsynced with `sync`). */
  close(sync: boolean): Promise<void> {
    this.#closed = true;
    this.#alarm.cancel();
    return this.file.close(sync);
  }

  #push(e: HeldEntry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): HeldEntry {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
