// A topic's segmented log: the segments and the positions that its one writer (log-writer.ts) and its readers
// (log-reader.ts) share. log-recovery.ts builds it at open; nothing here does I/O.
//
//   segments: [ sealed 0.. ][ sealed 4711.. ][ active 9012.. ]
//   offsets:  firstOffset ........................ visibleEnd ... nextOffset
//             (oldest kept)        (readers stop here) (being written)
import type { FileCache } from './file-cache.js';
import { HEADER_BYTES, MAX_FIELD_BYTES } from './record.js';
import type { Segment } from './segment.js';
import type { StoreLogger } from './types.js';

/** The largest batch kept for tail readers (see `RecentBatches`). */
export const RECENT_BATCH_BYTES = 256 * 1024;
/**
 * Bytes of recently written records kept for tail readers: about a third of a second at 10k msg/s of 300-byte
 * records. A group that falls behind by up to this much (a consumer's GC pause, a burst) catches up from memory;
 * past it, from the file through the threadpool, 64 KiB per read, which on a loaded machine took 15-30 ms per
 * read and let a consumer 1 s behind fall further behind. The views keep their slabs (256 KiB) alive: at most
 * about five per topic, as four batches of the largest size could before.
 */
const RECENT_BYTES = 1024 * 1024;
/** @default 64 MiB */
export const DEFAULT_TAIL_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * The bytes of recent batches that all topics of a store keep together. Each keeps up to RECENT_BYTES, but topics
 * can be many: past `limit` the topics written least recently give theirs up (their readers read the file, as
 * after a restart), so that a client writing to many topics cannot make the store hold memory without bound.
 */
export class TailCache {
  bytes = 0;
  /** Topics holding bytes, the least recently written first (a Set keeps insertion order). */
  readonly #holders = new Set<RecentBatches>();
  #newest: RecentBatches | undefined;

  constructor(readonly limit = DEFAULT_TAIL_CACHE_BYTES) {}

  /** `r` was just written to (it holds `r` bytes more or less): the others give up theirs while over the limit. */
  written(r: RecentBatches): void {
    if (this.#newest !== r) {
      // A busy topic is already the newest: no reordering on its appends.
      this.#holders.delete(r);
      this.#holders.add(r);
      this.#newest = r;
    }
    if (this.bytes <= this.limit) return;
    for (const h of this.#holders) {
      if (h === r) break;
      h.clear();
      h.onEvicted?.();
      if (this.bytes <= this.limit) return;
    }
  }

  forget(r: RecentBatches): void {
    this.#holders.delete(r);
    if (this.#newest === r) this.#newest = undefined;
  }
}

/**
 * The last batches written (newest last), for readers at the tail: a group that delivers what was just
 * appended reads it from here instead of with a `pread` per wake-up (one threadpool round trip less on the
 * produce -> deliver path). Each is a view of the writer's slab, which never writes over a batch it handed out,
 * and bytes of an append-only segment never change once written, so it stays valid while its segment lives;
 * readers check `retired` first. A batch that follows the last one in the slab and in the segment extends it
 * (one view per slab, not one per batch, so a lookup stays short).
 */
export class RecentBatches {
  #batches: Array<{ seg: Segment; start: number; bytes: Buffer }> = [];
  #bytes = 0;
  /** Called when the store's tail cache took this topic's batches for others' (its writer gives up its slab). */
  onEvicted: (() => void) | undefined;

  /** `cache`: shared by the store's topics; a log without one has a cache of its own. */
  constructor(readonly cache: TailCache = new TailCache()) {}

  add(seg: Segment, start: number, bytes: Buffer): void {
    const r = this.#batches;
    const last = r[r.length - 1];
    const before = this.#bytes;
    this.#bytes += bytes.length;
    if (
      last !== undefined &&
      last.seg === seg &&
      last.start + last.bytes.length === start &&
      last.bytes.buffer === bytes.buffer &&
      last.bytes.byteOffset + last.bytes.length === bytes.byteOffset
    ) {
      last.bytes = Buffer.from(bytes.buffer, last.bytes.byteOffset, last.bytes.length + bytes.length);
    } else {
      r.push({ seg, start, bytes });
    }
    while (this.#bytes > RECENT_BYTES && r.length > 1) this.#bytes -= r.shift()!.bytes.length;
    this.cache.bytes += this.#bytes - before;
    this.cache.written(this);
  }

  /** The batch holding `[pos, pos+need)` of `seg`, if one does. */
  find(seg: Segment, pos: number, need: number): { start: number; bytes: Buffer } | undefined {
    const r = this.#batches;
    for (let i = r.length - 1; i >= 0; i--) {
      const b = r[i]!;
      if (b.seg === seg && pos >= b.start && pos + need <= b.start + b.bytes.length) return b;
    }
    return undefined;
  }

  clear(): void {
    this.#batches = [];
    this.cache.bytes -= this.#bytes;
    this.#bytes = 0;
    this.cache.forget(this);
  }
}

export class SegmentedLog {
  segments: Segment[] = [];
  active!: Segment;
  /** Next offset to assign. */
  nextOffset = 0;
  /** Offsets below this are written (and synced under `always`): readers may see them. */
  visibleEnd = 0;
  lastTimestamp = 0;
  /** `<segment base>:<position>` of every corrupt record reported so far. */
  readonly corrupt = new Set<string>();
  closed = false;
  readonly recent: RecentBatches;
  /** Longest record that can be valid: longer length fields are corrupt. */
  readonly maxLen: number;

  constructor(
    readonly dir: string,
    /** The topic's name, for errors and logs. */
    readonly name: string,
    /** Sanity bound on a record's data when reading (a corrupt length must not make us read gigabytes). */
    readonly maxRecordBytes: number,
    readonly logger: StoreLogger | undefined,
    /** The store's open-file cache, for the segments' files. */
    readonly files: FileCache,
    /** The store's cache of recent batches, shared by its topics. */
    tailCache?: TailCache,
  ) {
    this.recent = new RecentBatches(tailCache);
    this.maxLen = maxRecordBytes + HEADER_BYTES + 2 * MAX_FIELD_BYTES;
  }

  get firstOffset(): number {
    return this.segments[0]?.base ?? this.nextOffset;
  }

  get bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  reportCorrupt(seg: Segment, pos: number): void {
    const key = `${seg.base}:${pos}`;
    if (this.corrupt.has(key)) return;
    this.corrupt.add(key);
    this.logger?.error(
      { topic: this.name, segment: seg.base, position: pos },
      'corrupt record (checksum mismatch): skipped, not served',
    );
  }

  /** Index of the segment holding `offset` (the first one for offsets below it). O(log n). */
  segmentIndexFor(offset: number): number {
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

  /** The segment after `seg`; when `seg` is gone (retention), the first one past it. */
  segmentAfter(seg: Segment): Segment | undefined {
    const i = this.segmentIndexFor(seg.base);
    if (this.segments[i] === seg) return this.segments[i + 1];
    for (const t of this.segments) if (t.base > seg.base) return t;
    return undefined;
  }
}
