// Delayed messages on disk (delay-queue.ts, delay-file.ts): memory holds where each one is, not its bytes; the
// file is never read whole; torn and corrupt records; the file shrinks once its records are released.
import fs from 'node:fs';
import path from 'node:path';
import { ManualClock } from '@zbus/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { appendMany, dec, enc, nextOf, open, tempDir, until } from './helpers.js';

const MiB = 1024 * 1024;

afterEach(() => {
  vi.restoreAllMocks();
});

/** A 1 MiB body whose bytes say which message it is. */
const big = (i: number): Uint8Array => Buffer.alloc(MiB, i % 251);

function journal(dir: string, topic = 't'): string {
  return path.join(dir, topic, 'delayed.journal');
}

describe('delayed messages on disk', () => {
  it('reopens 50 x 1 MiB held messages reading their headers only, and releases each intact when due', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    const at = clock.now() + 60_000;
    for (let i = 0; i < 50; i++) await t1.append({ id: `d${i}`, data: big(i), deliverAt: at + i });
    await s1.close();
    expect(fs.statSync(journal(dir)).size).toBeGreaterThan(50 * MiB);

    const read = vi.spyOn(fs, 'read');
    const readFile = vi.spyOn(fs.promises, 'readFile');
    const s2 = await open({ dataDir: dir, clock });
    const bytesRead = read.mock.calls.reduce((n, c) => n + Number((c as unknown[])[3] ?? 0), 0);
    expect(readFile.mock.calls.map((c) => String(c[0]))).not.toContain(journal(dir));
    expect(bytesRead).toBeLessThan(2 * MiB);
    const t2 = s2.topic('t')!;
    expect(t2.info().delayed).toBe(50);

    const g = await t2.declareGroup('g', {});
    clock.advance(60_000 + 49);
    for (let i = 0; i < 50; i++) {
      const d = await nextOf(t2, g);
      expect(d.id).toBe(`d${i}`);
      expect(Buffer.from(d.data).equals(Buffer.from(big(i)))).toBe(true);
    }
    expect(t2.info().delayed).toBe(0);
  });

  it('cuts a torn last record off at open and keeps the ones before it', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    for (let i = 0; i < 3; i++)
      await t1.append({ id: `d${i}`, data: enc(`m${i}`), deliverAt: clock.now() + 100 });
    await s1.close();
    const size = fs.statSync(journal(dir)).size;
    fs.truncateSync(journal(dir), size - 5);
    const s2 = await open({ dataDir: dir, clock });
    const t2 = s2.topic('t')!;
    expect(t2.info().delayed).toBe(2);
    expect(fs.statSync(journal(dir)).size).toBe((size / 3) * 2);
    await t2.append({ id: 'd3', data: enc('m3'), deliverAt: clock.now() + 100 });
    const g = await t2.declareGroup('g', {});
    clock.advance(100);
    const ids = [(await nextOf(t2, g)).id, (await nextOf(t2, g)).id, (await nextOf(t2, g)).id];
    expect(ids).toEqual(['d0', 'd1', 'd3']);
  });

  it('skips a damaged record in the middle, reports it, and keeps the ones after it', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    for (let i = 0; i < 3; i++)
      await t1.append({ id: `d${i}`, data: enc(`m${i}`), deliverAt: clock.now() + 100 });
    await s1.close();
    const buf = fs.readFileSync(journal(dir));
    const second = buf.readUInt32LE(0);
    buf[second + buf.readUInt32LE(second) - 1]! ^= 0xff; // last data byte of the second record
    fs.writeFileSync(journal(dir), buf);
    const errors: object[] = [];
    const s2 = await open({
      dataDir: dir,
      clock,
      log: { warn: () => {}, info: () => {}, error: (o) => errors.push(o) },
    });
    const t2 = s2.topic('t')!;
    expect(t2.info().delayed).toBe(2);
    expect(errors).toHaveLength(1);
    const g = await t2.declareGroup('g', {});
    clock.advance(100);
    expect([(await nextOf(t2, g)).id, (await nextOf(t2, g)).id]).toEqual(['d0', 'd2']);
  });

  it('empties the file once nothing is held, and compacts it around a message held much longer', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const store = await open({ dataDir: dir, clock });
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', {});
    for (let i = 0; i < 3; i++) await t.append({ id: `a${i}`, data: big(i), deliverAt: clock.now() + 10 });
    clock.advance(10);
    for (let i = 0; i < 3; i++) expect((await nextOf(t, g)).id).toBe(`a${i}`);
    await until(() => (fs.statSync(journal(dir)).size === 0 ? true : undefined));

    await t.append({ id: 'month', data: enc('kept'), deliverAt: clock.now() + 30 * 24 * 3600_000 });
    for (let i = 0; i < 70; i++) await t.append({ id: `b${i}`, data: big(i), deliverAt: clock.now() + 10 });
    clock.advance(10);
    for (let i = 0; i < 70; i++) expect((await nextOf(t, g)).id).toBe(`b${i}`);
    // 70 MiB released, a few bytes held: once the garbage passed 64 MiB the file was rewritten with the records
    // still held then (the month-long one, and the few of the last release batch not yet marked done).
    await until(() => (fs.statSync(journal(dir)).size < 16 * MiB ? true : undefined));
    expect(t.info().delayed).toBe(1);
    await store.close();

    const s2 = await open({ dataDir: dir, clock });
    const t2 = s2.topic('t')!;
    const g2 = t2.group('g')!;
    expect(t2.info().delayed).toBe(1);
    clock.advance(30 * 24 * 3600_000);
    const d = await nextOf(t2, g2);
    expect([d.id, dec(d.data)]).toEqual(['month', 'kept']);
  });

  it('dedupes held messages by id across a reopen', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const t1 = await s1.declareTopic('t', { mask: 0, dedupeWindowMs: 60_000 });
    await t1.append({ id: 'held', data: enc(''), deliverAt: clock.now() + 1000 });
    await appendMany(t1, 2);
    await s1.close();
    const s2 = await open({ dataDir: dir, clock });
    const r = await s2.topic('t')!.append({ id: 'held', data: enc(''), deliverAt: clock.now() + 1000 });
    expect(r).toMatchObject({ duplicate: true, offset: -1 });
    expect(s2.topic('t')!.info().delayed).toBe(1);
  });
});
