// The unsettled deliveries of a windowed pull: OffsetMap answers as a Map would, through collisions, wrap-around
// probe runs and growth, without reallocating its arrays as entries come and go.
import { describe, expect, it } from 'vitest';
import { OffsetMap } from '../../src/mq/offset-map.js';

/** A small deterministic generator (xorshift32), so a failure repeats. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function entries(m: OffsetMap<string>): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  m.forEach((v, k) => {
    out.push([k, v]);
  });
  return out.sort((a, b) => a[0] - b[0]);
}

describe('OffsetMap', () => {
  it('keeps offsets that share low bits apart, and past 2^32', () => {
    const m = new OffsetMap<string>();
    const keys = [5, 5 + 16, 5 + 2 ** 32, 5 + 2 ** 40, 6, 2 ** 53 - 1];
    for (const k of keys) m.set(k, `v${k}`);
    for (const k of keys) expect(m.get(k)).toBe(`v${k}`);
    expect(m.size).toBe(keys.length);
    expect(m.delete(5 + 16)).toBe(true);
    expect(m.delete(5 + 16)).toBe(false);
    expect(m.has(5 + 16)).toBe(false);
    for (const k of keys.filter((k) => k !== 5 + 16)) expect(m.get(k)).toBe(`v${k}`);
  });

  it('finds every entry after deletions in a probe run that wraps around the end', () => {
    const m = new OffsetMap<string>();
    // 14, 15 and then 30, 31, 46 (homes 14, 15, 14, 15, 14) fill slots 14, 15, 0, 1, 2.
    for (const k of [14, 15, 30, 31, 46]) m.set(k, `v${k}`);
    m.delete(14);
    expect(entries(m)).toEqual([15, 30, 31, 46].map((k) => [k, `v${k}`]));
    m.delete(31);
    expect(entries(m)).toEqual([15, 30, 46].map((k) => [k, `v${k}`]));
    for (const k of [15, 30, 46]) expect(m.get(k)).toBe(`v${k}`);
  });

  it('answers as a Map does under random sets, overwrites and deletes', () => {
    const next = rng(17);
    const m = new OffsetMap<string>();
    const ref = new Map<number, string>();
    let tail = 2 ** 32 - 300; // the offsets cross 2^32 on the way
    for (let step = 0; step < 200_000; step++) {
      const r = next();
      if (r < 0.45 || ref.size === 0) {
        const k = next() < 0.9 ? tail++ : Math.floor(next() * tail); // mostly new offsets, some old ones
        m.set(k, `v${step}`);
        ref.set(k, `v${step}`);
      } else {
        const keys = [...ref.keys()];
        const k = next() < 0.8 ? keys[0]! : keys[Math.floor(next() * keys.length)]!;
        expect(m.delete(k)).toBe(true);
        ref.delete(k);
      }
      if (ref.size > 600) {
        for (const k of [...ref.keys()].slice(0, 300)) {
          m.delete(k);
          ref.delete(k);
        }
      }
      if (step % 5_000 === 0) expect(entries(m)).toEqual([...ref].sort((a, b) => a[0] - b[0]));
    }
    expect(m.size).toBe(ref.size);
    for (const [k, v] of ref) expect(m.get(k)).toBe(v);
    expect(entries(m)).toEqual([...ref].sort((a, b) => a[0] - b[0]));
  });
});
