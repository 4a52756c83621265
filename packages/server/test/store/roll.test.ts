// A segment roll does not stall the topic: the old segment is sealed (index, zeros cut, fdatasync, directory fsync)
// while appends go on into the new one, and under fsync=always an append to the new segment is acked only after
// that seal. fdatasync is held open by the test and time is a manual clock, so nothing here depends on timing.
// Recovery finishes a seal a crash cut short.
import fs from 'node:fs';
import path from 'node:path';
import { ManualClock } from '@zbus/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AppendResult } from '../../src/store/types.js';
import { drain, enc, holdFdatasync, open, recordsEnd, tempDir, until } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const SEGMENT_BYTES = 2048;
const body = (id: string) => enc(`${id}-${'x'.repeat(100)}`);

const segmentFiles = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort();

describe('segment roll', () => {
  it('under fsync=interval, appends into the new segment are acked while the old one is still being synced', async () => {
    const clock = new ManualClock();
    const store = await open({ fsync: { intervalMs: 100 }, segmentBytes: SEGMENT_BYTES, clock });
    // With a retention policy: its check after the roll must not wait for the seal in the writer loop either.
    const t = await store.declareTopic('interval', { mask: 0, retention: { maxBytes: 1 << 30 } });
    const dir = path.join(store.dataDir, 'interval');
    const sync = holdFdatasync();
    // Acked after their write (interval): fills the first segment and rolls.
    let i = 0;
    while (segmentFiles(dir).length < 2) await t.append({ id: `m${i}`, data: body(`m${i++}`) });
    await sync.next(1);
    const [first, second] = segmentFiles(dir);
    expect(sync.held.map((h) => h.file)).toEqual([first]);
    // With the old segment's fdatasync held, more appends go into the new one and are acked.
    const more: AppendResult[] = [];
    for (let j = 0; j < 5; j++) more.push(await t.append({ id: `n${j}`, data: body(`n${j}`) }));
    expect(more.map((r) => r.offset)).toEqual([i, i + 1, i + 2, i + 3, i + 4]);
    expect(recordsEnd(fs.readFileSync(path.join(dir, second!)))).toBeGreaterThan(0);
    expect(sync.held.length).toBe(1);
    await sync.held[0]!.release();
    vi.restoreAllMocks();
    await store.flush();
    const g = await t.declareGroup('g', { start: { offset: 0 } });
    expect((await drain(g)).length).toBe(i + 5);
  });

  it('under fsync=always, writes and fdatasyncs the new segment during the seal; acks wait for the seal', async () => {
    const clock = new ManualClock();
    const store = await open({ fsync: 'always', segmentBytes: SEGMENT_BYTES, clock });
    const t = await store.declareTopic('always', { mask: 0 });
    const dir = path.join(store.dataDir, 'always');
    await t.append({ id: 'warm', data: body('warm') });
    // The zeros written ahead of the records, and their fdatasync, are done before fdatasyncs are held.
    await store.flush();
    const first = segmentFiles(dir)[0]!;
    const sync = holdFdatasync((file) => file === first);
    const commits = store.commits!;
    const syncsBefore = commits.recordsPerSync.count;
    const settled: string[] = [];
    // One batch that overflows the first segment into a second.
    const ids = Array.from({ length: 20 }, (_, j) => `m${j}`);
    const acks = ids.map((id) => t.append({ id, data: body(id) }).finally(() => settled.push(id)));
    // The old segment's fdatasync is held; the new segment's records get theirs meanwhile.
    await sync.next(1);
    await until(() => (commits.recordsPerSync.count > syncsBefore ? true : undefined));
    expect(segmentFiles(dir).length).toBe(2);
    // Their acks wait for the old segment's fdatasync (acks go out in order, and the old segment holds records of
    // the same batch).
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toEqual([]);
    expect(sync.held.length).toBe(1);
    const oldSync = sync.held[0]!;
    await oldSync!.release();
    vi.restoreAllMocks();
    const rs = await Promise.all(acks);
    expect(settled).toEqual(ids);
    expect(rs.every((r) => r.durability === 'fsync')).toBe(true);
    expect(rs.map((r) => r.offset)).toEqual(ids.map((_, j) => j + 1));
    // The sealed segment ends at its last record: its zeros were cut before its fdatasync.
    const buf = fs.readFileSync(path.join(dir, first!));
    expect(recordsEnd(buf)).toBe(buf.length);
  });

  it('recovery finishes a seal cut short: zeros cut, index rebuilt, a torn tail stepped over', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir, fsync: 'always', segmentBytes: SEGMENT_BYTES });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    for (let j = 0; j < 60; j++) await t1.append({ id: `m${j}`, data: body(`m${j}`) });
    await s1.close();
    const tdir = path.join(dir, 't');
    const files = segmentFiles(tdir);
    expect(files.length).toBeGreaterThan(2);
    // A kill during the seal of the segment before the last: its zeros written ahead not cut, its index not written.
    const sealing = path.join(tdir, files.at(-2)!);
    const base = Number(files.at(-1)!.slice(0, -4));
    const records = fs.statSync(sealing).size;
    fs.appendFileSync(sealing, Buffer.alloc(4096));
    fs.rmSync(sealing.replace(/\.log$/, '.oix'));
    fs.rmSync(sealing.replace(/\.log$/, '.tix'));
    const s2 = await open({ dataDir: dir });
    const t2 = s2.topic('t')!;
    expect(fs.statSync(sealing).size).toBe(records);
    const g = await t2.declareGroup('g', { start: { offset: 0 } });
    expect((await drain(g)).length).toBe(60);
    expect(t2.info().corruptRecords).toBe(0);
    await s2.close();

    // A power loss during that seal: the last record of the segment is torn, records follow in the next one.
    fs.truncateSync(sealing, records - 3);
    const s3 = await open({ dataDir: dir });
    const t3 = s3.topic('t')!;
    expect(recordsEnd(fs.readFileSync(sealing))).toBe(fs.statSync(sealing).size);
    const g3 = await t3.declareGroup('g3', { start: { offset: 0 } });
    const got3 = await drain(g3);
    expect(got3.length).toBe(59);
    expect(got3).not.toContain(`m${base - 1}`);
    expect(t3.info().corruptRecords).toBe(0);
    expect((await t3.append({ id: 'again', data: enc('') })).offset).toBe(60);
  });
});
