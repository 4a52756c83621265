import fs from 'node:fs';
import path from 'node:path';
import { ManualClock } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { type DeadLetterInfo, STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { appendMany, available, dec, drain, enc, nextOf, open, tempDir, until } from './helpers.js';

const ACK = STORE_MASK_ACK_REQUIRED;

describe('ack mode', () => {
  it('tracks deliveries until acked; ack of an unknown offset is false', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: ACK, ackTimeoutMs: 60_000 });
    await appendMany(t, 2);
    const d = await g.next();
    expect(d).toMatchObject({ offset: 0, retry: 0 });
    expect(g.info().unacked).toBe(1);
    expect(await g.ack(0)).toBe(true);
    expect(await g.ack(0)).toBe(false);
    expect(await g.ack(42)).toBe(false);
    expect(g.info().unacked).toBe(0);
  });

  it('inherits ack mode from the topic mask when the group mask is 0', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: ACK });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 1);
    await g.next();
    expect(g.info().unacked).toBe(1);
  });

  it('without ack mode next() is at-most-once: nothing is pending', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 1);
    await g.next();
    expect(g.info().unacked).toBe(0);
    expect(await g.ack(0)).toBe(false);
  });

  it('redelivers an unacked message after ackTimeout with retry + 1, and the timer wakes listeners', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: ACK, ackTimeoutMs: 50, maxDeliver: 10 });
    await t.append({ id: 'a', data: enc('payload') });
    expect((await g.next())?.retry).toBe(0);
    clock.advance(49);
    expect(await g.next()).toBeUndefined();
    let woke = available(t);
    clock.advance(1);
    await woke;
    const d1 = (await g.next())!;
    expect(d1).toMatchObject({ offset: 0, id: 'a', retry: 1 });
    expect(dec(d1.data)).toBe('payload');
    expect(await g.next()).toBeUndefined();
    woke = available(t);
    clock.advance(50);
    await woke;
    expect((await g.next())?.retry).toBe(2);
  });

  it('touch extends the deadline', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: ACK, ackTimeoutMs: 120 });
    await t.append({ id: 'a', data: enc('') });
    await g.next();
    clock.advance(80);
    expect(await g.touch(0)).toBe(true);
    expect(await g.touch(7)).toBe(false);
    clock.advance(119); // 199 ms after the delivery, 119 after the touch
    expect(await g.next()).toBeUndefined();
    clock.advance(1);
    expect((await g.next())?.retry).toBe(1);
  });

  it('nack makes a message deliverable now, or after a delay', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: ACK, ackTimeoutMs: 60_000 });
    await appendMany(t, 2);
    await g.next();
    expect(await g.nack(0)).toBe(true);
    expect(await g.next()).toMatchObject({ offset: 0, retry: 1 });
    expect(await g.nack(0, 80)).toBe(true);
    expect(await g.next()).toMatchObject({ offset: 1, retry: 0 });
    expect(await g.next()).toBeUndefined();
    clock.advance(79);
    expect(await g.next()).toBeUndefined();
    const woke = available(t);
    clock.advance(1);
    await woke;
    expect(await g.next()).toMatchObject({ offset: 0, retry: 2 });
    expect(await g.nack(99)).toBe(false);
  });

  it('stops at the ack window and resumes when an ack frees a slot', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: ACK, ackWindow: 3, ackTimeoutMs: 60_000 });
    await appendMany(t, 5);
    expect(await drain(g)).toEqual(['m0', 'm1', 'm2']);
    expect(g.info()).toMatchObject({ unacked: 3, backlog: 2 });
    await g.ack(1);
    expect(await drain(g)).toEqual(['m3']);
  });

  it('moves a message to <topic>.dlq after maxDeliver deliveries, through the deadLetter hook', async () => {
    const seen: unknown[] = [];
    const clock = new ManualClock();
    const store = await open({
      clock,
      deadLetter: (data, info) => {
        seen.push(info);
        return Buffer.concat([Buffer.from('dead:'), data]);
      },
    });
    const t = await store.declareTopic('Jobs', { mask: 0 });
    const g = await t.declareGroup('g', { mask: ACK, ackTimeoutMs: 30, maxDeliver: 3 });
    await t.append({ id: 'job1', tag: 'x.y', data: enc('work') });
    const retries: number[] = [];
    for (let i = 0; i < 3; i++) {
      retries.push((await nextOf(t, g)).retry);
      clock.advance(30);
    }
    expect(retries).toEqual([0, 1, 2]);
    const dlq = await until(() => store.topic('Jobs.dlq'));
    const dg = await dlq.declareGroup('reader', { start: { offset: 0 } });
    const d = await nextOf(dlq, dg);
    expect(d.id).toBe('job1');
    expect(d.tag).toBe('x.y');
    expect(dec(d.data)).toBe('dead:work');
    expect(seen).toEqual([
      { topic: 'Jobs', group: 'g', offset: 0, id: 'job1', deliveries: 3, reason: 'max_deliver' },
    ]);
    await until(() => (g.info().unacked === 0 ? true : undefined));
    expect(g.info().deadLettered).toBe(1);
    expect(await g.next()).toBeUndefined();
  });

  it('a nack after the last allowed delivery dead-letters the message', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: ACK, ackTimeoutMs: 60_000, maxDeliver: 2 });
    await t.append({ id: 'a', data: enc('') });
    await g.next();
    await g.nack(0);
    expect((await g.next())?.retry).toBe(1);
    await g.nack(0);
    await until(() => (g.info().deadLettered === 1 ? true : undefined));
    expect(store.topic('t.dlq')?.info().messageDepth).toBe(1);
  });

  it('keeps a nack reason across a reopen (also through compaction) for the dead letter', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const errors: Array<[string, string | undefined]> = [];
    const options = {
      dataDir: dir,
      clock,
      deadLetter: (data: Uint8Array, info: DeadLetterInfo) => {
        errors.push([info.group, info.error]);
        return data;
      },
    };
    const s1 = await open(options);
    const t1 = await s1.declareTopic('Jobs', { mask: 0 });
    const config = { mask: ACK, ackTimeoutMs: 30, maxDeliver: 2 };
    const plain = await t1.declareGroup('plain', config);
    const busy = await t1.declareGroup('busy', config);
    await t1.append({ id: 'job', data: enc('work') });
    await appendMany(t1, 2100);
    // plain: nacked with a reason, then redelivered before the stop (the reason outlives the redelivery).
    await plain.next();
    await plain.nack(0, 0, 'disk full: é');
    expect((await plain.next())?.retry).toBe(1);
    // busy: nacked with a reason until later, then 4200 more journal entries: the journal is compacted.
    await busy.next();
    await busy.nack(0, 1000, 'timeout talking to X');
    for (let i = 0; i < 2100; i++) await busy.ack((await busy.next())!.offset);
    await s1.close();
    const acks = path.join(dir, 'jobs', 'groups', 'busy.acks');
    expect(fs.statSync(acks).size).toBeLessThan(1000 * 28); // 4200+ entries before compaction

    const s2 = await open(options);
    const t2 = s2.topic('Jobs')!;
    clock.advance(1000);
    expect((await t2.group('busy')!.next())?.retry).toBe(1);
    clock.advance(30); // both second deliveries expire: maxDeliver reached
    await until(() => (errors.length === 2 ? true : undefined));
    expect(errors.sort()).toEqual([
      ['busy', 'timeout talking to X'],
      ['plain', 'disk full: é'],
    ]);
  });

  it('unacked deliveries, retry counts and positions survive a reopen', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    const g1 = await t1.declareGroup('g', { mask: ACK, ackTimeoutMs: 50, maxDeliver: 10 });
    await appendMany(t1, 4);
    await g1.next();
    await g1.next();
    await g1.next();
    await g1.ack(1);
    await s1.close();
    const s2 = await open({ dataDir: dir, clock });
    const g2 = s2.topic('t')!.group('g')!;
    expect(g2.info()).toMatchObject({ unacked: 2, position: 3 });
    // Both deadlines (50 ms) have passed: redeliveries come before new records.
    clock.advance(50);
    const got = [];
    for (let i = 0; i < 3; i++) {
      const d = await g2.next();
      got.push([d?.offset, d?.retry]);
    }
    expect(got).toEqual([
      [0, 1],
      [2, 1],
      [3, 0],
    ]);
  });

  it('compacts the ack journal and still reopens with the right pending set', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    const g1 = await t1.declareGroup('g', { mask: ACK, ackTimeoutMs: 60_000, ackWindow: 999 });
    await appendMany(t1, 3000);
    for (let i = 0; i < 3000; i++) {
      const d = await g1.next();
      if (d && d.offset % 1000 !== 7) await g1.ack(d.offset);
    }
    await s1.close();
    const s2 = await open({ dataDir: dir });
    const g2 = s2.topic('t')!.group('g')!;
    expect(g2.info()).toMatchObject({ unacked: 3, position: 3000 });
  });

  it('a re-declare that rewinds an ack group keeps the rewound position across a reopen', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const t1 = await s1.declareTopic('t', { mask: 0 });
    const g1 = await t1.declareGroup('g', { mask: ACK, ackTimeoutMs: 60_000 });
    await appendMany(t1, 10);
    for (let i = 0; i < 8; i++) await g1.ack((await g1.next())!.offset);
    await t1.declareGroup('g', { mask: ACK, start: { offset: 2 } });
    expect(g1.info().position).toBe(2);
    await s1.close();
    const s2 = await open({ dataDir: dir });
    expect(s2.topic('t')!.group('g')!.info().position).toBe(2);
  });
});
