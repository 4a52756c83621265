import fs from 'node:fs';
import path from 'node:path';
import { ManualClock } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { appendMany, available, drain, enc, nextOf, open, tempDir, until } from './helpers.js';

describe('delayed messages', () => {
  it('holds a message until deliverAt, then appends it and wakes listeners', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', {});
    const at = clock.now() + 80;
    const r = await t.append({ id: 'later', tag: 'x', data: enc('d'), deliverAt: at });
    expect(r).toMatchObject({ offset: -1, deliverAt: at, duplicate: false });
    expect(t.info().delayed).toBe(1);
    await t.append({ id: 'now', data: enc('n') });
    expect(await drain(g)).toEqual(['now']);
    clock.advance(79);
    expect(t.info().delayed).toBe(1);
    const woke = available(t);
    clock.advance(1);
    await woke;
    const d = await g.next();
    expect(d).toMatchObject({ id: 'later', tag: 'x', offset: 1 });
    expect(d!.timestamp).toBeGreaterThanOrEqual(at);
    expect(t.info().delayed).toBe(0);
  });

  it('appends a deliverAt in the past at once', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    expect((await t.append({ id: 'x', data: enc(''), deliverAt: Date.now() - 5 })).offset).toBe(0);
  });

  it('keeps delayed messages across a reopen and delivers them on time', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    const at = clock.now() + 150;
    await t1.append({ id: 'd1', data: enc('1'), deliverAt: at });
    await t1.append({ id: 'd2', data: enc('2'), deliverAt: at + 10 });
    await t1.append({ id: 'd0', data: enc('0'), deliverAt: at + 60_000 });
    await s1.close();
    const s2 = await open({ dataDir: dir, clock });
    const t2 = s2.topic('t')!;
    expect(t2.info().delayed).toBe(3);
    const g = await t2.declareGroup('g', {});
    clock.advance(149);
    expect(await g.next()).toBeUndefined();
    clock.advance(11);
    const a = await nextOf(t2, g);
    const b = await nextOf(t2, g);
    expect([a.id, b.id]).toEqual(['d1', 'd2']);
    expect(t2.info().delayed).toBe(1);
    await s2.close();
    const s3 = await open({ dataDir: dir, clock });
    expect(s3.topic('t')!.info()).toMatchObject({ delayed: 1, messageDepth: 2 });
  });
});

describe('dedupe', () => {
  it('acknowledges a repeated id within the window without a second copy', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0, dedupeWindowMs: 60_000 });
    const [a, b] = await Promise.all([
      t.append({ id: 'same', data: enc('1') }),
      t.append({ id: 'same', data: enc('2') }),
    ]);
    expect(a).toMatchObject({ offset: 0, duplicate: false });
    expect(b).toMatchObject({ offset: 0, duplicate: true });
    const c = await t.append({ id: 'same', data: enc('3') });
    expect(c).toMatchObject({ offset: 0, duplicate: true });
    expect(t.info().messageDepth).toBe(1);
  });

  it('accepts the id again once the window passed', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('t', { mask: 0, dedupeWindowMs: 30 });
    await t.append({ id: 'x', data: enc('') });
    clock.advance(29);
    expect((await t.append({ id: 'x', data: enc('') })).duplicate).toBe(true);
    clock.advance(1);
    expect((await t.append({ id: 'x', data: enc('') })).duplicate).toBe(false);
  });

  it('remembers ids across a reopen', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0, dedupeWindowMs: 60_000 });
    await appendMany(t1, 5);
    await s1.close();
    const s2 = await open({ dataDir: dir });
    const r = await s2.topic('t')!.append({ id: 'm3', data: enc('') });
    expect(r).toMatchObject({ duplicate: true, offset: 3 });
  });

  it('is off by default', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    await t.append({ id: 'x', data: enc('') });
    expect((await t.append({ id: 'x', data: enc('') })).offset).toBe(1);
  });
});

async function logFiles(dir: string): Promise<string[]> {
  return (await fs.promises.readdir(dir)).filter((f) => f.endsWith('.log'));
}

describe('retention', () => {
  it('deletes whole old segments beyond maxMessages, never the active one, and moves groups forward', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir, segmentBytes: 1024 });
    const t = await store.declareTopic('t', { mask: 0, retention: { maxMessages: 30 } });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 200);
    // Retention deletes segment by segment in the background: wait until it has caught up.
    await until(() => {
      const i = t.info();
      return i.firstOffset > 100 && i.nextOffset - i.firstOffset <= 60 ? true : undefined;
    });
    const info = t.info();
    expect(info.messageDepth).toBe(200);
    expect(info.nextOffset - info.firstOffset).toBeGreaterThanOrEqual(30);
    expect(info.nextOffset - info.firstOffset).toBeLessThanOrEqual(60);
    expect((await logFiles(path.join(dir, 't'))).length).toBeGreaterThanOrEqual(1);
    const first = (await g.next())!;
    expect(first.offset).toBeGreaterThanOrEqual(info.firstOffset);
    expect(first.id).toBe(`m${first.offset}`);
    expect(await t.read(0)).toBeUndefined();
  });

  it('deletes by bytes', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir, segmentBytes: 2048 });
    const t = await store.declareTopic('t', { mask: 0, retention: { maxBytes: 5000 } });
    await appendMany(t, 400);
    await until(() => (t.info().bytes <= 5000 + 2048 ? true : undefined));
    expect(t.info().firstOffset).toBeGreaterThan(0);
    expect(t.info().bytes).toBeGreaterThanOrEqual(5000);
  });

  it('deletes by age, on a timer', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const store = await open({ dataDir: dir, segmentBytes: 1024, clock });
    const t = await store.declareTopic('t', { mask: 0, retention: { maxAgeMs: 100 } });
    await appendMany(t, 100);
    const segments = (await logFiles(path.join(dir, 't'))).length;
    expect(segments).toBeGreaterThan(2);
    clock.advance(100);
    expect(t.info().firstOffset).toBe(0);
    clock.advance(100); // the second check finds every sealed segment older than 100 ms
    // Deleted one by one: wait for the last of them.
    await until(async () => ((await logFiles(path.join(dir, 't'))).length === 1 ? true : undefined));
    expect(t.info().firstOffset).toBeGreaterThan(0);
    expect((await t.append({ id: 'fresh', data: enc('') })).offset).toBe(100);
  });
});

describe('empty and remove', () => {
  it('topic.empty() removes every message and moves groups to the end; offsets keep counting', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir, segmentBytes: 1024 });
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 50);
    await g.next();
    await t.empty();
    expect(t.info()).toMatchObject({ messageDepth: 50, firstOffset: 50, nextOffset: 50 });
    expect(g.info()).toMatchObject({ backlog: 0, position: 50 });
    expect(await g.next()).toBeUndefined();
    expect(await t.read(3)).toBeUndefined();
    expect((await t.append({ id: 'n', data: enc('') })).offset).toBe(50);
    expect((await g.next())?.id).toBe('n');
    await store.close();
    const s2 = await open({ dataDir: dir });
    expect(s2.topic('t')!.info()).toMatchObject({ firstOffset: 50, nextOffset: 51 });
  });

  it('empty under active readers and writers does not crash', async () => {
    const store = await open({ segmentBytes: 2048 });
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: STORE_MASK_ACK_REQUIRED });
    await appendMany(t, 200);
    const readers = Array.from({ length: 20 }, () => g.next());
    const writers = appendMany(t, 50, 'w');
    await t.empty();
    await Promise.all([...readers, writers]);
    await drain(g);
  });

  it('removing a group while next() calls are in flight resolves them undefined', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 100);
    const inflight = Array.from({ length: 50 }, () => g.next());
    expect(await t.removeGroup('G')).toBe(true);
    const results = await Promise.all(inflight);
    expect(results.some((r) => r === undefined)).toBe(true);
    expect(t.group('g')).toBeUndefined();
    expect(await t.removeGroup('g')).toBe(false);
    expect(await g.next()).toBeUndefined();
  });

  it('removing a topic while reads and appends are in flight ends them cleanly and deletes the directory', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir });
    const t = await store.declareTopic('Gone', { mask: 0 });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 100);
    const nexts = Array.from({ length: 30 }, () => g.next());
    const reads = Array.from({ length: 30 }, (_, i) => t.read(i));
    const appends = Array.from({ length: 30 }, (_, i) => t.append({ id: `late${i}`, data: enc('') }));
    const settled = Promise.allSettled([...nexts, ...reads, ...appends]);
    expect(await store.removeTopic('gone')).toBe(true);
    for (const r of await settled) {
      if (r.status === 'rejected') expect(r.reason.code).toBe('ZBUS_ERR_NOT_FOUND');
    }
    expect(store.topic('Gone')).toBeUndefined();
    expect(await fs.promises.readdir(dir)).toEqual([]);
    await expect(t.append({ id: 'x', data: enc('') })).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND' });
    expect(await g.next()).toBeUndefined();
  });
});

describe('memory topics', () => {
  it('keep nothing on disk and give each group its own position', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir });
    const t = await store.declareTopic('mem', { mask: 1 });
    const a = await t.declareGroup('a', {});
    const b = await t.declareGroup('b', { filter: 'x' });
    await t.append({ id: '1', tag: 'x', data: enc('') });
    await t.append({ id: '2', tag: 'y', data: enc('') });
    expect(await drain(a)).toEqual(['1', '2']);
    expect(await drain(b)).toEqual(['1']);
    expect(await fs.promises.readdir(dir)).toEqual([]);
    expect(t.info()).toMatchObject({ messageDepth: 2, mask: 1 });
    await store.close();
    const s2 = await open({ dataDir: dir });
    expect(s2.topic('mem')).toBeUndefined();
  });

  it('reject an append with ZBUS_ERR_LIMIT when the slowest group would lose data', async () => {
    const store = await open();
    const t = await store.declareTopic('mem', { mask: 1, maxBacklog: 3 });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 3);
    await expect(t.append({ id: 'x', data: enc('') })).rejects.toMatchObject({
      code: 'ZBUS_ERR_LIMIT',
      message: 'memory topic mem is full (maxBacklog=3)',
    });
    await g.next();
    expect((await t.append({ id: 'y', data: enc('') })).offset).toBe(3);
    expect(await drain(g)).toEqual(['m1', 'm2', 'y']);
  });

  it('default to a capacity of 1000 and drop the oldest when no group is behind', async () => {
    const store = await open();
    const t = await store.declareTopic('mem', { mask: 1 });
    await appendMany(t, 1500);
    expect(t.info()).toMatchObject({ firstOffset: 500, nextOffset: 1500 });
    const g = await t.declareGroup('g', {});
    expect((await g.next())?.id).toBe('m500');
  });

  it('notify listeners on append', async () => {
    const store = await open();
    const t = await store.declareTopic('mem', { mask: 1 });
    const seen = available(t);
    await t.append({ id: '1', data: enc('') });
    await seen;
  });
});

describe('declare', () => {
  // Three: the second and third wait for the first, then re-declare at once (each write of topic.json has a
  // temp file of its own, fs-util.ts writeFileAtomic).
  it('opens a topic and a group once when declares of the same name overlap', async () => {
    const store = await open();
    const [t, t2, t3] = await Promise.all([
      store.declareTopic('Same', { mask: 0 }),
      store.declareTopic('same', { mask: 0 }),
      store.declareTopic('SAME', { mask: 0 }),
    ]);
    expect(t2).toBe(t);
    expect(t3).toBe(t);
    expect(store.topics()).toHaveLength(1);
    const [g, g2, g3] = await Promise.all([
      t.declareGroup('g', {}),
      t.declareGroup('G', {}),
      t.declareGroup('g', {}),
    ]);
    expect(g2).toBe(g);
    expect(g3).toBe(g);
    expect(t.groups()).toHaveLength(1);
  });
});
