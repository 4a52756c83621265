// fsync=always group commit as a pipeline: while one fdatasync is in flight the writer keeps writing, the next
// fdatasync starts when it returns and covers everything written meanwhile, and no append resolves before the
// fdatasync that covers it. fdatasync is held open by the test, so nothing here depends on timing.
import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AppendResult } from '../../src/store/types.js';
import { enc, open } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

interface HeldSync {
  fd: number;
  /** Bytes in the file when the fdatasync was asked for: what it makes durable. */
  sizeAtCall: number;
  release: () => void;
}

/** Hold every fs.fdatasync until the test releases it; `next(n)` waits for the n-th call (1-based). */
function holdFdatasync() {
  const real = fs.fdatasync;
  const held: HeldSync[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  vi.spyOn(fs, 'fdatasync').mockImplementation(((
    fd: number,
    cb: (err: NodeJS.ErrnoException | null) => void,
  ) => {
    held.push({ fd, sizeAtCall: fs.fstatSync(fd).size, release: () => real(fd, cb) });
    for (const w of waiters.filter((x) => x.n <= held.length)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  }) as typeof fs.fdatasync);
  const next = (n: number) =>
    n <= held.length ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }));
  return { held, next };
}

/** Resolves after the next fs.writeSync to `fd` returned. */
function nextWriteTo(fd: number): Promise<void> {
  const real = fs.writeSync;
  return new Promise((resolve) => {
    const spy = vi.spyOn(fs, 'writeSync').mockImplementation(((...args: Parameters<typeof fs.writeSync>) => {
      const n = (real as (...a: Parameters<typeof fs.writeSync>) => number)(...args);
      if (args[0] === fd) {
        spy.mockRestore();
        resolve();
      }
      return n;
    }) as typeof fs.writeSync);
  });
}

describe('group commit pipeline (fsync=always)', () => {
  it('writes while an fdatasync is held, then one fdatasync covers all of it; no ack before its fdatasync', async () => {
    const store = await open({ fsync: 'always' });
    const t = await store.declareTopic('pipe', { mask: 0 });
    await t.append({ id: 'warm', data: enc('w') });
    const commits = store.commits!;
    const syncsBefore = commits.recordsPerSync.count;
    const recordsBefore = commits.recordsPerSync.sum;

    const sync = holdFdatasync();
    const settled = new Set<string>();
    const append = (id: string): Promise<AppendResult> =>
      t.append({ id, data: enc(id) }).finally(() => settled.add(id));

    const first = append('m0');
    await sync.next(1);
    const logFd = sync.held[0]!.fd;
    expect(settled.size).toBe(0);

    // While the first fdatasync is held: nine more appends are written to the log...
    const written = nextWriteTo(logFd);
    const rest = Array.from({ length: 9 }, (_, i) => append(`m${i + 1}`));
    await written;
    // ...but no second fdatasync starts (it could not cover more than the one in flight will) and nothing is
    // acked.
    expect(sync.held.length).toBe(1);
    expect(settled.size).toBe(0);
    const sizeAfterWrites = fs.fstatSync(logFd).size;
    expect(sizeAfterWrites).toBeGreaterThan(sync.held[0]!.sizeAtCall);

    // The first fdatasync returns: m0 is acked, and the next fdatasync starts at once, covering all nine.
    sync.held[0]!.release();
    const r0 = await first;
    expect(r0.durability).toBe('fsync');
    await sync.next(2);
    expect(sync.held[1]!.fd).toBe(logFd);
    expect(sync.held[1]!.sizeAtCall).toBe(sizeAfterWrites);
    expect([...settled]).toEqual(['m0']);

    sync.held[1]!.release();
    const rs = await Promise.all(rest);
    expect(rs.map((r) => r.offset)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(rs.every((r) => r.durability === 'fsync')).toBe(true);
    expect(sync.held.length).toBe(2);

    expect(commits.recordsPerSync.count - syncsBefore).toBe(2);
    expect(commits.recordsPerSync.sum - recordsBefore).toBe(10);
    expect(commits.waitSeconds.count).toBe(commits.recordsPerSync.count);
  });

  it('a failed fdatasync fails what it covers and what was written behind it', async () => {
    const store = await open({ fsync: 'always' });
    const t = await store.declareTopic('pipefail', { mask: 0 });
    await t.append({ id: 'warm', data: enc('w') });
    const sync = holdFdatasync();
    const first = t.append({ id: 'a', data: enc('a') });
    await sync.next(1);
    const written = nextWriteTo(sync.held[0]!.fd);
    const second = t.append({ id: 'b', data: enc('b') });
    await written;
    const failing = vi.mocked(fs.fdatasync).mock.calls[0]![1] as (err: NodeJS.ErrnoException | null) => void;
    failing(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await expect(first).rejects.toMatchObject({ code: 'ZBUS_ERR_STORE' });
    await expect(second).rejects.toMatchObject({ code: 'ZBUS_ERR_STORE' });
    // Written behind a failed fdatasync: never fsynced again as if nothing happened.
    expect(sync.held.length).toBe(1);
    await expect(t.append({ id: 'c', data: enc('c') })).rejects.toMatchObject({ code: 'ZBUS_ERR_STORE' });
  });
});
