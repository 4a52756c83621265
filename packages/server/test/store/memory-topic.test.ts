// A memory topic's own storage: records are copied into chunks it fills in order (no buffer per record), held
// no longer than the ring holds them, and appended without a promise where the caller can take it at once.
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
