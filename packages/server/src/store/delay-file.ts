// The file behind a topic's delayed messages, `delayed.journal`: an append-only list of ADD (the whole message)
// and DONE (its sequence number) records, each with a CRC32C of everything after the checksum.
//
//   ADD : len u32 | crc u32 | type=1 u8 | pad 3 | seq f64 | deliverAt f64 | idLen u16 | tagLen u16 | hasTag u8 |
//         pad 3 | dataLen u32 | id | tag | data
//   DONE: len u32 | crc u32 | type=2 u8 | pad 3 | seq f64
//
// Memory holds only where each held message is (`HeldEntry`: due time, position, length); its bytes are read
// back when it comes due. Records are buffered and written in one write per turn of the event loop; every file
// operation (write, read, compaction) runs in one chain, so positions never move under a reader. A position is
// given to a record when it is written, so a compaction that ran meanwhile cannot make it wrong.
import fs from 'node:fs';
import { crc32c } from './crc32c.js';
import {
  closeFd,
  fdatasyncFd,
  fsyncDir,
  openFd,
  RW_CREATE,
  readAt,
  tempPath,
  truncateFd,
  writeAt,
} from './fs-util.js';

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

export class DelayFile {
  #fd: number;
  /** Bytes in the file. */
  size: number;
  #pending: Array<{ buf: Buffer; entry: HeldEntry | undefined }> = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  closed = false;

  private constructor(
    readonly path: string,
    fd: number,
    size: number,
  ) {
    this.#fd = fd;
    this.size = size;
  }

  /** Open (creating) the file and scan it; a torn or corrupt tail is cut off. */
  static async open(path: string, wantIds: boolean): Promise<{ file: DelayFile; scan: ScanResult }> {
    const fd = await openFd(path, RW_CREATE);
    try {
      const size = (await fs.promises.stat(path)).size;
      const { scan, end } = await scanFile(fd, size, wantIds);
      if (end < size) {
        await truncateFd(fd, end);
        await fdatasyncFd(fd);
      }
      return { file: new DelayFile(path, fd, end), scan };
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
  }

  /** Buffer a record; written on the next turn of the event loop (or by the next flush). */
  append(buf: Buffer, entry?: HeldEntry): void {
    if (this.closed) return;
    this.#pending.push({ buf, entry });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        void this.flush(false).catch(() => {});
      });
    }
  }

  #run<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(op);
    this.#chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /** Write what is buffered; with `sync`, fdatasync too. */
  flush(sync: boolean): Promise<void> {
    return this.#run(async () => {
      await this.#writePending();
      if (sync && this.#fd >= 0) await fdatasyncFd(this.#fd);
    });
  }

  async #writePending(): Promise<void> {
    if (this.#pending.length === 0 || this.#fd < 0) return;
    const batch = this.#pending;
    this.#pending = [];
    let pos = this.size;
    for (const p of batch) {
      if (p.entry !== undefined) p.entry.pos = pos;
      pos += p.buf.length;
    }
    const buf = batch.length === 1 ? batch[0]!.buf : Buffer.concat(batch.map((p) => p.buf));
    await writeAt(this.#fd, buf, 0, buf.length, this.size);
    this.size += buf.length;
  }

  /** Read the held message `e` back (after writing what is buffered); undefined when its record is corrupt. */
  read(e: HeldEntry): Promise<DelayedMessage | undefined> {
    return this.#run(async () => {
      await this.#writePending();
      if (e.pos < 0 || this.#fd < 0) return undefined;
      const b = Buffer.allocUnsafe(e.len);
      const n = await readAt(this.#fd, b, 0, e.len, e.pos);
      return n === e.len ? decodeAdd(b) : undefined;
    });
  }

  /**
   * Keep only the records of `live` (a fresh file holding them one after the other, swapped in atomically), and
   * update their positions. Records buffered meanwhile go after them.
   */
  compact(live: Iterable<HeldEntry>): Promise<void> {
    return this.#run(async () => {
      if (this.#fd < 0) return;
      await this.#writePending();
      const entries = [...live].filter((e) => e.pos >= 0).sort((a, b) => a.pos - b.pos);
      if (entries.length === 0) {
        // Nothing held: emptying the file in place is atomic enough (either all of it is garbage or none).
        await truncateFd(this.#fd, 0);
        await fdatasyncFd(this.#fd);
        this.size = 0;
        return;
      }
      const tmp = tempPath(this.path);
      const out = await openFd(tmp, 'w+');
      const moved = new Map<HeldEntry, number>();
      try {
        let pos = 0;
        for (const e of entries) {
          const b = Buffer.allocUnsafe(e.len);
          await readAt(this.#fd, b, 0, e.len, e.pos);
          await writeAt(out, b, 0, e.len, pos);
          moved.set(e, pos);
          pos += e.len;
        }
        await fdatasyncFd(out);
      } catch (err) {
        await closeFd(out);
        await fs.promises.rm(tmp, { force: true });
        throw err;
      }
      await closeFd(this.#fd);
      this.#fd = out;
      await fs.promises.rename(tmp, this.path);
      await fsyncDir(this.path.slice(0, this.path.lastIndexOf('/')) || '.');
      let size = 0;
      for (const [e, pos] of moved) {
        e.pos = pos;
        size += e.len;
      }
      this.size = size;
    });
  }

  /** Drop every record, buffered or written. */
  clear(): Promise<void> {
    this.#pending = [];
    return this.compact([]);
  }

  async close(sync: boolean): Promise<void> {
    if (this.closed) return;
    await this.flush(sync).catch(() => {});
    this.closed = true;
    await this.#chain;
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) await closeFd(fd);
  }
}

/**
 * Walk the records from the start, reading headers only (and the id when asked): a message's bytes are not read
 * at open. The walk ends at the first record that cannot be whole (a torn write) or a last record that fails its
 * checksum; other records' checksums are checked when their bytes are in the window anyway (a failing one is
 * skipped), the rest when they are read back.
 */
async function scanFile(
  fd: number,
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
    winLen = await readAt(fd, win, 0, Math.min(Math.max(need, readAhead), size - pos), pos);
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
