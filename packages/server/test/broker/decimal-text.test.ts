// Offsets and timestamps are made into text without V8's number-string cache (decimalText): the same text as
// String(n) for every number a store can hand out.
import { describe, expect, it } from 'vitest';
import { decimalText, timestampText } from '../../src/mq/delivery.js';

describe('decimalText', () => {
  it('writes what String writes', () => {
    const edges = [0, 7, 999, 1000, 1001, 1009, 1010, 1099, 99_999, 100_000, 1_000_000, 2 ** 31, 2 ** 32 + 5];
    const big = [1_764_000_000_123, 2 ** 53 - 1, 2 ** 53, 1.5, 1e21];
    for (const n of [...edges, ...big]) expect(decimalText(n)).toBe(String(n));
    for (let n = 0; n < 20_000; n += 7) expect(decimalText(n)).toBe(String(n));
  });

  it('gives a timestamp its text, also when it differs from the last one', () => {
    expect(timestampText(1_764_000_000_001)).toBe('1764000000001');
    expect(timestampText(1_764_000_000_001)).toBe('1764000000001');
    expect(timestampText(1_764_000_001_000)).toBe('1764000001000');
  });
});
