// Message ids the client makes up: unique, UUID-shaped, and not predictable from an earlier one (with the
// broker's dedupe window, a predictable id would let another client have this one's messages dropped).
import { describe, expect, it } from 'vitest';
import { newId } from '../src/messages.js';

const SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** More than one 64 KiB draw of random bytes (16 per id). */
const COUNT = 10_000;

describe('newId', () => {
  const ids = Array.from({ length: COUNT }, () => newId());

  it('gives UUID-shaped ids, all different, across draws of the random pool', () => {
    for (const id of ids) expect(id).toMatch(SHAPE);
    expect(new Set(ids).size).toBe(COUNT);
  });

  it('gives ids that share nothing with the one before: no fixed prefix, no counter', () => {
    const hex = ids.map((id) => id.replaceAll('-', ''));
    let samePrefix = 0;
    let counting = 0;
    for (let i = 1; i < hex.length; i++) {
      const a = hex[i - 1] as string;
      const b = hex[i] as string;
      if (a.slice(0, 8) === b.slice(0, 8)) samePrefix++;
      if (BigInt(`0x${b.slice(20)}`) - BigInt(`0x${a.slice(20)}`) === 1n) counting++;
    }
    // Chance of either for one pair of random ids: 2^-32 and 2^-48.
    expect(samePrefix).toBe(0);
    expect(counting).toBe(0);
  });

  it('uses every hex digit in every position', () => {
    for (let at = 0; at < 36; at++) {
      if (at === 8 || at === 13 || at === 18 || at === 23) continue;
      expect(new Set(ids.map((id) => id[at])).size, `position ${at}`).toBe(16);
    }
  });
});
