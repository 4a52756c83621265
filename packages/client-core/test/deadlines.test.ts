import { afterEach, describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../src/deadlines.js';

interface Item {
  name: string;
  deadline: number;
  done: boolean;
}
const item = (name: string): Item => ({ name, deadline: 0, done: false });

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
});
