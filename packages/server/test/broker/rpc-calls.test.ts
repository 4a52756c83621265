// RpcCalls on its own, on a manual clock: calls are found by caller and id, settle once, time out at the sweep
// after their deadline and go with their caller.
import { ManualClock } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { type Caller, RpcCalls } from '../../src/rpc/calls.js';
import { exposedGc, promotedByScavenges } from './helpers.js';

const caller = (id: string): Caller => ({ id, deliverRouted: () => true });

describe('RpcCalls', () => {
  it('finds a call by caller and id until it is settled, once', () => {
    const calls = new RpcCalls();
    const a = caller('a');
    calls.add(a, '1', 'T', 1000, () => {});
    calls.add(caller('b'), '1', 'U', 1000, () => {});
    expect(calls.waiting('a', '1')?.topic).toBe('T');
    expect(calls.waiting('b', '1')?.topic).toBe('U');
    expect(calls.waiting('a', '2')).toBeUndefined();
    expect(calls.size).toBe(2);
    expect(calls.settle('a', '1')).toBe(true);
    expect(calls.settle('a', '1')).toBe(false);
    expect(calls.waiting('a', '1')).toBeUndefined();
    expect(calls.size).toBe(1);
    calls.close();
  });

  it('times calls out at their deadline with one timer, and stops when none is left', () => {
    const clock = new ManualClock();
    const calls = new RpcCalls(clock);
    const timedOut: string[] = [];
    calls.add(caller('a'), 'short', 'T', 100, () => timedOut.push('short'));
    calls.add(caller('a'), 'long', 'T', 1000, () => timedOut.push('long'));
    calls.add(caller('b'), 'answered', 'T', 100, () => timedOut.push('answered'));
    calls.settle('b', 'answered');
    expect(clock.pending).toBe(1);
    clock.advance(99);
    expect(timedOut).toEqual([]);
    clock.advance(1);
    expect(timedOut).toEqual(['short']);
    expect(calls.size).toBe(1);
    clock.advance(899);
    expect(timedOut).toEqual(['short']);
    clock.advance(1);
    expect(timedOut).toEqual(['short', 'long']);
    expect([calls.size, clock.pending]).toEqual([0, 0]);
    // A caller that comes back after its last call was swept starts afresh.
    calls.add(caller('a'), 'again', 'T', 100, () => timedOut.push('again'));
    expect(calls.waiting('a', 'again')?.id).toBe('again');
    calls.close();
    expect(clock.pending).toBe(0);
  });

  it('sweeps at most once per 50 ms however close the deadlines', () => {
    const clock = new ManualClock();
    const calls = new RpcCalls(clock);
    const timedOut: number[] = [];
    calls.add(caller('a'), '0', 'T', 10, () => timedOut.push(clock.now()));
    const start = clock.now();
    clock.advance(10);
    for (let i = 1; i <= 3; i++) calls.add(caller('a'), String(i), 'T', i, () => timedOut.push(clock.now()));
    clock.advance(100);
    // The first at its deadline; the next three, due 1 to 3 ms later, together at the following sweep.
    expect(timedOut.map((t) => t - start)).toEqual([10, 60, 60, 60]);
    calls.close();
  });

  it('drops a caller that went away with all its calls, and only its own', () => {
    const calls = new RpcCalls();
    const a = caller('a');
    for (const id of ['1', '2', '3']) calls.add(a, id, 'T', 1000, () => {});
    calls.add(caller('b'), '1', 'T', 1000, () => {});
    calls.dropSession(a);
    expect([calls.size, calls.waiting('a', '2'), calls.waiting('b', '1')?.id]).toEqual([1, undefined, '1']);
    const answered: string[] = [];
    calls.close((c, id) => answered.push(`${c.id}/${id}`));
    expect([answered, calls.size]).toEqual([['b/1'], 0]);
  });

  it('lets go of what the timeout handler of a settled call holds, while the call is still referenced', async () => {
    const gc = exposedGc();
    const calls = new RpcCalls();
    // The handler holds the request's bytes, as the produce command's does (its context and stored form).
    const add = (id: string): WeakRef<object> => {
      const request = { bytes: new Uint8Array(1024) };
      calls.add(caller('a'), id, 'T', 1000, () => request.bytes.fill(0));
      return new WeakRef(request);
    };
    const settled = add('settled');
    const taken = add('taken');
    const waiting = add('waiting');
    // A table a churning Map left behind keeps its entries reachable in this way until a mark-compact.
    const kept = [calls.waiting('a', 'settled')!, calls.take('a', 'taken')!];
    expect(calls.settleCall(kept[0]!)).toBe(true);
    await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets live until the job ends
    gc();
    expect([settled.deref(), taken.deref(), waiting.deref() !== undefined]).toEqual([
      undefined,
      undefined,
      true,
    ]);
    expect(kept.map((c) => c.id)).toEqual(['settled', 'taken']);
    calls.close();
  });

  it('lets settled calls die young after a burst of calls, with 32 in flight', async () => {
    const gc = exposedGc();
    const calls = new RpcCalls(new ManualClock());
    const a = caller('a');
    // Ids are slices of a request's head, as the broker's are.
    const id = (i: number): string => `id: ${i}-${'x'.repeat(36)}\r\n`.slice(4, -2);
    const burst = Array.from({ length: 30_000 }, (_, i) => id(i));
    for (const x of burst) calls.add(a, x, 'T', 1000, () => {});
    for (let i = 0; i < 4; i++) gc({ type: 'minor' }); // the caller's Map now sits in the old generation
    for (const x of burst) calls.settle('a', x);
    const inFlight: string[] = [];
    const run = (from: number, n: number): void => {
      for (let i = from; i < from + n; i++) {
        const x = id(burst.length + i);
        calls.add(a, x, 'T', 1000, () => {});
        inFlight.push(x);
        if (inFlight.length > 32) calls.take('a', inFlight.shift()!);
        if (i % 500 === 0) gc({ type: 'minor' });
      }
    };
    run(0, 1000); // the burst's leftovers go
    const promoted = await promotedByScavenges(() => run(1000, 20_000));
    // 110-330 bytes per call while every later table of the Map was born old and kept its calls.
    expect(promoted / 20_000).toBeLessThan(60);
    calls.close();
  });

  it('copies at most one call per settled call when it renews a caller with many calls in flight', () => {
    const calls = new RpcCalls(new ManualClock());
    const a = caller('a');
    const ids = Array.from({ length: 30_000 }, (_, i) => String(i));
    for (const id of ids) calls.add(a, id, 'T', 1000, () => {});
    const RealMap = globalThis.Map;
    let copied = 0;
    globalThis.Map = class<K, V> extends RealMap<K, V> {
      override set(key: K, value: V): this {
        copied++;
        return super.set(key, value);
      }
    };
    try {
      for (const id of ids) calls.settle('a', id);
    } finally {
      globalThis.Map = RealMap;
    }
    expect(calls.size).toBe(0);
    // A copy every 1,024 settled calls would have made about 440,000 sets here.
    expect(copied).toBeLessThanOrEqual(ids.length);
    calls.close();
  });
});
