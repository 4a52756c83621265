// Delayed messages of one topic, held durably until due, then handed to `release` (which appends them to the
// log). `delayed.journal` is an append-only list of ADD (the whole message) and DONE (its sequence number)
// entries, each with a CRC32C; replay at open keeps the ADDs without a DONE. In memory a binary min-heap on
// (deliverAt, seq) gives the next due message; one alarm is armed for it.
//
//   ADD : len u32 | crc u32 | type=1 u8 | pad 3 | seq f64 | deliverAt f64 | idLen u16 | tagLen u16 | hasTag u8 |
//         pad 3 | dataLen u32 | id | tag | data
//   DONE: len u32 | crc u32 | type=2 u8 | pad 3 | seq f64
import path from 'node:path';
import { Alarm, type Clock } from './clock.js';
import { crc32c } from './crc32c.js';
import { Journal } from './journal.js';

export interface DelayedMessage {
  seq: number;
  deliverAt: number;
  id: string;
  tag: string | undefined;
  data: Uint8Array;
}

const ADD = 1;
const DONE = 2;
const ADD_HEADER = 40;
const DONE_BYTES = 20;

function less(a: DelayedMessage, b: DelayedMessage): boolean {
  return a.deliverAt < b.deliverAt || (a.deliverAt === b.deliverAt && a.seq < b.seq);
}

export interface DelayQueueOptions {
  clock: Clock;
  /** Store a due message in the log; it is forgotten here once this resolves. */
  release: (m: DelayedMessage) => Promise<unknown>;
  onError: (err: unknown, msg: string) => void;
}

export class DelayQueue {
  readonly heap: DelayedMessage[] = [];
  #nextSeq = 0;
  #doneSinceCompact = 0;
  readonly #alarm: Alarm;
  #closed = false;

  private constructor(
    readonly journal: Journal,
    readonly opts: DelayQueueOptions,
  ) {
    this.#alarm = new Alarm(opts.clock, () => this.#releaseDue());
  }

  static async open(dir: string, opts: DelayQueueOptions): Promise<DelayQueue> {
    const { journal, contents } = await Journal.open(path.join(dir, 'delayed.journal'));
    const q = new DelayQueue(journal, opts);
    const live = new Map<number, DelayedMessage>();
    let pos = 0;
    let maxSeq = -1;
    while (pos + 8 <= contents.length) {
      const len = contents.readUInt32LE(pos);
      if (len < DONE_BYTES || pos + len > contents.length) break;
      if (crc32c(contents, pos + 8, pos + len) !== contents.readUInt32LE(pos + 4)) break;
      const type = contents[pos + 8];
      const seq = contents.readDoubleLE(pos + 12);
      if (seq > maxSeq) maxSeq = seq;
      if (type === ADD) {
        const deliverAt = contents.readDoubleLE(pos + 20);
        const idLen = contents.readUInt16LE(pos + 28);
        const tagLen = contents.readUInt16LE(pos + 30);
        const hasTag = contents[pos + 32] === 1;
        const dataLen = contents.readUInt32LE(pos + 36);
        const s = pos + ADD_HEADER;
        const id = contents.toString('utf8', s, s + idLen);
        const tag = hasTag ? contents.toString('utf8', s + idLen, s + idLen + tagLen) : undefined;
        const data = Buffer.from(contents.subarray(s + idLen + tagLen, s + idLen + tagLen + dataLen));
        live.set(seq, { seq, deliverAt, id, tag, data });
      } else if (type === DONE) {
        live.delete(seq);
      }
      pos += len;
    }
    q.#nextSeq = maxSeq + 1;
    for (const m of live.values()) q.#push(m);
    if (pos < contents.length || (live.size === 0 && contents.length > 0)) {
      // A torn tail, or nothing left: rewrite the journal with just the live entries.
      await journal.rewrite(Buffer.concat([...live.values()].map((m) => encodeAdd(m))));
    }
    return q;
  }

  /** Start releasing what comes due (the topic calls this once it can take appends). */
  start(): void {
    this.#alarm.set(this.nextDue());
  }

  get size(): number {
    return this.heap.length;
  }

  nextDue(): number {
    return this.heap[0]?.deliverAt ?? Number.POSITIVE_INFINITY;
  }

  /** Hold a message; resolves when the ADD entry is written (and fsynced when `sync`). */
  add(
    deliverAt: number,
    id: string,
    tag: string | undefined,
    data: Uint8Array,
    sync: boolean,
  ): Promise<void> {
    // Copy the bytes: a view into a socket chunk must not be kept alive for the whole delay.
    const m: DelayedMessage = { seq: this.#nextSeq++, deliverAt, id, tag, data: Buffer.from(data) };
    this.#push(m);
    this.journal.append(encodeAdd(m));
    this.#alarm.setEarlier(deliverAt);
    return this.journal.flush(sync);
  }

  #releaseDue(): void {
    if (this.#closed) return;
    const now = this.opts.clock.now();
    while (this.heap.length > 0 && this.heap[0]!.deliverAt <= now) {
      const m = this.#pop();
      this.opts.release(m).then(
        () => this.#done(m.seq),
        (err) => {
          if (!this.#closed)
            this.opts.onError(err, 'releasing a delayed message failed; it stays held until restart');
        },
      );
    }
    this.#alarm.set(this.nextDue());
  }

  /** The message was appended to the log: forget it (and compact the journal once nothing is held). */
  #done(seq: number): void {
    const b = Buffer.alloc(DONE_BYTES);
    b.writeUInt32LE(DONE_BYTES, 0);
    b[8] = DONE;
    b.writeDoubleLE(seq, 12);
    b.writeUInt32LE(crc32c(b, 8, DONE_BYTES), 4);
    this.journal.append(b);
    this.#doneSinceCompact++;
    if (this.heap.length === 0 && this.#doneSinceCompact >= 1024) {
      this.#doneSinceCompact = 0;
      void this.journal.rewrite(Buffer.alloc(0)).catch(() => {});
    }
  }

  /** Drop every held message (topic empty). */
  clear(): Promise<void> {
    this.heap.length = 0;
    this.#alarm.cancel();
    return this.journal.rewrite(Buffer.alloc(0));
  }

  /** fsync what was added. */
  flush(): Promise<void> {
    return this.journal.flush(true);
  }

  /** Stop releasing; close the journal (fsynced with `sync`). */
  close(sync: boolean): Promise<void> {
    this.#closed = true;
    this.#alarm.cancel();
    return this.journal.close(sync);
  }

  #push(m: DelayedMessage): void {
    const h = this.heap;
    h.push(m);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): DelayedMessage {
    const h = this.heap;
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

function encodeAdd(m: DelayedMessage): Buffer {
  const idLen = Buffer.byteLength(m.id, 'utf8');
  const tagLen = m.tag === undefined ? 0 : Buffer.byteLength(m.tag, 'utf8');
  const len = ADD_HEADER + idLen + tagLen + m.data.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b[8] = ADD;
  b.writeDoubleLE(m.seq, 12);
  b.writeDoubleLE(m.deliverAt, 20);
  b.writeUInt16LE(idLen, 28);
  b.writeUInt16LE(tagLen, 30);
  b[32] = m.tag === undefined ? 0 : 1;
  b.writeUInt32LE(m.data.length, 36);
  b.write(m.id, ADD_HEADER, 'utf8');
  if (m.tag !== undefined) b.write(m.tag, ADD_HEADER + idLen, 'utf8');
  b.set(m.data, ADD_HEADER + idLen + tagLen);
  b.writeUInt32LE(crc32c(b, 8, len), 4);
  return b;
}
