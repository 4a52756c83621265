// The file behind a topic's delayed messages, `delayed.journal`: an append-only list of ADD (the whole message)
// and DONE (its sequence number) records, each with a CRC32C of everything after the checksum.
//
//   ADD : len u32 | crc u32 | type=1 u8 | pad 3 | seq f64 | deliverAt f64 | idLen u16 | tagLen u16 | hasTag u8 |
//         pad 3 | dataLen u32 | id | tag | data
//   DONE: len u32 | crc u32 | type=2 u8 | pad 3 | seq f64
//
// Memory holds only where each held message is (`HeldEntry`: due time, position, length); its bytes are read
// back when it comes due. Every file operation (write, read, compaction) runs in one chain (append-file.ts), so
// positions never move under a reader. A record gets its position when it is written, so a compaction that ran
// meanwhile cannot make it wrong.
import fs from 'node:fs';
import { AppendFile } from './append-file.js';
import { crc32c } from './crc32c.js';
import type { CachedFile, FileCache } from './file-cache.js';
import { closeFd, fdatasyncFd, openFd, tempPath, writeAt } from './fs-util.js';

export const ADD = 1;
export const DONE = 2;
const ADD_HEADER = 40;
const DONE_BYTES = 20;
/** The open scan reads records through a window of this size while they are small... */
const SCAN_WINDOW_BYTES = 256 * 1024;
/** ...and only this much (a header and an id) at each record once they are large, skipping their bytes. */
const SCAN_HEADER_READ_BYTES = 4096;

/** A held message as memory knows it. */
export interface HeldEntry {
  seq: number;
  deliverAt: number;
  /** Position of its ADD record in the file; -1 until written. */
  pos: number;
  len: number;
}

export interface DelayedMessage {
  seq: number;
  deliverAt: number;
  id: string;
  tag: string | undefined;
  data: Uint8Array;
}

/** What the open scan found. */
export interface ScanResult {
  /** ADD records without a DONE, in file order. */
  live: HeldEntry[];
  /** With `wantIds`: the id of each live entry, by seq (for the dedupe window). */
  ids: Map<number, string> | undefined;
  maxSeq: number;
  /** Records whose checksum failed and were skipped (a torn last record is cut off instead). */
  corrupt: number;
}

export function encodeAdd(m: DelayedMessage): Buffer {
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

export function encodeDone(seq: number): Buffer {
  const b = Buffer.alloc(DONE_BYTES);
  b.writeUInt32LE(DONE_BYTES, 0);
  b[8] = DONE;
  b.writeDoubleLE(seq, 12);
  b.writeUInt32LE(crc32c(b, 8, DONE_BYTES), 4);
  return b;
}

/** Decode an ADD record read back whole; undefined when its checksum or shape is wrong. */
export function decodeAdd(b: Buffer): DelayedMessage | undefined {
  if (b.length < ADD_HEADER || b.readUInt32LE(0) !== b.length || b[8] !== ADD) return undefined;
  if (crc32c(b, 8, b.length) !== b.readUInt32LE(4)) return undefined;
  const idLen = b.readUInt16LE(28);
  const tagLen = b.readUInt16LE(30);
  const dataLen = b.readUInt32LE(36);
  const s = ADD_HEADER;
  if (s + idLen + tagLen + dataLen !== b.length) return undefined;
  return {
    seq: b.readDoubleLE(12),
    deliverAt: b.readDoubleLE(20),
    id: b.toString('utf8', s, s + idLen),
    tag: b[32] === 1 ? b.toString('utf8', s + idLen, s + idLen + tagLen) : undefined,
    data: b.subarray(s + idLen + tagLen),
  };
}

export class DelayFile extends AppendFile {
  /** Open (creating) the file and scan it; a torn tail is cut off. Nothing stays open on failure. */
  static async open(
    path: string,
    files: FileCache,
    wantIds: boolean,
  ): Promise<{ file: DelayFile; scan: ScanResult }> {
    const file = await files.open(path, 'write');
    try {
      const size = (await fs.promises.stat(path)).size;
      const { scan, end } = await scanFile(file, size, wantIds);
      if (end < size) {
        await file.truncate(end);
        await file.datasync();
      }
      return { file: new DelayFile(path, file, end), scan };
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /** Buffer the ADD record of `entry`, which learns its position when it is written. */
  add(record: Buffer, entry: HeldEntry): void {
    this.append(record, (pos) => {
      entry.pos = pos;
    });
  }

  /** Read the held message `e` back (after writing what is buffered); undefined when its record is corrupt. */
  read(e: HeldEntry): Promise<DelayedMessage | undefined> {
    return this.run(async () => {
      await this.writePending();
      if (e.pos < 0 || this.closed) return undefined;
      const b = Buffer.allocUnsafe(e.len);
      const n = await this.file.read(b, 0, e.len, e.pos);
      return n === e.len ? decodeAdd(b) : undefined;
    });
  }

  /**
   * Keep only the records of `live` (a fresh file holding them one after the other, swapped in atomically), and
   * update their positions. Records buffered meanwhile go after them.
   */
  compact(live: Iterable<HeldEntry>): Promise<void> {
    return this.run(async () => {
      if (this.closed) return;
      await this.writePending();
      const entries = [...live].filter((e) => e.pos >= 0).sort((a, b) => a.pos - b.pos);
      if (entries.length === 0) {
        // Nothing held: emptying the file in place is atomic enough (either all of it is garbage or none).
        await this.file.truncate(0);
        await this.file.datasync();
        this.size = 0;
        return;
      }
      const tmp = tempPath(this.path);
      let out = await openFd(tmp, 'w');
      const moved = new Map<HeldEntry, number>();
      try {
        let pos = 0;
        for (const e of entries) {
          const b = Buffer.allocUnsafe(e.len);
          await this.file.read(b, 0, e.len, e.pos);
          await writeAt(out, b, 0, e.len, pos);
          moved.set(e, pos);
          pos += e.len;
        }
        await fdatasyncFd(out);
        const fd = out;
        out = -1;
        await closeFd(fd);
        await fs.promises.rename(tmp, this.path);
      } catch (err) {
        // Closed at most once: once closed, its number may already belong to another open file.
        if (out >= 0) await closeFd(out).catch(() => {});
        await fs.promises.rm(tmp, { force: true });
        throw err;
      }
      let size = 0;
      for (const [e, pos] of moved) {
        e.pos = pos;
        size += e.len;
      }
      await this.swapFile(size);
    });
  }

  /** Drop every record, buffered or written. */
  clear(): Promise<void> {
    this.takePending();
    return this.compact([]);
  }
}

/**
 * Walk the records from the start, reading headers only (and the id when asked): a message's bytes are not read
 * at open. The walk ends at the first record that cannot be whole (a torn write) or a last record that fails its
 * checksum; other records' checksums are checked when their bytes are in the window anyway (a failing one is
 * skipped), the rest when they are read back.
 */
async function scanFile(
  file: CachedFile,
  size: number,
  wantIds: boolean,
): Promise<{ scan: ScanResult; end: number }> {
  const live = new Map<number, HeldEntry>();
  const ids = wantIds ? new Map<number, string>() : undefined;
  let maxSeq = -1;
  let corrupt = 0;
  let win = Buffer.allocUnsafe(SCAN_WINDOW_BYTES);
  let winStart = 0;
  let winLen = 0;
  let readAhead = SCAN_WINDOW_BYTES;
  /** Make `[pos, pos+need)` available in `win`; false past the end of the file. */
  const ensure = async (pos: number, need: number): Promise<boolean> => {
    if (pos + need > size) return false;
    if (pos >= winStart && pos + need <= winStart + winLen) return true;
    if (need > win.length) win = Buffer.allocUnsafe(need);
    winStart = pos;
    winLen = await file.read(win, 0, Math.min(Math.max(need, readAhead), size - pos), pos);
    return winLen >= need;
  };
  let pos = 0;
  while (pos < size) {
    if (!(await ensure(pos, 12))) break;
    const len = win.readUInt32LE(pos - winStart);
    const type = win[pos - winStart + 8];
    if (pos + len > size) break;
    if (type === DONE) {
      if (len !== DONE_BYTES || !(await ensure(pos, len))) break;
    } else if (type !== ADD || len < ADD_HEADER || !(await ensure(pos, ADD_HEADER))) break;
    const last = pos + len === size;
    if (last || pos + len <= winStart + winLen) {
      // The whole record is at hand (or is the last one, which a crash may have torn): check it.
      if (!(await ensure(pos, len))) break;
      const q = pos - winStart;
      if (crc32c(win, q + 8, q + len) !== win.readUInt32LE(q + 4)) {
        if (last) break;
        // Records follow it whole: a damaged record, not a torn write. Skip it, keep the others.
        corrupt++;
        pos += len;
        continue;
      }
    }
    if (!(await ensure(pos, type === ADD ? ADD_HEADER : DONE_BYTES))) break;
    const at = pos - winStart;
    const seq = win.readDoubleLE(at + 12);
    if (!Number.isSafeInteger(seq) || seq < 0) break;
    if (seq > maxSeq) maxSeq = seq;
    if (type === ADD) {
      const deliverAt = win.readDoubleLE(at + 20);
      const idLen = win.readUInt16LE(at + 28);
      if (ADD_HEADER + idLen > len) break;
      live.set(seq, { seq, deliverAt, pos, len });
      if (ids !== undefined) {
        if (!(await ensure(pos, ADD_HEADER + idLen))) break;
        const s = pos - winStart + ADD_HEADER;
        ids.set(seq, win.toString('utf8', s, s + idLen));
      }
    } else {
      live.delete(seq);
      ids?.delete(seq);
    }
    pos += len;
    readAhead = len > SCAN_HEADER_READ_BYTES ? SCAN_HEADER_READ_BYTES : SCAN_WINDOW_BYTES;
  }
  return { scan: { live: [...live.values()], ids, maxSeq, corrupt }, end: pos };
}
