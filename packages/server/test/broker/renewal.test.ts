// When a churning Map is replaced by a copy: when it empties, else after 1,024 removals across the family, or as
// many as the Map holds when it holds more (so a copy costs at most one set per removal).
import { describe, expect, it } from 'vitest';
import { Renewal } from '../../src/mq/renewal.js';

/** Removals until `due` says yes, each leaving a Map of `size`. */
function removalsUntilDue(r: Renewal, size: number): number {
  for (let n = 1; n <= 1_000_000; n++) if (r.due(size)) return n;
  throw new Error('never due');
}

describe('Renewal', () => {
  it('is due whenever a Map empties, and that starts the count again', () => {
    const r = new Renewal();
    for (let i = 0; i < 1000; i++) expect(r.due(5)).toBe(false);
    expect(r.due(0)).toBe(true);
    expect(removalsUntilDue(r, 5)).toBe(1024);
  });

  it('is due every 1,024 removals from small Maps, counted across the family', () => {
    const r = new Renewal();
    expect(removalsUntilDue(r, 32)).toBe(1024);
    expect(removalsUntilDue(r, 1)).toBe(1024);
  });

  it('waits for as many removals as a large Map holds', () => {
    expect(removalsUntilDue(new Renewal(), 30_000)).toBe(30_000);
  });
});
