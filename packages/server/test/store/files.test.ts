// Open files: a bounded cache of descriptors shared by every topic (file-cache.ts), nothing left open by a topic
// that fails to open, and no temp files left behind by a crash.
import fs from 'node:fs';
import path from 'node:path';
import { ManualClock, scaled } from '@zbus/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DelayFile, encodeAdd, type HeldEntry } from '../../src/store/delay-file.js';
import { FileCache } from '../../src/store/file-cache.js';
import { STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { appendMany, drain, enc, open, tempDir, until } from './helpers.js';

const SLOW120 = scaled(120_000);

/** Descriptors this process has open (Linux). */
const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

/** Every file below `dir` whose name ends in `.tmp`. */
const tempFiles = (dir: string): string[] =>
  fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tmp'));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the open-file cache', () => {
  it('keeps at most `capacity` files open, reopening an evicted one on its next use', async () => {
    const dir = await tempDir();
    const cache = new FileCache(4);
    const files = [];
    for (let i = 0; i < 10; i++) {
      const f = await cache.open(path.join(dir, `f${i}`), 'write', true);
      await f.write(Buffer.from(`file ${i}`), 0, 6, 0);
      files.push(f);
      expect(cache.openCount).toBeLessThanOrEqual(4);
    }
    expect(files[0]!.isOpen).toBe(false);
    const b = Buffer.alloc(6);
    await files[0]!.read(b, 0, 6, 0);
    expect(b.toString()).toBe('file 0');
    expect(files[0]!.isOpen).toBe(true);
    expect(cache.openCount).toBeLessThanOrEqual(4);
    for (const f of files) await f.close();
    expect(cache.openCount).toBe(0);
    await expect(files[1]!.read(b, 0, 1, 0)).rejects.toMatchObject({ code: 'ZBUS_ERR_CLOSED' });
  });

  it('never closes a file under an operation: past capacity while all are in use, then back under it', async () => {
    const dir = await tempDir();
    const cache = new FileCache(2);
    const files = [];
    for (let i = 0; i < 4; i++) files.push(await cache.open(path.join(dir, `f${i}`), 'write', true));
    const fds = await Promise.all(files.map((f) => f.acquire()));
    expect(new Set(fds).size).toBe(4);
    expect(files.every((f) => f.isOpen)).toBe(true);
    for (const f of files) f.release();
    await cache.open(path.join(dir, 'g'), 'write', true);
    expect(cache.openCount).toBeLessThanOrEqual(2);
  });
});

describe('a store with many topics', () => {
  it(
    'runs 200 topics on 32 open files, and reopens them all',
    async () => {
      const dir = await tempDir();
      const before = openFds();
      const s1 = await open({ dataDir: dir, maxOpenFiles: 32 });
      for (let i = 0; i < 200; i++) {
        const t = await s1.declareTopic(`topic${i}`, { mask: 0 });
        const g = await t.declareGroup('g', { mask: STORE_MASK_ACK_REQUIRED });
        await t.append({ id: `a${i}`, data: enc(`x${i}`) });
        await t.append({ id: `b${i}`, data: enc(`y${i}`), deliverAt: Date.now() + 60_000 });
        expect((await g.next())?.id).toBe(`a${i}`);
      }
      expect(openFds() - before).toBeLessThanOrEqual(32 + 8);
      await s1.close();
      expect(openFds() - before).toBeLessThanOrEqual(8);

      const s2 = await open({ dataDir: dir, maxOpenFiles: 32 });
      expect(s2.topics()).toHaveLength(200);
      expect(openFds() - before).toBeLessThanOrEqual(32 + 8);
      for (const i of [0, 100, 199]) {
        const t = s2.topic(`topic${i}`)!;
        expect(t.info()).toMatchObject({ messageDepth: 1, delayed: 1 });
        expect((await t.read(0))?.id).toBe(`a${i}`);
        await appendMany(t, 3);
        expect(await drain(await t.declareGroup('all', { start: { offset: 0 } }))).toEqual([
          `a${i}`,
          'm0',
          'm1',
          'm2',
        ]);
      }
      expect(openFds() - before).toBeLessThanOrEqual(32 + 8);
    },
    SLOW120,
  );

  it('closes what a topic opened when the topic fails to open, and opens the others', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir, segmentBytes: 1024 });
    for (let i = 0; i < 30; i++) await appendMany(await s1.declareTopic(`bad${i}`, { mask: 0 }), 50);
    await s1.declareTopic('good', { mask: 0 });
    await s1.close();
    for (let i = 0; i < 30; i++) {
      const d = path.join(dir, `bad${i}`);
      if (i % 2 === 0) {
        // The last segment cannot be opened for writing (after the sealed ones were listed).
        const last = fs
          .readdirSync(d)
          .filter((f) => f.endsWith('.log'))
          .sort()
          .at(-1)!;
        fs.rmSync(path.join(d, last));
        fs.mkdirSync(path.join(d, last));
      } else {
        // The delay journal cannot be opened (after the log was).
        fs.rmSync(path.join(d, 'delayed.journal'));
        fs.mkdirSync(path.join(d, 'delayed.journal'));
      }
    }
    const errors: object[] = [];
    const before = openFds();
    const s2 = await open({
      dataDir: dir,
      log: { warn: () => {}, info: () => {}, error: (o) => errors.push(o) },
    });
    expect(s2.topics().map((t) => t.name)).toEqual(['good']);
    expect(errors).toHaveLength(30);
    // The good topic holds its files; the 30 that failed hold none (each leaked 3 to 20 before).
    expect(openFds() - before).toBeLessThanOrEqual(8);
  });

  it('closes the delay journal when loading it fails after it was opened', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const t = await s1.declareTopic('t', { mask: 0 });
    await t.append({ id: 'later', data: enc('x'), deliverAt: clock.now() + 10 });
    clock.advance(10);
    await until(() => (t.info().delayed === 0 ? true : undefined));
    await s1.close();
    // The journal holds an ADD and its DONE: at open it is emptied in place, and that truncate fails.
    const real = fs.ftruncate;
    vi.spyOn(fs, 'ftruncate').mockImplementation(((fd: number, len: number, cb: fs.NoParamCallback) => {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('delayed.journal')) {
        process.nextTick(() => cb(Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' })));
        return;
      }
      real(fd, len, cb);
    }) as typeof fs.ftruncate);
    const errors: object[] = [];
    const before = openFds();
    const s2 = await open({
      dataDir: dir,
      log: { warn: () => {}, info: () => {}, error: (o) => errors.push(o) },
    });
    expect(s2.topics()).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(openFds()).toBe(before);
  });

  it('removes temp files a crash left behind when it opens a topic', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t = await s1.declareTopic('t', { mask: 0 });
    await t.declareGroup('g', {});
    await s1.close();
    const leftovers = [
      path.join(dir, 't', 'topic.json.1234.5.tmp'),
      path.join(dir, 't', '.1234-6.tmp'),
      path.join(dir, 't', 'delayed.journal.tmp'),
      path.join(dir, 't', 'groups', 'g.json.1234.7.tmp'),
      path.join(dir, 't', 'groups', 'g.acks.tmp'),
      path.join(dir, '.1234-8.tmp'),
    ];
    for (const f of leftovers) fs.writeFileSync(f, 'half');
    const s2 = await open({ dataDir: dir });
    expect(s2.topic('t')!.group('g')).toBeDefined();
    for (const f of leftovers) expect(fs.existsSync(f)).toBe(false);
  });

  it('leaves no temp file behind when an atomic replace fails', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: path.join(dir, 'store') });
    const t = await store.declareTopic('t', { mask: 0 });
    await t.declareGroup('g', {});
    const real = fs.promises.rename;
    vi.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      if (String(from).endsWith('.tmp')) {
        throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO', syscall: 'rename' });
      }
      return real(from, to);
    });
    // The compaction of a delay journal: its temp file is removed and its descriptor closed.
    const files = new FileCache(8);
    const { file } = await DelayFile.open(path.join(dir, 'delays'), files, false);
    const held: HeldEntry[] = [];
    for (let seq = 1; seq <= 3; seq++) {
      const record = encodeAdd({ seq, deliverAt: seq, id: `m${seq}`, tag: undefined, data: enc('x') });
      const e: HeldEntry = { seq, deliverAt: seq, pos: -1, len: record.length };
      file.add(record, e);
      held.push(e);
    }
    await file.flush(false);
    const before = openFds();
    await expect(file.compact(held.slice(1))).rejects.toMatchObject({ code: 'EIO' });
    expect(openFds()).toBe(before);
    expect(tempFiles(dir)).toEqual([]);
    await file.close(false);
    // topic.json and a group's checkpoint.
    await expect(store.declareTopic('t', { mask: 0, maxBacklog: 5 })).rejects.toMatchObject({
      code: 'ZBUS_ERR_STORE',
    });
    await expect(t.declareGroup('g', { filter: 'x' })).rejects.toMatchObject({ code: 'ZBUS_ERR_STORE' });
    expect(tempFiles(dir)).toEqual([]);
    // Nothing was replaced: the journal still holds all three.
    vi.restoreAllMocks();
    const reopened = await DelayFile.open(path.join(dir, 'delays'), files, false);
    expect(reopened.scan.live.map((e) => e.seq)).toEqual([1, 2, 3]);
    await reopened.file.close(false);
  });
});
