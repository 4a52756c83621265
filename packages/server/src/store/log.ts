// A topic's segmented log: the segments, the single writer with group commit, recovery at open, sequential
// cursors with read-ahead, random reads, seek by time, retention and truncation.
//
// Writer: appends get their offset and timestamp synchronously (so order is arrival order) and wait in `queue`.
// One loop takes everything queued, encodes it into one reusable buffer, writes it with one positional write
// per segment touched, then (policy `always`) one fdatasync, and resolves every append of the batch. Appends that
// arrive while that fsync runs form the next batch: one fsync covers all of them (group commit).
import fs from 'node:fs';
import { fdatasyncFd, fsyncDir, storeError, truncateFd, writeAt, writeAtSync } from './fs-util.js';
import { INDEX_INTERVAL_BYTES } from './offset-index.js';
import {
  CHECK_OK,
  checkRecord,
  decodeRecord,
  encodedLength,
  encodeRecord,
  HEADER_BYTES,
  MAX_FIELD_BYTES,
  type RecordFields,
  recordLength,
  recordOffset,
  recordTimestamp,
} from './record.js';
import { findNextValid, LOG_SUFFIX, ReadWindow, Segment } from './segment.js';
import {
  type AppendResult,
  type Durability,
  type FsyncPolicy,
  StoreError,
  type StoreLogger,
} from './types.js';

export interface PendingAppend {
  offset: number;
  timestamp: number;
  id: string;
  tag: string | undefined;
  data: Uint8Array;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export interface LogOptions {
  dir: string;
  name: string;
  segmentBytes: number;
  fsync: FsyncPolicy;
  maxRecordBytes: number;
  log: StoreLogger | undefined;
  /** Called after records became visible (to wake groups). */
  onVisible: () => void;
  /** Called after a segment was rolled (retention check). */
  onRoll: () => void;
}

/** A sequential reader: a position in one segment plus its own read-ahead window. */
export class Cursor {
  seg: Segment | undefined;
  pos = 0;
  /** The next offset wanted; records below it are skipped. */
  offset = 0;
  readonly win: ReadWindow;
  /** After a successful peek: the record's index in win.buf, its length and offset. */
  p = 0;
  len = 0;
  recOffset = 0;

  constructor(windowBytes = 64 * 1024) {
    this.win = new ReadWindow(windowBytes);
  }
}

const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/**
 * Batches up to this size are written with a synchronous pwrite (to the page cache: a few us) instead of through
 * the libuv threadpool, whose hand-off and completion wake-up cost about 20 us of CPU per write here and a
 * thread round trip of latency before the appends can be acked or delivered. Larger batches keep the async
 * write so that a big burst never holds the event loop. fsyncs stay asynchronous.
 */
const SYNC_WRITE_BYTES = 64 * 1024;
/** Written batches kept for tail readers (see `#recent`), and the largest batch copied there. */
const RECENT_BATCHES = 4;
const RECENT_BATCH_BYTES = 256 * 1024;
/** fsyncs of one topic allowed in flight at once (libuv has 4 threads by default; leave room for reads). */
const MAX_SYNCS_IN_FLIGHT = 2;

export class SegmentedLog {
  segments: Segment[] = [];
  active!: Segment;
  /** Next offset to assign. */
  nextOffset = 0;
  /** Offsets below this are written (and synced under `always`): readers may see them. */
  visibleEnd = 0;
  lastTimestamp = 0;
  fsync: FsyncPolicy;
  corrupt = new Set<string>();
  closed = false;
  #failed: StoreError | undefined;
  #queue: PendingAppend[] = [];
  #ops: Array<() => Promise<void>> = [];
  #running = false;
  #idle: Array<() => void> = [];
  /** fsyncs in flight, oldest first. */
  #syncs: Array<Promise<void>> = [];
  /** The periodic fsync of the `interval` policy, while it runs. */
  #intervalSync: Promise<void> | undefined;
  /** Completion chain: batch N+1 resolves only after batch N. Never rejects. */
  #tail: Promise<void> = Promise.resolve();
  #wbuf = Buffer.allocUnsafe(256 * 1024);
  /**
   * Copies of the last few batches written (newest last), for readers at the tail: a group that delivers what
   * was just appended reads it from here instead of with a `pread` per wake-up (one threadpool round trip less
   * on the produce -> deliver path). Bytes of an append-only segment never change once written, so a copy stays
   * valid while its segment lives; peek() checks `retired` first.
   */
  #recent: Array<{ seg: Segment; start: number; bytes: Buffer }> = [];
  #syncTimer: NodeJS.Timeout | undefined;
  #dirty = false;
  readonly maxLen: number;

  constructor(readonly opts: LogOptions) {
    this.fsync = opts.fsync;
    this.maxLen = opts.maxRecordBytes + HEADER_BYTES + 2 * MAX_FIELD_BYTES;
  }

  get firstOffset(): number {
    return this.segments[0]?.base ?? this.nextOffset;
  }

  get bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  /** Open the log: list segments, trust the sealed ones' sizes, scan the tail of the last one. */
  static async open(opts: LogOptions): Promise<SegmentedLog> {
    const log = new SegmentedLog(opts);
    const names = (await fs.promises.readdir(opts.dir)).filter((n) => n.endsWith(LOG_SUFFIX)).sort();
    for (const n of names) {
      const base = Number(n.slice(0, -LOG_SUFFIX.length));
      if (!Number.isSafeInteger(base)) continue;
      log.segments.push(new Segment(opts.dir, base));
    }
    if (log.segments.length === 0) {
      const seg = new Segment(opts.dir, 0);
      await seg.openForAppend(true);
      log.segments.push(seg);
      log.active = seg;
      return log;
    }
    for (let i = 0; i < log.segments.length - 1; i++) {
      const seg = log.segments[i]!;
      const st = await fs.promises.stat(seg.logPath);
      seg.size = st.size;
      seg.sealed = true;
      seg.endOffset = log.segments[i + 1]!.base;
      seg.lastTimestamp = st.mtimeMs;
      await seg.openForRead();
    }
    const last = log.segments[log.segments.length - 1]!;
    await last.openForAppend(false);
    await log.#recoverTail(last);
    log.active = last;
    log.nextOffset = last.endOffset;
    log.visibleEnd = last.endOffset;
    log.lastTimestamp = last.lastTimestamp;
    return log;
  }

  /** Resume from the last index entry that still points at a valid record; scan from there; cut a torn tail. */
  async #recoverTail(seg: Segment): Promise<void> {
    const size = (await fs.promises.stat(seg.logPath)).size;
    seg.size = size;
    try {
      const [o, t] = await Promise.all([
        fs.promises.readFile(seg.oixPath),
        fs.promises.readFile(seg.tixPath),
      ]);
      seg.oix.load(o, size);
      seg.tix.load(t, seg.oix.length);
      const n = Math.min(seg.oix.length, seg.tix.length);
      seg.oix.truncate(n);
      seg.tix.truncate(n);
    } catch {
      seg.oix.truncate(0);
      seg.tix.truncate(0);
    }
    const win = new ReadWindow(64 * 1024);
    let from = -1;
    for (let tries = 0; tries < 8 && seg.oix.length > 0; tries++) {
      const i = seg.oix.length - 1;
      const pos = seg.oix.pos[i]!;
      const rel = seg.oix.rel[i]!;
      let ok = false;
      if (await win.ensure(seg, pos, HEADER_BYTES, size)) {
        const len = recordLength(win.buf, pos - win.start);
        if (len >= HEADER_BYTES && len <= this.maxLen && (await win.ensure(seg, pos, len, size))) {
          const p = pos - win.start;
          ok =
            checkRecord(win.buf, p, win.len, this.maxLen) === CHECK_OK &&
            recordOffset(win.buf, p) === seg.base + rel;
          if (ok) seg.lastTimestamp = recordTimestamp(win.buf, p);
        }
      }
      // Re-add entry i during the scan (it is the scan's first record).
      seg.oix.truncate(i);
      seg.tix.truncate(i);
      if (ok) {
        from = i;
        break;
      }
    }
    if (from < 0) {
      seg.oix.truncate(0);
      seg.tix.truncate(0);
    }
    const startPos = from < 0 ? 0 : seg.oix.pos[from]!;
    const startOffset = from < 0 ? seg.base : seg.base + seg.oix.rel[from]!;
    seg.lastIndexedPos = -INDEX_INTERVAL_BYTES;
    seg.indexLoaded = true;
    const r = await seg.scan(startPos, startOffset, this.opts.maxRecordBytes, true);
    if (r.torn)
      this.opts.log?.warn(
        { topic: this.opts.name, segment: seg.base, at: r.size },
        'truncated a torn record',
      );
    for (const pos of r.corrupt) this.reportCorrupt(seg, pos);
    // The index files may hold entries past the truncation point: rewrite them from the recovered entries.
    await truncateFd(seg.oixFd, 0);
    await truncateFd(seg.tixFd, 0);
    seg.oix.persisted = 0;
    seg.tix.persisted = 0;
    await seg.persistIndex(true);
  }

  reportCorrupt(seg: Segment, pos: number): void {
    const key = `${seg.base}:${pos}`;
    if (this.corrupt.has(key)) return;
    this.corrupt.add(key);
    this.opts.log?.error(
      { topic: this.opts.name, segment: seg.base, position: pos },
      'corrupt record (checksum mismatch): skipped, not served',
    );
  }

  // ---------------------------------------------------------------- writing

  durability(): Durability {
    const f = this.fsync;
    return f === 'always' ? 'fsync' : f === 'never' ? 'none' : 'interval';
  }

  /** Queue an append; the caller fills in id/tag/data and the resolve/reject pair. */
  enqueue(p: PendingAppend): void {
    if (this.#failed) {
      p.reject(this.#failed);
      return;
    }
    if (this.closed) {
      p.reject(new StoreError('ZBUS_ERR_CLOSED', `topic ${this.opts.name} is closed`));
      return;
    }
    const now = Date.now();
    p.offset = this.nextOffset++;
    p.timestamp = now > this.lastTimestamp ? now : this.lastTimestamp;
    this.lastTimestamp = p.timestamp;
    this.#queue.push(p);
    this.#kick();
  }

  /** Run `fn` in the writer loop, between batches. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#ops.push(() => fn().then(resolve, reject));
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    // setImmediate rather than a microtask: appends produced by the same burst of I/O callbacks join one batch.
    setImmediate(() => void this.#run());
  }

  async #run(): Promise<void> {
    while (this.#ops.length > 0 || this.#queue.length > 0) {
      const op = this.#ops.shift();
      if (op) {
        // Exclusive operations (roll-free truncation, retention, sync, close) see no fsync in flight.
        await this.#tail;
        await this.#intervalSync;
        await op();
        continue;
      }
      let batch = this.#queue;
      let bytes = 0;
      let n = 0;
      for (; n < batch.length && bytes < MAX_BATCH_BYTES; n++) bytes += batch[n]!.data.length + HEADER_BYTES;
      if (n < batch.length) {
        this.#queue = batch.slice(n);
        batch = batch.slice(0, n);
      } else this.#queue = [];
      while (this.#syncs.length >= MAX_SYNCS_IN_FLIGHT) await this.#syncs[0];
      await this.#writeBatch(batch);
    }
    this.#running = false;
    const idle = this.#idle;
    this.#idle = [];
    for (const f of idle) f();
  }

  /** Resolves once everything queued so far is written, synced per policy and resolved. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.#running) await new Promise<void>((resolve) => this.#idle.push(resolve));
      else if (this.#syncs.length > 0) await this.#tail;
      else return;
    }
  }

  async #writeBatch(batch: PendingAppend[]): Promise<void> {
    const policy = this.fsync;
    let i = 0;
    let seg = this.active;
    try {
      while (i < batch.length) {
        seg = this.active;
        const startPos = seg.size;
        const oixLen = seg.oix.length;
        let used = 0;
        let j = i;
        for (; j < batch.length; j++) {
          const p = batch[j]!;
          const len = encodedLength(
            Buffer.byteLength(p.id, 'utf8'),
            p.tag === undefined ? 0 : Buffer.byteLength(p.tag, 'utf8'),
            p.data.length,
          );
          if (startPos + used > 0 && startPos + used + len > this.opts.segmentBytes) break;
          if (used + len > this.#wbuf.length) {
            const nb = Buffer.allocUnsafe(Math.max(used + len, this.#wbuf.length * 2));
            this.#wbuf.copy(nb, 0, 0, used);
            this.#wbuf = nb;
          }
          seg.maybeIndex(startPos + used, p.offset, p.timestamp);
          used += encodeRecord(this.#wbuf, used, p.offset, p.timestamp, p.id, p.tag, p.data);
        }
        if (used > 0) {
          try {
            if (used <= SYNC_WRITE_BYTES) writeAtSync(seg.fd, this.#wbuf, 0, used, startPos);
            else await writeAt(seg.fd, this.#wbuf, 0, used, startPos);
          } catch (err) {
            seg.oix.truncate(oixLen);
            seg.tix.truncate(oixLen);
            await truncateFd(seg.fd, startPos).catch(() => {});
            throw err;
          }
          if (used <= RECENT_BATCH_BYTES) {
            const bytes = Buffer.allocUnsafe(used);
            this.#wbuf.copy(bytes, 0, 0, used);
            if (this.#recent.length >= RECENT_BATCHES) this.#recent.shift();
            this.#recent.push({ seg, start: startPos, bytes });
          }
          seg.size += used;
          seg.endOffset = batch[j - 1]!.offset + 1;
          seg.lastTimestamp = batch[j - 1]!.timestamp;
        }
        i = j;
        if (i < batch.length) await this.#roll(policy);
      }
    } catch (err) {
      // Nothing from `batch[i]` on reached the disk: fail it and everything queued behind it (their offsets
      // follow), and reuse those offsets.
      const e = storeError(err, `append to topic ${this.opts.name}`);
      const failed = batch.slice(i).concat(this.#queue);
      this.#queue = [];
      this.nextOffset = this.active.endOffset;
      for (const p of failed) p.reject(e);
      batch = batch.slice(0, i);
      if (batch.length === 0) return;
    }
    // Pipelined group commit: the fsync of this batch runs while the loop goes on to write the next one (at most
    // MAX_SYNCS_IN_FLIGHT at once). Appends that trickle in while an fsync runs need not wait for it to finish
    // before their own write starts, and the kernel folds concurrent fsyncs of one file into one journal commit.
    // Batches still complete strictly in order (the `#tail` chain), so visibility and promises follow offsets.
    let synced: Promise<unknown> | undefined;
    if (policy === 'always') {
      synced = fdatasyncFd(seg.fd).then(
        () => undefined,
        (err: unknown) => err ?? new Error('fsync failed'),
      );
      const tracked: Promise<void> = synced.then(() => {
        const k = this.#syncs.indexOf(tracked);
        if (k >= 0) this.#syncs.splice(k, 1);
      });
      this.#syncs.push(tracked);
    } else if (policy !== 'never') this.#armSync(policy.intervalMs);
    try {
      await this.active.persistIndex(false);
    } catch (err) {
      this.opts.log?.warn(
        { topic: this.opts.name, err },
        'index write failed (rebuilt from the log at open)',
      );
    }
    const prev = this.#tail;
    const done = batch;
    this.#tail = (async () => {
      const err = synced === undefined ? undefined : await synced;
      await prev;
      this.#complete(done, err);
    })();
  }

  #complete(batch: PendingAppend[], syncErr: unknown): void {
    if (syncErr !== undefined && this.#failed === undefined) {
      // After a failed fsync the page cache state is unknown: stop accepting writes for this topic.
      this.#failed = storeError(syncErr, `fsync of topic ${this.opts.name}`);
      for (const p of this.#queue) p.reject(this.#failed);
      this.#queue = [];
    }
    if (syncErr !== undefined) {
      for (const p of batch) p.reject(this.#failed);
      return;
    }
    const last = batch[batch.length - 1]!;
    if (last.offset + 1 > this.visibleEnd) this.visibleEnd = last.offset + 1;
    const durability = this.durability();
    for (const p of batch)
      p.resolve({ offset: p.offset, timestamp: p.timestamp, durability, duplicate: false });
    this.opts.onVisible();
  }

  async #roll(policy: FsyncPolicy): Promise<void> {
    const old = this.active;
    await old.persistIndex(true);
    if (policy !== 'never') await fdatasyncFd(old.fd);
    const seg = new Segment(this.opts.dir, old.endOffset);
    await seg.openForAppend(true);
    if (policy !== 'never') await fsyncDir(this.opts.dir);
    old.sealed = true;
    this.segments.push(seg);
    this.active = seg;
    this.opts.onRoll();
  }

  #armSync(ms: number): void {
    this.#dirty = true;
    if (this.#syncTimer) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined;
      if (!this.#dirty || this.closed) return;
      this.#dirty = false;
      // Not an exclusive operation: appends keep being written while the fsync runs (the kernel allows
      // both on one file). Exclusive operations (close, truncation) wait for it instead.
      const fd = this.active.fd;
      this.#intervalSync = fdatasyncFd(fd)
        .catch((err: unknown) => {
          this.opts.log?.error({ topic: this.opts.name, err }, 'interval fsync failed');
        })
        .finally(() => {
          this.#intervalSync = undefined;
        });
    }, ms);
    this.#syncTimer.unref();
  }

  /** fsync everything written so far. */
  sync(): Promise<void> {
    return this.exclusive(async () => {
      if (this.active.fd < 0) return;
      this.#dirty = false;
      await this.active.persistIndex(true);
      await fdatasyncFd(this.active.fd);
      if (this.active.oixFd >= 0) await fdatasyncFd(this.active.oixFd);
      if (this.active.tixFd >= 0) await fdatasyncFd(this.active.tixFd);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.sync().catch(() => {});
    this.closed = true;
    if (this.#syncTimer) clearTimeout(this.#syncTimer);
    await this.idle();
    const err = new StoreError('ZBUS_ERR_CLOSED', `topic ${this.opts.name} is closed`);
    for (const p of this.#queue) p.reject(err);
    this.#queue = [];
    for (const s of this.segments) await s.retire();
  }

  /** Fail everything queued and refuse new appends (the topic is being removed). */
  abort(err: StoreError): void {
    this.#failed = err;
    for (const p of this.#queue) p.reject(err);
    this.#queue = [];
  }

  // ---------------------------------------------------------------- reading

  #segmentIndexFor(offset: number): number {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    let ans = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid]!.base <= offset) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  #segmentAfter(seg: Segment): Segment | undefined {
    const i = this.#segmentIndexFor(seg.base);
    const s = this.segments[i];
    if (s === seg) return this.segments[i + 1];
    // seg is gone: the first segment past it.
    for (const t of this.segments) if (t.base > seg.base) return t;
    return undefined;
  }

  /** Point `c` at `offset` (clamped to the first stored offset) using the sparse index. */
  async position(c: Cursor, offset: number): Promise<void> {
    if (offset < this.firstOffset) offset = this.firstOffset;
    const seg = this.segments[this.#segmentIndexFor(offset)];
    c.offset = offset;
    if (!seg) {
      c.seg = undefined;
      return;
    }
    await seg.ensureIndex(this.opts.maxRecordBytes);
    const i = seg.oix.floor(offset - seg.base);
    c.seg = seg;
    c.pos = i >= 0 ? seg.oix.pos[i]! : 0;
  }

  /**
   * Find the next valid, visible record at or after `c.offset` and leave it in `c.win` (c.p, c.len, c.recOffset)
   * without consuming it. Corrupt records are reported and stepped over. False when there is none (yet).
   */
  async peek(c: Cursor): Promise<boolean> {
    for (;;) {
      if (this.closed || c.offset >= this.visibleEnd) return false;
      let seg = c.seg;
      if (seg === undefined || seg.retired) {
        await this.position(c, c.offset);
        seg = c.seg;
        if (seg === undefined || seg.retired) return false;
      }
      if (c.pos >= seg.size) {
        const nx = this.#segmentAfter(seg);
        if (nx === undefined) return false;
        c.seg = nx;
        c.pos = 0;
        if (c.offset < nx.base) c.offset = nx.base;
        continue;
      }
      let status = -1;
      let len = 0;
      seg.refs++;
      try {
        const win = c.win;
        if (
          win.has(seg, c.pos, HEADER_BYTES) ||
          this.#fromRecent(win, seg, c.pos, HEADER_BYTES) ||
          (await win.ensure(seg, c.pos, HEADER_BYTES, seg.size))
        ) {
          len = recordLength(win.buf, c.pos - win.start);
          if (
            len >= HEADER_BYTES &&
            len <= this.maxLen &&
            (win.has(seg, c.pos, len) || (await win.ensure(seg, c.pos, len, seg.size)))
          ) {
            status = checkRecord(win.buf, c.pos - win.start, win.len, this.maxLen);
          }
        }
        if (status !== CHECK_OK) {
          this.reportCorrupt(seg, c.pos);
          const next = await findNextValid(seg, win, c.pos + 1, seg.size, c.offset, this.maxLen);
          c.pos = next < 0 ? seg.size : next;
          continue;
        }
      } catch (err) {
        if (seg.retired || this.closed) continue;
        throw storeError(err, `read from topic ${this.opts.name}`);
      } finally {
        seg.release();
      }
      const p = c.pos - c.win.start;
      const off = recordOffset(c.win.buf, p);
      if (off < c.offset) {
        c.pos += len;
        continue;
      }
      if (off >= this.visibleEnd) return false;
      c.p = p;
      c.len = len;
      c.recOffset = off;
      return true;
    }
  }

  /** Point `win` at a recently written batch holding `[pos, pos+need)` of `seg`, if one does. */
  #fromRecent(win: ReadWindow, seg: Segment, pos: number, need: number): boolean {
    const r = this.#recent;
    for (let i = r.length - 1; i >= 0; i--) {
      const b = r[i]!;
      if (b.seg === seg && pos >= b.start && pos + need <= b.start + b.bytes.length) {
        win.adopt(seg, b.bytes, b.start);
        return true;
      }
    }
    return false;
  }

  /** Consume the record found by the last successful peek. */
  advance(c: Cursor): void {
    c.pos += c.len;
    c.offset = c.recOffset + 1;
  }

  async read(offset: number): Promise<RecordFields | undefined> {
    if (offset < this.firstOffset || offset >= this.visibleEnd || this.closed) return undefined;
    const c = new Cursor(16 * 1024);
    await this.position(c, offset);
    if (!(await this.peek(c)) || c.recOffset !== offset) return undefined;
    return decodeRecord(c.win.buf, c.p);
  }

  /** The offset of the first record stored at or after `time` (visibleEnd if none). O(log n) + a short scan. */
  async seekTime(time: number): Promise<number> {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = segs[mid]!;
      await s.ensureIndex(this.opts.maxRecordBytes);
      const first = s.tix.length > 0 ? s.tix.time[0]! : Number.POSITIVE_INFINITY;
      if (first < time) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (ans < 0) return this.firstOffset;
    const seg = segs[ans]!;
    let i = seg.tix.lastBefore(time);
    // Entries are added just before their batch is written: skip any past what is on disk yet.
    while (i >= 0 && seg.oix.pos[i]! >= seg.size) i--;
    const c = new Cursor(16 * 1024);
    c.seg = seg;
    c.pos = i >= 0 ? seg.oix.pos[i]! : 0;
    c.offset = i >= 0 ? seg.base + seg.oix.rel[i]! : seg.base;
    while (await this.peek(c)) {
      if (recordTimestamp(c.win.buf, c.p) >= time) return c.recOffset;
      this.advance(c);
    }
    return this.visibleEnd;
  }

  // ---------------------------------------------------------------- retention and truncation

  /** Delete whole sealed segments from the head while `shouldDrop(oldest)` says so. Returns how many. */
  dropHead(shouldDrop: (seg: Segment, log: SegmentedLog) => boolean): Promise<number> {
    return this.exclusive(async () => {
      this.#recent = [];
      let n = 0;
      while (this.segments.length > 1) {
        const seg = this.segments[0]!;
        if (!shouldDrop(seg, this)) break;
        this.segments.shift();
        await seg.retire();
        await seg.unlink();
        n++;
      }
      return n;
    });
  }

  /** Delete every record: a fresh empty segment starts at the next offset. */
  truncateAll(): Promise<void> {
    return this.exclusive(async () => {
      this.#recent = [];
      const base = this.active.endOffset;
      const old = this.segments;
      const seg = new Segment(this.opts.dir, base);
      if (old.some((s) => s.base === base)) {
        // The active segment is empty and already starts there: just drop the others.
        this.segments = old.filter((s) => s.base === base);
        for (const s of old) {
          if (s.base === base) continue;
          await s.retire();
          await s.unlink();
        }
        this.visibleEnd = base;
        return;
      }
      await seg.openForAppend(true);
      await fsyncDir(this.opts.dir);
      this.segments = [seg];
      this.active = seg;
      for (const s of old) {
        await s.retire();
        await s.unlink();
      }
      this.visibleEnd = base;
    });
  }
}
