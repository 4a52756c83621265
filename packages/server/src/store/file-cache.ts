// Open file handles of the whole store, bounded. Every segment, index, ack journal and delay journal the store
// uses is a `CachedFile`: opened when an operation needs it, closed again when more than `capacity` files are
// open and it is the least recently used one that no operation is using. So 10,000 topics (five files each)
// run under the default `ulimit -n` of 1024, at the price of a reopen when a cold topic is used again.
//
// Every operation pins the file for its duration: a descriptor is never closed under a read or write in flight
// (nor, worse, reused by another open while an operation still holds its number).
import fs from 'node:fs';
import {
  closeFd,
  fdatasyncFd,
  openFd,
  RW_CREATE,
  readAt,
  truncateFd,
  writeAt,
  writeAtSync,
} from './fs-util.js';
import { StoreError } from './types.js';

/** How a file is (re)opened: read-only, or read-write (created if missing, never truncated). */
export type FileMode = 'read' | 'write';

const FLAGS: Record<FileMode, string | number> = { read: 'r', write: RW_CREATE };

function tooManyFiles(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

/** Where the open-file limit cannot be read. */
const FALLBACK_MAX_OPEN_FILES = 512;

/**
 * Half the process's soft limit on open files (read from /proc on Linux; Node raises the soft limit to the hard
 * one at start), leaving the other half to connections and everything else; at least 64.
 */
export function defaultMaxOpenFiles(): number {
  try {
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (m && m[1] !== 'unlimited') return Math.max(64, Math.floor(Number(m[1]) / 2));
  } catch {
    // not Linux
  }
  return FALLBACK_MAX_OPEN_FILES;
}

export class FileCache {
  /** Open files, least recently used first (a Map keeps insertion order; a use moves a file to the end). */
  readonly #lru = new Map<CachedFile, true>();
  /** The file used last (the end of #lru). */
  #newest: CachedFile | undefined;

  constructor(
    /** Most files kept open at once (exceeded only while every open file is in use). */
    readonly capacity: number,
  ) {}

  /** Files open now. */
  get openCount(): number {
    return this.#lru.size;
  }

  /**
   * A file of the store, opened now (so that a missing file or a bad path fails here). `create` opens it with
   * O_TRUNC the first time (a new segment); later reopens never truncate.
   */
  async open(path: string, mode: FileMode, create = false): Promise<CachedFile> {
    const f = new CachedFile(this, path, mode);
    await f.openNow(create ? 'w+' : FLAGS[mode]);
    return f;
  }

  /** A file of the store, opened by its first operation. */
  lazy(path: string, mode: FileMode): CachedFile {
    return new CachedFile(this, path, mode);
  }

  /** @internal */
  touch(f: CachedFile): void {
    // A busy file is already the newest: no delete and set per use. Each pair leaves a deleted entry in the
    // Map, which rehashes every few dozen uses into a new table that a scavenge promotes (see mq/offset-map.ts).
    if (this.#newest === f) return;
    this.#lru.delete(f);
    this.#lru.set(f, true);
    this.#newest = f;
  }

  /** @internal */
  forget(f: CachedFile): void {
    this.#lru.delete(f);
    if (this.#newest === f) this.#newest = undefined;
  }

  /** @internal Close idle files until `keep` are open (or every open one is in use). */
  evict(keep: number): void {
    if (this.#lru.size <= keep) return;
    for (const f of this.#lru.keys()) {
      if (this.#lru.size <= keep) break;
      if (f.pins === 0) f.closeIdle();
    }
  }
}

export class CachedFile {
  #fd = -1;
  #opening: Promise<number> | undefined;
  /** Operations using the file now. */
  pins = 0;
  /** Closed for good (retired segment, closed topic): operations fail. */
  #closed = false;
  #closing: Promise<void> | undefined;
  #closeWhenIdle: (() => void) | undefined;

  constructor(
    readonly cache: FileCache,
    readonly path: string,
    readonly mode: FileMode,
  ) {}

  get isOpen(): boolean {
    return this.#fd >= 0;
  }

  /** @internal The first open, with its own flags. */
  async openNow(flags: string | number): Promise<void> {
    this.#fd = await this.#openWith(flags);
    this.cache.touch(this);
  }

  async #openWith(flags: string | number): Promise<number> {
    this.cache.evict(this.cache.capacity - 1);
    try {
      return await openFd(this.path, flags);
    } catch (err) {
      if (!tooManyFiles(err)) throw err;
      // Other parts of the process hold more than expected: give back half of ours and try once more.
      this.cache.evict(Math.floor(this.cache.capacity / 2));
      return await openFd(this.path, flags);
    }
  }

  #openSyncWith(flags: string | number): number {
    this.cache.evict(this.cache.capacity - 1);
    try {
      return fs.openSync(this.path, flags, 0o644);
    } catch (err) {
      if (!tooManyFiles(err)) throw err;
      this.cache.evict(Math.floor(this.cache.capacity / 2));
      return fs.openSync(this.path, flags, 0o644);
    }
  }

  #closedError(): StoreError {
    return new StoreError('ZBUS_ERR_CLOSED', 'file is closed');
  }

  /** Pin the file and return its descriptor, opening it if it was evicted. Pair with release(). */
  async acquire(): Promise<number> {
    if (this.#closed) throw this.#closedError();
    this.pins++;
    try {
      if (this.#fd < 0) {
        this.#opening ??= this.#openWith(FLAGS[this.mode]).finally(() => {
          this.#opening = undefined;
        });
        const fd = await this.#opening;
        if (this.#fd < 0) this.#fd = fd;
        else if (fd !== this.#fd) await closeFd(fd);
        if (this.#closed) throw this.#closedError();
      }
      this.cache.touch(this);
      return this.#fd;
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** acquire(), synchronously (a reopen, when evicted, is a blocking open). */
  acquireSync(): number {
    if (this.#closed) throw this.#closedError();
    // An async reopen in flight finds this descriptor when it lands and closes its own.
    if (this.#fd < 0) this.#fd = this.#openSyncWith(FLAGS[this.mode]);
    this.pins++;
    this.cache.touch(this);
    return this.#fd;
  }

  release(): void {
    this.pins--;
    if (this.pins === 0) this.#closeWhenIdle?.();
  }

  async #use<T>(op: (fd: number) => Promise<T>): Promise<T> {
    // Open already (the common case): start the operation now, without a turn through acquire()'s promise.
    const fd = this.#fd >= 0 && !this.#closed ? this.acquireSync() : await this.acquire();
    try {
      return await op(fd);
    } finally {
      this.release();
    }
  }

  read(buf: Buffer, off: number, len: number, pos: number): Promise<number> {
    return this.#use((fd) => readAt(fd, buf, off, len, pos));
  }

  write(buf: Buffer, off: number, len: number, pos: number): Promise<void> {
    return this.#use((fd) => writeAt(fd, buf, off, len, pos));
  }

  writeSync(buf: Buffer, off: number, len: number, pos: number): void {
    const fd = this.acquireSync();
    try {
      writeAtSync(fd, buf, off, len, pos);
    } finally {
      this.release();
    }
  }

  /**
   * fdatasync. Linux syncs the file's dirty pages whichever descriptor asks, so a file evicted between its
   * write and its sync is synced by the reopened one.
   */
  datasync(): Promise<void> {
    return this.#use((fd) => fdatasyncFd(fd));
  }

  truncate(len: number): Promise<void> {
    return this.#use((fd) => truncateFd(fd, len));
  }

  /** @internal Evicted: close the descriptor; the next operation reopens it. */
  closeIdle(): void {
    const fd = this.#fd;
    this.#fd = -1;
    this.cache.forget(this);
    if (fd >= 0) fs.close(fd, () => {});
  }

  /** Close for good, once the operations in flight are done; later operations fail with ZBUS_ERR_CLOSED. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      if (this.pins > 0) {
        await new Promise<void>((resolve) => {
          this.#closeWhenIdle = resolve;
        });
      }
      await this.#opening?.catch(() => {});
      const fd = this.#fd;
      this.#fd = -1;
      this.cache.forget(this);
      if (fd >= 0) await closeFd(fd);
    })();
    return this.#closing;
  }
}
