// Names at the edge: the longest valid names work, longer ones (also once lower-cased) are a 400 that names no
// server path, and topics named like Object.prototype's members are listed like any other.
import { describe, expect, it } from 'vitest';
import { declare, startTestBroker } from './helpers.js';

describe('topic and group names', () => {
  it('serves a 251-byte topic with a 255-byte group, and answers 400 ZBUS_ERR_BAD_NAME past the limits', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const topic = 't'.repeat(251);
    const group = 'g'.repeat(255);
    await declare(c, topic);
    await declare(c, topic, { consume_group: group });
    await c.request({ headers: { cmd: 'produce', topic, id: 'm1' }, body: 'x' });
    const d = await c.request({ headers: { cmd: 'consume', topic, consume_group: group } });
    expect(d.headers.origin_id).toBe('m1');
    const refused: Array<Record<string, string>> = [
      { cmd: 'declare', topic: 't'.repeat(255) },
      { cmd: 'declare', topic: 'İ'.repeat(84) }, // 252 bytes lower-cased
      { cmd: 'declare', topic, consume_group: 'g'.repeat(256) },
      { cmd: 'produce', topic: 't'.repeat(300) },
    ];
    for (const headers of refused) {
      const r = await c.request({ headers });
      expect([r.status, r.headers.error_code]).toEqual([400, 'ZBUS_ERR_BAD_NAME']);
      expect(r.bodyText()).not.toContain(b.dataDir);
    }
    const topics = (await c.request({ headers: { cmd: 'server' } })).json<{ topicTable: object }>()
      .topicTable;
    expect(Object.keys(topics)).toEqual([topic]);
  });

  it('lists topics named __proto__, constructor and toString', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const names = ['__proto__', 'constructor', 'toString', 'valueOf'];
    for (const n of names) {
      await declare(c, n);
      await c.request({ headers: { cmd: 'produce', topic: n, id: n }, body: n });
    }
    const info = (await c.request({ headers: { cmd: 'server' } })).json<{
      topicTable: Record<string, unknown>;
    }>();
    expect(Object.keys(info.topicTable).sort()).toEqual([...names].sort());
    const tracker = (await c.request({ headers: { cmd: 'tracker' } })).json<{
      serverTable: Record<string, { topicTable: Record<string, unknown> }>;
    }>();
    const [self] = Object.values(tracker.serverTable);
    expect(Object.keys(self!.topicTable).sort()).toEqual([...names].sort());
    const q = await c.request({ headers: { cmd: 'query', topic: '__proto__' } });
    expect(q.json<{ topicName: string; messageDepth: number }>()).toMatchObject({
      topicName: '__proto__',
      messageDepth: 1,
    });
  });
});
