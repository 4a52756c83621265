// Reading a topic's log: sequential cursors with their own read-ahead window (what groups use), random reads by
// offset and seek by time, both O(log n) through the sparse indexes. Readers see records below `visibleEnd` only,
// step over corrupt records (reported once) and never block the writer.
import { storeError } from './fs-util.js';
import type { SegmentedLog } from './log.js';
import {
  CHECK_CORRUPT,
  CHECK_OK,
  checkRecord,
  decodeRecord,
  HEADER_BYTES,
  type RecordFields,
  recordLength,
  recordOffset,
  recordTimestamp,
} from './record.js';
import { findNextValid, ReadWindow, type Segment } from './segment.js';

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

  /** `catchesUp`: the window grows while the cursor is far behind (see ReadWindow). */
  constructor(windowBytes = 64 * 1024, catchesUp = false) {
    this.win = new ReadWindow(windowBytes, catchesUp);
  }
}

export class LogReader {
  constructor(readonly log: SegmentedLog) {}

  get firstOffset(): number {
    return this.log.firstOffset;
  }

  get visibleEnd(): number {
    return this.log.visibleEnd;
  }

  /** Point `c` at `offset` (clamped to the first stored offset) using the sparse index. */
  async position(c: Cursor, offset: number): Promise<void> {
    while (!this.positionNow(c, offset)) await this.#segmentAt(offset)!.ensureIndex(this.log.maxRecordBytes);
  }

  /** position() without waiting: false (and `c` untouched) while the segment's index is not loaded yet. */
  positionNow(c: Cursor, offset: number): boolean {
    const log = this.log;
    if (offset < log.firstOffset) offset = log.firstOffset;
    const seg = this.#segmentAt(offset);
    if (seg !== undefined && !seg.indexLoaded) return false;
    c.offset = offset;
    c.seg = seg;
    if (seg !== undefined) {
      const i = seg.oix.floor(offset - seg.base);
      c.pos = i >= 0 ? seg.oix.pos[i]! : 0;
    }
    return true;
  }

  #segmentAt(offset: number): Segment | undefined {
    const log = this.log;
    return log.segments[log.segmentIndexFor(Math.max(offset, log.firstOffset))];
  }

  /**
   * Find the next valid, visible record at or after `c.offset` and leave it in `c.win` (c.p, c.len, c.recOffset)
   * without consuming it. Corrupt records are reported and stepped over. False when there is none (yet).
   */
  async peek(c: Cursor): Promise<boolean> {
    for (;;) {
      const found = this.peekNow(c);
      if (found !== null) return found;
      await this.#fetch(c);
    }
  }

  /**
   * peek() without waiting, for records already in the cursor's window or in the log's recent batches (a reader
   * at the tail, or within the 64 KiB read ahead): null when it takes a read, an index load or a corrupt record
   * to step over (peek() does those).
   */
  peekNow(c: Cursor): boolean | null {
    const log = this.log;
    for (;;) {
      if (log.closed || c.offset >= log.visibleEnd) return false;
      let seg = c.seg;
      if (seg === undefined || seg.retired) {
        if (!this.positionNow(c, c.offset)) return null;
        seg = c.seg;
        if (seg === undefined || seg.retired) return false;
      }
      if (c.pos >= seg.size) {
        const nx = log.segmentAfter(seg);
        if (nx === undefined) return false;
        // c.offset stays: after a gap (a seal cut short by a power loss, log-recovery.ts) the next record found
        // is the first past it, and a group positioned at c.offset does not look for the gap again.
        c.seg = nx;
        c.pos = 0;
        continue;
      }
      const win = c.win;
      if (!win.has(seg, c.pos, HEADER_BYTES) && !this.#fromRecent(win, seg, c.pos, HEADER_BYTES)) return null;
      const len = recordLength(win.buf, c.pos - win.start);
      if (len < HEADER_BYTES || len > log.maxLen) return null;
      if (!win.has(seg, c.pos, len) && !this.#fromRecent(win, seg, c.pos, len)) return null;
      const p = c.pos - win.start;
      // A recent batch holds the bytes as this process encoded them: only what came from the file is checked.
      if (!win.immutable && checkRecord(win.buf, p, win.len, log.maxLen) !== CHECK_OK) return null;
      const off = recordOffset(win.buf, p);
      if (off < c.offset) {
        c.pos += len;
        continue;
      }
      if (off >= log.visibleEnd) return false;
      c.p = p;
      c.len = len;
      c.recOffset = off;
      return true;
    }
  }

  /** What peekNow(c) stopped for: an index to load, bytes to read into the window, a corrupt record to skip. */
  async #fetch(c: Cursor): Promise<void> {
    const log = this.log;
    const seg = c.seg;
    if (seg === undefined || seg.retired) {
      await this.position(c, c.offset);
      return;
    }
    try {
      const win = c.win;
      let status = CHECK_CORRUPT;
      if (await win.ensure(seg, c.pos, HEADER_BYTES, seg.size)) {
        const len = recordLength(win.buf, c.pos - win.start);
        if (len >= HEADER_BYTES && len <= log.maxLen && (await win.ensure(seg, c.pos, len, seg.size))) {
          status = checkRecord(win.buf, c.pos - win.start, win.len, log.maxLen);
        }
      }
      if (status === CHECK_OK) return; // in the window now
      log.reportCorrupt(seg, c.pos);
      const next = await findNextValid(seg, win, c.pos + 1, seg.size, c.offset, log.maxLen);
      c.pos = next < 0 ? seg.size : next;
    } catch (err) {
      if (seg.retired || log.closed) return;
      throw storeError(err, `read from topic ${log.name}`);
    }
  }

  /** Point `win` at a recently written batch holding `[pos, pos+need)` of `seg`, if one does. */
  #fromRecent(win: ReadWindow, seg: Segment, pos: number, need: number): boolean {
    const b = this.log.recent.find(seg, pos, need);
    if (b === undefined) return false;
    win.adopt(seg, b.bytes, b.start);
    return true;
  }

  /** Consume the record found by the last successful peek. */
  advance(c: Cursor): void {
    c.pos += c.len;
    c.offset = c.recOffset + 1;
  }

  async read(offset: number): Promise<RecordFields | undefined> {
    const log = this.log;
    if (offset < log.firstOffset || offset >= log.visibleEnd || log.closed) return undefined;
    const c = new Cursor(16 * 1024);
    await this.position(c, offset);
    if (!(await this.peek(c)) || c.recOffset !== offset) return undefined;
    return decodeRecord(c.win.buf, c.p, c.win.immutable);
  }

  /** The offset of the first record stored at or after `time` (visibleEnd if none). O(log n) + a short scan. */
  async seekTime(time: number): Promise<number> {
    const log = this.log;
    const segs = log.segments;
    let lo = 0;
    let hi = segs.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = segs[mid]!;
      await s.ensureIndex(log.maxRecordBytes);
      const first = s.tix.length > 0 ? s.tix.time[0]! : Number.POSITIVE_INFINITY;
      if (first < time) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (ans < 0) return log.firstOffset;
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
    return log.visibleEnd;
  }
}
