// A small append-only file with batched writes, the base of the ack journal (journal.ts) and the delay journal
// (delay-file.ts): records are buffered and written with one write per turn of the event loop (or per flush;
// concurrent flushes share one fsync; or at once by writeNow), and every operation on the file runs in one chain,
// in order.
import type { CachedFile, FileCache } from './file-cache.js';
import { fsyncDir } from './fs-util.js';

interface PendingRecord {
  buf: Buffer;
  /** Told the record's position once it is written. */
  onWritten: ((pos: number) => void) | undefined;
}

export class AppendFile {
  /** Bytes in the file (records still buffered not included). */
  size: number;
  #pending: PendingRecord[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  /** Operations run() queued that have not settled. */
  #queued = 0;
  closed = false;

  protected constructor(
    readonly path: string,
    protected file: CachedFile,
    size: number,
  ) {
    this.size = size;
  }

  get files(): FileCache {
    return this.file.cache;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Buffer a record; it is written on the next turn of the event loop (or by the next flush). */
  append(buf: Buffer, onWritten?: (pos: number) => void): void {
    if (this.closed) return;
    this.#pending.push({ buf, onWritten });
    this.#pendingBytes += buf.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        // Written already when writeNow() ran meanwhile.
        if (this.#pending.length > 0) void this.flush(false).catch(() => {});
      });
    }
  }

  /** Run `op` after every operation queued before it. */
  protected run<T>(op: () => Promise<T>): Promise<T> {
    this.#queued++;
    const p = this.#chain.then(op);
    const settled = () => {
      this.#queued--;
    };
    this.#chain = p.then(settled, settled);
    return p;
  }

  /**
   * Write what is buffered now: with no other operation queued, synchronously (one pwrite, no threadpool round
   * trip); else after those operations. Not synced. A failed write loses the records, as one scheduled by
   * append() would.
   */
  writeNow(): Promise<void> | undefined {
    if (this.closed || this.#pending.length === 0) return undefined;
    if (this.#queued > 0) return this.flush(false).catch(() => {});
    const buf = this.#takeBatch();
    try {
      this.file.writeSync(buf, 0, buf.length, this.size);
      this.size += buf.length;
    } catch {
      // as documented: the records are lost
    }
    return undefined;
  }

  /** Write what is buffered; with `sync`, fdatasync too. */
  flush(sync: boolean): Promise<void> {
    return this.run(async () => {
      if (this.closed) return;
      await this.writePending();
      if (sync) await this.file.datasync();
    });
  }

  /** Inside run(): write the buffered records at the end of the file. */
  protected async writePending(): Promise<void> {
    if (this.#pending.length === 0) return;
    const buf = this.#takeBatch();
    await this.file.write(buf, 0, buf.length, this.size);
    this.size += buf.length;
  }

  /** The buffered records as one buffer to write at the end of the file; each is told its position. */
  #takeBatch(): Buffer {
    const batch = this.takePending();
    let pos = this.size;
    for (const p of batch) {
      p.onWritten?.(pos);
      pos += p.buf.length;
    }
    return batch.length === 1 ? batch[0]!.buf : Buffer.concat(batch.map((p) => p.buf));
  }

  /** Take the buffered records out (they will not be written by this file). */
  protected takePending(): PendingRecord[] {
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    return batch;
  }

  /** Inside run(), after `path` was replaced by a rename: use the new file from now on. */
  protected async swapFile(size: number): Promise<void> {
    await fsyncDir(this.path.slice(0, this.path.lastIndexOf('/')) || '.');
    await this.file.close();
    this.file = this.files.lazy(this.path, 'write');
    this.size = size;
  }

  /** Write what is buffered (fsynced with `sync`), then close for good. */
  async close(sync: boolean): Promise<void> {
    if (this.closed) return;
    await this.flush(sync).catch(() => {});
    this.closed = true;
    await this.run(() => this.file.close());
  }
}
