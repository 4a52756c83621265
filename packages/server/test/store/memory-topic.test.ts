// A memory topic's own storage: records are copied into chunks it fills in order (no buffer per record), held
// no longer than the ring holds them, and appended without a promise where the caller can take it at once.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ManualClock } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { RecordArena } from '../../src/store/memory-topic.js';
import { dec, enc, open } from './helpers.js';

describe('a memory topic stores', () => {
  it('copies of the appended bytes, packed into shared chunks', async () => {
    const store = await open();
    const t = await store.declareTopic('mem', { mask: 1, maxBacklog: 100_000 });
    const socketChunk = enc('abcdefghij'.repeat(10));
    const N = 2000;
    for (let i = 0; i < N; i++)
      t.appendNow!({ id: `m${i}`, data: socketChunk.subarray(i % 50, (i % 50) + 40) });
    socketChunk.fill(0); // the caller's bytes change afterwards (a socket chunk reused)
    const records = await Promise.all(Array.from({ length: N }, (_, i) => t.read(i)));
    expect(records.map((r) => dec(r!.data))).toEqual(
      Array.from({ length: N }, (_, i) => 'abcdefghij'.repeat(10).slice(i % 50, (i % 50) + 40)),
    );
    // 80 KB of records in far fewer buffers than records.
    expect(new Set(records.map((r) => r!.data.buffer)).size).toBeLessThan(N / 20);
    expect(t.info().bytes).toBe(40 * N);
  });

  it('appends at once with appendNow, and throws what append rejects with', async () => {
    const store = await open();
    const t = await store.declareTopic('mem', { mask: 1, maxBacklog: 1 });
    await t.declareGroup('g', {});
    expect(t.appendNow!({ id: 'a', data: enc('x') })).toMatchObject({ offset: 0, durability: 'memory' });
    expect(() => t.appendNow!({ id: 'b', data: enc('y') })).toThrow(
      expect.objectContaining({ code: 'ZBUS_ERR_LIMIT' }),
    );
    await expect(t.append({ id: 'b', data: enc('y') })).rejects.toMatchObject({ code: 'ZBUS_ERR_LIMIT' });
  });
});

describe('the bytes all memory topics hold', () => {
  const KiB = 1024;
  /** A message of `n` KiB; it costs the budget n KiB plus its id and 128 bytes. */
  const kib = (id: string, n: number) => ({ id, data: new Uint8Array(n * KiB) });
  const limited = () =>
    expect.objectContaining({
      code: 'ZBUS_ERR_LIMIT',
      message: expect.stringContaining('maxMemoryTopicBytes'),
    });

  it('are bounded across topics: past the bound a produce fails, whatever the topic and its capacity', async () => {
    const store = await open({ maxMemoryTopicBytes: 1024 * KiB });
    const topics = await Promise.all(
      ['a', 'b', 'c'].map((n) => store.declareTopic(n, { mask: 1, maxBacklog: 1000 })),
    );
    // A group that never reads: nothing may be dropped.
    for (const t of topics) await t.declareGroup('slow', {});
    let stored = 0;
    for (let i = 0; i < 30 && stored < 100; i++) {
      for (const t of topics) {
        try {
          t.appendNow!(kib(`m${i}`, 100));
          stored++;
        } catch (err) {
          expect(err).toEqual(limited());
        }
      }
    }
    // Ten messages of 100 KiB (and their 128-byte costs) fit in 1 MiB; before the bound, all 90 were held.
    expect(stored).toBe(10);
    expect(topics.reduce((n, t) => n + t.info().bytes, 0)).toBe(1000 * KiB);
  });

  it('make room by dropping what every group has read, in another topic too', async () => {
    const store = await open({ maxMemoryTopicBytes: 1024 * KiB });
    const quiet = await store.declareTopic('quiet', { mask: 1, maxBacklog: 1000 });
    const g = await quiet.declareGroup('g', {});
    for (let i = 0; i < 9; i++) quiet.appendNow!(kib(`q${i}`, 100));
    const busy = await store.declareTopic('busy', { mask: 1, maxBacklog: 1000 });
    await busy.declareGroup('reader', {});
    busy.appendNow!(kib('b0', 100));
    // Full: quiet's nine are unread.
    expect(() => busy.appendNow!(kib('b1', 100))).toThrow(limited());
    // Once read, they are what a ring would drop first anyway; they make room for busy's.
    for (let i = 0; i < 5; i++) await g.next();
    for (let i = 1; i <= 5; i++) busy.appendNow!(kib(`b${i}`, 100));
    expect(quiet.info()).toMatchObject({ firstOffset: 5, nextOffset: 9, bytes: 400 * KiB });
    expect(() => busy.appendNow!(kib('b6', 100))).toThrow(limited());
    // A topic removed gives its bytes back.
    await store.removeTopic('quiet');
    for (let i = 6; i < 10; i++) busy.appendNow!(kib(`b${i}`, 100));
  });

  it('count delayed messages until they are due, and ring messages after', async () => {
    const clock = new ManualClock();
    const store = await open({ maxMemoryTopicBytes: 1024 * KiB, clock });
    const t = await store.declareTopic('later', { mask: 1, maxBacklog: 1000 });
    await t.declareGroup('slow', {});
    const due = clock.now() + 60_000;
    for (let i = 0; i < 10; i++) t.appendNow!({ ...kib(`d${i}`, 100), deliverAt: due });
    expect(t.info()).toMatchObject({ delayed: 10, bytes: 0 });
    expect(() => t.appendNow!({ ...kib('d10', 100), deliverAt: due })).toThrow(limited());
    expect(() => t.appendNow!(kib('now', 100))).toThrow(limited());
    clock.advance(60_000);
    await expect.poll(() => t.info()).toMatchObject({ delayed: 0, bytes: 1000 * KiB });
    expect(() => t.appendNow!(kib('now', 100))).toThrow(limited());
  });
});

describe('the store keeps', () => {
  /** The heap in use after a full collection. */
  const heap = () => {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    return process.memoryUsage().heapUsed;
  };

  it("no message's decoded head alive through its id or tag", async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('mem', { mask: 1, maxBacklog: 1000 });
    await t.declareGroup('slow', {});
    const before = heap();
    // As the decoder gives them: id and tag are slices of a head of 100 KB (one made per message).
    for (let i = 0; i < 200; i++) {
      const head = `${'h'.repeat(100_000)}id-${String(i).padStart(40, '0')}|tag-${i}-${'t'.repeat(20)}`;
      const id = head.slice(100_000, 100_043);
      const tag = head.slice(100_044);
      t.appendNow!({ id, tag, data: enc('x'), deliverAt: i % 2 === 0 ? undefined : clock.now() + 60_000 });
    }
    // Before, the 200 heads (20 MB) stayed alive with the ids and tags kept.
    expect(heap() - before).toBeLessThan(4_000_000);
    clock.advance(60_000);
    await expect.poll(() => t.info().delayed).toBe(0);
    expect((await t.read(0))?.id).toBe(`id-${'0'.repeat(40)}`);
  });

  it('no decoded head alive through the names of the topics and groups it keeps, nor through a dedupe id', async () => {
    const store = await open();
    const disk = await store.declareTopic('disk', { mask: 0, dedupeWindowMs: 60_000 });
    const before = heap();
    const slice = (i: number, what: string) =>
      `${'h'.repeat(100_000)}${what}-${String(i).padStart(30, '0')}`.slice(100_000);
    for (let i = 0; i < 50; i++) {
      const mem = await store.declareTopic(slice(i, 'memory-topic'), { mask: 1 });
      await mem.declareGroup(slice(i, 'memory-group'), {});
      await disk.declareGroup(slice(i, 'disk-group'), {});
      await disk.append({ id: slice(i, 'deduped-id'), data: enc('x') });
    }
    // Before, the 200 heads (20 MB) stayed alive with the names and ids kept.
    expect(heap() - before).toBeLessThan(4_000_000);
  });
});

describe('RecordArena', () => {
  it('sizes chunks by the bytes the ring holds: a quiet topic holds a small one', () => {
    const a = new RecordArena();
    const first = a.copy(enc('hello'), 0);
    expect(dec(first)).toBe('hello');
    expect(first.buffer.byteLength).toBe(1024);
    const busy = new RecordArena();
    expect(busy.copy(enc('hello'), 100 * 1024 * 1024).buffer.byteLength).toBe(64 * 1024);
  });

  it('gives a record over an eighth of a chunk a buffer of its own', () => {
    const a = new RecordArena();
    const big = new Uint8Array(9000).fill(7);
    const copy = a.copy(big, 100 * 1024 * 1024);
    expect(copy.buffer.byteLength).toBe(9000);
    expect(copy).toEqual(big);
    expect(copy.buffer).not.toBe(big.buffer);
  });

  it('never hands out overlapping bytes', () => {
    const a = new RecordArena();
    const copies = Array.from({ length: 500 }, (_, i) => a.copy(enc(`r${i}-`.repeat(7)), 64 * 1024));
    expect(copies.map(dec)).toEqual(Array.from({ length: 500 }, (_, i) => `r${i}-`.repeat(7)));
  });
});
