import { describe, expect, it, vi } from 'vitest';
import { newRequestId } from '../../src/broker/request-id.js';

describe('ids for requests without one', () => {
  it('are random UUIDs v4, unique across draws of random bytes', () => {
    const N = 10_000; // more than two draws of 4096
    const ids = new Set<string>();
    for (let i = 0; i < N; i++) {
      const id = newRequestId();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(N);
  });

  it('are made with no call into Buffer per id (only the draws of random bytes)', () => {
    newRequestId();
    const texts = vi.spyOn(Buffer.prototype, 'toString');
    for (let i = 0; i < 100; i++) newRequestId();
    const calls = texts.mock.calls.length;
    vi.restoreAllMocks();
    expect(calls).toBe(0);
  });

  it('vary in every random hex digit, so none is a counter or a fixed prefix', () => {
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) {
      const id = newRequestId();
      for (let j = 0; j < 36; j++) seen[j]!.add(id[j]!);
    }
    const fixed = new Set([8, 13, 14, 18, 23]); // the dashes and the version digit
    for (let j = 0; j < 36; j++) {
      if (fixed.has(j)) expect(seen[j]!.size).toBe(1);
      else if (j === 19)
        expect(seen[j]!.size).toBe(4); // the variant: 8, 9, a or b
      else expect(seen[j]!.size).toBe(16);
    }
  });
});
