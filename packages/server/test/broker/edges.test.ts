// Edges where messages could be lost or answered twice: consumers that leave while waiting or while the
// broker is handing them a message, bounded memory topics, produce dedupe, RPC callers that go away.
import type { Message } from '@zbus/protocol';
import { ManualClock } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { closed, declare, startTestBroker, untilConsumers } from './helpers.js';

describe('consumers that leave', () => {
  it('gives the message to the next consumer when a plain-HTTP long-poll was aborted', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'T');
    const abort = new AbortController();
    const gone = fetch(`${b.url}/T?cmd=consume`, { signal: abort.signal }).catch((e: unknown) => e);
    await untilConsumers(admin, 'T', 'T', 1);
    abort.abort();
    await gone;
    await untilConsumers(admin, 'T', 'T', 0);
    await admin.request({ headers: { cmd: 'produce', topic: 'T', id: 'm1' }, body: 'kept' });
    const r = await fetch(`${b.url}/T?cmd=consume`);
    expect(await r.text()).toBe('kept');
  });

  it('does not lose messages pushed round-robin while one of two consumers disconnects', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'T');
    const stays = await b.raw();
    const leaves = await b.raw();
    stays.send({ headers: { cmd: 'consume', topic: 'T', id: 's', consume_window: '100' } });
    leaves.send({ headers: { cmd: 'consume', topic: 'T', id: 'l', consume_window: '100' } });
    await untilConsumers(admin, 'T', 'T', 2);
    const leftAt = closed(leaves.socket);
    leaves.close();
    await leftAt;
    await untilConsumers(admin, 'T', 'T', 1); // the broker has seen it go
    for (let i = 0; i < 20; i++)
      admin.send({ headers: { cmd: 'produce', topic: 'T', id: `m${i}`, ack: 'false' }, body: String(i) });
    const got: string[] = [];
    for (let i = 0; i < 20; i++) got.push((await stays.next((m) => m.headers.id === 's')).headers.origin_id!);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  });
});

describe('memory topics', () => {
  it('answers 429 when a memory topic is full of unread messages', async () => {
    const b = await startTestBroker({ memoryTopicCapacity: 3 });
    const c = await b.raw();
    await declare(c, 'Mem', { topic_mask: '1' });
    for (let i = 0; i < 3; i++) {
      expect((await c.request({ headers: { cmd: 'produce', topic: 'Mem' }, body: String(i) })).status).toBe(
        200,
      );
    }
    const full = await c.request({ headers: { cmd: 'produce', topic: 'Mem' }, body: 'x' });
    expect(full.status).toBe(429);
    expect(full.headers.error_code).toBe('ZBUS_ERR_LIMIT');
    expect(full.bodyText()).toContain('full');
    const first = await c.request({ headers: { cmd: 'consume', topic: 'Mem' } });
    expect(first.bodyText()).toBe('0');
    expect((await c.request({ headers: { cmd: 'produce', topic: 'Mem' }, body: 'y' })).status).toBe(200);
  });

  it('answers an RPC caller whose request cannot be queued with 429, not silence', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ memoryTopicCapacity: 2, clock });
    const svc = await b.raw();
    await declare(svc, 'Rpc', { topic_mask: '3' });
    // A registered service that takes one request and then stays busy.
    svc.send({ headers: { cmd: 'consume', topic: 'Rpc', id: 'busy' } });
    const admin = await b.raw();
    await untilConsumers(admin, 'Rpc', 'Rpc', 1);
    const caller = await b.raw();
    const calls: Array<Promise<Message>> = [];
    for (let i = 0; i < 5; i++) {
      calls.push(
        caller.request({
          headers: { cmd: 'produce', topic: 'Rpc', id: `r${i}`, timeout: '300' },
          body: '{}',
        }),
      );
    }
    // The last is refused at once (the two before it fill the topic), after the broker took every earlier one;
    // those time out when the clock reaches their timeout.
    expect((await calls[4]!).status).toBe(429);
    clock.advance(300);
    const statuses = (await Promise.all(calls)).map((r) => r.status);
    // One taken by the service, two queued (both time out: 504), the rest refused at once (429).
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 429 || s === 504)).toBe(true);
  });
});

describe('dedupe', () => {
  it('acknowledges a produce whose id was seen within dedupeWindowMs without storing it twice', async () => {
    const b = await startTestBroker({ dedupeWindowMs: 60_000 });
    const c = await b.raw();
    await declare(c, 'T');
    const first = await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'same' }, body: 'a' });
    const again = await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'same' }, body: 'a' });
    expect(first.headers.duplicate).toBeUndefined();
    expect([again.status, again.headers.duplicate]).toEqual([200, 'true']);
    const q = await c.request({ headers: { cmd: 'query', topic: 'T' } });
    expect(q.json<{ messageDepth: number }>().messageDepth).toBe(1);
  });
});

describe('RPC callers that go away', () => {
  it('counts the reply to a caller that disconnected as unroutable', async () => {
    const b = await startTestBroker();
    const svc = await b.raw();
    await declare(svc, 'Rpc', { topic_mask: '3' });
    svc.send({ headers: { cmd: 'consume', topic: 'Rpc', id: 'svc' } });
    const admin = await b.raw();
    await untilConsumers(admin, 'Rpc', 'Rpc', 1);
    const caller = await b.raw();
    caller.send({ headers: { cmd: 'produce', topic: 'Rpc', id: 'call-1' }, body: '{}' });
    const d = await svc.next((m) => m.headers.id === 'svc');
    const gone = closed(caller.socket);
    caller.close();
    await gone;
    await untilConsumers(admin, 'Rpc', 'Rpc', 1);
    svc.send({
      headers: { cmd: 'route', recver: d.headers.sender!, id: 'call-1', origin_status: '200' },
      body: '1',
    });
    let m = await (await fetch(`${b.url}/metrics`)).text();
    for (let i = 0; i < 200 && !m.includes('zbus_rpc_unroutable_replies_total 1'); i++) {
      m = await (await fetch(`${b.url}/metrics`)).text();
    }
    expect(m).toContain('zbus_rpc_unroutable_replies_total 1');
  });
});

describe('group start positions', () => {
  it('starts a new group at group_start_offset, or answers 500 when group_start_msgid does not match', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await declare(c, 'T');
    for (let i = 0; i < 3; i++)
      await c.request({ headers: { cmd: 'produce', topic: 'T', id: `m${i}` }, body: `m${i}` });
    await declare(c, 'T', { consume_group: 'from1', group_start_offset: '1', group_start_msgid: 'm1' });
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'from1' } });
    expect(d.headers.origin_id).toBe('m1');
    const bad = await c.request({
      headers: {
        cmd: 'declare',
        topic: 'T',
        consume_group: 'g2',
        group_start_offset: '1',
        group_start_msgid: 'zz',
      },
    });
    expect(bad.status).toBe(500);
    expect(bad.headers.error_code).toBe('ZBUS_ERR_SEEK');
    expect(bad.bodyText()).toBe('500: seek by offset failed: offset 1 does not hold message zz');
    const badNumber = await c.request({
      headers: { cmd: 'declare', topic: 'T', consume_group: 'g3', group_start_offset: 'x' },
    });
    expect([badNumber.status, badNumber.bodyText()]).toEqual([
      400,
      '400: Bad Format, group_start_offset must be an integer from 0 to 9007199254740991, got "x"',
    ]);
  });

  it('a new group starts where the most advanced group is, not at the start of the log', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await declare(c, 'T');
    for (let i = 0; i < 3; i++)
      await c.request({ headers: { cmd: 'produce', topic: 'T', id: `m${i}` }, body: `m${i}` });
    await c.request({ headers: { cmd: 'consume', topic: 'T' } });
    await c.request({ headers: { cmd: 'consume', topic: 'T' } });
    await declare(c, 'T', { consume_group: 'late' });
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'late' } });
    expect(d.headers.origin_id).toBe('m2');
  });
});

describe('names', () => {
  it('refuses topic names that could escape the data directory, in headers and URL-encoded', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    for (const topic of ['../evil', '..', 'a/b', '.', 'a\\b']) {
      const r = await c.request({ headers: { cmd: 'declare', topic } });
      expect(r.status, topic).toBe(400);
    }
    const r = await fetch(`${b.url}/%2e%2e%2fevil?cmd=declare`);
    expect(r.status).toBe(400);
    const q = await c.request({ headers: { cmd: 'query' } });
    expect(Object.keys(q.json<{ topicTable: object }>().topicTable)).toEqual([]);
  });
});
