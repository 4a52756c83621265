// Thin promise wrappers over fd-based fs calls: the callback API with positional reads and writes allocates less
// than FileHandle (no result object per call), and the hot paths call these once per batch.
import fs from 'node:fs';
import path from 'node:path';
import { StoreError } from './types.js';

/** Read-write, created if missing, neither truncated nor O_APPEND (Linux ignores pwrite positions with O_APPEND). */
export const RW_CREATE = fs.constants.O_RDWR | fs.constants.O_CREAT;

export function openFd(path: string, flags: string | number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(path, flags, 0o644, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

export function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** Write all of `buf[off, off+len)` at file position `pos`. */
export async function writeAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<void> {
  while (len > 0) {
    const n = await new Promise<number>((resolve, reject) =>
      fs.write(fd, buf, off, len, pos, (err, w) => (err ? reject(err) : resolve(w))),
    );
    off += n;
    len -= n;
    pos += n;
  }
}

/** writeAt, synchronously (small writes to the page cache; see log.ts SYNC_WRITE_BYTES). */
export function writeAtSync(fd: number, buf: Buffer, off: number, len: number, pos: number): void {
  while (len > 0) {
    const n = fs.writeSync(fd, buf, off, len, pos);
    off += n;
    len -= n;
    pos += n;
  }
}

export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

export function fdatasyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function truncateFd(fd: number, len: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, len, (err) => (err ? reject(err) : resolve())));
}

/** fsync a directory so that a created, renamed or deleted entry in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fd = await openFd(dir, 'r');
    try {
      await fsyncFd(fd);
    } finally {
      await closeFd(fd);
    }
  } catch {
    // Some file systems refuse fsync on directories; the data files themselves are synced.
  }
}

let tmpSeq = 0;

/**
 * A temp file's path beside `target`: a name of its own per call (two overlapping writes of one file must not
 * rename each other's temp file away), short whatever the target's name (a long topic or group name must not
 * make it too long), and ending in `.tmp` so that leftovers of a crash are recognised and removed at open.
 */
export function tempPath(target: string): string {
  return path.join(path.dirname(target), `.${process.pid}-${++tmpSeq}${TMP_SUFFIX}`);
}

export const TMP_SUFFIX = '.tmp';

/** Replace a small file atomically: write a temp file, optionally fsync it, rename over the old one. */
export async function writeFileAtomic(target: string, data: string | Buffer, sync: boolean): Promise<void> {
  const tmp = tempPath(target);
  const fd = await openFd(tmp, 'w');
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    await writeAt(fd, buf, 0, buf.length, 0);
    if (sync) await fsyncFd(fd);
  } catch (err) {
    await closeFd(fd).catch(() => {});
    await fs.promises.unlink(tmp).catch(() => {});
    throw err;
  }
  await closeFd(fd);
  try {
    await fs.promises.rename(tmp, target);
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Map a file-system error to a store error (ENOSPC -> ZBUS_ERR_NO_SPACE). The message says what failed and the
 * error's code (`EIO`), never its text: Node's messages name the file, and the data directory's path must not
 * reach clients. The original error stays as `cause`, for the logs.
 */
export function storeError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StoreError('ZBUS_ERR_NO_SPACE', `${what}: no space left on device`, { cause: err });
  }
  return new StoreError('ZBUS_ERR_STORE', `${what}: ${typeof code === 'string' ? code : 'failed'}`, {
    cause: err,
  });
}

/** `p`, with any error it rejects with made a StoreError (see storeError). */
export function asStoreError<T>(p: Promise<T>, what: string): Promise<T> {
  return p.catch((err: unknown) => {
    throw storeError(err, what);
  });
}
