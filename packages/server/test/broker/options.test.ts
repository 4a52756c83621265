// Every option is checked when the broker is created: a wrong type, a value out of range or options that do not
// fit together throw an InvalidOptionError naming the option, before any socket is opened.
import { describe, expect, it } from 'vitest';
import {
  type BrokerOptions,
  createBroker,
  DEFAULTS,
  InvalidOptionError,
  resolveOptions,
} from '../../src/index.js';

function refusal(options: unknown): InvalidOptionError {
  try {
    resolveOptions(options as BrokerOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('resolveOptions', () => {
  it('refuses maxBodyBytes 0 (the first connection used to crash the broker)', () => {
    const err = refusal({ maxBodyBytes: 0 });
    expect(err.code).toBe('ZBUS_ERR_INVALID_ARGUMENT');
    expect(err.option).toBe('maxBodyBytes');
    expect(err.message).toBe('maxBodyBytes must be an integer from 1 to 1073741824, got 0 (maxBodyBytes)');
    expect(() => createBroker({ maxBodyBytes: 0 })).toThrow(InvalidOptionError);
  });

  it('checks every integer option for type and range', () => {
    for (const [key, value] of Object.entries(DEFAULTS)) {
      if (typeof value !== 'number') continue;
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '10', null]) {
        expect(refusal({ [key]: bad }).option, `${key}: ${String(bad)}`).toBe(key);
      }
      expect(resolveOptions({ [key]: value })[key as keyof BrokerOptions]).toBe(value);
    }
  });

  it('keeps timers within what setTimeout can wait', () => {
    for (const key of [
      'idleTimeoutMs',
      'rpcTimeoutMs',
      'ackTimeoutMs',
      'shutdownTimeoutMs',
      'trackerDeadlineMs',
    ]) {
      expect(refusal({ [key]: 2 ** 31 }).option).toBe(key);
      expect(() => resolveOptions({ [key]: 2 ** 31 - 1 })).not.toThrow();
    }
    expect(refusal({ fsync: { intervalMs: 2 ** 31 } }).option).toBe('fsync');
    expect(refusal({ fsync: { intervalMs: 0 } }).option).toBe('fsync');
  });

  it('takes a clock with now, setTimer and clearTimer, and refuses anything else', () => {
    const clock = { now: () => 0, setTimer: () => ({}), clearTimer: () => {} };
    expect(resolveOptions({ clock }).clock).toBe(clock);
    for (const bad of [null, {}, { ...clock, setTimer: 1 }, 'system']) {
      const err = refusal({ clock: bad });
      expect([err.option, err.message]).toEqual([
        'clock',
        'clock must have now, setTimer and clearTimer methods (clock)',
      ]);
    }
  });

  it('keeps the hard bound of a connection queue above its high-water mark and one message', () => {
    const MiB = 1024 * 1024;
    // Below 64 KiB a socket may empty its queue without saying so, and a paused connection would never resume.
    expect(refusal({ writeHighWaterMark: 32 * 1024 }).option).toBe('writeHighWaterMark');
    const low = refusal({ writeHighWaterMark: 4 * MiB, maxBodyBytes: MiB, maxWriteQueueBytes: 5 * MiB });
    expect(low.option).toBe('maxWriteQueueBytes');
    expect(low.message).toContain('at least writeHighWaterMark + maxHeaderBytes + maxBodyBytes');
    // Left unset, the bound follows a larger body limit instead of refusing it.
    const big = resolveOptions({ maxBodyBytes: 256 * MiB });
    expect(big.maxWriteQueueBytes).toBe(big.writeHighWaterMark + big.maxHeaderBytes + 256 * MiB);
    expect(resolveOptions().maxWriteQueueBytes).toBe(DEFAULTS.maxWriteQueueBytes);
  });

  it('checks the options that are not numbers', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ host: 5 }, 'host'],
      [{ dataDir: '' }, 'dataDir'],
      [{ announce: 'host' }, 'announce'],
      [{ announce: 'host:0' }, 'announce'],
      [{ announce: 'host:70000' }, 'announce'],
      [{ trackers: 'a:1' }, 'trackers'],
      [{ trackers: ['a:1', 'b'] }, 'trackers'],
      [{ fsync: 'sometimes' }, 'fsync'],
      [{ fsync: 5 }, 'fsync'],
      [{ fsync: null }, 'fsync'],
      [{ logLevel: 'loud' }, 'logLevel'],
      [{ trackerToken: 7 }, 'trackerToken'],
      [{ monitorDir: {} }, 'monitorDir'],
      [{ tls: { cert: 'x' } }, 'tls'],
      [{ tls: { cert: '', key: 'k' } }, 'tls'],
      [{ auth: { tokens: 'all' } }, 'auth'],
      [{ insecure: 'yes' }, 'insecure'],
      [{ allowOrigins: 'https://a.example' }, 'allowOrigins'],
      [{ allowOrigins: ['a.example'] }, 'allowOrigins'],
      [{ host: '10.1.2.3' }, 'host'], // protected mode: no auth, yet only other machines could connect
      [{ clusterToken: 'short' }, 'clusterToken'],
      [{ trackers: ['a:1'] }, 'clusterToken'],
      [{ maxBody: 5 }, 'maxBody'],
    ];
    for (const [options, option] of cases)
      expect(refusal(options).option, JSON.stringify(options)).toBe(option);
    expect(refusal(null).option).toBe('options');
    expect(refusal({ maxBody: 5 }).message).toBe("unknown option 'maxBody' (maxBody)");
  });

  it('accepts the documented forms and returns a frozen copy', () => {
    const o = resolveOptions({
      announce: '[::1]:15555',
      trackers: ['10.0.0.1:15555', 'tracker.example:15556'],
      clusterToken: 'a-cluster-secret-of-32-characters',
      fsync: { intervalMs: 100 },
      logLevel: 'silent',
    });
    expect(Object.isFrozen(o)).toBe(true);
    expect(o.fsync).toEqual({ intervalMs: 100 });
    expect(resolveOptions().maxBodyBytes).toBe(DEFAULTS.maxBodyBytes);
  });
});
