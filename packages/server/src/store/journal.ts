// A small append-only file with batched writes: entries are buffered in memory and written with one write per
// flush; concurrent flushes share one fsync. Used for the ack journal of a group and for the delay queue.
import fs from 'node:fs';
import { closeFd, fdatasyncFd, fsyncDir, openFd, RW_CREATE, writeAt, writeFileAtomic } from './fs-util.js';

export class Journal {
  #fd = -1;
  size = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #chain: Promise<void> = Promise.resolve();
  #scheduled = false;
  closed = false;

  private constructor(readonly path: string) {}

  /** Open (creating) the journal and return its current contents. */
  static async open(path: string): Promise<{ journal: Journal; contents: Buffer }> {
    const j = new Journal(path);
    let contents: Buffer;
    try {
      contents = await fs.promises.readFile(path);
    } catch {
      contents = Buffer.alloc(0);
    }
    j.#fd = await openFd(path, RW_CREATE);
    j.size = contents.length;
    return { journal: j, contents };
  }

  /** Buffer an entry; it is written on the next flush (scheduled for the next turn of the event loop). */
  append(buf: Buffer): void {
    if (this.closed) return;
    this.#pending.push(buf);
    this.#pendingBytes += buf.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        void this.flush(false).catch(() => {});
      });
    }
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Write everything buffered so far; with `sync`, also fdatasync. */
  flush(sync: boolean): Promise<void> {
    const run = async () => {
      if (this.#fd < 0) return;
      if (this.#pendingBytes > 0) {
        const buf =
          this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
        this.#pending = [];
        this.#pendingBytes = 0;
        await writeAt(this.#fd, buf, 0, buf.length, this.size);
        this.size += buf.length;
      }
      if (sync) await fdatasyncFd(this.#fd);
    };
    const p = this.#chain.then(run);
    this.#chain = p.catch(() => {});
    return p;
  }

  /** Replace the whole journal with `contents` (compaction): temp file, fsync, rename. Buffered entries go after. */
  rewrite(contents: Buffer): Promise<void> {
    const pendingNow = this.#pending;
    const pendingBytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    const run = async () => {
      if (this.#fd < 0) return;
      const buf = pendingBytes > 0 ? Buffer.concat([contents, ...pendingNow]) : contents;
      await writeFileAtomic(this.path, buf, true);
      await fsyncDir(this.path.slice(0, this.path.lastIndexOf('/')) || '.');
      const old = this.#fd;
      this.#fd = await openFd(this.path, RW_CREATE);
      await closeFd(old);
      this.size = buf.length;
    };
    const p = this.#chain.then(run);
    this.#chain = p.catch(() => {});
    return p;
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
