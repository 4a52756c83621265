// fsync=always group commit as a pipeline: while fdatasyncs are in flight (two at most) the writer keeps writing,
// the next fdatasync starts as soon as one returns and covers everything written meanwhile, and no append resolves
// before the fdatasync that covers it (nor before the appends ahead of it). A free slot waits (a bounded time) for
// the producers it expects. fdatasync is held open by the test and time is a manual clock, so nothing here depends
// on timing.
import fs from 'node:fs';
import path from 'node:path';
import { ManualClock } from '@zbus/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AppendResult } from '../../src/store/types.js';
import { enc, holdFdatasync, open, recordsEnd, recordsEndOf } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

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

/**
 * A store under fsync=always whose last fdatasync covered four producers (so four are expected next), with every
 * fdatasync from then on held.
 */
async function afterFourProducers(name: string, options: { clock: ManualClock; groupCommitWaitMs?: number }) {
  const store = await open({ fsync: 'always', ...options });
  const t = await store.declareTopic(name, { mask: 0 });
  await t.append({ id: 'warm', data: enc('w') });
  // The zeros written ahead of the records, and their fdatasync, are done before fdatasyncs are held.
  await store.flush();
  const sync = holdFdatasync();
  const append = (id: string) => t.append({ id, data: enc(id) });
  // Four producers at once: one write, one fdatasync for all four.
  const first = ['a0', 'a1', 'a2', 'a3'].map(append);
  await sync.next(1);
  const logFd = sync.held[0]!.fd;
  sync.held[0]!.release();
  await Promise.all(first);
  return { store, sync, append, logFd };
}

describe('group commit pipeline (fsync=always)', () => {
  it('keeps writing while fdatasyncs are held; the next covers all of it; acks follow their fdatasync, in order', async () => {
    const store = await open({ fsync: 'always' });
    const t = await store.declareTopic('pipe', { mask: 0 });
    await t.append({ id: 'warm', data: enc('w') });
    // The zeros written ahead of the records, and their fdatasync, are done before fdatasyncs are held.
    await store.flush();
    const commits = store.commits!;
    const syncsBefore = commits.recordsPerSync.count;
    const recordsBefore = commits.recordsPerSync.sum;

    const sync = holdFdatasync();
    const settled: string[] = [];
    const append = (id: string): Promise<AppendResult> =>
      t.append({ id, data: enc(id) }).finally(() => settled.push(id));

    // Generation 1: m0. Its fdatasync is held.
    const g1 = append('m0');
    await sync.next(1);
    const logFd = sync.held[0]!.fd;
    // Generation 2: m1, written while the first is held, gets a second fdatasync at once (two may overlap).
    let written = nextWriteTo(logFd);
    const g2 = append('m1');
    await written;
    await sync.next(2);
    expect(sync.held[1]!.sizeAtCall).toBe(recordsEndOf(logFd));

    // With both held, eight more appends are written but start no third fdatasync, and nothing is acked.
    written = nextWriteTo(logFd);
    const g3 = Array.from({ length: 8 }, (_, i) => append(`m${i + 2}`));
    await written;
    const sizeAfterWrites = recordsEndOf(logFd);
    expect(sizeAfterWrites).toBeGreaterThan(sync.held[1]!.sizeAtCall);
    expect(sync.held.length).toBe(2);
    expect(settled).toEqual([]);

    // The second fdatasync returns first: its slot goes at once to a third, covering all eight, but m1 waits for
    // the first (acks go out in order).
    sync.held[1]!.release();
    await sync.next(3);
    expect(sync.held[2]!.fd).toBe(logFd);
    expect(sync.held[2]!.sizeAtCall).toBe(sizeAfterWrites);
    expect(settled).toEqual([]);

    // The first returns: m0 then m1 are acked; the eight wait for the third.
    sync.held[0]!.release();
    expect((await g1).durability).toBe('fsync');
    expect((await g2).offset).toBe(2);
    expect(settled).toEqual(['m0', 'm1']);

    sync.held[2]!.release();
    const rs = await Promise.all(g3);
    expect(rs.map((r) => r.offset)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(rs.every((r) => r.durability === 'fsync')).toBe(true);
    expect(sync.held.length).toBe(3);

    expect(commits.recordsPerSync.count - syncsBefore).toBe(3);
    expect(commits.recordsPerSync.sum - recordsBefore).toBe(10);
    expect(commits.waitSeconds.count).toBe(commits.recordsPerSync.count);
  });

  it('leaves the acks of completed generations to the end of the fdatasync turn: one run of writes', async () => {
    let resolved = 0;
    const flushedAt: number[] = [];
    const store = await open({
      fsync: 'always',
      clock: new ManualClock(),
      groupCommitWaitMs: 0,
      afterWake: () => flushedAt.push(resolved),
    });
    const t = await store.declareTopic('onerun', { mask: 0 });
    await t.append({ id: 'warm', data: enc('w') });
    await store.flush();
    const sync = holdFdatasync();
    const append = (id: string, topic = t) =>
      new Promise<void>((resolve, reject) =>
        topic.appendThen!(
          { id, data: enc(id) },
          () => {
            resolved++;
            resolve();
          },
          reject,
        ),
      );
    // Two generations whose fdatasyncs are held, then two batches written behind them: the third generation.
    const first = [append('a')];
    await sync.next(1);
    const logFd = sync.held[0]!.fd;
    let written = nextWriteTo(logFd);
    first.push(append('b'));
    await written;
    await sync.next(2);
    written = nextWriteTo(logFd);
    const third = [append('c0'), append('c1')];
    await written;
    written = nextWriteTo(logFd);
    third.push(append('d0'), append('d1'), append('d2'));
    await written;
    sync.held[0]!.release();
    sync.held[1]!.release();
    await Promise.all(first);
    await sync.next(3);
    sync.held[2]!.release();
    await Promise.all(third);
    // Flushed batch by batch, the first batch's acks were written before the next batch or generation resolved.
    expect(flushedAt).toEqual([]);

    // A write that completes its appends in the writer's own turn (no fdatasync) flushes them itself.
    const unsynced = await store.declareTopic('unsynced', { mask: 0, fsync: 'never' });
    await append('e', unsynced);
    expect(flushedAt).toEqual([resolved]);
  });

  it('commits into zeros written ahead: the file does not grow with each fdatasync', async () => {
    const store = await open({ fsync: 'always' });
    const t = await store.declareTopic('zeros', { mask: 0 });
    await t.append({ id: 'warm', data: enc('w') });
    await store.flush();
    const file = path.join(store.dataDir, 'zeros', '00000000000000000000.log');
    const size = fs.statSync(file).size;
    for (let i = 0; i < 50; i++) await t.append({ id: `m${i}`, data: enc('x'.repeat(100)) });
    // The records went into the zeros (no size or block map for their fdatasyncs to write).
    expect(fs.statSync(file).size).toBe(size);
    expect(recordsEnd(fs.readFileSync(file))).toBeGreaterThan(50 * 100);
    await store.close();
    expect(fs.statSync(file).size).toBe(recordsEnd(fs.readFileSync(file)));
  });

  it('a failed fdatasync fails what it covers and everything written behind it', async () => {
    const store = await open({ fsync: 'always' });
    const t = await store.declareTopic('pipefail', { mask: 0 });
    await t.append({ id: 'warm', data: enc('w') });
    // The zeros written ahead of the records, and their fdatasync, are done before fdatasyncs are held.
    await store.flush();
    const sync = holdFdatasync();
    const outcome = (p: Promise<AppendResult>) =>
      p.then(
        () => 'acked',
        (e: { code: string }) => e.code,
      );
    const first = outcome(t.append({ id: 'a', data: enc('a') }));
    await sync.next(1);
    let written = nextWriteTo(sync.held[0]!.fd);
    const second = outcome(t.append({ id: 'b', data: enc('b') }));
    await written;
    await sync.next(2);
    written = nextWriteTo(sync.held[0]!.fd);
    const third = outcome(t.append({ id: 'c', data: enc('c') }));
    await written;
    // The second fdatasync succeeds, but the first fails: neither b (synced after a failure) nor c is trusted.
    sync.held[1]!.release();
    const failing = vi.mocked(fs.fdatasync).mock.calls[0]![1] as (err: NodeJS.ErrnoException | null) => void;
    failing(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const codes = await Promise.all([first, second, third]);
    expect(codes).toEqual(['ZBUS_ERR_STORE', 'ZBUS_ERR_STORE', 'ZBUS_ERR_STORE']);
    // What was written behind a failed fdatasync is never fsynced as if nothing had happened.
    expect(sync.held.length).toBe(2);
    await expect(t.append({ id: 'd', data: enc('d') })).rejects.toMatchObject({ code: 'ZBUS_ERR_STORE' });
  });

  it('takes the longest wait from groupCommitWaitMs: 0 waits for no one, 3 waits 3 ms', async () => {
    for (const wait of [0, 3]) {
      const clock = new ManualClock();
      const { store, sync, append, logFd } = await afterFourProducers(`wait${wait}`, {
        clock,
        groupCommitWaitMs: wait,
      });
      // One of the four comes back while the other three are expected.
      const written = nextWriteTo(logFd);
      const b0 = append('b0');
      await written;
      if (wait > 0) {
        clock.advance(wait - 1);
        expect(sync.held.length).toBe(1);
        clock.advance(1);
      }
      await sync.next(2);
      sync.held[1]!.release();
      expect((await b0).durability).toBe('fsync');
      vi.restoreAllMocks();
      await store.close();
    }
  });

  it("starts an idle disk's fdatasync once half of those expected are queued, before the turn ends", async () => {
    const clock = new ManualClock();
    const { sync, append, logFd } = await afterFourProducers('early', { clock });
    // Queued ahead of the writer's own setImmediate: it runs when this turn's I/O callbacks are done.
    let turnEnded = false;
    setImmediate(() => {
      turnEnded = true;
    });
    // Two of the four come back: half of those expected, with the disk idle. Their fdatasync starts at once (the
    // other two are still being read), not at the end of the turn; appended together, they share one write.
    const b = [append('b0'), append('b1')];
    await sync.next(2);
    expect(turnEnded).toBe(false);
    expect(sync.held[1]!.sizeAtCall).toBe(recordsEndOf(logFd));
    // The other two follow and take the second slot: two groups, not one of four behind an idle disk.
    const written = nextWriteTo(logFd);
    b.push(append('b2'), append('b3'));
    await written;
    await sync.next(3);
    expect(sync.held[2]!.sizeAtCall).toBe(recordsEndOf(logFd));
    sync.held[1]!.release();
    sync.held[2]!.release();
    expect((await Promise.all(b)).map((r) => r.offset)).toEqual([5, 6, 7, 8]);
  });

  it('waits for the producers it expects before taking an idle disk, for 1 ms at most', async () => {
    const clock = new ManualClock();
    const { sync, append, logFd } = await afterFourProducers('wait', { clock });

    // One of the four comes back: written, but its fdatasync waits for the others (and it is not acked).
    let written = nextWriteTo(logFd);
    let acked = false;
    const b0 = append('b0').then((r) => {
      acked = true;
      return r;
    });
    await written;
    expect(sync.held.length).toBe(1);
    // A second: half of those expected are in and the disk is idle, so one fdatasync covers both.
    written = nextWriteTo(logFd);
    const b1 = append('b1');
    await written;
    await sync.next(2);
    expect(sync.held[1]!.sizeAtCall).toBe(recordsEndOf(logFd));
    expect(acked).toBe(false);
    sync.held[1]!.release();
    expect((await b0).offset).toBe(5);
    expect((await b1).offset).toBe(6);

    // Alone now: it waits for the others no longer than 1 ms, then its own fdatasync starts.
    written = nextWriteTo(logFd);
    const c0 = append('c0');
    await written;
    expect(sync.held.length).toBe(2);
    clock.advance(1);
    await sync.next(3);
    sync.held[2]!.release();
    expect((await c0).durability).toBe('fsync');

    // Two generations on, a lone producer is what is expected: its fdatasync starts at once.
    const d0 = append('d0');
    await sync.next(4);
    sync.held[3]!.release();
    expect((await d0).offset).toBe(8);
  });
});
