import { describe, expect, it } from 'vitest';
import { compileFilter } from '../../src/store/filter.js';

describe('tag filters (0.11 rules)', () => {
  const cases: Array<[string, string | undefined, boolean]> = [
    ['Stock.HK.#', 'Stock.HK', true],
    ['Stock.HK.#', 'Stock.HK.0700', true],
    ['Stock.HK.#', 'Stock.HK.0700.Price', true],
    ['Stock.HK.#', 'Stock.US.AAPL', false],
    ['Stock.HK.#', 'Stock', false],
    ['*.account.#', 'user.account', true],
    ['*.account.#', 'user.account.created', true],
    ['*.account.#', 'account.created', false],
    ['*.account', 'a.account', true],
    ['*.account', 'a.account.x', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.c', false],
    ['a.b', 'a.b', true],
    ['a.b', 'a.B', false],
    ['x;Stock.HK.#', 'Stock.HK.1', true],
    ['x;Stock.HK.#', 'x', true],
    ['x;Stock.HK.#', 'y', false],
    ['#', 'anything.at.all', true],
    ['#', undefined, false],
    ['Stock.#', undefined, false],
    ['', undefined, true],
    ['', 'Stock.HK', true],
  ];
  for (const [filter, tag, want] of cases) {
    it(`${JSON.stringify(filter)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(tag)}`, () => {
      expect(compileFilter(filter)(tag)).toBe(want);
    });
  }
  it('an absent filter matches everything including no tag', () => {
    expect(compileFilter(undefined)(undefined)).toBe(true);
  });
});
