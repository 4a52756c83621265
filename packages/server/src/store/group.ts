// A consume group of a disk topic: a persisted read position, a tag filter, a mask and, in ack mode, the table
// of unacked deliveries.
//
// Files (in `<topic>/groups/`): `<name>.json` holds the config and a position checkpoint (written atomically,
// lazily by the topic's checkpoint timer); `<name>.acks` is the ack journal, 28-byte entries
//
//   type u8 | pad 3 | deliveries u32 | offset f64 | time f64 | crc32c u32 (of the first 24 bytes)
//
// DELIVER (deliveries, deadline), ACK, NACK (due time), TOUCH (deadline), DEAD (dead-lettered), SEEK (a re-declare
// moved the position to exactly `offset`), REASON (a nack's reason: `deliveries` holds its length in bytes, and
// the entry is followed by its UTF-8 bytes and their crc32c u32, for the dead letter's `error`). Replay rebuilds
// the pending table; every DELIVER after the last SEEK proves the position got past its offset, so a checkpoint
// that lags behind the journal loses nothing. The journal is flushed before every checkpoint and compacted into
// one DELIVER per pending entry (and its REASON) once it is mostly garbage.
import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from './clock.js';
import { crc32c } from './crc32c.js';
import type { FileCache } from './file-cache.js';
import { compileFilter, type TagMatcher } from './filter.js';
import { asStoreError, writeFileAtomic } from './fs-util.js';
import { Journal } from './journal.js';
import { Cursor, type LogReader } from './log-reader.js';
import { decodeRecord, recordTag } from './record.js';
import {
  type Delivery,
  type Group,
  type GroupConfig,
  type GroupInfo,
  STORE_MASK_ACK_REQUIRED,
  type StoredRecord,
  type StoreOptions,
  type Topic,
} from './types.js';

export const DEFAULT_ACK_WINDOW = 100;
export const DEFAULT_ACK_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_DELIVER = 5;

const J_DELIVER = 1;
const J_ACK = 2;
const J_NACK = 3;
const J_TOUCH = 4;
const J_DEAD = 5;
/** The position was moved by a re-declare: deliveries journaled before it no longer prove the position. */
const J_SEEK = 6;
/** The reason a consumer gave with a nack; variable length (see above). */
const J_REASON = 7;
const ENTRY_BYTES = 28;
/** The longest nack reason a group keeps, in UTF-16 code units (the broker passes at most 256). */
const MAX_REASON_CHARS = 1024;

/** Write one journal entry at `pos` of `b`. */
function writeEntry(b: Buffer, pos: number, type: number, count: number, offset: number, time: number): void {
  b[pos] = type;
  b[pos + 1] = 0;
  b[pos + 2] = 0;
  b[pos + 3] = 0;
  b.writeUInt32LE(count, pos + 4);
  b.writeDoubleLE(offset, pos + 8);
  b.writeDoubleLE(time, pos + 16);
  b.writeUInt32LE(crc32c(b, pos, pos + 24), pos + 24);
}

/** A REASON entry for the pending delivery at `offset`. */
function reasonEntry(offset: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  const end = ENTRY_BYTES + text.length;
  const b = Buffer.allocUnsafe(end + 4);
  writeEntry(b, 0, J_REASON, text.length, offset, 0);
  text.copy(b, ENTRY_BYTES);
  b.writeUInt32LE(crc32c(b, ENTRY_BYTES, end), end);
  return b;
}

/** What a group needs from its topic (a disk topic implements it). */
export interface TopicPort {
  /** The topic as the contract shows it (`Group.topic`). */
  readonly topic: Topic;
  readonly reader: LogReader;
  readonly clock: Clock;
  readonly files: FileCache;
  readonly groupsDir: string;
  readonly groupDefaults: NonNullable<StoreOptions['groupDefaults']>;
  /** The topic was closed or removed. */
  readonly closed: boolean;
  /** Whether group files are fsynced (not under fsync=never). */
  readonly syncFiles: boolean;
  /** Wake the topic's listeners: something may be deliverable. */
  notify(): void;
  /** Append `rec` to the topic's dead-letter topic. */
  deadLetter(rec: StoredRecord, group: string, deliveries: number, error?: string): Promise<void>;
  logError(err: unknown, msg: string): void;
}

/** What a group needs from the table of groups it lives in (group-table.ts). */
export interface GroupTableHooks {
  /** Make sure the ack timer fires no later than `at`. */
  armDeadline(at: number): void;
  /** Write moved positions soon (not on every delivery). */
  scheduleCheckpoint(): void;
  /** Where a (re-)declared group starts: see group-start.ts. */
  resolveStart(config: GroupConfig, isNew: boolean): Promise<number | undefined>;
}

interface PendingAck {
  deliveries: number;
  deadline: number;
  /** In `ready`, waiting for a next() to redeliver it. */
  queued: boolean;
  /** Why a consumer last gave it back (nack `reason`), for its dead letter (journaled as REASON). */
  reason: string | undefined;
}

export interface GroupState {
  name: string;
  filter: string;
  mask: number;
  position: number;
  ackWindow?: number;
  ackTimeoutMs?: number;
  maxDeliver?: number;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  deadLettered: number;
}

export class DiskGroup implements Group {
  name: string;
  mask: number;
  filter: string;
  #match: TagMatcher;
  position: number;
  readonly cursor = new Cursor(64 * 1024, true);
  readonly pending = new Map<number, PendingAck>();
  #ready: number[] = [];
  #nextDeadline = Number.POSITIVE_INFINITY;
  deadLettered: number;
  ackWindow: number | undefined;
  ackTimeoutMs: number | undefined;
  maxDeliver: number | undefined;
  creator: string;
  createdTime: number;
  lastUpdatedTime: number;
  removed = false;
  dirty = false;
  #chain: Promise<unknown> = Promise.resolve();
  /** Operations #serial queued that have not settled. */
  #queued = 0;
  #journalEntries = 0;

  private constructor(
    readonly port: TopicPort,
    readonly table: GroupTableHooks,
    /** The base name of the group's files (see names.ts fileKey; kept as found for groups made before it). */
    readonly fileKey: string,
    readonly journal: Journal,
    st: GroupState,
  ) {
    this.name = st.name;
    this.mask = st.mask;
    this.filter = st.filter;
    this.#match = compileFilter(st.filter);
    this.position = st.position;
    this.ackWindow = st.ackWindow;
    this.ackTimeoutMs = st.ackTimeoutMs;
    this.maxDeliver = st.maxDeliver;
    this.creator = st.creator;
    this.createdTime = st.createdTime;
    this.lastUpdatedTime = st.lastUpdatedTime;
    this.deadLettered = st.deadLettered;
    this.cursor.offset = -1;
  }

  static paths(groupsDir: string, key: string): { json: string; acks: string } {
    return { json: path.join(groupsDir, `${key}.json`), acks: path.join(groupsDir, `${key}.acks`) };
  }

  get topic(): Topic {
    return this.port.topic;
  }

  /** Open a group from its files (or create them when `st` is given). */
  static async open(
    port: TopicPort,
    table: GroupTableHooks,
    fileKey: string,
    st?: GroupState,
  ): Promise<DiskGroup> {
    const p = DiskGroup.paths(port.groupsDir, fileKey);
    let state = st;
    if (state === undefined) state = JSON.parse(await fs.promises.readFile(p.json, 'utf8')) as GroupState;
    else await writeFileAtomic(p.json, JSON.stringify(state), port.syncFiles);
    const { journal, contents } = await Journal.open(p.acks, port.files);
    const g = new DiskGroup(port, table, fileKey, journal, state);
    if (st === undefined) g.#replay(contents);
    g.#recomputeDeadline();
    return g;
  }

  #replay(buf: Buffer): void {
    let maxDelivered = -1;
    let n = 0;
    for (let pos = 0; pos + ENTRY_BYTES <= buf.length; ) {
      if (crc32c(buf, pos, pos + 24) !== buf.readUInt32LE(pos + 24)) break;
      const type = buf[pos]!;
      const count = buf.readUInt32LE(pos + 4);
      const offset = buf.readDoubleLE(pos + 8);
      const time = buf.readDoubleLE(pos + 16);
      n++;
      pos += ENTRY_BYTES;
      if (type === J_REASON) {
        // A torn or damaged reason ends the journal, like a damaged entry.
        const end = pos + count;
        if (end + 4 > buf.length || crc32c(buf, pos, end) !== buf.readUInt32LE(end)) break;
        const e = this.pending.get(offset);
        if (e) e.reason = buf.toString('utf8', pos, end);
        pos = end + 4;
      } else if (type === J_DELIVER) {
        // A redelivery keeps the reason of the nack before it; a first delivery has none.
        const reason = count > 1 ? this.pending.get(offset)?.reason : undefined;
        this.pending.set(offset, { deliveries: count, deadline: time, queued: false, reason });
        if (offset > maxDelivered) maxDelivered = offset;
      } else if (type === J_ACK || type === J_DEAD) {
        this.pending.delete(offset);
      } else if (type === J_SEEK) {
        maxDelivered = offset - 1;
      } else if (type === J_NACK || type === J_TOUCH) {
        const e = this.pending.get(offset);
        if (e) e.deadline = time;
      }
    }
    this.#journalEntries = n;
    if (maxDelivered + 1 > this.position) this.position = maxDelivered + 1;
  }

  #journal(type: number, offset: number, count: number, time: number): void {
    const b = Buffer.allocUnsafe(ENTRY_BYTES);
    writeEntry(b, 0, type, count, offset, time);
    this.#append(b);
  }

  #append(entry: Buffer): void {
    this.journal.append(entry);
    this.#journalEntries++;
    if (this.#journalEntries > 4096 && this.#journalEntries > 8 * this.pending.size) this.#compact();
  }

  #compact(): void {
    // One DELIVER per pending entry, then a SEEK to the current position (so that the snapshot's deliveries do
    // not move a rewound position forward at replay), then the REASON of each entry that has one.
    const b = Buffer.allocUnsafe((this.pending.size + 1) * ENTRY_BYTES);
    const parts: Buffer[] = [b];
    let pos = 0;
    for (const [offset, e] of this.pending) {
      writeEntry(b, pos, J_DELIVER, e.deliveries, offset, e.deadline);
      pos += ENTRY_BYTES;
      if (e.reason !== undefined) parts.push(reasonEntry(offset, e.reason));
    }
    writeEntry(b, pos, J_SEEK, 0, this.position, 0);
    this.#journalEntries = this.pending.size + parts.length;
    void this.journal
      .rewrite(parts.length === 1 ? b : Buffer.concat(parts))
      .catch((err) => this.port.logError(err, 'ack journal compaction failed'));
  }

  state(): GroupState {
    return {
      name: this.name,
      filter: this.filter,
      mask: this.mask,
      position: this.position,
      ackWindow: this.ackWindow,
      ackTimeoutMs: this.ackTimeoutMs,
      maxDeliver: this.maxDeliver,
      creator: this.creator,
      createdTime: this.createdTime,
      lastUpdatedTime: this.lastUpdatedTime,
      deadLettered: this.deadLettered,
    };
  }

  /** Write the journal, then the position checkpoint (in that order: see the file comment). */
  async checkpoint(sync: boolean): Promise<void> {
    if (this.removed) return;
    this.dirty = false;
    const st = JSON.stringify(this.state());
    await this.journal.flush(sync);
    if (this.removed) return;
    await writeFileAtomic(DiskGroup.paths(this.port.groupsDir, this.fileKey).json, st, sync);
  }

  #touchState(): void {
    if (!this.dirty) {
      this.dirty = true;
      this.table.scheduleCheckpoint();
    }
  }

  get ackMode(): boolean {
    return (
      (this.mask & STORE_MASK_ACK_REQUIRED) !== 0 ||
      (this.mask === 0 && (this.port.topic.mask & STORE_MASK_ACK_REQUIRED) !== 0)
    );
  }
  get #window(): number {
    return this.ackWindow ?? this.port.groupDefaults.ackWindow ?? DEFAULT_ACK_WINDOW;
  }
  get #timeout(): number {
    return this.ackTimeoutMs ?? this.port.groupDefaults.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  }
  get #maxDeliver(): number {
    return this.maxDeliver ?? this.port.groupDefaults.maxDeliver ?? DEFAULT_MAX_DELIVER;
  }

  /** Run `fn` after every earlier operation on this group (so overlapping next() calls get distinct records). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    this.#queued++;
    const p = this.#chain.then(fn);
    this.#chain = p.then(this.#settled, this.#settled);
    return p;
  }

  readonly #settled = (): void => {
    this.#queued--;
  };

  /**
   * What next() would return, when that takes no waiting: the next record is in the cursor's read window (or the
   * log's recent batches) and no other operation on the group is in flight. Null otherwise (then call next()).
   * Not in ack mode, whose deliveries are journaled before they are handed out.
   */
  nextNow(): Delivery | undefined | null {
    if (this.#queued > 0 || this.ackMode) return null;
    return this.#nextNow();
  }

  next(): Promise<Delivery | undefined> {
    return this.#serial(async () => {
      const d = await this.#next();
      if (d !== undefined) await this.#deliveriesWritten();
      return d;
    });
  }

  nextBatch(max: number, maxBytes: number): Promise<Delivery[]> {
    return this.#serial(async () => {
      const out: Delivery[] = [];
      let bytes = 0;
      while (out.length < max && bytes < maxBytes) {
        let d = this.#nextNow();
        if (d === null) d = await this.#next();
        if (d === undefined) break;
        out.push(d);
        bytes += d.data.length;
      }
      if (out.length > 0) await this.#deliveriesWritten();
      return out;
    });
  }

  /**
   * In ack mode, the delivery records of what is about to be handed out are written (to the page cache, one write
   * for a batch) before it is: a broker killed right after a reply still counts the delivery at restart (`retry`,
   * `group_max_deliver`). A failed write is not the consumer's concern: the records' loss costs one count, as a
   * power failure would (they are not fsynced here).
   */
  async #deliveriesWritten(): Promise<void> {
    if (this.ackMode) await this.journal.writeNow();
  }

  async #next(): Promise<Delivery | undefined> {
    for (;;) {
      const d = this.#nextNow();
      if (d !== null) return d;
      if (this.ackMode && this.#ready.length > 0) {
        const again = await this.#redeliver();
        if (again !== undefined || this.removed) return again;
        continue;
      }
      // The cursor needs an index load or a read first; then look again.
      const log = this.port.reader;
      const c = this.cursor;
      if (c.offset !== this.position) await log.position(c, this.position);
      else await log.peek(c);
      if (this.removed) return undefined;
    }
  }

  /**
   * next() when it takes no waiting; null when it does: a redelivery to read (ack mode), or a record the cursor
   * must read first.
   */
  #nextNow(): Delivery | undefined | null {
    if (this.removed || this.port.closed) return undefined;
    if (this.ackMode) {
      this.collectExpired(this.port.clock.now());
      if (this.#ready.length > 0) return null;
      if (this.pending.size >= this.#window) return undefined;
    }
    return this.#fromLog();
  }

  /** The first expired delivery, delivered again; undefined when it was settled, dead-lettered or gone. */
  async #redeliver(): Promise<Delivery | undefined> {
    const offset = this.#ready.shift()!;
    const e = this.pending.get(offset);
    if (e === undefined || !e.queued) return undefined;
    e.queued = false;
    if (e.deliveries >= this.#maxDeliver) {
      await this.#deadLetter(offset, e);
      return undefined;
    }
    const rec = await this.port.reader.read(offset);
    if (this.removed) return undefined;
    if (rec === undefined) {
      // Gone (retention, empty) or corrupt: nothing left to redeliver.
      this.pending.delete(offset);
      this.#journal(J_ACK, offset, 0, 0);
      return undefined;
    }
    e.deliveries++;
    e.deadline = this.port.clock.now() + this.#timeout;
    this.#journal(J_DELIVER, offset, e.deliveries, e.deadline);
    this.#noteDeadline(e.deadline);
    return {
      offset: rec.offset,
      timestamp: rec.timestamp,
      id: rec.id,
      tag: rec.tag,
      data: rec.data,
      retry: e.deliveries - 1,
    };
  }

  /**
   * The next record past the position that passes the filter, taken (in ack mode, as a pending delivery);
   * undefined when there is none yet, null when the cursor must load an index or read first.
   */
  #fromLog(): Delivery | undefined | null {
    const log = this.port.reader;
    const c = this.cursor;
    for (;;) {
      if (this.position < log.firstOffset) this.position = log.firstOffset;
      if (this.position >= log.visibleEnd) return undefined;
      if (c.offset !== this.position && !log.positionNow(c, this.position)) return null;
      const found = log.peekNow(c);
      if (found === null) return null;
      if (!found) {
        if (c.offset > this.position && c.offset <= log.visibleEnd) {
          this.position = c.offset;
          this.#touchState();
        }
        return undefined;
      }
      const buf = c.win.buf;
      if (!this.#match(recordTag(buf, c.p))) {
        log.advance(c);
        this.position = c.offset;
        this.#touchState();
        continue;
      }
      const d: Delivery = decodeRecord(buf, c.p, c.win.immutable);
      log.advance(c);
      this.position = c.offset;
      this.#touchState();
      if (this.ackMode) {
        const deadline = this.port.clock.now() + this.#timeout;
        this.pending.set(d.offset, { deliveries: 1, deadline, queued: false, reason: undefined });
        this.#journal(J_DELIVER, d.offset, 1, deadline);
        this.#noteDeadline(deadline);
      }
      return d;
    }
  }

  #noteDeadline(t: number): void {
    if (t < this.#nextDeadline) this.#nextDeadline = t;
    this.table.armDeadline(t);
  }

  #recomputeDeadline(): void {
    let min = Number.POSITIVE_INFINITY;
    for (const e of this.pending.values()) if (!e.queued && e.deadline < min) min = e.deadline;
    this.#nextDeadline = min;
  }

  /** Move deliveries whose deadline passed into the ready queue. Returns how many. O(unacked), only when due. */
  collectExpired(now: number): number {
    if (now < this.#nextDeadline) return 0;
    let n = 0;
    let min = Number.POSITIVE_INFINITY;
    for (const [offset, e] of this.pending) {
      if (e.queued) continue;
      if (e.deadline <= now) {
        e.queued = true;
        this.#ready.push(offset);
        n++;
      } else if (e.deadline < min) min = e.deadline;
    }
    this.#nextDeadline = min;
    return n;
  }

  /** Called by the topic's timer: queue expired deliveries, dead-letter the exhausted ones. Next deadline. */
  async tick(now: number): Promise<{ ready: boolean; nextDeadline: number }> {
    if (this.removed || !this.ackMode) return { ready: false, nextDeadline: Number.POSITIVE_INFINITY };
    this.collectExpired(now);
    if (this.#ready.length > 0) {
      const max = this.#maxDeliver;
      let exhausted = false;
      for (const off of this.#ready) {
        const e = this.pending.get(off);
        if (e?.queued && e.deliveries >= max) exhausted = true;
      }
      if (exhausted) {
        await this.#serial(async () => {
          const keep: number[] = [];
          for (const off of this.#ready) {
            const e = this.pending.get(off);
            if (e === undefined || !e.queued) continue;
            if (e.deliveries >= this.#maxDeliver) {
              e.queued = false;
              await this.#deadLetter(off, e);
            } else keep.push(off);
          }
          this.#ready = keep;
        });
      }
    }
    return { ready: this.#ready.length > 0, nextDeadline: this.#nextDeadline };
  }

  async #deadLetter(offset: number, e: PendingAck): Promise<void> {
    const rec = await this.port.reader.read(offset);
    if (this.removed) return;
    if (rec !== undefined) {
      try {
        await this.port.deadLetter(rec, this.name, e.deliveries, e.reason);
      } catch (err) {
        this.port.logError(err, 'dead-letter append failed; will retry');
        e.deadline = this.port.clock.now() + this.#timeout;
        this.#noteDeadline(e.deadline);
        return;
      }
      this.deadLettered++;
    }
    this.pending.delete(offset);
    this.#journal(J_DEAD, offset, e.deliveries, 0);
    this.#touchState();
  }

  ack(offset: number): boolean {
    const e = this.pending.get(offset);
    if (e === undefined || this.removed) return false;
    this.pending.delete(offset);
    this.#journal(J_ACK, offset, 0, 0);
    this.port.notify();
    return true;
  }

  nack(offset: number, delayMs?: number, reason?: string): boolean {
    const e = this.pending.get(offset);
    if (e === undefined || this.removed) return false;
    const now = this.port.clock.now();
    e.deadline = now + Math.max(0, delayMs ?? 0);
    this.#journal(J_NACK, offset, e.deliveries, e.deadline);
    if (reason !== undefined) {
      e.reason = reason.slice(0, MAX_REASON_CHARS);
      this.#append(reasonEntry(offset, e.reason));
    }
    if (e.deadline <= now) {
      if (!e.queued) {
        e.queued = true;
        this.#ready.push(offset);
      }
      // Exhausted ones go to the dead-letter topic through the timer.
      this.table.armDeadline(now);
      this.port.notify();
    } else {
      if (e.queued) e.queued = false;
      this.#noteDeadline(e.deadline);
    }
    return true;
  }

  touch(offset: number): boolean {
    const e = this.pending.get(offset);
    if (e === undefined || this.removed) return false;
    e.deadline = this.port.clock.now() + this.#timeout;
    e.queued = false;
    this.#journal(J_TOUCH, offset, e.deliveries, e.deadline);
    this.#noteDeadline(e.deadline);
    return true;
  }

  /** Drop pending entries below the first stored offset (after retention). */
  dropBelow(first: number): void {
    for (const off of this.pending.keys()) {
      if (off < first) {
        this.pending.delete(off);
        this.#journal(J_ACK, off, 0, 0);
      }
    }
    if (this.position < first) {
      this.position = first;
      this.#touchState();
    }
  }

  empty(): Promise<void> {
    return asStoreError(
      this.#serial(() => this.#empty()),
      `empty group ${this.name}`,
    );
  }

  async #empty(): Promise<void> {
    this.position = this.port.reader.visibleEnd;
    this.cursor.offset = -1;
    this.pending.clear();
    this.#ready = [];
    this.#nextDeadline = Number.POSITIVE_INFINITY;
    this.#journalEntries = 0;
    this.lastUpdatedTime = this.port.clock.now();
    await this.journal.rewrite(Buffer.alloc(0));
    await this.checkpoint(this.port.syncFiles);
  }

  update(config: GroupConfig): Promise<void> {
    return asStoreError(
      this.#serial(() => this.#update(config)),
      `declare group ${this.name}`,
    );
  }

  async #update(config: GroupConfig): Promise<void> {
    const pos = await this.table.resolveStart(config, false);
    this.filter = config.filter ?? '';
    this.#match = compileFilter(this.filter);
    if (config.mask !== undefined) this.mask = config.mask;
    if (config.ackWindow !== undefined) this.ackWindow = config.ackWindow;
    if (config.ackTimeoutMs !== undefined) this.ackTimeoutMs = config.ackTimeoutMs;
    if (config.maxDeliver !== undefined) this.maxDeliver = config.maxDeliver;
    if (pos !== undefined) {
      this.position = pos;
      this.cursor.offset = -1;
      this.#journal(J_SEEK, pos, 0, 0);
    }
    this.lastUpdatedTime = this.port.clock.now();
    await this.checkpoint(this.port.syncFiles);
  }

  info(): GroupInfo {
    const log = this.port.reader;
    return {
      topicName: this.port.topic.name,
      groupName: this.name,
      mask: this.mask,
      filter: this.filter,
      backlog: Math.max(0, log.visibleEnd - Math.max(this.position, log.firstOffset)),
      unacked: this.pending.size,
      deadLettered: this.deadLettered,
      position: this.position,
      creator: this.creator,
      createdTime: this.createdTime,
      lastUpdatedTime: this.lastUpdatedTime,
    };
  }

  /** Stop serving; wait for in-flight calls; close (and with `unlink`, delete) the files. */
  async destroy(unlink: boolean): Promise<void> {
    this.removed = true;
    await this.#chain;
    await this.journal.close(false);
    if (unlink) {
      const p = DiskGroup.paths(this.port.groupsDir, this.fileKey);
      // The config file goes first: without it the group is gone even if the journal stays behind.
      await fs.promises.rm(p.json, { force: true });
      await fs.promises.rm(p.acks, { force: true });
    }
  }

  async close(): Promise<void> {
    await this.#chain;
    await this.checkpoint(true).catch(() => {});
    this.removed = true;
    await this.journal.close(true);
  }
}
