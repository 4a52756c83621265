// WebSocket on the broker's port (zbus-protocol.md §1.3): after the handshake each frame holds one whole
// HTTP-formatted message; the broker answers with text frames (binary only for a body that is not UTF-8).
import { describe, expect, it } from 'vitest';
import { startTestBroker, untilConsumers, wsConnect } from './helpers.js';

describe('WebSocket', () => {
  it('answers each framed request with a text frame carrying its id', async () => {
    const b = await startTestBroker();
    const ws = await wsConnect(b.port);
    const id = ws.send({ headers: { cmd: 'declare', topic: 'T' } });
    const f = await ws.nextFrame((m) => m.headers.id === id);
    expect(f.binary).toBe(false);
    expect(f.msg.status).toBe(200);
    expect(f.msg.json<{ topicName: string }>().topicName).toBe('T');
    const pingId = ws.send({ headers: { cmd: 'ping' } }, false); // a text frame works as well
    const ping = await ws.nextFrame((m) => m.headers.id === pingId);
    expect([ping.binary, ping.msg.bodyText()]).toEqual([false, 'OK']);
  });

  it('produces and pushes deliveries to a waiting consumer', async () => {
    const b = await startTestBroker();
    const consumer = await wsConnect(b.port);
    const producer = await wsConnect(b.port);
    await producer.request({ headers: { cmd: 'declare', topic: 'T' } });
    const cid = consumer.send({ headers: { cmd: 'consume', topic: 'T', consume_window: '2' } });
    const p = await producer.request({ headers: { cmd: 'produce', topic: 'T', id: 'm1' }, body: 'hello ws' });
    expect(p.status).toBe(200);
    await producer.request({ headers: { cmd: 'produce', topic: 'T', id: 'm2' }, body: 'again' });
    const d1 = await consumer.nextFrame((m) => m.headers.id === cid);
    const d2 = await consumer.next((m) => m.headers.id === cid);
    expect(d1.binary).toBe(false);
    expect([d1.msg.headers.origin_id, d1.msg.bodyText()]).toEqual(['m1', 'hello ws']);
    expect([d2.headers.origin_id, d2.bodyText()]).toEqual(['m2', 'again']);
  });

  it('round-trips a binary body byte for byte in a binary frame', async () => {
    const b = await startTestBroker();
    const ws = await wsConnect(b.port);
    await ws.request({ headers: { cmd: 'declare', topic: 'Bin' } });
    const body = new Uint8Array(1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 0x80) & 0xff;
    const p = await ws.request({
      headers: { cmd: 'produce', topic: 'Bin', 'content-type': 'application/octet-stream' },
      body,
    });
    expect(p.status).toBe(200);
    const id = ws.send({ headers: { cmd: 'consume', topic: 'Bin' } });
    const d = await ws.nextFrame((m) => m.headers.id === id);
    expect(d.binary).toBe(true);
    expect(d.msg.headers['content-type']).toBe('application/octet-stream');
    expect(Buffer.from(d.msg.body).equals(Buffer.from(body))).toBe(true);
  });

  it('answers a malformed frame with 400 and keeps the connection', async () => {
    const b = await startTestBroker();
    const ws = await wsConnect(b.port);
    ws.ws.send('this is not an HTTP message');
    const bad = await ws.next();
    expect(bad.status).toBe(400);
    expect(bad.headers.error_code).toBe('ZBUS_ERR_BAD_MESSAGE');
    expect((await ws.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
  });

  it('handles an upgrade on any URL path and several frames sent back to back', async () => {
    const b = await startTestBroker();
    const ws = await wsConnect(b.port);
    await ws.request({ headers: { cmd: 'declare', topic: 'T' } });
    const ids = [];
    for (let i = 0; i < 50; i++) {
      ids.push(ws.send({ headers: { cmd: 'produce', topic: 'T', id: `p${i}` }, body: String(i) }));
    }
    const replies = await Promise.all(ids.map((id) => ws.next((m) => m.headers.id === id)));
    expect(replies.map((r) => Number(r.headers.offset))).toEqual(ids.map((_, i) => i));
  });

  it('drops the session of a closed WebSocket: its consumes stop counting', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    const ws = await wsConnect(b.port);
    await ws.request({ headers: { cmd: 'declare', topic: 'T' } });
    ws.send({ headers: { cmd: 'consume', topic: 'T' } });
    const count = async () =>
      (await admin.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'T' } })).json<{
        consumerCount: number;
      }>().consumerCount;
    while ((await count()) !== 1) {}
    ws.ws.close();
    while ((await count()) !== 0) {}
    expect(await count()).toBe(0);
  });

  it('answers frames without an id in order, including an RPC call by URL', async () => {
    const b = await startTestBroker();
    const svc = await b.raw();
    await svc.request({ headers: { cmd: 'declare', topic: 'MyRpc', topic_mask: '3' } });
    svc.send({ headers: { cmd: 'consume', topic: 'MyRpc', id: 'svc' } });
    const admin = await b.raw();
    await untilConsumers(admin, 'MyRpc', 'MyRpc', 1);
    const ws = await wsConnect(b.port);
    ws.ws.send('GET /MyRpc/Calc/plus/20/22 HTTP/1.1\r\n\r\n');
    ws.ws.send('GET /ping HTTP/1.1\r\n\r\n');
    const d = await svc.next((m) => m.headers.id === 'svc');
    expect(d.json()).toEqual({ module: 'Calc', method: 'plus', params: ['20', '22'] });
    svc.send({
      headers: { cmd: 'route', recver: d.headers.sender!, id: d.headers.origin_id!, origin_status: '200' },
      body: '42',
    });
    expect((await ws.next()).bodyText()).toBe('42');
    expect((await ws.next()).bodyText()).toBe('OK');
  });

  it('runs the admin commands: query, remove, empty, ack and unconsume', async () => {
    const b = await startTestBroker();
    const ws = await wsConnect(b.port);
    await ws.request({ headers: { cmd: 'declare', topic: 'T', consume_group: 'g', group_mask: '64' } });
    await ws.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'x' });
    const d = await ws.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    const a = await ws.request({
      headers: { cmd: 'ack', topic: 'T', consume_group: 'g', offset: d.headers.offset! },
    });
    expect([a.status, a.headers.pending]).toEqual([200, undefined]);
    const q = await ws.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'g' } });
    expect(q.json<{ unackedCount: number }>().unackedCount).toBe(0);
    expect((await ws.request({ headers: { cmd: 'empty', topic: 'T' } })).status).toBe(200);
    expect((await ws.request({ headers: { cmd: 'remove', topic: 'T', consume_group: 'g' } })).status).toBe(
      200,
    );
    expect((await ws.request({ headers: { cmd: 'remove', topic: 'T' } })).status).toBe(200);
    expect((await ws.request({ headers: { cmd: 'query', topic: 'T' } })).status).toBe(404);
    const unknown = await ws.request({ headers: { cmd: 'nope' } });
    expect([unknown.status, unknown.bodyText()]).toEqual([400, 'Bad format: command(nope) not support']);
  });

  it('subscribes to tracker updates with track_sub, as the monitor page does', async () => {
    const b = await startTestBroker();
    const ws = await wsConnect(b.port);
    const first = await ws.request({ headers: { cmd: 'track_sub' } });
    expect(first.headers.cmd).toBe('track_pub');
    expect(Object.keys(first.json<{ serverTable: object }>().serverTable)).toEqual([`127.0.0.1:${b.port}`]);
    const other = await b.raw();
    await other.request({ headers: { cmd: 'declare', topic: 'Seen' } });
    for (;;) {
      const pushed = await ws.next((m) => m.headers.cmd === 'track_pub');
      const info = pushed.json<{ serverTable: Record<string, { topicTable: object }> }>();
      if (Object.keys(info.serverTable[`127.0.0.1:${b.port}`]!.topicTable).includes('Seen')) break;
    }
  });
});
