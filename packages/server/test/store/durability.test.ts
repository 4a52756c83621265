import fs from 'node:fs';
import { ManualClock } from '@zbus/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { appendMany, enc, open, tempDir } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('durability', () => {
  it('group commit: one fsync covers every append that arrived meanwhile', async () => {
    const store = await open({ fsync: 'always' });
    const t = await store.declareTopic('gc', { mask: 0 });
    await t.append({ id: 'warm', data: enc('') });
    const spy = vi.spyOn(fs, 'fdatasync');
    const rs = await Promise.all(
      Array.from({ length: 64 }, (_, i) => t.append({ id: `${i}`, data: enc('x') })),
    );
    expect(rs.every((r) => r.durability === 'fsync')).toBe(true);
    expect(spy.mock.calls.length).toBeGreaterThan(0);
    expect(spy.mock.calls.length).toBeLessThanOrEqual(2);
  });

  it('appends that arrive while an fsync runs form the next batch', async () => {
    const store = await open({ fsync: 'always' });
    const t = await store.declareTopic('gc2', { mask: 0 });
    const spy = vi.spyOn(fs, 'fdatasync');
    const first = t.append({ id: 'a', data: enc('') });
    // Queue 32 more after the first batch has started.
    await new Promise((r) => setImmediate(r));
    const more = Array.from({ length: 32 }, (_, i) => t.append({ id: `b${i}`, data: enc('') }));
    await Promise.all([first, ...more]);
    expect(spy.mock.calls.length).toBeLessThanOrEqual(3);
  });

  it('interval policy resolves before the fsync and syncs once the interval has passed', async () => {
    const clock = new ManualClock();
    const store = await open({ fsync: { intervalMs: 20 }, clock });
    const t = await store.declareTopic('iv', { mask: 0 });
    const spy = vi.spyOn(fs, 'fdatasync');
    const r = await t.append({ id: 'a', data: enc('') });
    expect(r.durability).toBe('interval');
    const syncsAtResolve = spy.mock.calls.length;
    clock.advance(19);
    expect(spy.mock.calls.length).toBe(syncsAtResolve);
    clock.advance(1);
    expect(spy.mock.calls.length).toBe(syncsAtResolve + 1);
  });

  it('a per-topic policy overrides the store policy', async () => {
    const store = await open({ fsync: 'never' });
    const t = await store.declareTopic('p', { mask: 0, fsync: 'always' });
    expect((await t.append({ id: 'a', data: enc('') })).durability).toBe('fsync');
  });

  it('flush() and close() leave everything readable after reopen; a closed store refuses work', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir, fsync: 'never' });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    await appendMany(t1, 10);
    await s1.flush();
    await s1.close();
    await expect(s1.declareTopic('x', { mask: 0 })).rejects.toMatchObject({ code: 'ZBUS_ERR_CLOSED' });
    await expect(t1.append({ id: 'late', data: enc('') })).rejects.toMatchObject({ code: 'ZBUS_ERR_CLOSED' });
    const s2 = await open({ dataDir: dir });
    expect(s2.topic('t')!.info().messageDepth).toBe(10);
  });
});
