import fs from 'node:fs';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ManualClock } from '@zbus/testkit';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { crc32c } from '../../src/store/crc32c.js';
import { CachedFile } from '../../src/store/file-cache.js';
import type { TailCache } from '../../src/store/log.js';
import { type Store, StoreError } from '../../src/store/types.js';
import { appendMany, dec, drain, enc, open, tempDir } from './helpers.js';

describe('crc32c', () => {
  it('matches the published check value for "123456789"', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });
  it('is the same computed in one go or continued in pieces', () => {
    const b = Buffer.from('the quick brown fox jumps over the lazy dog, twice over the lazy dog');
    expect(crc32c(b, 10, b.length, crc32c(b, 0, 10))).toBe(crc32c(b));
  });
  it('matches a bit-at-a-time CRC over views at any offset of any buffer, of any length', () => {
    const bitwise = (bytes: Uint8Array): number => {
      let c = ~0;
      for (const x of bytes) {
        c ^= x;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return ~c >>> 0;
    };
    const backing = new Uint8Array(600).map((_, i) => (i * 131 + 7) & 0xff);
    // Views that start at odd places in their ArrayBuffer, from two buffers in turn (the words are read through
    // a view of the whole ArrayBuffer, kept between calls).
    const other = Buffer.from(backing.subarray(0, 300));
    for (let len = 0; len <= 40; len++) {
      for (let off = 0; off < 9; off++) {
        const view = backing.subarray(off + 3, off + 3 + len + 9);
        expect(crc32c(view, off, off + len)).toBe(bitwise(view.subarray(off, off + len)));
        expect(crc32c(other, off, off + len)).toBe(bitwise(other.subarray(off, off + len)));
      }
    }
    expect(crc32c(backing, 5, 590)).toBe(bitwise(backing.subarray(5, 590)));
  });
});

describe('topic log', () => {
  it('assigns per-topic sequence offsets 0, 1, 2 in arrival order', async () => {
    const store = await open();
    const t = await store.declareTopic('Orders', { mask: 0 });
    const rs = await Promise.all([0, 1, 2].map((i) => t.append({ id: `a${i}`, data: enc(`x${i}`) })));
    expect(rs.map((r) => r.offset)).toEqual([0, 1, 2]);
    expect(rs.every((r) => r.duplicate === false)).toBe(true);
    const r = await t.read(1);
    expect(r?.id).toBe('a1');
    expect(dec(r!.data)).toBe('x1');
    expect(await t.read(3)).toBeUndefined();
  });

  it('says which durability each append met', async () => {
    const store = await open({ fsync: 'always' });
    const a = await store.declareTopic('a', { mask: 0 });
    const b = await store.declareTopic('b', { mask: 0, fsync: 'never' });
    const c = await store.declareTopic('c', { mask: 0, fsync: { intervalMs: 20 } });
    const m = await store.declareTopic('m', { mask: 1 });
    expect((await a.append({ id: '1', data: enc('x') })).durability).toBe('fsync');
    expect((await b.append({ id: '1', data: enc('x') })).durability).toBe('none');
    expect((await c.append({ id: '1', data: enc('x') })).durability).toBe('interval');
    expect((await m.append({ id: '1', data: enc('x') })).durability).toBe('memory');
  });

  it('keeps timestamps non-decreasing and stores tag and id', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    await t.append({ id: 'i1', tag: 'Stock.HK', data: enc('a') });
    await t.append({ id: 'i2', data: enc('b') });
    const a = await t.read(0);
    const b = await t.read(1);
    expect(a?.tag).toBe('Stock.HK');
    expect(b?.tag).toBeUndefined();
    expect(b!.timestamp).toBeGreaterThanOrEqual(a!.timestamp);
  });

  it('stores non-ASCII and long ids and tags byte for byte, on disk and after a reopen', async () => {
    const dir = await tempDir();
    const long = `${'k'.repeat(150)}é`;
    const fields = [
      { id: 'ид-1', tag: 'Börse.HK' },
      { id: long, tag: `${long}标签` },
      { id: 'plain', tag: undefined },
    ];
    let store = await open({ dataDir: dir });
    let t = await store.declareTopic('t', { mask: 0 });
    for (const f of fields) await t.append({ ...f, data: enc('x') });
    await store.close();
    store = await open({ dataDir: dir });
    t = store.topic('t')!;
    for (let i = 0; i < fields.length; i++) {
      const r = await t.read(i);
      expect([r?.id, r?.tag]).toEqual([fields[i]!.id, fields[i]!.tag]);
      expect(dec(r!.data)).toBe('x');
    }
  });

  it('rejects bad topic names with ZBUS_ERR_BAD_NAME before touching the disk', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir });
    for (const bad of ['..', 'a/b', 'a\\b', 'a\0b', 'a\nb', 'x'.repeat(256), '', '.', 'a..b']) {
      const err = await store.declareTopic(bad, { mask: 0 }).catch((e) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err.code).toBe('ZBUS_ERR_BAD_NAME');
    }
    expect(await fs.promises.readdir(dir)).toEqual([]);
  });

  it('treats names case-insensitively and keeps the declared spelling', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir });
    const t = await store.declareTopic('MyTopic', { mask: 0 });
    expect(await store.declareTopic('MYTOPIC', { mask: 0 })).toBe(t);
    expect(store.topic('mytopic')?.name).toBe('MyTopic');
    await store.close();
    const s2 = await open({ dataDir: dir });
    expect(s2.topic('mYtOpIc')?.info().topicName).toBe('MyTopic');
  });

  it('rejects a body over maxMessageBytes with ZBUS_ERR_BODY_TOO_LARGE', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0, maxMessageBytes: 10 });
    await expect(t.append({ id: '1', data: new Uint8Array(11) })).rejects.toMatchObject({
      code: 'ZBUS_ERR_BODY_TOO_LARGE',
    });
  });

  it('rolls segments at segmentBytes and reads across them', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir, segmentBytes: 1024 });
    const t = await store.declareTopic('roll', { mask: 0 });
    await appendMany(t, 100);
    const logs = (await fs.promises.readdir(path.join(dir, 'roll'))).filter((f) => f.endsWith('.log'));
    expect(logs.length).toBeGreaterThan(3);
    const g = await t.declareGroup('g', { start: { offset: 0 } });
    expect(await drain(g)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    for (const o of [0, 13, 57, 99]) expect((await t.read(o))?.id).toBe(`m${o}`);
  });

  it('seeks by offset and by time', async () => {
    const clock = new ManualClock();
    const store = await open({ segmentBytes: 2048, clock });
    const t = await store.declareTopic('seek', { mask: 0 });
    await appendMany(t, 50, 'a');
    clock.advance(20);
    const mid = clock.now();
    clock.advance(5);
    await appendMany(t, 50, 'b');
    const byTime = await t.declareGroup('byTime', { start: { time: mid } });
    expect((await byTime.next())?.id).toBe('b0');
    const byOffset = await t.declareGroup('byOffset', { start: { offset: 77 } });
    expect((await byOffset.next())?.id).toBe('b27');
    const early = await t.declareGroup('early', { start: { time: 0 } });
    expect((await early.next())?.id).toBe('a0');
    const late = await t.declareGroup('late', { start: { time: clock.now() + 10_000 } });
    expect(await late.next()).toBeUndefined();
  });

  it('reopens with every record, offset and the next offset intact', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir, segmentBytes: 4096 });
    const t1 = await s1.declareTopic('re', { mask: 0 });
    await appendMany(t1, 300);
    await s1.close();
    const s2 = await open({ dataDir: dir, segmentBytes: 4096 });
    const t2 = s2.topic('re')!;
    expect(t2.info().messageDepth).toBe(300);
    expect((await t2.append({ id: 'next', data: enc('n') })).offset).toBe(300);
    const g = await t2.declareGroup('g', { start: { offset: 0 } });
    const ids = await drain(g);
    expect(ids.length).toBe(301);
    expect(ids[299]).toBe('m299');
  });

  it('goes on appending while an index write is held up, and has the whole index written by the close', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir });
    const t = await store.declareTopic('ix', { mask: 0 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    const indexWriteStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const write = CachedFile.prototype.write;
    const spy = vi.spyOn(CachedFile.prototype, 'write').mockImplementation(async function (
      this: CachedFile,
      ...args: Parameters<CachedFile['write']>
    ) {
      if (this.path.endsWith('.oix')) {
        started();
        await held;
      }
      return write.apply(this, args);
    });
    onTestFinished(() => spy.mockRestore());
    // Records of 4 KiB get an index entry each: 40 of them start an index write (at 32 pending entries).
    const big = Buffer.alloc(4096, 'x');
    await Promise.all(Array.from({ length: 40 }, (_, i) => t.append({ id: `b${i}`, data: big })));
    await indexWriteStarted;
    // An index file write can wait in the kernel behind an fsync: the log's appends must not wait with it.
    expect((await t.append({ id: 'after', data: big })).offset).toBe(40);
    expect(t.info().messageDepth).toBe(41);
    release();
    await store.close();
    expect(fs.statSync(path.join(dir, 'ix', '00000000000000000000.oix')).size).toBe(41 * 8);
    const again = await open({ dataDir: dir });
    expect((await again.topic('ix')!.read(40))?.id).toBe('after');
  });
});

describe('the tail cache', () => {
  const KiB = 1024;
  const cacheOf = (store: Store) => (store as unknown as { tailCache: TailCache }).tailCache;

  it('bounds the recent batches all topics keep; the topics written least recently give theirs up', async () => {
    const store = await open({ tailCacheBytes: 1024 * KiB });
    const topics = [];
    const record = (t: number, i: number) => Buffer.alloc(10 * KiB, `${t}.${i};`);
    for (let t = 0; t < 20; t++) {
      const topic = await store.declareTopic(`t${t}`, { mask: 0 });
      topics.push(topic);
      // 300 KiB each, in batches of ten: each topic alone keeps them all (up to 1 MiB).
      for (let b = 0; b < 3; b++) {
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            topic.append({ id: `m${b * 10 + i}`, data: record(t, b * 10 + i) }),
          ),
        );
      }
      // Before the bound, 20 topics kept 6000 KiB.
      expect(cacheOf(store).bytes).toBeLessThanOrEqual(1024 * KiB);
    }
    expect(cacheOf(store).bytes).toBeGreaterThan(600 * KiB);
    // What left the cache is read from the files: every topic reads back whole.
    for (let t = 0; t < 20; t++) {
      const g = await topics[t]!.declareGroup('g', { start: { offset: 0 } });
      for (let i = 0; i < 30; i++) {
        const d = await g.next();
        expect(d && Buffer.compare(Buffer.from(d.data), record(t, i))).toBe(0);
      }
    }
    // Removed topics give theirs back.
    for (let t = 0; t < 20; t++) await store.removeTopic(`t${t}`);
    expect(cacheOf(store).bytes).toBe(0);
  });

  it('leaves a quiet topic no write slab once the cache took its batches', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // Array buffers left after a full collection (their memory goes back on the next turn).
    const held = async () => {
      gc();
      await new Promise((r) => setImmediate(r));
      gc();
      return process.memoryUsage().arrayBuffers;
    };
    const store = await open({ tailCacheBytes: 1024 * KiB });
    const before = await held();
    for (let t = 0; t < 40; t++) {
      const topic = await store.declareTopic(`q${t}`, { mask: 0 });
      // 300 KiB: past one 256 KiB slab.
      for (let b = 0; b < 3; b++) {
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            topic.append({ id: `m${b * 10 + i}`, data: Buffer.alloc(10 * KiB, t) }),
          ),
        );
      }
    }
    // Before, each topic's writer kept its last slab: 40 x 256 KiB.
    const quiet = (await held()) - before;
    expect(quiet).toBeLessThan(4096 * KiB);
    // One 3 MiB message: its batch is not kept, nor the 6 MiB slab made for it (once the next record anywhere
    // has replaced it as the CRC32C's last buffer).
    await store
      .declareTopic('big', { mask: 0 })
      .then((t) => t.append({ id: 'big', data: Buffer.alloc(3072 * KiB) }));
    await store.declareTopic('next', { mask: 0 }).then((t) => t.append({ id: 'n', data: Buffer.alloc(10) }));
    expect((await held()) - before - quiet).toBeLessThan(1024 * KiB);
  });
});
