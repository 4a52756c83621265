// One segment of a topic's log: `<base>.log` (records, see record.ts) plus its sparse indexes `<base>.oix` and
// `<base>.tix`. `base` is the offset of the segment's first record; file names are the base zero-padded to 20
// digits, so a directory listing sorts them.
import fs from 'node:fs';
import path from 'node:path';
import type { CachedFile, FileCache } from './file-cache.js';
import { INDEX_INTERVAL_BYTES, OFFSET_ENTRY_BYTES, OffsetIndex } from './offset-index.js';
import {
  CHECK_CORRUPT,
  CHECK_OK,
  CHECK_SHORT,
  checkRecord,
  HEADER_BYTES,
  recordLength,
  recordOffset,
  recordTimestamp,
} from './record.js';
import { TIME_ENTRY_BYTES, TimeIndex } from './time-index.js';

export const LOG_SUFFIX = '.log';

export function segmentFileName(base: number, suffix: string): string {
  return `${String(base).padStart(20, '0')}${suffix}`;
}

/** Something a ReadWindow reads from (a segment, by identity). */
export interface FileRef {
  read(buf: Buffer, off: number, len: number, pos: number): Promise<number>;
}

/**
 * Most read-ahead of a window whose reader is far behind the end of what it may read: a consumer group catching
 * up from the file after a stall takes 1 MiB per threadpool round trip instead of its usual size (on a loaded
 * machine a round trip took 15-30 ms, so at 64 KiB a group behind at 10k msg/s of 300-byte records barely gained).
 */
const CATCH_UP_BYTES = 1024 * 1024;

/**
 * A reusable read window over a file: one fs.read fills it with up to buf.length bytes of read-ahead. A window
 * that `catchesUp` (a consumer group's) doubles per read while its reader is at least four windows behind the
 * limit it reads to (up to CATCH_UP_BYTES), and returns to its own size back near the limit.
 */
export class ReadWindow {
  buf: Buffer;
  /** File position of buf[0]. */
  start = 0;
  /** Valid bytes in buf. */
  len = 0;
  /** The file the bytes came from (compared by identity). */
  owner: FileRef | undefined;

  /** The window's own buffer, the target of every read (`buf` may be an adopted one instead). */
  #own: Buffer;
  /** The read-ahead asked for, which a catch-up outgrows for a while. */
  readonly #size: number;

  constructor(
    size = 64 * 1024,
    readonly catchesUp = false,
  ) {
    this.buf = Buffer.allocUnsafe(size);
    this.#own = this.buf;
    this.#size = size;
  }

  /** `buf` is an adopted batch, never written again: views of it stay valid after the window moves on. */
  get immutable(): boolean {
    return this.buf !== this.#own;
  }

  invalidate(): void {
    this.len = 0;
    this.owner = undefined;
  }

  /** Whether `[pos, pos+need)` of `file` is in `buf` already. */
  has(file: FileRef, pos: number, need: number): boolean {
    return file === this.owner && pos >= this.start && pos + need <= this.start + this.len;
  }

  /**
   * Serve the window from `bytes`, an immutable copy of `file` at `[start, start + bytes.length)` (the log's
   * recently written batches): a reader at the tail then needs no read of what was just written. The next
   * read from disk goes to the window's own buffer again.
   */
  adopt(file: FileRef, bytes: Buffer, start: number): void {
    this.buf = bytes;
    this.start = start;
    this.len = bytes.length;
    this.owner = file;
  }

  /** Make `[pos, pos+need)` of `file` available in `buf` without reading past `limit`; false if it cannot be. */
  async ensure(file: FileRef, pos: number, need: number, limit: number): Promise<boolean> {
    if (file === this.owner && pos >= this.start && pos + need <= this.start + this.len) return true;
    if (pos + need > limit) return false;
    const own = this.#own.length;
    if (need > own) this.#own = Buffer.allocUnsafe(Math.max(need, own * 2));
    else if (this.catchesUp) {
      if (limit - pos >= 4 * own && own < CATCH_UP_BYTES) this.#own = Buffer.allocUnsafe(own * 2);
      else if (limit - pos < own && own > this.#size && need <= this.#size)
        this.#own = Buffer.allocUnsafe(this.#size);
    }
    this.buf = this.#own;
    const want = Math.min(this.buf.length, limit - pos);
    this.owner = undefined;
    const n = await file.read(this.buf, 0, want, pos);
    this.owner = file;
    this.start = pos;
    this.len = n;
    return n >= need;
  }
}

export interface ScanResult {
  /** Bytes of valid log (the file is truncated to this when torn). */
  size: number;
  /** Offset after the last valid record. */
  endOffset: number;
  lastTimestamp: number;
  /** Positions of corrupt records found (skipped, not truncated). */
  corrupt: number[];
  torn: boolean;
}

export class Segment implements FileRef {
  /** The records; read-write while the segment is active. Undefined until opened. */
  logFile: CachedFile | undefined;
  /** The index files, open while the segment is active (a sealed segment's are read whole, once). */
  oixFile: CachedFile | undefined;
  tixFile: CachedFile | undefined;
  size = 0;
  /**
   * End of the zeros written (or being written, then fdatasynced) ahead of `size` in the active segment's file
   * under fsync=always (log-writer.ts): records written below it change no file size or block map, so their
   * fdatasync writes no metadata. At most `size` when there are none.
   */
  zeroedEnd = 0;
  /** Offset after the last record (kept up to date for the active segment; for sealed ones: next segment's base). */
  endOffset: number;
  lastTimestamp = 0;
  oix = new OffsetIndex();
  tix = new TimeIndex();
  lastIndexedPos = -INDEX_INTERVAL_BYTES;
  indexLoaded = false;
  #indexLoading: Promise<void> | undefined;
  /** The background index write (persistIndexSoon) under way. */
  #indexWrite: Promise<void> | undefined;
  sealed = false;
  retired = false;

  constructor(
    readonly dir: string,
    readonly base: number,
    readonly files: FileCache,
  ) {
    this.endOffset = base;
  }

  get logPath(): string {
    return path.join(this.dir, segmentFileName(this.base, LOG_SUFFIX));
  }
  get oixPath(): string {
    return path.join(this.dir, segmentFileName(this.base, '.oix'));
  }
  get tixPath(): string {
    return path.join(this.dir, segmentFileName(this.base, '.tix'));
  }

  /** A sealed segment: its file is opened by the first read (and closed again when idle and others need room). */
  openForRead(): void {
    this.logFile = this.files.lazy(this.logPath, 'read');
  }

  /** Open the log and index files read-write (`create`: new, empty files). Closes what it opened on failure. */
  async openForAppend(create: boolean): Promise<void> {
    try {
      this.logFile = await this.files.open(this.logPath, 'write', create);
      this.oixFile = await this.files.open(this.oixPath, 'write', create);
      this.tixFile = await this.files.open(this.tixPath, 'write', create);
    } catch (err) {
      await this.close();
      throw err;
    }
    if (create) {
      this.indexLoaded = true;
      this.size = 0;
    }
  }

  /** Record an index entry for a record about to be written at `pos` if the interval since the last one passed. */
  maybeIndex(pos: number, offset: number, timestamp: number): void {
    if (pos === 0 || pos - this.lastIndexedPos >= INDEX_INTERVAL_BYTES) {
      this.oix.add(offset - this.base, pos);
      this.tix.add(timestamp, offset - this.base);
      this.lastIndexedPos = pos;
    }
  }

  /**
   * Start writing the index entries not yet in the index files once 32 have gathered, unless a write is under
   * way (the next call takes the rest). The appends go on meanwhile: a write to an index file can wait in the
   * kernel behind an fsync or in the threadpool, and the log's records must not wait with it. Unsynced and only
   * logged when it fails: the indexes are rebuilt from the log at open.
   */
  persistIndexSoon(onError: (err: unknown) => void): void {
    if (this.#indexWrite !== undefined || this.oix.length - this.oix.persisted < 32) return;
    this.#indexWrite = this.#writeIndex()
      .catch((err: unknown) => {
        if (!this.retired) onError(err);
      })
      .finally(() => {
        this.#indexWrite = undefined;
      });
  }

  /** Write every index entry not yet in the index files, after the write under way if there is one. */
  async persistIndex(): Promise<void> {
    while (this.#indexWrite !== undefined) await this.#indexWrite;
    await this.#writeIndex();
  }

  async #writeIndex(): Promise<void> {
    if (this.oixFile === undefined || this.tixFile === undefined) return;
    const oixEnd = this.oix.length;
    const tixEnd = this.tix.length;
    const o = this.oix.unpersisted();
    const t = this.tix.unpersisted();
    if (o) await this.oixFile.write(o, 0, o.length, this.oix.persisted * OFFSET_ENTRY_BYTES);
    if (t) await this.tixFile.write(t, 0, t.length, this.tix.persisted * TIME_ENTRY_BYTES);
    // Entries added meanwhile go with the next write; a truncation meanwhile (a failed batch) stands.
    this.oix.persisted = Math.min(oixEnd, this.oix.length);
    this.tix.persisted = Math.min(tixEnd, this.tix.length);
  }

  /** Load the index files of a sealed segment on first use; rebuild them from the log when they are unusable. */
  ensureIndex(maxRecordBytes: number): Promise<void> {
    if (this.indexLoaded) return Promise.resolve();
    this.#indexLoading ??= this.#loadIndex(maxRecordBytes);
    return this.#indexLoading;
  }

  async #loadIndex(maxRecordBytes: number): Promise<void> {
    let ok = false;
    try {
      const [o, t] = await Promise.all([
        fs.promises.readFile(this.oixPath),
        fs.promises.readFile(this.tixPath),
      ]);
      this.oix.load(o, this.size);
      this.tix.load(t, this.oix.length);
      const n = Math.min(this.oix.length, this.tix.length);
      this.oix.truncate(n);
      this.tix.truncate(n);
      ok = n > 0 && this.oix.rel[0] === 0 && this.oix.pos[0] === 0;
    } catch {
      ok = false;
    }
    if (!ok && this.size > 0) {
      this.oix = new OffsetIndex();
      this.tix = new TimeIndex();
      this.lastIndexedPos = -INDEX_INTERVAL_BYTES;
      await this.scan(0, this.base, maxRecordBytes, false);
      // A rebuilt index of a sealed segment is written back so the next open does not rescan.
      try {
        const oo = this.oix.unpersisted();
        const tt = this.tix.unpersisted();
        if (oo && tt && this.sealed) {
          await fs.promises.writeFile(this.oixPath, oo);
          await fs.promises.writeFile(this.tixPath, tt);
        }
      } catch {
        // best effort
      }
    }
    this.indexLoaded = true;
  }

  /**
   * Scan records from `pos` (expected offset `offset`) to the end of the file, adding index entries. A corrupt
   * record followed by valid ones is skipped and reported; one at the very end (a torn write) is cut off when
   * `truncate` is set, and so are zeros from a record boundary to the end of the file (written ahead, see
   * `zeroedEnd`). Reads 1 MiB at a time.
   */
  async scan(pos: number, offset: number, maxRecordBytes: number, truncate: boolean): Promise<ScanResult> {
    const fileSize = (await fs.promises.stat(this.logPath)).size;
    const win = new ReadWindow(1024 * 1024);
    const corrupt: number[] = [];
    let endOffset = offset;
    let lastTs = this.lastTimestamp;
    let torn = false;
    let zeroTail = false;
    const maxLen = maxRecordBytes + HEADER_BYTES + 2 * 0xffff;
    while (pos < fileSize) {
      const okHeader = await win.ensure(this, pos, HEADER_BYTES, fileSize);
      let status = CHECK_SHORT;
      if (okHeader) {
        const len = recordLength(win.buf, pos - win.start);
        if (len >= HEADER_BYTES && len <= maxLen && pos + len <= fileSize) {
          await win.ensure(this, pos, len, fileSize);
          status = checkRecord(win.buf, pos - win.start, win.len, maxLen);
          if (status === CHECK_OK && recordOffset(win.buf, pos - win.start) < endOffset)
            status = CHECK_CORRUPT;
        } else status = len >= HEADER_BYTES && len <= maxLen ? CHECK_SHORT : CHECK_CORRUPT;
      }
      if (status === CHECK_OK) {
        const p = pos - win.start;
        const off = recordOffset(win.buf, p);
        const ts = recordTimestamp(win.buf, p);
        this.maybeIndex(pos, off, ts);
        endOffset = off + 1;
        lastTs = ts;
        pos += recordLength(win.buf, p);
        continue;
      }
      // Zeros from here to the end of the file: the zeros written ahead under fsync=always, no record.
      if (await zerosToEnd(this, win, pos, fileSize)) {
        zeroTail = true;
        break;
      }
      // Not a valid record here: find the next valid one. None means this is a torn tail.
      const next = await findNextValid(this, win, pos + 1, fileSize, endOffset, maxLen);
      if (next < 0) {
        torn = true;
        break;
      }
      corrupt.push(pos);
      pos = next;
    }
    if ((torn || zeroTail) && truncate) await this.logFile!.truncate(pos);
    this.size = torn || zeroTail ? pos : fileSize;
    if (!truncate && torn) this.size = fileSize;
    this.endOffset = endOffset;
    this.lastTimestamp = lastTs;
    return { size: pos, endOffset, lastTimestamp: lastTs, corrupt, torn };
  }

  read(buf: Buffer, off: number, len: number, pos: number): Promise<number> {
    if (this.logFile === undefined) return Promise.reject(new Error(`segment ${this.base} is not open`));
    return this.logFile.read(buf, off, len, pos);
  }

  /** Serve no more reads: close the files once the reads in flight are done (they may finish after unlink). */
  retire(): Promise<void> {
    this.retired = true;
    return this.close();
  }

  async close(): Promise<void> {
    await Promise.all([this.logFile?.close(), this.oixFile?.close(), this.tixFile?.close()]);
  }

  async unlink(): Promise<void> {
    await Promise.all([
      fs.promises.rm(this.logPath, { force: true }),
      fs.promises.rm(this.oixPath, { force: true }),
      fs.promises.rm(this.tixPath, { force: true }),
    ]);
  }
}

/** Whether every byte of `[pos, limit)` is zero (read through `win`). */
async function zerosToEnd(fd: FileRef, win: ReadWindow, pos: number, limit: number): Promise<boolean> {
  while (pos < limit) {
    if (!(await win.ensure(fd, pos, 1, limit))) return false;
    const end = Math.min(win.start + win.len, limit);
    const buf = win.buf;
    for (let i = pos - win.start, n = end - win.start; i < n; i++) if (buf[i] !== 0) return false;
    pos = end;
  }
  return true;
}

/**
 * Find the next position in `[from, limit)` holding a valid record whose offset is at least `minOffset`; -1 if
 * there is none. Used to step over a corrupt record whose length field cannot be trusted.
 */
export async function findNextValid(
  fd: FileRef,
  win: ReadWindow,
  from: number,
  limit: number,
  minOffset: number,
  maxLen: number,
): Promise<number> {
  const chunk = 1024 * 1024;
  let pos = from;
  const scratch = new ReadWindow(64 * 1024);
  while (pos + HEADER_BYTES <= limit) {
    const want = Math.min(chunk, limit - pos);
    if (!(await win.ensure(fd, pos, Math.min(want, HEADER_BYTES), limit))) return -1;
    const avail = win.start + win.len;
    for (; pos + HEADER_BYTES <= avail; pos++) {
      const p = pos - win.start;
      const len = recordLength(win.buf, p);
      if (len < HEADER_BYTES || len > maxLen || pos + len > limit) continue;
      const off = recordOffset(win.buf, p);
      if (!Number.isInteger(off) || off < minOffset || off > minOffset + 0xffffffff) continue;
      let status: number;
      if (pos + len <= avail) status = checkRecord(win.buf, p, win.len, maxLen);
      else {
        await scratch.ensure(fd, pos, len, limit);
        status = checkRecord(scratch.buf, pos - scratch.start, scratch.len, maxLen);
      }
      if (status === CHECK_OK) return pos;
    }
    if (pos + HEADER_BYTES > limit) break;
    // pos is now within HEADER_BYTES of the window end: the next ensure reads on from there.
    win.invalidate();
  }
  return -1;
}
