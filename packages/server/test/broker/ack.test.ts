// Ack-required groups (mask 64): ack, nack (with delay), touch, redelivery after the group's ack timeout with
// `retry`, the ack window, and dead-lettering to `<topic>.dlq` after max_deliver (decisions.md §2).
// Ack deadlines, nack delays and consume_timeout run on a manual clock the tests move.
import { ManualClock, type RawClient, waitFor } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { consumeFor, declare, startTestBroker } from './helpers.js';

const ACK_REQUIRED = '64';

async function ackGroup(c: RawClient, extra: Record<string, string> = {}) {
  await declare(c, 'T');
  await declare(c, 'T', { consume_group: 'g', group_mask: ACK_REQUIRED, ...extra });
}

const GROUP = { topic: 'T', consume_group: 'g' };

const consume = (c: RawClient, extra: Record<string, string> = {}) =>
  c.request({ headers: { cmd: 'consume', ...GROUP, ...extra } });

/** A consume of the group that waits `ms` of the clock's time, then gets the empty consume_timeout answer. */
const consumeWaiting = (c: RawClient, clock: ManualClock, ms: number) => consumeFor(c, clock, ms, GROUP);

const groupInfo = async (c: RawClient) =>
  (await c.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'g' } })).json<{
    unackedCount: number;
    messageCount: number;
    deadLetterCount: number;
  }>();

describe('ack mode', () => {
  it('keeps a delivery unacked until `ack` with its offset, then never redelivers it', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await ackGroup(c, { group_ack_timeout: '200' });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'm1' }, body: 'x' });
    const d = await consume(c);
    expect([d.headers.origin_id, d.headers.offset, d.headers.retry]).toEqual(['m1', '0', undefined]);
    expect((await groupInfo(c)).unackedCount).toBe(1);
    const a = await c.request({
      headers: { cmd: 'ack', topic: 'T', consume_group: 'g', offset: d.headers.offset! },
    });
    expect(a.status).toBe(200);
    expect(a.headers.pending).toBeUndefined();
    expect((await groupInfo(c)).unackedCount).toBe(0);
    // Well past the ack timeout nothing comes back.
    const none = await consumeWaiting(c, clock, 400);
    expect(none.headers.origin_id).toBeUndefined();
  });

  it('says `pending: false` when acking an offset that is not pending, and stays silent with ack: false', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await ackGroup(c);
    const r = await c.request({ headers: { cmd: 'ack', topic: 'T', consume_group: 'g', offset: '42' } });
    expect([r.status, r.headers.pending]).toEqual([200, 'false']);
    const quiet = c.send({
      headers: { cmd: 'ack', topic: 'T', consume_group: 'g', offset: '0', ack: 'false' },
    });
    await c.request({ headers: { cmd: 'ping' } });
    expect(c.received.find((m) => m.headers.id === quiet)).toBeUndefined();
    const noOffset = await c.request({ headers: { cmd: 'ack', topic: 'T', consume_group: 'g' } });
    expect([noOffset.status, noOffset.bodyText()]).toEqual([400, '400: Bad Format, Missing offset']);
  });

  it('redelivers an unacked message after group_ack_timeout with retry 1, then retry 2', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await ackGroup(c, { group_ack_timeout: '100' });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'm1' }, body: 'again and again' });
    const first = await consume(c);
    expect(first.headers.retry).toBeUndefined();
    // Not back a moment before the deadline; back at it.
    expect((await consumeWaiting(c, clock, 99)).headers.origin_id).toBeUndefined();
    clock.advance(1);
    const second = await consume(c);
    expect([second.headers.origin_id, second.headers.offset, second.headers.retry]).toEqual(['m1', '0', '1']);
    expect(second.bodyText()).toBe('again and again');
    clock.advance(100);
    const third = await consume(c);
    expect(third.headers.retry).toBe('2');
  });

  it('nack makes a delivery available again at once; nack with `delay` holds it that long', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await ackGroup(c, { group_ack_timeout: '10000' });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'm1' }, body: 'x' });
    const d = await consume(c);
    const n = await c.request({
      headers: { cmd: 'nack', topic: 'T', consume_group: 'g', offset: d.headers.offset! },
    });
    expect(n.status).toBe(200);
    const again = await consume(c);
    expect([again.headers.origin_id, again.headers.retry]).toEqual(['m1', '1']);
    const delay = 300;
    await c.request({
      headers: {
        cmd: 'nack',
        topic: 'T',
        consume_group: 'g',
        offset: again.headers.offset!,
        delay: String(delay),
      },
    });
    const early = await consumeWaiting(c, clock, delay - 1);
    expect(early.headers.origin_id).toBeUndefined();
    const late = consume(c);
    clock.advance(1);
    expect((await late).headers.origin_id).toBe('m1');
  });

  it('touch extends the deadline of a pending delivery by the ack timeout', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await ackGroup(c, { group_ack_timeout: '400' });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'm1' }, body: 'x' });
    const d = await consume(c);
    clock.advance(240);
    const t = await c.request({
      headers: { cmd: 'touch', topic: 'T', consume_group: 'g', offset: d.headers.offset! },
    });
    expect([t.status, t.headers.pending]).toEqual([200, undefined]);
    // Past the original deadline (400) the message is still held, up to a moment before the new one (640)...
    expect((await consumeWaiting(c, clock, 260)).headers.origin_id).toBeUndefined();
    expect((await consumeWaiting(c, clock, 139)).headers.origin_id).toBeUndefined();
    // ...and comes back at it.
    const back = consume(c);
    clock.advance(1);
    expect((await back).headers.retry).toBe('1');
    const unknown = await c.request({
      headers: { cmd: 'touch', topic: 'T', consume_group: 'g', offset: '9' },
    });
    expect(unknown.headers.pending).toBe('false');
  });

  it('stops delivering when group_ack_window deliveries are unacked; an ack reopens it', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await ackGroup(c, { group_ack_window: '2', group_ack_timeout: '10000' });
    for (let i = 0; i < 3; i++) await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: `m${i}` });
    const d0 = await consume(c);
    await consume(c);
    const blocked = await consumeWaiting(c, clock, 80);
    expect(blocked.headers.origin_id).toBeUndefined();
    const waiting = consume(c);
    await c.request({ headers: { cmd: 'ack', topic: 'T', consume_group: 'g', offset: d0.headers.offset! } });
    expect((await waiting).bodyText()).toBe('m2');
  });

  it('refills a windowed consume with each ack', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await ackGroup(c, { group_ack_timeout: '10000' });
    for (let i = 0; i < 4; i++) await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: `m${i}` });
    c.send({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g', id: 'w', consume_window: '2' } });
    const a = await c.next((m) => m.headers.id === 'w');
    const bb = await c.next((m) => m.headers.id === 'w');
    expect([a.bodyText(), bb.bodyText()]).toEqual(['m0', 'm1']);
    await expect(c.next((m) => m.headers.id === 'w', 100)).rejects.toThrow();
    await c.request({ headers: { cmd: 'ack', topic: 'T', consume_group: 'g', offset: a.headers.offset! } });
    expect((await c.next((m) => m.headers.id === 'w')).bodyText()).toBe('m2');
    // Acking the same delivery again gives no second credit: still two deliveries out (m1, m2).
    await c.request({ headers: { cmd: 'ack', topic: 'T', consume_group: 'g', offset: a.headers.offset! } });
    await expect(c.next((m) => m.headers.id === 'w', 100)).rejects.toThrow();
    await c.request({ headers: { cmd: 'ack', topic: 'T', consume_group: 'g', offset: bb.headers.offset! } });
    expect((await c.next((m) => m.headers.id === 'w')).bodyText()).toBe('m3');
  });
});

describe('dead letters', () => {
  it('moves a message delivered group_max_deliver times to <topic>.dlq with dlq_* headers', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await ackGroup(c, { group_ack_timeout: '60', group_max_deliver: '2' });
    await declare(c, 'T.dlq');
    const dlq = await b.raw();
    const dead = dlq.request({ headers: { cmd: 'consume', topic: 'T.dlq' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'poison', tag: 'a.b' }, body: 'bad' });
    expect((await consume(c)).headers.retry).toBeUndefined();
    clock.advance(60);
    expect((await consume(c)).headers.retry).toBe('1');
    clock.advance(60);
    const d = await dead;
    expect(d.bodyText()).toBe('bad');
    expect(d.headers.origin_id).toBe('poison');
    expect(d.headers.tag).toBe('a.b');
    expect(d.headers).toMatchObject({
      dlq_reason: 'max_deliver',
      dlq_topic: 'T',
      dlq_group: 'g',
      dlq_offset: '0',
      dlq_deliveries: '2',
    });
    // Not delivered a third time; the group counts it.
    const none = await consumeWaiting(c, clock, 150);
    expect(none.headers.origin_id).toBeUndefined();
    const info = await groupInfo(c);
    expect([info.unackedCount, info.deadLetterCount]).toEqual([0, 1]);
  });

  it('creates <topic>.dlq on first use; its messages can be read by offset and by its default group', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await ackGroup(c, { group_ack_timeout: '50', group_max_deliver: '1' });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'once' }, body: 'x' });
    await consume(c);
    // The exhausted message leaves at its deadline, for a dlq topic the store creates (no event says when).
    clock.advance(50);
    const r = await waitFor(async () => {
      const m = await c.request({ headers: { cmd: 'consume', topic: 'T.dlq', offset: '0' } });
      return m.status === 404 ? undefined : m;
    }, 'T.dlq to hold the dead letter');
    expect(r.status).toBe(200);
    expect([r.headers.origin_id, r.headers.dlq_deliveries]).toEqual(['once', '1']);
    // It comes with its default group, reading from the first dead letter: consumable without a declare.
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T.dlq' } });
    expect(d.headers.origin_id).toBe('once');
  });
});
