// The three messaging patterns through consume groups (zbus-protocol.md §7.1), tag filters (§7.4), exclusive
// and delete-on-exit groups and session cleanup (§7.9, decisions.md §2), and delayed delivery (decisions.md §3).
import { ManualClock } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { consumeFor, declare, startTestBroker, untilConsumers, untilGroupGone } from './helpers.js';

const EXCLUSIVE = 16;
const DELETE_ON_EXIT = 32;

describe('unicast, multicast, broadcast', () => {
  it('unicast: consumers of one group share its messages round-robin, each message once', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'Work');
    const a = await b.raw();
    const c = await b.raw();
    a.send({ headers: { cmd: 'consume', topic: 'Work', id: 'a', consume_window: '2' } });
    await untilConsumers(admin, 'Work', 'Work', 1);
    c.send({ headers: { cmd: 'consume', topic: 'Work', id: 'c', consume_window: '2' } });
    await untilConsumers(admin, 'Work', 'Work', 2);
    for (let i = 0; i < 4; i++)
      await admin.request({ headers: { cmd: 'produce', topic: 'Work' }, body: `m${i}` });
    const got = async (cl: typeof a, id: string) => [
      (await cl.next((m) => m.headers.id === id)).bodyText(),
      (await cl.next((m) => m.headers.id === id)).bodyText(),
    ];
    expect(await got(a, 'a')).toEqual(['m0', 'm2']);
    expect(await got(c, 'c')).toEqual(['m1', 'm3']);
  });

  it('multicast: every group gets every message, shared among its own consumers', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'News');
    await declare(admin, 'News', { consume_group: 'g1' });
    await declare(admin, 'News', { consume_group: 'g2' });
    const consumers = await Promise.all([b.raw(), b.raw(), b.raw(), b.raw()]);
    const groups = ['g1', 'g1', 'g2', 'g2'];
    for (const [i, c] of consumers.entries()) {
      c.send({ headers: { cmd: 'consume', topic: 'News', consume_group: groups[i]!, consume_window: '10' } });
    }
    await untilConsumers(admin, 'News', 'g1', 2);
    await untilConsumers(admin, 'News', 'g2', 2);
    for (let i = 0; i < 4; i++)
      await admin.request({ headers: { cmd: 'produce', topic: 'News' }, body: `n${i}` });
    const seen: Record<string, string[]> = { g1: [], g2: [] };
    await Promise.all(
      consumers.map(async (c, i) => {
        for (let k = 0; k < 2; k++) seen[groups[i]!]!.push((await c.next()).bodyText());
      }),
    );
    expect(seen.g1!.sort()).toEqual(['n0', 'n1', 'n2', 'n3']);
    expect(seen.g2!.sort()).toEqual(['n0', 'n1', 'n2', 'n3']);
  });

  it('broadcast: each consumer with its own auto-named exclusive, delete-on-exit group gets every message', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'Ticker');
    const subs = await Promise.all([b.raw(), b.raw(), b.raw()]);
    const names: string[] = [];
    for (const s of subs) {
      const g = await declare(s, 'Ticker', {
        group_name_auto: 'true',
        group_mask: String(EXCLUSIVE | DELETE_ON_EXIT),
      });
      const name = g.json<{ groupName: string }>().groupName;
      names.push(name);
      s.send({ headers: { cmd: 'consume', topic: 'Ticker', consume_group: name, consume_window: '5' } });
      await untilConsumers(admin, 'Ticker', name, 1);
    }
    expect(new Set(names).size).toBe(3);
    for (let i = 0; i < 3; i++)
      await admin.request({ headers: { cmd: 'produce', topic: 'Ticker' }, body: `t${i}` });
    for (const s of subs) {
      const got = [];
      for (let i = 0; i < 3; i++) got.push((await s.next()).bodyText());
      expect(got).toEqual(['t0', 't1', 't2']);
    }
  });
});

describe('tag filters', () => {
  it('delivers only the tags a group filter matches: `*` one segment, `#` the rest, `;` alternatives', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await declare(c, 'Stock');
    await declare(c, 'Stock', { consume_group: 'hk', group_filter: 'Stock.HK.#' });
    await declare(c, 'Stock', { consume_group: 'acct', group_filter: '*.account.#;Bond.US' });
    const tags = ['Stock.HK', 'Stock.HK.0700', 'Stock.US.AAPL', 'x.account', 'y.account.z', 'Bond.US', ''];
    for (const tag of tags) {
      const headers: Record<string, string> = { cmd: 'produce', topic: 'Stock' };
      if (tag) headers.tag = tag;
      await c.request({ headers, body: tag || 'untagged' });
    }
    const drain = async (group: string) => {
      const out: string[] = [];
      for (;;) {
        const d = await consumeFor(c, clock, 50, { topic: 'Stock', consume_group: group });
        if (d.headers.origin_id === undefined) return out;
        out.push(d.bodyText());
      }
    };
    expect(await drain('hk')).toEqual(['Stock.HK', 'Stock.HK.0700']);
    expect(await drain('acct')).toEqual(['x.account', 'y.account.z', 'Bond.US']);
    expect(await drain('Stock')).toHaveLength(tags.length);
  });
});

describe('exclusive and delete-on-exit groups', () => {
  it('answers 401 to a second session consuming an exclusive group, and lets it in once the first is gone', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'T', { consume_group: 'solo', group_mask: String(EXCLUSIVE) });
    const first = await b.raw();
    first.send({ headers: { cmd: 'consume', topic: 'T', consume_group: 'solo' } });
    await untilConsumers(admin, 'T', 'solo', 1);
    const second = await b.raw();
    const r = await second.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'solo' } });
    expect(r.status).toBe(401);
    expect(r.bodyText()).toBe('ConsumeGroup(solo) exclusive, forbbiden');
    expect(r.headers.error_code).toBe('ZBUS_ERR_EXCLUSIVE');
    // The same session may consume again.
    first.send({ headers: { cmd: 'consume', topic: 'T', consume_group: 'solo', id: 'again' } });
    first.close();
    await untilConsumers(admin, 'T', 'solo', 0);
    const waiting = second.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'solo' } });
    await untilConsumers(admin, 'T', 'solo', 1);
    await admin.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'yours now' });
    expect((await waiting).bodyText()).toBe('yours now');
  });

  it('removes a delete-on-exit group when its last consumer leaves, not before', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'T', { consume_group: 'temp', group_mask: String(DELETE_ON_EXIT) });
    const a = await b.raw();
    const c = await b.raw();
    a.send({ headers: { cmd: 'consume', topic: 'T', consume_group: 'temp' } });
    c.send({ headers: { cmd: 'consume', topic: 'T', consume_group: 'temp' } });
    await untilConsumers(admin, 'T', 'temp', 2);
    a.close();
    await untilConsumers(admin, 'T', 'temp', 1);
    c.send({ headers: { cmd: 'unconsume', topic: 'T', consume_group: 'temp' } });
    await untilGroupGone(admin, 'T', 'temp');
    const r = await admin.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'temp' } });
    expect(r.bodyText()).toContain('ConsumeGroup(temp) Not Found');
  });

  it('cleans every group a closing session consumed from, across topics', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const admin = await b.raw();
    await declare(admin, 'A', { consume_group: 'a1', group_mask: String(DELETE_ON_EXIT) });
    await declare(admin, 'A', { consume_group: 'a2', group_mask: String(EXCLUSIVE | DELETE_ON_EXIT) });
    await declare(admin, 'B', { consume_group: 'b1', group_mask: String(DELETE_ON_EXIT) });
    await declare(admin, 'B', { consume_group: 'kept' });
    const s = await b.raw();
    const pairs: Array<[string, string]> = [
      ['A', 'a1'],
      ['A', 'a2'],
      ['B', 'b1'],
      ['B', 'kept'],
    ];
    for (const [topic, group] of pairs) s.send({ headers: { cmd: 'consume', topic, consume_group: group } });
    for (const [topic, group] of pairs) await untilConsumers(admin, topic, group, 1);
    s.close();
    await untilGroupGone(admin, 'A', 'a1');
    await untilGroupGone(admin, 'A', 'a2');
    await untilGroupGone(admin, 'B', 'b1');
    await untilConsumers(admin, 'B', 'kept', 0);
    // The exclusive group is free for a newcomer (re-declared).
    const n = await b.raw();
    await declare(n, 'A', { consume_group: 'a2', group_mask: String(EXCLUSIVE) });
    const w = await consumeFor(n, clock, 50, { topic: 'A', consume_group: 'a2' });
    expect([w.status, w.headers.consume_timeout]).toEqual([200, 'true']);
  });
});

describe('delayed messages', () => {
  it('holds a message with a `delay` header until it is due; others pass it', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await declare(c, 'T');
    const producedAt = clock.now();
    const p = await c.request({ headers: { cmd: 'produce', topic: 'T', delay: '150' }, body: 'later' });
    expect(p.status).toBe(200);
    expect(Number(p.headers.deliver_at)).toBe(producedAt + 150);
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'now' });
    const first = await c.request({ headers: { cmd: 'consume', topic: 'T' } });
    expect(first.bodyText()).toBe('now');
    expect((await consumeFor(c, clock, 149, { topic: 'T' })).headers.origin_id).toBeUndefined();
    const second = c.request({ headers: { cmd: 'consume', topic: 'T' } });
    clock.advance(1);
    expect((await second).bodyText()).toBe('later');
    expect((await second).headers.delay).toBeUndefined();
  });

  it('holds a message until `deliver_at` (epoch ms)', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await declare(c, 'T');
    const at = clock.now() + 300;
    const p = await c.request({
      headers: { cmd: 'produce', topic: 'T', deliver_at: String(at) },
      body: 'at',
    });
    expect(p.headers.deliver_at).toBe(String(at));
    const early = await consumeFor(c, clock, 299, { topic: 'T' });
    expect(early.headers.origin_id).toBeUndefined();
    const d = c.request({ headers: { cmd: 'consume', topic: 'T' } });
    clock.advance(1);
    expect((await d).bodyText()).toBe('at');
  });
});
