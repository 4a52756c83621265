import { describe, expect, it } from 'vitest';
import { type BrokerOptions, resolveOptions } from '../../src/options.js';

describe('the fsync option', () => {
  it('parses the CLI spelling a library caller may pass, instead of handing the store a string', () => {
    // Untyped callers (JavaScript, a config file) pass strings; the store read one as "fsync every tick".
    const fsync = 'interval=100' as unknown as BrokerOptions['fsync'];
    expect(resolveOptions({ fsync }).fsync).toEqual({ intervalMs: 100 });
    expect(resolveOptions({ fsync: 'never' }).fsync).toBe('never');
    expect(resolveOptions({}).fsync).toBe('always');
    expect(resolveOptions({ fsync: { intervalMs: 20 } }).fsync).toEqual({ intervalMs: 20 });
  });

  it('refuses intervals that are not a whole number of at least 1 ms', () => {
    for (const fsync of [
      'interval=0',
      'interval=abc',
      'sometimes',
      { intervalMs: 0 },
      { intervalMs: 1.5 },
      {},
    ]) {
      expect(() => resolveOptions({ fsync: fsync as BrokerOptions['fsync'] })).toThrow(
        expect.objectContaining({
          code: 'ZBUS_ERR_INVALID_ARGUMENT',
          message: expect.stringContaining('(fsync)'),
        }),
      );
    }
  });
});
