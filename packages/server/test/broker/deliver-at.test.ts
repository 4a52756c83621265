// When a produce asks to be delivered (commands/lookup.ts deliverAt): the clock is read only for one that asks,
// since Date.now() is a call into V8's runtime on every produce otherwise.
import { Message } from '@zbus/protocol';
import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { deliverAt } from '../../src/commands/lookup.js';
import { type Clock, systemClock } from '../../src/store/clock.js';

function at(headers: Record<string, string>, now: number): { due: number | undefined; reads: number } {
  let reads = 0;
  const clock: Clock = {
    ...systemClock,
    now: () => {
      reads++;
      return now;
    },
  };
  const ctx = { msg: new Message({ headers }) } as unknown as CommandContext;
  return { due: deliverAt(ctx, clock), reads };
}

describe('deliverAt', () => {
  it('reads the clock only for a produce that asks for a delivery time', () => {
    expect(at({ cmd: 'produce', topic: 'T' }, 1_000)).toEqual({ due: undefined, reads: 0 });
    expect(at({ delay: '0' }, 1_000)).toEqual({ due: undefined, reads: 0 });
    expect(at({ delay: '250' }, 1_000)).toEqual({ due: 1_250, reads: 1 });
    expect(at({ deliver_at: '5000' }, 1_000)).toEqual({ due: 5_000, reads: 1 });
  });

  it('refuses a delivery time too far ahead of the clock', () => {
    const now = 1_764_000_000_000;
    const year = 366 * 24 * 3600 * 1000;
    expect(() => at({ deliver_at: String(now + year) }, now)).toThrow(/deliver_at must be at most/);
  });
});
