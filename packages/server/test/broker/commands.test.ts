// Every 0.11 command over a raw TCP connection, as zbus clients speak it.
import type { Message } from '@zbus/protocol';
import { ManualClock } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { COMMAND_HANDLERS } from '../../src/commands/registry.js';
import { MONITOR_COMMANDS } from '../../src/http/monitor.js';
import { consumeFor, startTestBroker } from './helpers.js';

const text = (m: Message) => m.bodyText();

describe('produce', () => {
  it('stores a message and answers 200 with the server time, offset and durability', async () => {
    const b = await startTestBroker({ fsync: 'always' });
    const c = await b.raw();
    expect((await c.request({ headers: { cmd: 'declare', topic: 'MyTopic' } })).status).toBe(200);
    const before = Date.now();
    const r = await c.request({ headers: { cmd: 'produce', topic: 'MyTopic' }, body: 'hello' });
    expect(r.status).toBe(200);
    expect(Number(text(r))).toBeGreaterThanOrEqual(before);
    expect(r.headers.offset).toBe('0');
    expect(r.headers.durable).toBe('fsync');
    const r2 = await c.request({ headers: { cmd: 'produce', topic: 'MyTopic' }, body: 'again' });
    expect(r2.headers.offset).toBe('1');
  });

  it('answers 404 for a missing topic and 400 for a missing topic name', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const r = await c.request({ headers: { cmd: 'produce', topic: 'nope' }, body: 'x' });
    expect(r.status).toBe(404);
    expect(text(r)).toBe('404: Topic(nope) Not Found');
    expect(r.headers.error_code).toBe('ZBUS_ERR_NOT_FOUND');
    const r2 = await c.request({ headers: { cmd: 'produce' }, body: 'x' });
    expect(r2.status).toBe(400);
    expect(text(r2)).toBe('400: Bad Format, Missing topic');
  });

  it('rejects ids longer than 39 and tags longer than 127 characters', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    const longId = 'x'.repeat(40);
    c.send({ headers: { cmd: 'produce', topic: 'T', id: longId } });
    const r = await c.next((m) => m.headers.id === longId);
    expect(r.status).toBe(400);
    expect(text(r)).toBe('400: Bad Format, Message.Id length should <= 39');
    const r2 = await c.request({ headers: { cmd: 'produce', topic: 'T', tag: 't'.repeat(128) } });
    expect(text(r2)).toBe('400: Bad Format, Message.Tag length should <= 127');
  });

  it('sends no reply when ack is false', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    const id = c.send({ headers: { cmd: 'produce', topic: 'T', ack: 'false' }, body: 'quiet' });
    // Appends keep their order: once a later acked produce is answered, the quiet one is stored too.
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'loud' });
    const r = await c.request({ headers: { cmd: 'query', topic: 'T' } });
    expect(r.json<{ messageDepth: number }>().messageDepth).toBe(2);
    expect(c.received.find((m) => m.headers.id === id)).toBeUndefined();
  });
  it('answers 404 to a produce for a missing topic even with ack false, so callers do not wait', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const r = await c.request({ headers: { cmd: 'produce', topic: 'missing', ack: 'false' }, body: 'x' });
    expect(r.status).toBe(404);
  });

  it('applies per-topic settings from declare: fsync policy and retention', async () => {
    const b = await startTestBroker({ fsync: 'always' });
    const c = await b.raw();
    await c.request({
      headers: { cmd: 'declare', topic: 'Fast', topic_fsync: 'never', topic_retention_messages: '10' },
    });
    const r = await c.request({ headers: { cmd: 'produce', topic: 'Fast' }, body: 'x' });
    expect(r.headers.durable).toBe('none');
    const bad = await c.request({ headers: { cmd: 'declare', topic: 'Fast', topic_fsync: 'sometimes' } });
    expect(bad.status).toBe(400);
    // A re-declare that names no settings keeps the ones it had.
    await c.request({ headers: { cmd: 'declare', topic: 'Fast', consume_group: 'g' } });
    expect((await c.request({ headers: { cmd: 'produce', topic: 'Fast' }, body: 'y' })).headers.durable).toBe(
      'none',
    );
  });
});

describe('consume', () => {
  it('delivers as 0.11 shapes it: id of the consume, origin_id, offset, consume_group, sender kept', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'm-1', tag: 'a.b' }, body: 'payload' });
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T', id: 'c-1' } });
    expect(d.status).toBe(200);
    expect(d.headers.id).toBe('c-1');
    expect(d.headers.origin_id).toBe('m-1');
    expect(d.headers.offset).toBe('0');
    expect(d.headers.consume_group).toBe('T');
    expect(d.headers.tag).toBe('a.b');
    expect(d.headers.sender).toBeDefined();
    expect(d.headers.origin_method).toBe('GET');
    expect(d.headers.retry).toBeUndefined();
    expect(d.headers.cmd).toBeUndefined();
    expect(text(d)).toBe('payload');
  });

  it('long-polls until a message arrives', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const p = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    const waiting = c.request({ headers: { cmd: 'consume', topic: 'T' } });
    await p.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'late' });
    expect(text(await waiting)).toBe('late');
  });

  it('answers an empty 200 without origin_id when consume_timeout runs out', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    const r = await consumeFor(c, clock, 50, { topic: 'T' });
    expect(r.status).toBe(200);
    expect(r.headers.consume_timeout).toBe('true');
    expect(r.headers.origin_id).toBeUndefined();
    expect(r.body.length).toBe(0);
  });

  it('hands a message to a consume whose consume_timeout runs out while the broker reads it', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'm1' }, body: 'x' });
    // The clock moves past the timeout as soon as the consume is queued, before the store read completes.
    const r = await consumeFor(c, clock, 50, { topic: 'T' });
    expect([r.headers.origin_id, r.headers.consume_timeout]).toEqual(['m1', undefined]);
  });

  it('reads one message by offset and answers 404 past the end', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    for (const body of ['a', 'b', 'c']) await c.request({ headers: { cmd: 'produce', topic: 'T' }, body });
    expect(text(await c.request({ headers: { cmd: 'consume', topic: 'T', offset: '1' } }))).toBe('b');
    const r = await c.request({ headers: { cmd: 'consume', topic: 'T', offset: '9' } });
    expect(r.status).toBe(404);
    expect(text(r)).toBe('404: Message Not Found: offset=9');
  });

  it('answers 404 for a missing group', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    const r = await c.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    expect(r.status).toBe(404);
    expect(text(r)).toBe('404: ConsumeGroup(g) Not Found');
  });

  it('pushes up to consume_window messages for one consume', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    for (let i = 0; i < 5; i++) await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: `m${i}` });
    c.send({ headers: { cmd: 'consume', topic: 'T', id: 'w', consume_window: '3' } });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(text(await c.next((m) => m.headers.id === 'w')));
    expect(got).toEqual(['m0', 'm1', 'm2']);
    await expect(c.next((m) => m.headers.id === 'w', 150)).rejects.toThrow();
  });

  it('gives several consumes on one connection their own deliveries, in order', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    c.send({ headers: { cmd: 'consume', topic: 'T', id: 'c1' } });
    c.send({ headers: { cmd: 'consume', topic: 'T', id: 'c2' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'one' });
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'two' });
    expect(text(await c.next((m) => m.headers.id === 'c1'))).toBe('one');
    expect(text(await c.next((m) => m.headers.id === 'c2'))).toBe('two');
  });

  it('unconsume stops a waiting consume and is not answered', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    c.send({ headers: { cmd: 'consume', topic: 'T', id: 'c1' } });
    const u = c.send({ headers: { cmd: 'unconsume', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'x' });
    await expect(c.next((m) => m.headers.id === 'c1' || m.headers.id === u, 150)).rejects.toThrow();
  });
});

describe('declare, query, remove, empty', () => {
  it('declare without a group creates the default group named as the topic and answers TopicInfo', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const r = await c.request({ headers: { cmd: 'declare', topic: 'Orders' } });
    const info = r.json<{
      topicName: string;
      mask: number;
      consumeGroupList: Array<{ groupName: string }>;
    }>();
    expect(info.topicName).toBe('Orders');
    expect(info.mask).toBe(0);
    expect(info.consumeGroupList.map((g) => g.groupName)).toEqual(['Orders']);
  });

  it('declare with a group answers ConsumeGroupInfo; group_name_auto picks topic, then topic0', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const g = (
      await c.request({ headers: { cmd: 'declare', topic: 'T', consume_group: 'g1', group_filter: 'a.*' } })
    ).json<{
      groupName: string;
      filter: string;
      topicName: string;
    }>();
    expect(g).toMatchObject({ groupName: 'g1', filter: 'a.*', topicName: 'T' });
    const a1 = (await c.request({ headers: { cmd: 'declare', topic: 'T', group_name_auto: 'true' } })).json<{
      groupName: string;
    }>();
    const a2 = (await c.request({ headers: { cmd: 'declare', topic: 'T', group_name_auto: 'true' } })).json<{
      groupName: string;
    }>();
    expect([a1.groupName, a2.groupName]).toEqual(['T', 'T0']);
  });

  it('query answers ServerInfo, TopicInfo and ConsumeGroupInfo with the 0.11 field names', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'x' });
    const server = (await c.request({ headers: { cmd: 'query' } })).json<Record<string, unknown>>();
    expect(Object.keys(server)).toEqual(
      expect.arrayContaining(['serverAddress', 'serverVersion', 'infoVersion', 'trackerList', 'topicTable']),
    );
    expect(server.serverAddress).toEqual({ address: `127.0.0.1:${b.port}`, sslEnabled: false });
    const topic = (await c.request({ headers: { cmd: 'query', topic: 'T' } })).json<
      Record<string, unknown>
    >();
    expect(topic).toMatchObject({ topicName: 'T', messageDepth: 1, consumerCount: 0 });
    for (const k of [
      'serverAddress',
      'serverVersion',
      'mask',
      'consumeGroupList',
      'creator',
      'createdTime',
      'lastUpdatedTime',
    ]) {
      expect(topic).toHaveProperty(k);
    }
    const group = (await c.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'T' } })).json<
      Record<string, unknown>
    >();
    expect(group).toMatchObject({
      topicName: 'T',
      groupName: 'T',
      messageCount: 1,
      consumerCount: 0,
      consumerList: [],
    });
    const missing = await c.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'zz' } });
    expect(missing.status).toBe(404);
  });

  it('remove deletes a group or a whole topic, and answers 404 for what is not there', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T', consume_group: 'g' } });
    expect((await c.request({ headers: { cmd: 'remove', topic: 'T', consume_group: 'g' } })).status).toBe(
      200,
    );
    expect((await c.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'g' } })).status).toBe(404);
    expect((await c.request({ headers: { cmd: 'remove', topic: 'T' } })).status).toBe(200);
    expect((await c.request({ headers: { cmd: 'query', topic: 'T' } })).status).toBe(404);
    expect((await c.request({ headers: { cmd: 'remove', topic: 'T' } })).status).toBe(404);
  });

  it('remove answers waiting consumers of the removed topic with 404', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const admin = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    const waiting = c.request({ headers: { cmd: 'consume', topic: 'T' } });
    await admin.request({ headers: { cmd: 'remove', topic: 'T' } });
    expect((await waiting).status).toBe(404);
  });

  it('empty drops the messages of a topic', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'x' });
    expect((await c.request({ headers: { cmd: 'empty', topic: 'T' } })).status).toBe(200);
    const g = (await c.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'T' } })).json<{
      messageCount: number;
    }>();
    expect(g.messageCount).toBe(0);
  });
});

describe('other commands', () => {
  it('heartbeat is never answered; ping answers OK', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const h = c.send({ headers: { cmd: 'heartbeat' } });
    expect(text(await c.request({ headers: { cmd: 'ping' } }))).toBe('OK');
    expect(c.received.find((m) => m.headers.id === h)).toBeUndefined();
  });

  it('answers an unknown command with the 0.11 text', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const r = await c.request({ headers: { cmd: 'frobnicate' } });
    expect(r.status).toBe(400);
    expect(text(r)).toBe('Bad format: command(frobnicate) not support');
    expect(r.headers.error_code).toBe('ZBUS_ERR_UNKNOWN_COMMAND');
  });

  it('lets several clients declare the same topic at once', async () => {
    const b = await startTestBroker({ fsync: 'always' });
    const cs = await Promise.all([b.raw(), b.raw(), b.raw(), b.raw()]);
    await cs[0]!.request({ headers: { cmd: 'declare', topic: 'Same' } });
    const replies = await Promise.all(
      cs.map((c, i) =>
        c.request({ headers: { cmd: 'declare', topic: 'Same', topic_retention_messages: String(100 + i) } }),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it('gives concurrent group_name_auto declares distinct names', async () => {
    const b = await startTestBroker();
    const cs = await Promise.all([b.raw(), b.raw(), b.raw()]);
    await cs[0]!.request({ headers: { cmd: 'declare', topic: 'N' } });
    const names = await Promise.all(
      cs.map(
        async (c) =>
          (await c.request({ headers: { cmd: 'declare', topic: 'N', group_name_auto: 'true' } })).json<{
            groupName: string;
          }>().groupName,
      ),
    );
    expect(new Set(names).size).toBe(3);
  });

  it('server and tracker answer ServerInfo and TrackerInfo; track_sub pushes TrackerInfo', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const s = (await c.request({ headers: { cmd: 'server' } })).json<{
      serverAddress: { address: string };
    }>();
    expect(s.serverAddress.address).toBe(`127.0.0.1:${b.port}`);
    const t = (await c.request({ headers: { cmd: 'tracker' } })).json<{
      serverTable: Record<string, unknown>;
    }>();
    expect(Object.keys(t.serverTable)).toEqual([`127.0.0.1:${b.port}`]);
    const sub = await c.request({ headers: { cmd: 'track_sub' } });
    expect(sub.json<{ infoVersion: number }>().infoVersion).toBeGreaterThan(0);
    const other = await b.raw();
    await other.request({ headers: { cmd: 'declare', topic: 'Fresh' } });
    const pushed = await c.next((m) => m.headers.cmd === 'track_pub');
    const info = pushed.json<{ serverTable: Record<string, { topicTable: Record<string, unknown> }> }>();
    expect(Object.keys(info.serverTable[`127.0.0.1:${b.port}`]!.topicTable)).toContain('Fresh');
  });

  it('replies to pipelined requests by id, out of order when a later one finishes first', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    // The consume waits; the query after it is answered first, and a produce then ends the consume.
    c.send({ headers: { cmd: 'consume', topic: 'T', id: 'first' } });
    c.send({ headers: { cmd: 'query', topic: 'T', id: 'second' } });
    const order: string[] = [];
    const a = c.next((m) => m.headers.id === 'first').then(() => order.push('first'));
    await c.next((m) => m.headers.id === 'second').then(() => order.push('second'));
    c.send({ headers: { cmd: 'produce', topic: 'T', id: 'third' }, body: 'x' });
    await a;
    expect(order).toEqual(['second', 'first']);
  });

  it('keeps 200 pipelined produces in log order', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    const ids: string[] = [];
    for (let i = 0; i < 200; i++)
      ids.push(c.send({ headers: { cmd: 'produce', topic: 'T', id: `p${i}` }, body: String(i) }));
    const replies = await Promise.all(ids.map((id) => c.next((m) => m.headers.id === id)));
    expect(replies.map((r) => Number(r.headers.offset))).toEqual(ids.map((_, i) => i));
  });
});

describe('command tables', () => {
  it('names no monitor page after a command (the pipeline asks for a handler first)', () => {
    expect([...MONITOR_COMMANDS].filter((c) => COMMAND_HANDLERS.has(c))).toEqual([]);
  });
});
