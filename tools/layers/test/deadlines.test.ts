// Test deadlines grow with the load (DEVELOPERS.md, "Tests"): no test or hook of the repository takes a fixed
// number as its timeout.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkDeadlines, fixedDeadlines } from '../src/deadlines.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('fixed test deadlines', () => {
  it('finds a number literal as the timeout of a test, a hook or a describe, in any vitest form', () => {
    const source = `
      it('a', async () => {}, 60_000);
      it.skipIf(x)('b', () => {}, 5000);
      beforeAll(async () => {}, 90_000);
      describe.each([1])('c', () => {}, 1000);
      test('d', () => {}, scaled(60_000));
      it('e', () => {});
      setTimeout(() => {}, 100);
      waitFor(() => true, 'f', 10_000);
    `;
    expect(fixedDeadlines('x.test.ts', source).map((d) => `${d.call}:${d.line}`)).toEqual([
      'it:2',
      'it:3',
      'beforeAll:4',
      'describe:5',
    ]);
  });

  it('finds none in the repository', () => {
    const found = checkDeadlines(root).map((d) => `${d.file}:${d.line} ${d.call}(..., <number>)`);
    expect(found, 'wrap these timeouts in scaled() from @zbus/testkit').toEqual([]);
  });
});
