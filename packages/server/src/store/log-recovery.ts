// Opening a topic's log after a clean stop or a crash: list the segments, trust the sizes of the sealed ones but the
// newest (each was synced before the next roll), and scan the tails of the last two from their last index entry
// that still points at a valid record: a roll seals the old segment (index, zeros cut, fdatasync) while appends go
// to the new one, so a crash may leave it unfinished. A torn last record is cut off; a corrupt one followed by
// valid records is reported and skipped by readers, never served.
import fs from 'node:fs';
import type { FileCache } from './file-cache.js';
import { SegmentedLog, type TailCache } from './log.js';
import { INDEX_INTERVAL_BYTES } from './offset-index.js';
import {
  CHECK_OK,
  checkRecord,
  HEADER_BYTES,
  recordLength,
  recordOffset,
  recordTimestamp,
} from './record.js';
import { LOG_SUFFIX, ReadWindow, Segment } from './segment.js';
import type { StoreLogger } from './types.js';

export interface OpenLogOptions {
  dir: string;
  /** The topic's name, for errors and logs. */
  name: string;
  maxRecordBytes: number;
  log: StoreLogger | undefined;
  files: FileCache;
  tailCache?: TailCache;
}

/** Open (creating the first segment if there is none) the log in `opts.dir`; on failure nothing stays open. */
export async function openLog(opts: OpenLogOptions): Promise<SegmentedLog> {
  const log = new SegmentedLog(
    opts.dir,
    opts.name,
    opts.maxRecordBytes,
    opts.log,
    opts.files,
    opts.tailCache,
  );
  try {
    await openSegments(log);
  } catch (err) {
    await Promise.all(log.segments.map((s) => s.close()));
    throw err;
  }
  return log;
}

async function openSegments(log: SegmentedLog): Promise<void> {
  const names = (await fs.promises.readdir(log.dir)).filter((n) => n.endsWith(LOG_SUFFIX)).sort();
  for (const n of names) {
    const base = Number(n.slice(0, -LOG_SUFFIX.length));
    if (!Number.isSafeInteger(base)) continue;
    log.segments.push(new Segment(log.dir, base, log.files));
  }
  if (log.segments.length === 0) {
    const seg = new Segment(log.dir, 0, log.files);
    await seg.openForAppend(true);
    log.segments.push(seg);
    log.active = seg;
    return;
  }
  for (let i = 0; i < log.segments.length - 1; i++) {
    const seg = log.segments[i]!;
    if (i === log.segments.length - 2) {
      await recoverSealed(log, seg, log.segments[i + 1]!.base);
      continue;
    }
    const st = await fs.promises.stat(seg.logPath);
    seg.size = st.size;
    seg.sealed = true;
    seg.endOffset = log.segments[i + 1]!.base;
    seg.lastTimestamp = st.mtimeMs;
    seg.openForRead();
  }
  const last = log.segments[log.segments.length - 1]!;
  await last.openForAppend(false);
  await recoverTail(log, last);
  log.active = last;
  log.nextOffset = last.endOffset;
  log.visibleEnd = last.endOffset;
  log.lastTimestamp = last.lastTimestamp;
}

/**
 * The segment before the last, whose seal a crash may have cut short: its tail is recovered as the last one's
 * (zeros written ahead or a torn record cut off, the index rewritten), then it is opened for reads. Its records
 * may end below `end` (the next segment's base) after a power loss; readers step over the gap.
 */
async function recoverSealed(log: SegmentedLog, seg: Segment, end: number): Promise<void> {
  await seg.openForAppend(false);
  try {
    await recoverTail(log, seg);
  } finally {
    await seg.close();
  }
  seg.oixFile = undefined;
  seg.tixFile = undefined;
  seg.sealed = true;
  seg.endOffset = end;
  seg.openForRead();
}

/** Resume from the last index entry that still points at a valid record; scan from there; cut a torn tail. */
async function recoverTail(log: SegmentedLog, seg: Segment): Promise<void> {
  const size = (await fs.promises.stat(seg.logPath)).size;
  seg.size = size;
  try {
    const [o, t] = await Promise.all([fs.promises.readFile(seg.oixPath), fs.promises.readFile(seg.tixPath)]);
    seg.oix.load(o, size);
    seg.tix.load(t, seg.oix.length);
    const n = Math.min(seg.oix.length, seg.tix.length);
    seg.oix.truncate(n);
    seg.tix.truncate(n);
  } catch {
    seg.oix.truncate(0);
    seg.tix.truncate(0);
  }
  const from = await lastValidIndexEntry(log, seg, size);
  const startPos = from < 0 ? 0 : seg.oix.pos[from]!;
  const startOffset = from < 0 ? seg.base : seg.base + seg.oix.rel[from]!;
  seg.lastIndexedPos = -INDEX_INTERVAL_BYTES;
  seg.indexLoaded = true;
  const r = await seg.scan(startPos, startOffset, log.maxRecordBytes, true);
  if (r.torn) log.logger?.warn({ topic: log.name, segment: seg.base, at: r.size }, 'truncated a torn record');
  for (const pos of r.corrupt) log.reportCorrupt(seg, pos);
  // The index files may hold entries past the truncation point: rewrite them from the recovered entries.
  await seg.oixFile!.truncate(0);
  await seg.tixFile!.truncate(0);
  seg.oix.persisted = 0;
  seg.tix.persisted = 0;
  await seg.persistIndex();
}

/**
 * Walk the index back (at most 8 entries) to the last entry whose record checks out; the entries from it on are
 * dropped (the scan re-adds them). -1 when none does: the scan starts at the beginning of the segment.
 */
async function lastValidIndexEntry(log: SegmentedLog, seg: Segment, size: number): Promise<number> {
  const win = new ReadWindow(64 * 1024);
  for (let tries = 0; tries < 8 && seg.oix.length > 0; tries++) {
    const i = seg.oix.length - 1;
    const pos = seg.oix.pos[i]!;
    const rel = seg.oix.rel[i]!;
    let ok = false;
    if (await win.ensure(seg, pos, HEADER_BYTES, size)) {
      const len = recordLength(win.buf, pos - win.start);
      if (len >= HEADER_BYTES && len <= log.maxLen && (await win.ensure(seg, pos, len, size))) {
        const p = pos - win.start;
        ok =
          checkRecord(win.buf, p, win.len, log.maxLen) === CHECK_OK &&
          recordOffset(win.buf, p) === seg.base + rel;
        if (ok) seg.lastTimestamp = recordTimestamp(win.buf, p);
      }
    }
    // Entry i is re-added by the scan (it is the scan's first record).
    seg.oix.truncate(i);
    seg.tix.truncate(i);
    if (ok) return i;
  }
  seg.oix.truncate(0);
  seg.tix.truncate(0);
  return -1;
}
