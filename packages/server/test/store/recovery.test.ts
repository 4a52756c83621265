import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendMany, drain, enc, open, recordsEnd, tempDir } from './helpers.js';

async function segments(dir: string): Promise<string[]> {
  return (await fs.promises.readdir(dir)).filter((f) => f.endsWith('.log')).sort();
}

/** Byte position of the record with `offset` in a segment file (walks the length fields). */
function positionOf(buf: Buffer, offset: number): number {
  let pos = 0;
  while (pos < buf.length) {
    if (buf.readDoubleLE(pos + 8) === offset) return pos;
    pos += buf.readUInt32LE(pos);
  }
  throw new Error(`offset ${offset} not found`);
}

describe('recovery', () => {
  it('under fsync=always, a sealed segment ends at its last record (its zeros are cut at the roll)', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir, fsync: 'always', segmentBytes: 2048 });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    for (let i = 0; i < 10; i++) await appendMany(t1, 20, `b${i}-`);
    const files = await segments(path.join(dir, 't'));
    expect(files.length).toBeGreaterThan(2);
    for (const f of files.slice(0, -1)) {
      const buf = await fs.promises.readFile(path.join(dir, 't', f));
      expect(recordsEnd(buf)).toBe(buf.length);
    }
    await s1.close();
    const s2 = await open({ dataDir: dir });
    const t2 = s2.topic('t')!;
    const g = await t2.declareGroup('g', { start: { offset: 0 } });
    expect((await drain(g)).length).toBe(200);
    expect(t2.info().corruptRecords).toBe(0);
  });

  it('truncates a torn final record and continues at its offset', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    await appendMany(t1, 100);
    await s1.close();
    const seg = path.join(dir, 't', (await segments(path.join(dir, 't'))).at(-1)!);
    const size = (await fs.promises.stat(seg)).size;
    await fs.promises.truncate(seg, size - 3);
    const warnings: unknown[] = [];
    const log = { warn: (o: object) => warnings.push(o), error: () => {}, info: () => {} };
    const s2 = await open({ dataDir: dir, log });
    const t2 = s2.topic('t')!;
    expect(t2.info()).toMatchObject({ messageDepth: 99, corruptRecords: 0 });
    expect(warnings.length).toBe(1);
    const g = await t2.declareGroup('g', { start: { offset: 0 } });
    expect((await drain(g)).length).toBe(99);
    expect((await t2.append({ id: 'again', data: enc('') })).offset).toBe(99);
    expect((await t2.read(99))?.id).toBe('again');
  });

  it('truncates a half-written header at the tail', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    await appendMany(t1, 10);
    await s1.close();
    const seg = path.join(dir, 't', (await segments(path.join(dir, 't'))).at(-1)!);
    await fs.promises.appendFile(seg, Buffer.from([1, 2, 3, 4, 5, 6, 7]));
    const s2 = await open({ dataDir: dir });
    expect(s2.topic('t')!.info().messageDepth).toBe(10);
    expect((await s2.topic('t')!.append({ id: 'x', data: enc('') })).offset).toBe(10);
  });

  it('skips and reports a corrupt record in the middle of a sealed segment without dropping its neighbours', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir, segmentBytes: 2048 });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    await appendMany(t1, 200);
    await s1.close();
    const segs = await segments(path.join(dir, 't'));
    expect(segs.length).toBeGreaterThan(3);
    const file = path.join(dir, 't', segs[1]!);
    const buf = await fs.promises.readFile(file);
    const firstOff = buf.readDoubleLE(8);
    const victim = firstOff + 5;
    const pos = positionOf(buf, victim);
    buf[pos + buf.readUInt32LE(pos) - 1]! ^= 0xff; // last data byte
    await fs.promises.writeFile(file, buf);
    const errors: unknown[] = [];
    const log = { warn: () => {}, error: (o: object) => errors.push(o), info: () => {} };
    const s2 = await open({ dataDir: dir, segmentBytes: 2048, log });
    const t2 = s2.topic('t')!;
    const g = await t2.declareGroup('g', { start: { offset: 0 } });
    const ids = await drain(g);
    expect(ids.length).toBe(199);
    expect(ids).not.toContain(`m${victim}`);
    expect(ids).toContain(`m${victim - 1}`);
    expect(ids).toContain(`m${victim + 1}`);
    expect(t2.info().corruptRecords).toBe(1);
    expect(errors.length).toBe(1);
    expect(await t2.read(victim)).toBeUndefined();
    expect((await t2.read(victim + 1))?.id).toBe(`m${victim + 1}`);
    expect(t2.info().corruptRecords).toBe(1);
  });

  it('steps over a record whose length field is corrupt', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    await appendMany(t1, 50);
    await s1.close();
    const file = path.join(dir, 't', (await segments(path.join(dir, 't')))[0]!);
    const buf = await fs.promises.readFile(file);
    const pos = positionOf(buf, 20);
    buf.writeUInt32LE(0x7fff, pos); // length now points nowhere sensible
    await fs.promises.writeFile(file, buf);
    const s2 = await open({ dataDir: dir });
    const t2 = s2.topic('t')!;
    expect(t2.info().messageDepth).toBe(50);
    const g = await t2.declareGroup('g', { start: { offset: 0 } });
    const ids = await drain(g);
    expect(ids.length).toBe(49);
    expect(ids).not.toContain('m20');
    expect(t2.info().corruptRecords).toBe(1);
  });

  it('finds a corrupt record in the scanned tail at open and keeps the records after it', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    await appendMany(t1, 30);
    await s1.close();
    const file = path.join(dir, 't', (await segments(path.join(dir, 't')))[0]!);
    const buf = await fs.promises.readFile(file);
    buf[positionOf(buf, 28) + 40]! ^= 0x55;
    await fs.promises.writeFile(file, buf);
    await fs.promises.rm(path.join(dir, 't', '00000000000000000000.oix'));
    const s2 = await open({ dataDir: dir });
    const t2 = s2.topic('t')!;
    expect(t2.info()).toMatchObject({ messageDepth: 30, corruptRecords: 1 });
    expect((await t2.read(29))?.id).toBe('m29');
  });

  it('rebuilds a lost index of a sealed segment', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir, segmentBytes: 4096 });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    await appendMany(t1, 500);
    await s1.close();
    const segs = await segments(path.join(dir, 't'));
    await fs.promises.rm(path.join(dir, 't', segs[0]!.replace('.log', '.oix')));
    await fs.promises.writeFile(path.join(dir, 't', segs[1]!.replace('.log', '.tix')), 'garbage');
    const s2 = await open({ dataDir: dir, segmentBytes: 4096 });
    const t2 = s2.topic('t')!;
    for (const o of [0, 10, 77, 150, 499]) expect((await t2.read(o))?.id).toBe(`m${o}`);
    expect(t2.info().corruptRecords).toBe(0);
  });
});
