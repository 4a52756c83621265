import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../src/deadlines.js';

interface Item {
  name: string;
  deadline: number;
  done: boolean;
}
const item = (name: string): Item => ({ name, deadline: 0, done: false });

setFlagsFromString('--expose-gc');

afterEach(() => {
  vi.useRealTimers();
});

describe('Deadlines', () => {
  it('expires entries of several timeouts in deadline order, skipping settled ones', () => {
    vi.useFakeTimers();
    const expired: string[] = [];
    const d = new Deadlines<Item>((i) => expired.push(i.name));
    const a = item('a');
    const b = item('b');
    const c = item('c');
    const e = item('e');
    d.add(a, 100);
    d.add(b, 100);
    vi.advanceTimersByTime(10);
    d.add(c, 30); // expires before a and b
    d.add(e, 100);
    b.done = true; // settled out of order: stays queued until a passes
    d.settled(100);
    vi.advanceTimersByTime(35);
    expect(expired).toEqual(['c']);
    vi.advanceTimersByTime(60);
    expect(expired).toEqual(['c', 'a']);
    vi.advanceTimersByTime(20);
    expect(expired).toEqual(['c', 'a', 'e']);
  });

  it('drops the timer once every entry settled', () => {
    vi.useFakeTimers();
    const d = new Deadlines<Item>(() => {
      throw new Error('nothing should expire');
    });
    const items = Array.from({ length: 3000 }, (_, i) => item(String(i)));
    for (const i of items) d.add(i, 1_000);
    for (const i of items) {
      i.done = true;
      d.settled(1_000);
    }
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5_000);
  });

  it('keeps no settled entry alive: a request and its reply go with their settling, not at a later trim', async () => {
    const gc = runInNewContext('gc') as () => void;
    const d = new Deadlines<Item>(() => {});
    const settled = (() => {
      const items = Array.from({ length: 100 }, (_, i) => item(`s${i}`));
      for (const i of items) d.add(i, 60_000);
      d.add(item('waiting'), 60_000); // the queue stays: entries before it settle, in order, as replies come
      for (const i of items) {
        i.done = true;
        d.settled(60_000);
      }
      return items.map((i) => new WeakRef(i));
    })();
    // WeakRefs hold their targets until the end of the job that made them.
    await new Promise((r) => setImmediate(r));
    gc();
    expect(settled.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    d.clear();
  });
});
