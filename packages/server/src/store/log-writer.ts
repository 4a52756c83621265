// The single writer of a topic's log, with group commit. Appends get their offset and timestamp synchronously (so
// order is arrival order) and wait in `queue`. One loop takes everything queued, encodes it into one reusable
// buffer and writes it with one positional write per segment touched. With policy `always` the writes and the
// fdatasyncs form a pipeline: up to two fdatasyncs are in flight and the loop keeps writing while they run; a free
// slot goes to the next generation (every batch written since the last one started) once the producers it
// expects have written, or half of them with the disk idle, or after 1 ms (`#startSync`); the appends a
// generation covers are resolved after its fdatasync, generation by generation in order. So no append is resolved
// before an fdatasync that started after its write returned, and a fast disk does not get one fdatasync per turn
// of the event loop. A roll opens the next segment and goes on writing into it at once; the old segment is sealed
// (index written, zeros cut, fdatasynced, the directory fsynced) off the append path (`#seal`), and appends to the
// new segment are resolved, under `always`, only after that. Everything else that changes the segments (retention,
// truncation, sync, close) runs in the same loop, between batches, with no fdatasync or seal in flight.
import { performance } from 'node:perf_hooks';
import { Alarm, type Clock, type TimerRef } from './clock.js';
import type { CommitStats } from './commit-stats.js';
import { fsyncDir, storeError } from './fs-util.js';
import { RECENT_BATCH_BYTES, type SegmentedLog } from './log.js';
import { encodedLength, encodeRecord, HEADER_BYTES } from './record.js';
import { Segment } from './segment.js';
import { type AppendResult, type Durability, type FsyncPolicy, StoreError } from './types.js';

export interface PendingAppend {
  offset: number;
  timestamp: number;
  id: string;
  tag: string | undefined;
  data: Uint8Array;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export interface LogWriterOptions {
  segmentBytes: number;
  /** Longest group-commit wait, in ms (`#startSync`; DEFAULT_GROUP_WAIT_MS explains it). 0: none. */
  groupWaitMs: number;
  fsync: FsyncPolicy;
  clock: Clock;
  /** Where the fsync=always commits are counted (shared by the store's topics). */
  commits: CommitStats;
  /**
   * Called after records became visible (to wake groups). `inWriteTurn`: from the writer's own setImmediate, where
   * the end-of-turn flush of the socket writes would wait for the next turn; false after an fdatasync, an I/O
   * callback, whose turn ends with that flush anyway.
   */
  onVisible: (inWriteTurn: boolean) => void;
  /** Called after a segment was rolled and the old one sealed (retention check). */
  onRoll: () => void;
}

const MAX_BATCH_BYTES = 8 * 1024 * 1024;
const WRITE_SLAB_BYTES = 256 * 1024;
const NO_SLAB = Buffer.alloc(0);
/**
 * Batches up to this size are written with a synchronous pwrite (to the page cache: a few us) instead of through
 * the libuv threadpool, whose hand-off and completion wake-up cost about 20 us of CPU per write here and a
 * thread round trip of latency before the appends can be acked or delivered. Larger batches keep the async
 * write so that a big burst never holds the event loop. fsyncs stay asynchronous.
 */
const SYNC_WRITE_BYTES = 64 * 1024;
/**
 * fdatasyncs of one topic in flight at once. The second overlaps the first: on disks that serve several flushes
 * at once (virtual and networked disks, NVMe) a generation need not wait for the one before it to return, which
 * measured 1.3x to 2x the commits/s of one at a time here (docs/benchmarks.md). More would take more of libuv's
 * 4 threads from reads.
 */
const MAX_SYNCS_IN_FLIGHT = 2;
/**
 * Default of the longest time (option groupCommitWaitMs) the oldest written append waits for the producers expected
 * to join its fdatasync (see `#startSync`) while a slot for it is free. An fdatasync costs about 100 us of kernel
 * CPU here whatever it covers, so on a fast disk, starting one for every turn of the event loop spent more CPU on
 * fdatasyncs than on the requests; the wait only applies while the producers seen in flight a moment ago have not
 * all come back. A disk whose fdatasync takes far longer than the producers' round trip gains nothing from it.
 */
export const DEFAULT_GROUP_WAIT_MS = 1;
/**
 * Under fsync=always, the active segment's file is extended with this many zeros (fdatasynced) before the records
 * reach them, so that the fdatasync of each commit writes the records' pages and no inode (size, block map): on
 * this disk that took an fdatasync from 0.27 to 0.13-0.24 ms and from 80-90 to 50-60 us of kernel CPU. A new
 * extension starts when less than half of one is left. Recovery and close cut the zeros off (segment.ts `scan`).
 */
const ZERO_AHEAD_BYTES = 1024 * 1024;
let zeros: Buffer | undefined;

export function durabilityOf(policy: FsyncPolicy): Durability {
  return policy === 'always' ? 'fsync' : policy === 'never' ? 'none' : 'interval';
}

export class LogWriter {
  fsync: FsyncPolicy;
  #failed: StoreError | undefined;
  #queue: PendingAppend[] = [];
  /** Exclusive operations; `settle`: wait for the fdatasyncs and the seal in flight first. */
  #ops: Array<{ run: () => Promise<void>; settle: boolean }> = [];
  #running = false;
  /** The setImmediate that starts the loop, while it is due (the loop has not started yet). */
  #immediate: NodeJS.Immediate | undefined;
  /** `#runEarly` is queued. */
  #early = false;
  #idle: Array<() => void> = [];
  /** performance.now() when the oldest append of `#queue` was queued. */
  #queuedAt = 0;
  /** Batches written and waiting for an fdatasync to start, oldest first (the next fsync generation). */
  #unsynced: PendingAppend[][] = [];
  /** performance.now() when the oldest append of `#unsynced` was queued. */
  #unsyncedSince = 0;
  /** Records in `#unsynced`. */
  #unsyncedRecords = 0;
  /** clock.now() when the first batch of `#unsynced` was written (the group wait runs from there). */
  #unsyncedAt = 0;
  /** One past the last offset covered by a started fdatasync. */
  #coveredEnd = 0;
  /** Most appends outstanding (queued, written or syncing, not yet resolved) at once since the last start. */
  #peak = 0;
  /** `#peak` of the interval before it: the producers the next fdatasync expects to cover. */
  #expected = 0;
  /**
   * Armed while a free slot waits for more producers: `groupWaitMs` later the waiting generation starts. A
   * relative timer, not an Alarm: a wall clock set back must not stall acks.
   */
  #groupWait: TimerRef | undefined;
  /** fdatasyncs of policy `always` in flight. */
  #syncsInFlight = 0;
  /** Generations started and not yet resolved. */
  #generations = 0;
  /** Completion chain: generation N+1 resolves only after generation N. Never rejects. */
  #tail: Promise<void> = Promise.resolve();
  /** An fdatasync failed: nothing written since is trusted (`#failed` says why). */
  #fsyncFailed = false;
  /** The periodic fsync of the `interval` policy, while it runs. */
  #intervalSync: Promise<void> | undefined;
  /**
   * Batches are encoded one after the other into this slab, each at `#wpos`: a batch kept in `log.recent` is a
   * view of it, not a copy. A batch that does not fit starts a new slab; the old one lives on while recent
   * batches point into it. The first write makes one, and the writer gives it up when the store's tail cache
   * takes its recent batches for other topics': a quiet topic holds none (topics can be many).
   */
  #wbuf = NO_SLAB;
  #wpos = 0;
  /** A batch's bytes are in `#wbuf` across an await (the slab may not be given up). */
  #slabInUse = false;
  readonly #syncAlarm: Alarm;
  #dirty = false;
  /** The zeros being written ahead of the active segment's records (`#zeroAhead`), while that runs. */
  #zeroing: Promise<void> | undefined;
  /** Where `#zeroing` writes from: the records wait for it before they go past this. */
  #zeroingFrom = 0;
  /** The segment `#zeroing` writes to. */
  #zeroingSeg: Segment | undefined;
  /**
   * The seal of the segment rolled last (`#seal`), while it runs: its error, if it failed. Generations started
   * meanwhile resolve after it (it makes their records of the old segment durable).
   */
  #sealing: Promise<StoreError | undefined> | undefined;
  /** The segment `#sealing` seals. */
  #sealingSeg: Segment | undefined;
  /** A segment whose zeros failed (e.g. a full disk): it grows with its records from then on. */
  #zeroFailed: Segment | undefined;

  constructor(
    readonly log: SegmentedLog,
    readonly opts: LogWriterOptions,
  ) {
    this.fsync = opts.fsync;
    this.#syncAlarm = new Alarm(opts.clock, () => this.#intervalFsync());
    log.recent.onEvicted = () => {
      if (this.#slabInUse) return;
      this.#wbuf = NO_SLAB;
      this.#wpos = 0;
    };
  }

  durability(): Durability {
    return durabilityOf(this.fsync);
  }

  /** Queue an append; the caller fills in id/tag/data and the resolve/reject pair. */
  enqueue(p: PendingAppend): void {
    const log = this.log;
    if (this.#failed) {
      p.reject(this.#failed);
      return;
    }
    if (log.closed) {
      p.reject(new StoreError('ZBUS_ERR_CLOSED', `topic ${log.name} is closed`));
      return;
    }
    const now = this.opts.clock.now();
    p.offset = log.nextOffset++;
    p.timestamp = now > log.lastTimestamp ? now : log.lastTimestamp;
    log.lastTimestamp = p.timestamp;
    if (this.#queue.length === 0) this.#queuedAt = performance.now();
    this.#queue.push(p);
    const outstanding = log.nextOffset - log.visibleEnd;
    if (outstanding > this.#peak) this.#peak = outstanding;
    this.#kick();
    // The rule that lets an idle disk take a generation (`#startSync`) is asked as each append arrives, not only
    // once per turn: a burst's first fdatasync starts as soon as half of those expected are queued, while the
    // loop still reads the rest (after the whole turn, every producer stayed in one lockstep group). From a
    // microtask: the appends of one I/O callback (a pipelining client's chunk) still join one batch.
    if (
      this.#immediate !== undefined &&
      !this.#early &&
      this.fsync === 'always' &&
      this.#syncsInFlight === 0 &&
      this.#ops.length === 0 &&
      2 * (this.#queue.length + this.#unsyncedRecords) >= this.#want()
    ) {
      this.#early = true;
      queueMicrotask(this.#runEarly);
    }
  }

  /** Starts the loop now rather than in its setImmediate, if that has not run yet. */
  readonly #runEarly = (): void => {
    this.#early = false;
    if (this.#immediate === undefined) return;
    clearImmediate(this.#immediate);
    this.#immediate = undefined;
    void this.#run();
  };

  /**
   * Run `fn` in the writer loop, between batches; with `settle`, also after every fdatasync, write of zeros and
   * seal in flight.
   */
  exclusive<T>(fn: () => Promise<T>, settle = true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#ops.push({ run: () => fn().then(resolve, reject), settle });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    // setImmediate rather than a microtask: appends produced by the same burst of I/O callbacks join one batch.
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    while (this.#ops.length > 0 || this.#queue.length > 0) {
      const op = this.#ops.shift();
      if (op) {
        // Exclusive operations (truncation, sync, close) see no fsync in flight.
        if (op.settle) {
          await this.#settled();
          await this.#intervalSync;
          await this.#zeroing;
          await this.#sealing;
        }
        await op.run();
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
      await this.#writeBatch(batch, this.#queuedAt);
    }
    this.#running = false;
    const idle = this.#idle;
    this.#idle = [];
    for (const f of idle) f();
  }

  /**
   * Resolves once everything queued so far is written, synced per policy and resolved, no zeros are written and no
   * segment is being sealed.
   */
  async idle(): Promise<void> {
    for (;;) {
      if (this.#running) await new Promise<void>((resolve) => this.#idle.push(resolve));
      else if (this.#zeroing !== undefined) await this.#zeroing;
      else if (this.#sealing !== undefined) await this.#sealing;
      else if (!(await this.#syncWaiting())) return;
    }
  }

  /** Resolves once no fdatasync is in flight and every written batch is resolved (the loop writes nothing). */
  async #settled(): Promise<void> {
    while (await this.#syncWaiting());
  }

  /**
   * With batches waiting for their fdatasync (for others to join, or for a slot), starts it now and waits for
   * the generations in flight; false when nothing waits.
   */
  async #syncWaiting(): Promise<boolean> {
    if (this.#unsynced.length > 0) this.#startSync(true);
    if (this.#generations === 0) return false;
    await this.#tail;
    return true;
  }

  /** `queuedAt`: performance.now() when the batch's oldest append was queued. */
  async #writeBatch(batch: PendingAppend[], queuedAt: number): Promise<void> {
    const log = this.log;
    const policy = this.fsync;
    let i = 0;
    let seg = log.active;
    try {
      while (i < batch.length) {
        seg = log.active;
        const startPos = seg.size;
        const oixLen = seg.oix.length;
        let used = 0;
        let j = i;
        for (; j < batch.length; j++) {
          const p = batch[j]!;
          // Room for the longest UTF-8 form of the id and tag; the record's exact length comes from encoding it,
          // not from measuring them first (a loop over every character of the id, once more per record).
          const most = encodedLength(
            3 * p.id.length,
            p.tag === undefined ? 0 : 3 * p.tag.length,
            p.data.length,
          );
          if (this.#wpos + used + most > this.#wbuf.length) this.#newSlab(used, most);
          const len = encodeRecord(this.#wbuf, this.#wpos + used, p.offset, p.timestamp, p.id, p.tag, p.data);
          // Past the segment's end: the bytes just encoded are left behind `used`, and the record goes to the next.
          if (startPos + used > 0 && startPos + used + len > this.opts.segmentBytes) break;
          seg.maybeIndex(startPos + used, p.offset, p.timestamp);
          used += len;
        }
        if (used > 0) {
          const at = this.#wpos;
          this.#slabInUse = true;
          if (this.#zeroingSeg === seg && startPos + used > this.#zeroingFrom) await this.#zeroing;
          try {
            if (used <= SYNC_WRITE_BYTES) seg.logFile!.writeSync(this.#wbuf, at, used, startPos);
            else await seg.logFile!.write(this.#wbuf, at, used, startPos);
          } catch (err) {
            seg.oix.truncate(oixLen);
            seg.tix.truncate(oixLen);
            await this.#zeroing;
            await seg.logFile!.truncate(startPos).catch(() => {});
            if (seg.zeroedEnd > startPos) seg.zeroedEnd = startPos;
            throw err;
          }
          if (used <= RECENT_BATCH_BYTES) {
            // Kept where it was encoded; the next batch goes after it.
            log.recent.add(seg, startPos, this.#wbuf.subarray(at, at + used));
            this.#wpos = at + used;
          } else if (this.#wbuf.length > WRITE_SLAB_BYTES) {
            // A slab made for one large batch, which is not kept: not held until the next one.
            this.#wbuf = NO_SLAB;
            this.#wpos = 0;
          }
          this.#slabInUse = false;
          seg.size += used;
          seg.endOffset = batch[j - 1]!.offset + 1;
          seg.lastTimestamp = batch[j - 1]!.timestamp;
          if (policy === 'always' && seg.zeroedEnd - seg.size < ZERO_AHEAD_BYTES / 2) this.#zeroAhead(seg);
        }
        i = j;
        if (i < batch.length) await this.#roll(policy);
      }
    } catch (err) {
      this.#slabInUse = false;
      // Nothing from `batch[i]` on reached the disk: fail it and everything queued behind it (their offsets
      // follow), and reuse those offsets.
      const e = storeError(err, `append to topic ${log.name}`);
      const failed = batch.slice(i).concat(this.#queue);
      this.#queue = [];
      log.nextOffset = log.active.endOffset;
      for (const p of failed) p.reject(e);
      batch = batch.slice(0, i);
      if (batch.length === 0) return;
    }
    if (policy === 'always' || this.#generations > 0 || this.#unsynced.length > 0) {
      // (Also after a switch away from `always`, while batches of it still wait: batches resolve in order.)
      if (this.#unsynced.length === 0) {
        this.#unsyncedSince = queuedAt;
        this.#unsyncedAt = this.opts.clock.now();
      }
      this.#unsynced.push(batch);
      this.#unsyncedRecords += batch.length;
      this.#startSync(false);
    } else {
      if (policy !== 'never') this.#armSync(policy.intervalMs);
      this.#complete(batch, false, true);
    }
    log.active.persistIndexSoon((err) =>
      log.logger?.warn({ topic: log.name, err }, 'index write failed (rebuilt from the log at open)'),
    );
  }

  /**
   * Write zeros from the end of `seg`'s records (or of its zeros) up to ZERO_AHEAD_BYTES further, at most to the
   * segment size, and fdatasync them; unless a write of zeros is under way. Records wait for it before they go
   * past where it started (`#writeBatch`), so it never writes over one. A failure only stops it for the segment.
   */
  #zeroAhead(seg: Segment): void {
    if (this.#zeroing !== undefined || this.#zeroFailed === seg) return;
    const from = Math.max(seg.zeroedEnd, seg.size);
    const len = Math.min(ZERO_AHEAD_BYTES, this.opts.segmentBytes - from);
    if (len <= 0) return;
    zeros ??= Buffer.alloc(ZERO_AHEAD_BYTES);
    this.#zeroingFrom = from;
    this.#zeroingSeg = seg;
    // Set before the write: zeros that a failed write left behind are cut off as well (`#cutZeros`).
    seg.zeroedEnd = from + len;
    this.#zeroing = (async () => {
      try {
        await seg.logFile!.write(zeros, 0, len, from);
        await seg.logFile!.datasync();
      } catch {
        this.#zeroFailed = seg;
      } finally {
        this.#zeroing = undefined;
        this.#zeroingSeg = undefined;
      }
    })();
  }

  /**
   * Cut the zeros written ahead of `seg`'s records off its file (a segment sealed or closed ends at its size), once
   * `zeroing` (the write of zeros under way when it was asked for) is done.
   */
  async #cutZeros(seg: Segment, zeroing = this.#zeroing): Promise<void> {
    await zeroing;
    if (seg.zeroedEnd <= seg.size) return;
    await seg.logFile!.truncate(seg.size);
    seg.zeroedEnd = seg.size;
  }

  /**
   * The batch being encoded (`used` bytes at `#wpos`) needs `len` more bytes than the slab has left: move it to
   * the start of a new slab (the old one stays alive while recent batches point into it).
   */
  #newSlab(used: number, len: number): void {
    const nb = Buffer.allocUnsafe(Math.max(WRITE_SLAB_BYTES, 2 * (used + len)));
    this.#wbuf.copy(nb, 0, this.#wpos, this.#wpos + used);
    this.#wbuf = nb;
    this.#wpos = 0;
  }

  /**
   * Start the fdatasync of the next generation (every batch written since the last one started) unless
   * MAX_SYNCS_IN_FLIGHT are in flight: the return of one starts the next. Batches of a rolled segment are covered
   * by its seal, which a generation started while it runs waits for. Generations resolve in order, each after its
   * own fdatasync returned.
   *
   * A free slot is not taken at once while more producers are expected: as many appends were outstanding a moment
   * ago (`#expected`, `#peak`), and those not covered by an fdatasync in flight are not all written yet. It is
   * taken once they are, once half of them are and the disk is idle, or after `groupWaitMs` (`force`). A lone
   * producer never waits; 32 closed-loop producers get about 16 records per fdatasync instead of the 2-4 that
   * came back within a fast disk's fdatasync.
   */
  #startSync(force: boolean): void {
    if (this.#syncsInFlight >= MAX_SYNCS_IN_FLIGHT || this.#unsynced.length === 0) return;
    const log = this.log;
    const wait = this.opts.groupWaitMs;
    if (!force && this.opts.clock.now() - this.#unsyncedAt < wait) {
      const want = this.#want();
      const n = this.#unsyncedRecords;
      if (n < want && (this.#syncsInFlight > 0 || 2 * n < want)) {
        this.#groupWait ??= this.opts.clock.setTimer(() => {
          this.#groupWait = undefined;
          this.#startSync(true);
        }, wait);
        return;
      }
    }
    this.#cancelGroupWait();
    const generation = this.#unsynced;
    const since = this.#unsyncedSince;
    this.#unsynced = [];
    this.#unsyncedRecords = 0;
    const last = generation[generation.length - 1]!;
    this.#coveredEnd = last[last.length - 1]!.offset + 1;
    this.#expected = this.#peak;
    this.#peak = log.nextOffset - log.visibleEnd;
    if (this.#failed) {
      for (const batch of generation) for (const p of batch) p.reject(this.#failed);
      return;
    }
    this.#syncsInFlight++;
    this.#generations++;
    const started = performance.now();
    const synced = this.log.active.logFile!.datasync().then(
      () => this.#synced(generation, started, undefined),
      (err: unknown) => this.#synced(generation, started, err ?? new Error('fsync failed')),
    );
    const prev = this.#tail;
    const sealing = this.#sealing;
    this.#tail = (async () => {
      const err = await synced;
      await prev;
      const sealErr = await sealing;
      this.#generations--;
      if (err === undefined && sealErr === undefined)
        this.opts.commits.waitSeconds.observe((performance.now() - since) / 1000);
      // After a failed fdatasync nothing behind it is trusted, even when its own fdatasync returned.
      const failed = err !== undefined || sealErr !== undefined || this.#fsyncFailed;
      for (const batch of generation) this.#complete(batch, failed, false);
    })();
  }

  /** Appends the next fdatasync expects: as many as were outstanding lately, less those one in flight covers. */
  #want(): number {
    const log = this.log;
    const covered = this.#coveredEnd > log.visibleEnd ? this.#coveredEnd - log.visibleEnd : 0;
    return (this.#expected > this.#peak ? this.#expected : this.#peak) - covered;
  }

  #cancelGroupWait(): void {
    if (this.#groupWait === undefined) return;
    this.opts.clock.clearTimer(this.#groupWait);
    this.#groupWait = undefined;
  }

  /** An fdatasync returned: its slot goes at once to the next generation. Returns its error. */
  #synced(generation: PendingAppend[][], started: number, err: unknown): unknown {
    this.#syncsInFlight--;
    if (err === undefined) {
      const stats = this.opts.commits;
      let records = 0;
      for (const batch of generation) records += batch.length;
      stats.recordsPerSync.observe(records);
      stats.syncSeconds.observe((performance.now() - started) / 1000);
    } else this.#fsyncFailure(storeError(err, `fsync of topic ${this.log.name}`));
    this.#startSync(false);
    return err;
  }

  /** After a failed fsync the page cache state is unknown: stop accepting writes for this topic. */
  #fsyncFailure(err: StoreError): void {
    if (this.#fsyncFailed) return;
    this.#fsyncFailed = true;
    this.#failed = err;
    for (const p of this.#queue) p.reject(err);
    this.#queue = [];
  }

  #complete(batch: PendingAppend[], failed: boolean, inWriteTurn: boolean): void {
    const log = this.log;
    if (failed) {
      for (const p of batch) p.reject(this.#failed);
      return;
    }
    const last = batch[batch.length - 1]!;
    if (last.offset + 1 > log.visibleEnd) log.visibleEnd = last.offset + 1;
    const durability = this.durability();
    for (const p of batch)
      p.resolve({ offset: p.offset, timestamp: p.timestamp, durability, duplicate: false });
    this.opts.onVisible(inWriteTurn);
  }

  /**
   * Open the next segment and make it the active one; the old one is sealed in the background (`#seal`). At most
   * one seal runs: recovery looks for an unfinished one only in the segment before the last (log-recovery.ts).
   */
  async #roll(policy: FsyncPolicy): Promise<void> {
    const log = this.log;
    await this.#sealing;
    const old = log.active;
    const seg = new Segment(log.dir, old.endOffset, log.files);
    await seg.openForAppend(true);
    old.sealed = true;
    log.segments.push(seg);
    log.active = seg;
    const sealing = this.#seal(old, policy, this.#zeroing);
    this.#sealing = sealing;
    this.#sealingSeg = old;
    void sealing.then(() => {
      if (this.#sealing === sealing) {
        this.#sealing = undefined;
        this.#sealingSeg = undefined;
      }
      // Retention sees the sealed segment only now.
      this.opts.onRoll();
    });
  }

  /**
   * Write the rolled segment's index, cut its zeros (once `zeroing` is done) and, unless policy `never`,
   * fdatasync it and fsync the directory (the new segment's name). A failure under `always` fails the topic as a
   * failed fdatasync does; under the other policies it is logged, as a failed interval fsync is.
   */
  async #seal(
    old: Segment,
    policy: FsyncPolicy,
    zeroing: Promise<void> | undefined,
  ): Promise<StoreError | undefined> {
    try {
      await old.persistIndex();
      await this.#cutZeros(old, zeroing);
      if (policy !== 'never') {
        await old.logFile!.datasync();
        await fsyncDir(this.log.dir);
      }
      return undefined;
    } catch (err) {
      const e = storeError(err, `seal segment ${old.base} of topic ${this.log.name}`);
      if (policy === 'always') this.#fsyncFailure(e);
      else this.log.logger?.error({ topic: this.log.name, err }, 'sealing a rolled segment failed');
      return policy === 'always' ? e : undefined;
    }
  }

  #armSync(ms: number): void {
    this.#dirty = true;
    if (this.#syncAlarm.at === Number.POSITIVE_INFINITY) this.#syncAlarm.setIn(ms);
  }

  #intervalFsync(): void {
    if (!this.#dirty || this.log.closed) return;
    this.#dirty = false;
    // Not an exclusive operation: appends keep being written while the fsync runs (the kernel allows both on
    // one file). Exclusive operations (close, truncation) wait for it instead.
    this.#intervalSync = this.log.active
      .logFile!.datasync()
      .catch((err: unknown) => {
        this.log.logger?.error({ topic: this.log.name, err }, 'interval fsync failed');
      })
      .finally(() => {
        this.#intervalSync = undefined;
      });
  }

  /** fsync everything written so far. */
  sync(): Promise<void> {
    return this.exclusive(async () => {
      const active = this.log.active;
      if (active.retired || active.logFile === undefined) return;
      this.#dirty = false;
      await active.persistIndex();
      await active.logFile.datasync();
      await active.oixFile?.datasync();
      await active.tixFile?.datasync();
    });
  }

  async close(): Promise<void> {
    const log = this.log;
    if (log.closed) return;
    await this.sync().catch(() => {});
    // Unsynced: should the cut be lost, recovery cuts the zeros off again.
    await this.exclusive(() => this.#cutZeros(log.active)).catch(() => {});
    log.closed = true;
    this.#syncAlarm.cancel();
    await this.idle();
    this.#cancelGroupWait();
    const err = new StoreError('ZBUS_ERR_CLOSED', `topic ${log.name} is closed`);
    for (const p of this.#queue) p.reject(err);
    this.#queue = [];
    for (const s of log.segments) await s.retire();
  }

  /** Fail everything queued and refuse new appends (the topic is being removed). */
  abort(err: StoreError): void {
    this.#failed = err;
    for (const p of this.#queue) p.reject(err);
    this.#queue = [];
  }

  // ---------------------------------------------------------------- retention and truncation

  /**
   * Delete whole sealed segments from the head while `shouldDrop(oldest)` says so, up to the one being sealed.
   * Returns how many. Appends wait for no fdatasync meanwhile: these segments are not written.
   */
  dropHead(shouldDrop: (seg: Segment, log: SegmentedLog) => boolean): Promise<number> {
    return this.exclusive(async () => {
      const log = this.log;
      log.recent.clear();
      let n = 0;
      while (log.segments.length > 1) {
        const seg = log.segments[0]!;
        if (seg === this.#sealingSeg || !shouldDrop(seg, log)) break;
        log.segments.shift();
        await seg.retire();
        await seg.unlink();
        n++;
      }
      return n;
    }, false);
  }

  /** Delete every record: a fresh empty segment starts at the next offset. */
  truncateAll(): Promise<void> {
    return this.exclusive(async () => {
      const log = this.log;
      log.recent.clear();
      const base = log.active.endOffset;
      const old = log.segments;
      if (old.some((s) => s.base === base)) {
        // The active segment is empty and already starts there: just drop the others.
        log.segments = old.filter((s) => s.base === base);
        for (const s of old) {
          if (s.base === base) continue;
          await s.retire();
          await s.unlink();
        }
        log.visibleEnd = base;
        return;
      }
      const seg = new Segment(log.dir, base, log.files);
      await seg.openForAppend(true);
      await fsyncDir(log.dir);
      log.segments = [seg];
      log.active = seg;
      for (const s of old) {
        await s.retire();
        await s.unlink();
      }
      log.visibleEnd = base;
    });
  }
}
