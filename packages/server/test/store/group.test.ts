import { describe, expect, it, vi } from 'vitest';
import { Segment } from '../../src/store/segment.js';
import { STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { appendMany, available, drain, enc, open, tempDir } from './helpers.js';

describe('consume groups', () => {
  it('skips records that do not pass the filter and moves past them', async () => {
    const store = await open();
    const t = await store.declareTopic('stock', { mask: 0 });
    const g = await t.declareGroup('hk', { filter: 'Stock.HK.#' });
    await t.append({ id: '1', tag: 'Stock.HK.0700', data: enc('a') });
    await t.append({ id: '2', tag: 'Stock.US.AAPL', data: enc('b') });
    await t.append({ id: '3', data: enc('c') });
    await t.append({ id: '4', tag: 'Stock.HK', data: enc('d') });
    expect(await drain(g)).toEqual(['1', '4']);
    expect(g.info().position).toBe(4);
    expect(g.info().backlog).toBe(0);
  });

  it('a message without a tag reaches only groups without a filter', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const all = await t.declareGroup('all', {});
    const acc = await t.declareGroup('acc', { filter: '*.account.#;audit' });
    await t.append({ id: 'n', data: enc('x') });
    await t.append({ id: 'u', tag: 'user.account.created', data: enc('x') });
    await t.append({ id: 'a', tag: 'audit', data: enc('x') });
    expect(await drain(all)).toEqual(['n', 'u', 'a']);
    expect(await drain(acc)).toEqual(['u', 'a']);
  });

  it('each group has its own position (multicast)', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const a = await t.declareGroup('a', {});
    const b = await t.declareGroup('b', {});
    await appendMany(t, 3);
    expect(await drain(a)).toEqual(['m0', 'm1', 'm2']);
    expect(await drain(b)).toEqual(['m0', 'm1', 'm2']);
  });

  it('overlapping next() calls on one group each get a distinct record', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 20);
    const ds = await Promise.all(Array.from({ length: 25 }, () => g.next()));
    const ids = ds.filter((d) => d !== undefined).map((d) => d!.id);
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  });

  describe('start rules', () => {
    it('a new group starts at the most advanced group by default (no replay)', async () => {
      const store = await open();
      const t = await store.declareTopic('t', { mask: 0 });
      const first = await t.declareGroup('first', {});
      expect(first.info().position).toBe(0);
      await appendMany(t, 5);
      await first.next();
      await first.next();
      const slow = await t.declareGroup('slow', { start: { offset: 1 } });
      expect(slow.info().position).toBe(1);
      const late = await t.declareGroup('late', {});
      expect(late.info().position).toBe(2);
    });

    it('the first group of a topic starts at the start of the log', async () => {
      const store = await open();
      const t = await store.declareTopic('t', { mask: 0 });
      await appendMany(t, 3);
      const g = await t.declareGroup('g', {});
      expect((await g.next())?.id).toBe('m0');
    });

    it('copies the position of the group named in start.copy', async () => {
      const store = await open();
      const t = await store.declareTopic('t', { mask: 0 });
      const a = await t.declareGroup('a', {});
      await appendMany(t, 5);
      const b = await t.declareGroup('b', {});
      await drain(b);
      await a.next();
      const c = await t.declareGroup('c', { start: { copy: 'A' } });
      expect(c.info().position).toBe(1);
      const d = await t.declareGroup('d', { start: { copy: 'missing' } });
      expect(d.info().position).toBe(5);
    });

    it('checks start.msgId against the record at start.offset (ZBUS_ERR_SEEK)', async () => {
      const store = await open();
      const t = await store.declareTopic('t', { mask: 0 });
      await appendMany(t, 5);
      const ok = await t.declareGroup('ok', { start: { offset: 3, msgId: 'm3' } });
      expect((await ok.next())?.id).toBe('m3');
      await expect(t.declareGroup('bad', { start: { offset: 3, msgId: 'm4' } })).rejects.toMatchObject({
        code: 'ZBUS_ERR_SEEK',
      });
      expect(t.group('bad')).toBeUndefined();
    });

    it('a re-declare changes filter and position and clears an absent filter', async () => {
      const store = await open();
      const t = await store.declareTopic('t', { mask: 0 });
      const g = await t.declareGroup('g', { filter: 'a' });
      await t.append({ id: '1', tag: 'a', data: enc('') });
      await t.append({ id: '2', tag: 'b', data: enc('') });
      expect(await drain(g)).toEqual(['1']);
      const again = await t.declareGroup('G', { start: { offset: 0 } });
      expect(again).toBe(g);
      expect(g.filter).toBe('');
      expect(await drain(g)).toEqual(['1', '2']);
    });
  });

  it('nextNow() hands out what the read window holds at once, and says when it must wait', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    await appendMany(await s1.declareTopic('t', { mask: 0 }), 300);
    await s1.close();
    // Reopened: nothing is in the recently written batches, every record comes from the file.
    const t = (await open({ dataDir: dir })).topic('t')!;
    const g = await t.declareGroup('g', { start: { offset: 0 } });
    const ack = await t.declareGroup('a', { mask: STORE_MASK_ACK_REQUIRED, start: { offset: 0 } });
    expect(g.nextNow!()).toBeNull(); // the window is empty: a read first
    expect((await g.next())?.id).toBe('m0');
    const ids: string[] = [];
    for (let d = g.nextNow!(); d; d = g.nextNow!()) ids.push(d.id);
    // 300 small records fit in one 64 KiB read: the rest come without waiting, then nothing is ready.
    expect(ids).toEqual(Array.from({ length: 299 }, (_, i) => `m${i + 1}`));
    expect(g.nextNow!()).toBeUndefined();
    // Never past an operation in flight, nor in ack mode (its deliveries are journaled first).
    const pending = g.next();
    expect(g.nextNow!()).toBeNull();
    expect(await pending).toBeUndefined();
    expect(ack.nextNow!()).toBeNull();
    expect((await ack.next())?.id).toBe('m0');
  });

  it('a group behind many small write batches catches up from memory, without a read', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', {});
    // One append at a time: 500 write batches of one record each (a producer at a steady rate), ~100 KiB.
    for (let i = 0; i < 500; i++) await t.append({ id: `m${i}`, data: enc(`m${i}`.padEnd(160, '.')) });
    const ids: string[] = [];
    for (let d = g.nextNow!(); d; d = g.nextNow!()) ids.push(d.id);
    // Only the last 4 batches were kept before: the group had to read the file from m0 on.
    expect(ids).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));
    expect(g.nextNow!()).toBeUndefined();
  });

  it('a group far behind reads the file in growing windows', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    await t1.declareGroup('g', {});
    // About 3 MiB behind: 10,000 records of 300 bytes.
    const data = enc('x'.repeat(300));
    for (let i = 0; i < 10; i++) {
      await Promise.all(Array.from({ length: 1000 }, (_, j) => t1.append({ id: `m${i * 1000 + j}`, data })));
    }
    await s1.close();
    // Reopened: nothing is in the recently written batches, every record comes from the file.
    const g = (await open({ dataDir: dir })).topic('t')!.group('g')!;
    const reads = vi.spyOn(Segment.prototype, 'read');
    let n = 0;
    for (;;) {
      let d = g.nextNow!();
      if (d === null) d = await g.next();
      if (d === undefined) break;
      expect(d.id).toBe(`m${n++}`);
    }
    const made = reads.mock.calls.length;
    vi.restoreAllMocks();
    expect(n).toBe(10_000);
    // 64 KiB at a time took 53 reads; doubling up to 1 MiB takes 10.
    expect(made).toBeLessThan(12);
  });

  it('reopen keeps groups, filters and positions', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    const g1 = await t1.declareGroup('Workers', { filter: 'x.#', mask: 0, creator: 'me' });
    for (let i = 0; i < 6; i++) await t1.append({ id: `${i}`, tag: 'x.y', data: enc('') });
    await g1.next();
    await g1.next();
    await s1.close();
    const s2 = await open({ dataDir: dir });
    const g2 = s2.topic('t')!.group('workers')!;
    expect(g2.name).toBe('Workers');
    expect(g2.filter).toBe('x.#');
    expect(g2.info().position).toBe(2);
    expect(g2.info().creator).toBe('me');
    expect((await g2.next())?.id).toBe('2');
  });

  it('group.empty() moves the group to the end and drops pending acks', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: STORE_MASK_ACK_REQUIRED });
    await appendMany(t, 5);
    await g.next();
    expect(g.info().unacked).toBe(1);
    await g.empty();
    expect(g.info()).toMatchObject({ unacked: 0, backlog: 0, position: 5 });
    expect(await g.next()).toBeUndefined();
  });

  it('calls onAvailable listeners after an append', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const seen = available(t);
    await t.append({ id: '1', data: enc('') });
    await seen;
  });

  it('maxBacklog on a disk topic rejects appends with ZBUS_ERR_LIMIT when the slowest group is that far behind', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0, maxBacklog: 3 });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 3);
    await expect(t.append({ id: 'x', data: enc('') })).rejects.toMatchObject({ code: 'ZBUS_ERR_LIMIT' });
    await g.next();
    await t.append({ id: 'y', data: enc('') });
  });
});
