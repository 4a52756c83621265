// Timers past 2^31-1 ms: Node runs such a setTimeout after 1 ms, so a 30-day delay or ack timeout armed directly
// fires at once and, re-armed from its handler, spins the CPU forever. ManualClock throws on such a timer, so
// every test here also proves that the store never asks for one.
import { ManualClock } from '@zbus/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Alarm, MAX_TIMER_MS, systemClock } from '../../src/store/clock.js';
import { STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { available, enc, nextOf, open, tempDir } from './helpers.js';

const DAY = 24 * 60 * 60 * 1000;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('Alarm', () => {
  it('arms at most 2^31-1 ms ahead and re-arms until a 30-day due time', () => {
    const clock = new ManualClock();
    let fired = 0;
    const alarm = new Alarm(clock, () => fired++);
    alarm.set(clock.now() + 30 * DAY);
    expect(clock.nextAt - clock.now()).toBe(MAX_TIMER_MS);
    clock.advance(MAX_TIMER_MS);
    expect(fired).toBe(0);
    expect(clock.pending).toBe(1);
    clock.advance(30 * DAY - MAX_TIMER_MS - 1);
    expect(fired).toBe(0);
    clock.advance(1);
    expect(fired).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('never hands setTimeout a delay it would turn into 1 ms', () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const alarm = new Alarm(systemClock, () => {});
    alarm.set(Date.now() + 30 * DAY);
    alarm.cancel();
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]![1]).toBe(MAX_TIMER_MS);
  });

  it('setEarlier only moves the due time forward in time; cancel and +Infinity disarm', () => {
    const clock = new ManualClock();
    let fired = 0;
    const alarm = new Alarm(clock, () => fired++);
    alarm.setEarlier(clock.now() + 100);
    alarm.setEarlier(clock.now() + 200);
    expect(alarm.at).toBe(clock.now() + 100);
    alarm.setEarlier(clock.now() + 50);
    expect(clock.pending).toBe(1);
    clock.advance(50);
    expect(fired).toBe(1);
    alarm.setIn(10);
    alarm.cancel();
    alarm.set(Number.POSITIVE_INFINITY);
    clock.advance(1000);
    expect(fired).toBe(1);
    expect(clock.pending).toBe(0);
  });
});

describe('long timers in the store', () => {
  it('holds a 30-day delayed message for 30 days, also across a reopen', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    const at = clock.now() + 30 * DAY;
    await t1.append({ id: 'month', data: enc('m'), deliverAt: at });
    clock.advance(DAY);
    expect(t1.info()).toMatchObject({ delayed: 1, messageDepth: 0 });
    await s1.close();
    const s2 = await open({ dataDir: dir, clock });
    const t2 = s2.topic('t')!;
    const g = await t2.declareGroup('g', {});
    clock.advance(at - clock.now() - 1);
    expect(t2.info()).toMatchObject({ delayed: 1, messageDepth: 0 });
    clock.advance(1);
    expect((await nextOf(t2, g)).id).toBe('month');
  });

  it('a memory topic holds a 30-day delayed message instead of delivering it at once', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('mem', { mask: 1 });
    const g = await t.declareGroup('g', {});
    await t.append({ id: 'month', data: enc('m'), deliverAt: clock.now() + 30 * DAY });
    clock.advance(MAX_TIMER_MS);
    expect(await g.next()).toBeUndefined();
    expect(t.info().delayed).toBe(1);
    const woke = available(t);
    clock.advance(30 * DAY - MAX_TIMER_MS);
    await woke;
    expect((await g.next())?.id).toBe('month');
  });

  it('an ack timeout past 2^31 ms redelivers only when it has passed', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('t', { mask: 0 });
    const timeout = 3_000_000_000;
    const g = await t.declareGroup('g', { mask: STORE_MASK_ACK_REQUIRED, ackTimeoutMs: timeout });
    await t.append({ id: 'a', data: enc('') });
    expect((await g.next())?.retry).toBe(0);
    clock.advance(timeout - 1);
    expect(await g.next()).toBeUndefined();
    const woke = available(t);
    clock.advance(1);
    await woke;
    expect((await g.next())?.retry).toBe(1);
  });

  it('with the system clock, no store timer asks setTimeout for more than 2^31-1 ms', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const store = await open();
    const disk = await store.declareTopic('t', { mask: 0, retention: { maxAgeMs: 90 * DAY } });
    const g = await disk.declareGroup('g', { mask: STORE_MASK_ACK_REQUIRED, ackTimeoutMs: 40 * DAY });
    await disk.append({ id: 'later', data: enc(''), deliverAt: Date.now() + 30 * DAY });
    await disk.append({ id: 'now', data: enc('') });
    expect((await g.next())?.id).toBe('now');
    const mem = await store.declareTopic('mem', { mask: 1 });
    await mem.append({ id: 'later', data: enc(''), deliverAt: Date.now() + 30 * DAY });
    const delays = spy.mock.calls.map((c) => c[1] ?? 0);
    expect(delays.filter((ms) => ms > MAX_TIMER_MS)).toEqual([]);
    expect(mem.info().delayed).toBe(1);
  });
});
