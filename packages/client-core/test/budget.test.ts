import { describe, expect, it } from 'vitest';
import { Budget } from '../src/budget.js';

/** Resolves after the microtasks queued so far ran (waiters' promises settle in them). */
const settled = () => new Promise<void>((r) => setImmediate(r));

describe('Budget', () => {
  it('admits waiters first come first served, by count and by bytes', async () => {
    const b = new Budget(2, 100);
    expect(b.acquire(60)).toBeUndefined();
    expect(b.acquire(50)).toBeDefined(); // over the bytes: waits, and so does everyone after it
    const order: string[] = [];
    const big = b.acquire(50) as Promise<void>;
    const small = b.acquire(1) as Promise<void>;
    big.then(() => order.push('big'));
    small.then(() => order.push('small'));
    b.release(60);
    await settled();
    // 50 (the first waiter) + 50 fit the 100 bytes but not the count of 2; 1 waits behind them
    expect(order).toEqual(['big']);
    expect([b.count, b.bytes]).toEqual([2, 100]);
    b.release(50);
    await settled();
    expect(order).toEqual(['big', 'small']);
    expect([b.count, b.bytes]).toEqual([2, 51]);
  });

  it('lets one item over maxBytes go alone', () => {
    const b = new Budget(10, 100);
    expect(b.acquire(1000)).toBeUndefined();
    expect(b.acquire(1)).toBeDefined();
  });

  it('skips a waiter that aborted, wherever it is in the queue, and admits the ones behind it', async () => {
    const b = new Budget(1, 1000);
    b.acquire(1);
    const ac = new AbortController();
    const admitted: number[] = [];
    const waits = [0, 1, 2, 3].map((i) => {
      const w = b.acquire(1, i === 1 || i === 2 ? ac.signal : undefined) as Promise<void>;
      return w.then(
        () => admitted.push(i),
        (err) => err,
      );
    });
    ac.abort(new Error('gone'));
    b.release(1);
    await settled();
    expect(admitted).toEqual([0]);
    b.release(1);
    await settled();
    expect(admitted).toEqual([0, 3]);
    expect((await waits[1]) as Error).toMatchObject({ message: 'gone' });
    b.release(1);
    expect(b.count).toBe(0);
    expect(b.acquire(1)).toBeUndefined();
  });

  it('admits a long queue in order, one release at a time, and is empty after it', async () => {
    const N = 50_000;
    const b = new Budget(1, 1 << 30);
    b.acquire(1);
    let next = 0;
    let outOfOrder = 0;
    for (let i = 0; i < N; i++) {
      (b.acquire(1) as Promise<void>).then(() => {
        if (i !== next++) outOfOrder++;
        b.release(1);
      });
    }
    b.release(1);
    await b.idle();
    expect([next, outOfOrder, b.count, b.bytes]).toEqual([N, 0, 0, 0]);
    expect(b.acquire(1)).toBeUndefined();
  });
});
