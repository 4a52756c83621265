import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scaled } from '@zbus/testkit';
import { onTestFinished, vi } from 'vitest';
import { openStore } from '../../src/store/store.js';
import type { Delivery, Group, Store, StoreOptions, Topic } from '../../src/store/types.js';

/** A fresh data directory, removed after the test. */
export async function tempDir(): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'zbus-store-'));
  onTestFinished(() => fs.promises.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Open a store in `dir` (a fresh one by default); it is closed after the test. */
export async function open(options: Partial<StoreOptions> & { dataDir?: string } = {}): Promise<Store> {
  const dataDir = options.dataDir ?? (await tempDir());
  const store = await openStore({ fsync: 'never', ...options, dataDir });
  onTestFinished(() => store.close());
  return store;
}

export const enc = (s: string): Uint8Array => Buffer.from(s);
export const dec = (b: Uint8Array): string => Buffer.from(b).toString();

export async function appendMany(topic: Topic, n: number, prefix = 'm', tag?: string): Promise<void> {
  const ps = [];
  for (let i = 0; i < n; i++) ps.push(topic.append({ id: `${prefix}${i}`, tag, data: enc(`${prefix}${i}`) }));
  await Promise.all(ps);
}

/** Read until next() returns undefined; returns the ids. */
export async function drain(group: Group, max = 1_000_000): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < max; i++) {
    const d = await group.next();
    if (!d) break;
    ids.push(d.id);
  }
  return ids;
}

/** Wait for the next onAvailable signal (with a timeout that grows with the load: `scaled()`). */
export function available(topic: Topic, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error('timed out waiting for onAvailable'));
    }, scaled(timeoutMs));
    const off = topic.onAvailable(() => {
      clearTimeout(t);
      off();
      resolve();
    });
  });
}

/**
 * The group's next delivery, waiting for one if there is none yet: the listener is registered before each
 * next(), so a wake-up that comes in between is not missed.
 */
export async function nextOf(topic: Topic, group: Group, timeoutMs = 5000): Promise<Delivery> {
  const end = Date.now() + scaled(timeoutMs);
  for (;;) {
    let wake!: () => void;
    const woke = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const off = topic.onAvailable(() => wake());
    try {
      const d = await group.next();
      if (d !== undefined) return d;
      const left = end - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a delivery');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        woke,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out waiting for a delivery')), left);
        }),
      ]).finally(() => clearTimeout(timer));
    } finally {
      off();
    }
  }
}

/** Poll `fn` (each time something becomes available or every 10 ms) until it returns a value. */
export async function until<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
): Promise<T> {
  const end = Date.now() + scaled(timeoutMs);
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Where the records of a segment file's bytes end: zeros written ahead of them (log-writer.ts) end them too. */
export function recordsEnd(buf: Buffer): number {
  let pos = 0;
  while (pos + 36 <= buf.length) {
    const len = buf.readUInt32LE(pos);
    if (len < 36 || pos + len > buf.length) break;
    pos += len;
  }
  return pos;
}

/** Where the records in the file end: the zeros written ahead of them (log-writer.ts) are not counted. */
export function recordsEndOf(fd: number): number {
  const buf = Buffer.alloc(fs.fstatSync(fd).size);
  fs.readSync(fd, buf, 0, buf.length, 0);
  return recordsEnd(buf);
}

/** An fs.fdatasync held by holdFdatasync until the test releases it. */
export interface HeldSync {
  fd: number;
  /** The file the fdatasync is for. */
  file: string;
  /** Bytes of records in the file when the fdatasync was asked for: what it makes durable. */
  sizeAtCall: number;
  /** Let the real fdatasync run; resolves after its callback returned and a turn of the event loop. */
  release: () => Promise<void>;
}

/**
 * Hold every fs.fdatasync of a file `hold` says yes to until the test releases it (the others run); `next(n)`
 * waits for the n-th held call (1-based). Restored by vi.restoreAllMocks().
 */
export function holdFdatasync(hold: (file: string) => boolean = () => true) {
  const real = fs.fdatasync;
  const held: HeldSync[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  vi.spyOn(fs, 'fdatasync').mockImplementation(((
    fd: number,
    cb: (err: NodeJS.ErrnoException | null) => void,
  ) => {
    const file = path.basename(fs.readlinkSync(`/proc/self/fd/${fd}`));
    if (!hold(file)) {
      real(fd, cb);
      return;
    }
    const release = () =>
      new Promise<void>((resolve) =>
        real(fd, (err) => {
          cb(err);
          setImmediate(resolve);
        }),
      );
    held.push({ fd, file, sizeAtCall: recordsEndOf(fd), release });
    for (const w of waiters.filter((x) => x.n <= held.length)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  }) as typeof fs.fdatasync);
  const next = (n: number) =>
    n <= held.length ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }));
  return { held, next };
}
