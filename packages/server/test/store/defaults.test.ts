import { ManualClock } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { appendMany, enc, open } from './helpers.js';

describe('store defaults and memory-topic start rules', () => {
  it('groupDefaults apply to groups that do not set their own ack settings', async () => {
    const clock = new ManualClock();
    const store = await open({ clock, groupDefaults: { ackTimeoutMs: 40, maxDeliver: 2, ackWindow: 2 } });
    const t = await store.declareTopic('t', { mask: 0 });
    const g = await t.declareGroup('g', { mask: STORE_MASK_ACK_REQUIRED });
    await appendMany(t, 3);
    expect((await g.next())?.offset).toBe(0);
    expect((await g.next())?.offset).toBe(1);
    expect(await g.next()).toBeUndefined(); // window of 2
    clock.advance(39);
    expect(await g.next()).toBeUndefined();
    clock.advance(1);
    expect((await g.next())?.retry).toBe(1);
  });

  it('topicDefaults apply to new topics (maxMessageBytes, dedupe)', async () => {
    const store = await open({ topicDefaults: { maxMessageBytes: 4, dedupeWindowMs: 60_000 } });
    const t = await store.declareTopic('t', { mask: 0 });
    await expect(t.append({ id: 'a', data: enc('12345') })).rejects.toMatchObject({
      code: 'ZBUS_ERR_BODY_TOO_LARGE',
    });
    await t.append({ id: 'a', data: enc('1') });
    expect((await t.append({ id: 'a', data: enc('1') })).duplicate).toBe(true);
  });

  it('a delayed message is deduped by id while it is held', async () => {
    const store = await open();
    const t = await store.declareTopic('t', { mask: 0, dedupeWindowMs: 60_000 });
    const at = Date.now() + 60_000;
    await t.append({ id: 'd', data: enc(''), deliverAt: at });
    expect(await t.append({ id: 'd', data: enc(''), deliverAt: at })).toMatchObject({
      duplicate: true,
      offset: -1,
    });
    expect(t.info().delayed).toBe(1);
  });

  it('memory topics honour start.offset, start.msgId and start.time', async () => {
    const store = await open();
    const t = await store.declareTopic('mem', { mask: 1 });
    await appendMany(t, 5);
    const g = await t.declareGroup('g', { start: { offset: 2, msgId: 'm2' } });
    expect((await g.next())?.id).toBe('m2');
    await expect(t.declareGroup('bad', { start: { offset: 2, msgId: 'nope' } })).rejects.toMatchObject({
      code: 'ZBUS_ERR_SEEK',
    });
    const late = await t.declareGroup('late', { start: { time: Date.now() + 1000 } });
    expect(await late.next()).toBeUndefined();
    expect(await t.removeGroup('g')).toBe(true);
    expect(await g.next()).toBeUndefined();
  });

  it('a memory topic re-declared with a larger maxBacklog keeps its messages', async () => {
    const store = await open();
    const t = await store.declareTopic('mem', { mask: 1, maxBacklog: 2 });
    const g = await t.declareGroup('g', {});
    await appendMany(t, 2);
    await store.declareTopic('mem', { mask: 1, maxBacklog: 10 });
    await t.append({ id: 'x', data: enc('') });
    const ids = [];
    for (let d = await g.next(); d; d = await g.next()) ids.push(d.id);
    expect(ids).toEqual(['m0', 'm1', 'x']);
  });
});
