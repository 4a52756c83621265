import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { appendMany, drain, open } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('efficiency', () => {
  it('a group streaming through the log reads ahead instead of one fs call per record', async () => {
    const store = await open({ segmentBytes: 256 * 1024 });
    const t = await store.declareTopic('t', { mask: 0 });
    await appendMany(t, 5000);
    const g = await t.declareGroup('g', { start: { offset: 0 } });
    const spy = vi.spyOn(fs, 'read');
    expect((await drain(g)).length).toBe(5000);
    expect(spy.mock.calls.length).toBeLessThan(30);
  });

  it('ack deadlines use one timer per topic, not one per message', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', {
      mask: STORE_MASK_ACK_REQUIRED,
      ackWindow: 500,
      ackTimeoutMs: 60_000,
    });
    await appendMany(t, 300);
    const spy = vi.spyOn(globalThis, 'setTimeout');
    expect((await drain(g)).length).toBe(300);
    // One for the ack deadline, one for the position checkpoint (plus none per message).
    expect(spy.mock.calls.length).toBeLessThanOrEqual(3);
  });

  it('the sparse index keeps far fewer entries than messages', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    await appendMany(t, 20_000);
    const log = (t as unknown as { reader: { log: { segments: Array<{ oix: { length: number } }> } } }).reader
      .log;
    const entries = log.segments.reduce((n, s) => n + s.oix.length, 0);
    expect(entries).toBeLessThan(20_000 / 50);
  });
});
