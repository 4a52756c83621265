import fs from 'node:fs';
import { ManualClock } from '@zbus/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { appendMany, drain, enc, open } from './helpers.js';

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

  it('reads the clock once per append (its timestamp) when no dedupe window or delivery time needs it', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('t', { mask: 0 });
    await appendMany(t, 10);
    const append = (i: number) =>
      new Promise((resolve, reject) => t.appendThen!({ id: `n${i}`, data: enc('x') }, resolve, reject));
    const reads = vi.spyOn(clock, 'now');
    await Promise.all(Array.from({ length: 100 }, (_, i) => append(i)));
    expect(reads.mock.calls.length).toBe(100);
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

  it("the writer reads a record's id once, as it writes it", async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const id = 'a3089e3f-aaea-4c08-a874-f5140affd07b';
    // Other code calls charCodeAt too: only the calls on this id count. Measuring it first made two passes.
    const spy = vi.spyOn(String.prototype, 'charCodeAt');
    await t.append({ id, tag: undefined, data: enc('x') });
    const onId = spy.mock.contexts.filter((s) => s === id).length;
    spy.mockRestore();
    expect(onId).toBe(id.length);
  });

  it("the writer writes a record's header without Buffer's write methods", async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const spies = [
      vi.spyOn(Buffer.prototype, 'writeUInt32LE'),
      vi.spyOn(Buffer.prototype, 'writeUInt16LE'),
      vi.spyOn(Buffer.prototype, 'writeDoubleLE'),
    ];
    await t.append({ id: 'm-1', tag: 'a', data: enc('x') });
    expect(spies.map((s) => s.mock.calls.length)).toEqual([0, 0, 0]);
  });

  it('fsync=always: producers that come back over several turns share an fdatasync', async () => {
    // Time moves only when every producer is stuck waiting for others that will not come (the end of the run):
    // no wait is cut short by the clock, so the count does not depend on the machine's load.
    const clock = new ManualClock();
    const store = await open({ fsync: 'always', clock });
    const t = await store.declareTopic('t', { mask: 0 });
    const producers = 8;
    const rounds = 12;
    const turns = (n: number) =>
      new Promise<void>((resolve) => {
        const step = (k: number): void => {
          if (k === 0) resolve();
          else setImmediate(() => step(k - 1));
        };
        step(n);
      });
    // An fdatasync returns three turns after it was called. A real one's length in turns is the machine's load
    // (under load it spanned more producers' returns, and the count rose past the limit in 2 runs of 12).
    let syncing = 0;
    vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, cb: (err: Error | null) => void) => {
      syncing++;
      void turns(3).then(() => {
        syncing--;
        cb(null);
      });
    }) as typeof fs.fdatasync);
    let acks = 0;
    let running = producers;
    // Producer i sends its next message i + 1 turns of the event loop after its ack, as if over a network.
    const loops = Array.from({ length: producers }, async (_, i) => {
      for (let r = 0; r < rounds; r++) {
        await t.append({ id: `p${i}-${r}`, data: enc('x') });
        acks++;
        await turns(i + 1);
      }
      running--;
    });
    for (let quiet = 0, seen = 0; running > 0; ) {
      await turns(1);
      if (acks !== seen || syncing > 0) {
        seen = acks;
        quiet = 0;
      } else if (++quiet === 4 * producers) clock.advance(1); // the ones left wait for producers that are done
    }
    await Promise.all(loops);
    const { recordsPerSync } = store.commits!;
    expect(recordsPerSync.sum).toBe(producers * rounds);
    // Taking every free slot at once (groupCommitWaitMs: 0) takes 55 fdatasyncs here; waiting for the expected
    // producers, 31, and 37 since an idle disk starts as soon as half of them are queued.
    expect(recordsPerSync.count).toBeLessThanOrEqual((producers * rounds) / 2);
  });
});
