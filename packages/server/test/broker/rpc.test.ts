// RPC through the broker (zbus-protocol.md §8, decisions.md §1-2): a service session consumes an RPC topic
// (mask MEMORY|RPC = 3) and answers with `route`; callers on raw TCP, WebSocket and plain HTTP (RPC by URL)
// get the service's reply; 503 at once without a service; 504 after the `timeout` header.
import { encodeMessage, Message, MessageDecoder } from '@zbus/protocol';
import { latch, ManualClock, type RawClient } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import {
  closed,
  declare,
  exposedGc,
  promotedByScavenges,
  startTestBroker,
  type TestBroker,
  untilConsumers,
  wsConnect,
} from './helpers.js';

interface RpcBody {
  module: string;
  method: string;
  params: unknown[];
}

/**
 * A service answering every delivery of `topic` with `route` (recver = the request's sender), as 0.11 services
 * do. `answer` returns [origin_status, body]; undefined means "never answer". Returns what it received.
 */
async function startService(
  b: TestBroker,
  topic: string,
  answer: (req: Message) => [number, string] | undefined,
): Promise<{ client: RawClient; received: Message[] }> {
  const client = await b.raw();
  await declare(client, topic, { topic_mask: '3' });
  const received: Message[] = [];
  client.send({ headers: { cmd: 'consume', topic, id: 'svc', consume_window: '64' } });
  const loop = async () => {
    for (;;) {
      let d: Message;
      try {
        d = await client.next((m) => m.headers.id === 'svc', 60_000);
      } catch {
        return;
      }
      if (d.headers.origin_id === undefined) continue;
      received.push(d);
      const a = answer(d);
      if (!a) continue;
      client.send({
        headers: {
          cmd: 'route',
          topic,
          recver: d.headers.sender!,
          id: d.headers.origin_id,
          origin_status: String(a[0]),
          'content-type': 'application/json',
        },
        body: a[1],
      });
    }
  };
  void loop();
  const admin = await b.raw();
  await untilConsumers(admin, topic, topic, 1);
  return { client, received };
}

/** A service on a broker with a manual clock that never answers: `taken()` resolves once a request reached it. */
async function muteService(b: TestBroker, topic: string) {
  const got = latch(1);
  const svc = await startService(b, topic, () => {
    got.countDown();
    return undefined;
  });
  return { ...svc, taken: () => got.wait() };
}

/** plus(a, b) on any module; anything else is an error with status 600. */
/** A service's answer to delivery `d` with `route`, echoing its body. */
function echoRoute(svc: RawClient, d: Message): void {
  svc.send({
    headers: {
      cmd: 'route',
      topic: 'MyRpc',
      recver: d.headers.sender!,
      id: d.headers.origin_id!,
      origin_status: '200',
    },
    body: d.bodyText(),
  });
}

const calculator = (req: Message): [number, string] => {
  const r = req.json<RpcBody>();
  if (r.method === 'plus') return [200, JSON.stringify(Number(r.params[0]) + Number(r.params[1]))];
  return [600, JSON.stringify({ message: `${r.module}:${r.method} Not Found` })];
};

describe('RPC by route', () => {
  it('delivers the request with the caller as sender; the routed reply reaches the caller by id', async () => {
    const b = await startTestBroker();
    const svc = await startService(b, 'MyRpc', calculator);
    const caller = await b.raw();
    const body = JSON.stringify({ module: 'Calc', method: 'plus', params: [1, 2] });
    const r = await caller.request({
      headers: {
        cmd: 'produce',
        topic: 'MyRpc',
        ack: 'false',
        id: 'r-42',
        'content-type': 'application/json',
      },
      body,
    });
    expect(r.status).toBe(200);
    expect(r.headers.id).toBe('r-42');
    expect(r.bodyText()).toBe('3');
    expect(r.headers['content-type']).toBe('application/json');
    for (const h of ['cmd', 'recver', 'ack', 'origin_status', 'remote-addr'])
      expect(r.headers[h]).toBeUndefined();
    const req = svc.received[0]!;
    expect(req.headers.origin_id).toBe('r-42');
    expect(req.headers.sender).toBeDefined();
    expect(req.json<RpcBody>()).toEqual({ module: 'Calc', method: 'plus', params: [1, 2] });
  });

  it('passes origin_status 600 through as the reply status', async () => {
    const b = await startTestBroker();
    await startService(b, 'MyRpc', calculator);
    const caller = await b.raw();
    const r = await caller.request({
      headers: { cmd: 'produce', topic: 'MyRpc' },
      body: JSON.stringify({ module: 'Calc', method: 'minus', params: [] }),
    });
    expect(r.status).toBe(600);
    expect(r.json<{ message: string }>().message).toBe('Calc:minus Not Found');
  });

  it('lets a service with consume_window N answer with route alone: each answer gives one credit back', async () => {
    const b = await startTestBroker();
    const svc = await b.raw();
    await declare(svc, 'MyRpc', { topic_mask: '3' });
    svc.send({ headers: { cmd: 'consume', topic: 'MyRpc', id: 'svc', consume_window: '2' } });
    const admin = await b.raw();
    await untilConsumers(admin, 'MyRpc', 'MyRpc', 1);
    const caller = await b.raw();
    const calls = [];
    for (let i = 0; i < 5; i++) {
      calls.push(
        caller.request({ headers: { cmd: 'produce', topic: 'MyRpc', id: `c${i}` }, body: String(i) }),
      );
    }
    const d0 = await svc.next((m) => m.headers.id === 'svc');
    const d1 = await svc.next((m) => m.headers.id === 'svc');
    // Two out, none answered: the window is full.
    await expect(svc.next((m) => m.headers.id === 'svc', 100)).rejects.toThrow();
    echoRoute(svc, d0);
    // A second answer to the same request gives nothing more.
    echoRoute(svc, d0);
    const d2 = await svc.next((m) => m.headers.id === 'svc');
    await expect(svc.next((m) => m.headers.id === 'svc', 100)).rejects.toThrow();
    echoRoute(svc, d1);
    echoRoute(svc, d2);
    const d3 = await svc.next((m) => m.headers.id === 'svc');
    const d4 = await svc.next((m) => m.headers.id === 'svc');
    echoRoute(svc, d3);
    echoRoute(svc, d4);
    expect((await Promise.all(calls)).map((r) => r.bodyText())).toEqual(['0', '1', '2', '3', '4']);
  });

  it('gives each credit back once when two callers pick the same request id', async () => {
    const b = await startTestBroker();
    const svc = await b.raw();
    await declare(svc, 'MyRpc', { topic_mask: '3' });
    svc.send({ headers: { cmd: 'consume', topic: 'MyRpc', id: 'svc', consume_window: '2' } });
    await untilConsumers(await b.raw(), 'MyRpc', 'MyRpc', 1);
    const [a, c] = [await b.raw(), await b.raw()];
    const fromA = a.request({ headers: { cmd: 'produce', topic: 'MyRpc', id: 'same' }, body: 'a' });
    const fromC = c.request({ headers: { cmd: 'produce', topic: 'MyRpc', id: 'same' }, body: 'c' });
    const d0 = await svc.next((m) => m.headers.id === 'svc');
    const d1 = await svc.next((m) => m.headers.id === 'svc');
    expect([d0.headers.origin_id, d1.headers.origin_id]).toEqual(['same', 'same']);
    for (const d of [d1, d0]) echoRoute(svc, d);
    expect([(await fromA).bodyText(), (await fromC).bodyText()]).toEqual(['a', 'c']);
    // Both answers gave their credit back: two more calls are delivered at once.
    const more = ['x', 'y'].map((id) =>
      a.request({ headers: { cmd: 'produce', topic: 'MyRpc', id }, body: id }),
    );
    const d2 = await svc.next((m) => m.headers.id === 'svc');
    const d3 = await svc.next((m) => m.headers.id === 'svc');
    for (const d of [d2, d3]) echoRoute(svc, d);
    expect((await Promise.all(more)).map((r) => r.bodyText())).toEqual(['x', 'y']);
  });

  it('answers many pipelined calls from several callers, over TCP and WebSocket', async () => {
    const b = await startTestBroker();
    await startService(b, 'MyRpc', calculator);
    const tcp = await b.raw();
    const ws = await wsConnect(b.port);
    const calls: Array<Promise<Message>> = [];
    for (let i = 0; i < 20; i++) {
      const init = {
        headers: { cmd: 'produce', topic: 'MyRpc', id: `c${i}` },
        body: JSON.stringify({ method: 'plus', params: [i, 1000] }),
      };
      calls.push(i % 2 === 0 ? tcp.request(init) : ws.request(init));
    }
    const replies = await Promise.all(calls);
    expect(replies.map((r) => Number(r.bodyText()))).toEqual(replies.map((_, i) => i + 1000));
  });

  it("lets the service's answered deliveries die young after an idle spell, with 32 calls in flight", async () => {
    const gc = exposedGc();
    // A ring that holds the requests for fewer calls than come between two scavenges.
    const b = await startTestBroker({ memoryTopicCapacity: 100 });
    // Service and caller on bare sockets: nothing on this side keeps what it received.
    const svc = await b.raw();
    await declare(svc, 'MyRpc', { topic_mask: '3' });
    svc.socket.removeAllListeners('data');
    const fromService = new MessageDecoder((d) => {
      if (d.headers.origin_id === undefined) return;
      const headers = { cmd: 'route', topic: 'MyRpc', recver: d.headers.sender!, id: d.headers.origin_id };
      svc.socket.write(encodeMessage(new Message({ headers, body: 'x' })));
    });
    svc.socket.on('data', (chunk: Buffer) => fromService.push(chunk));
    const consume = { cmd: 'consume', topic: 'MyRpc', id: 'svc', consume_window: '64' };
    svc.socket.write(encodeMessage(new Message({ headers: consume })));
    await untilConsumers(await b.raw(), 'MyRpc', 'MyRpc', 1);
    const caller = await b.raw();
    caller.socket.removeAllListeners('data');
    let sent = 0;
    let answered = 0;
    let last = 0;
    let done = (): void => {};
    const send = (): void => {
      const headers = { cmd: 'produce', topic: 'MyRpc', id: `c${++sent}` };
      caller.socket.write(encodeMessage(new Message({ headers, body: 'x' })));
    };
    const fromBroker = new MessageDecoder(() => {
      if (++answered % 250 === 0) gc({ type: 'minor' });
      if (answered === last) done();
      else if (sent < last) send();
    });
    caller.socket.on('data', (chunk: Buffer) => fromBroker.push(chunk));
    const calls = (n: number, inFlight: number): Promise<void> =>
      new Promise((resolve) => {
        done = resolve;
        last += n;
        for (let i = 0; i < inFlight; i++) send();
      });
    await calls(1, 1);
    for (let i = 0; i < 3; i++) gc({ type: 'minor' }); // the service's routed Map is now in the old generation
    await calls(500, 32);
    // The least of three rounds: a scavenge of the test's own process (vitest's) that lands mid-round promotes
    // what is in flight then, once; a Map whose tables were born old promotes in every round.
    const perCall: number[] = [];
    for (let round = 0; round < 3; round++)
      perCall.push((await promotedByScavenges(() => calls(1500, 32))) / 1500);
    // 79 bytes per call while the routed Map's tables were born old and kept the entries they held; 26 after.
    expect(Math.min(...perCall)).toBeLessThan(50);
  });

  it('keeps a request that arrives between two consumes of the service until it consumes again', async () => {
    const b = await startTestBroker();
    const svc = await b.raw();
    await declare(svc, 'MyRpc', { topic_mask: '3' });
    svc.send({ headers: { cmd: 'consume', topic: 'MyRpc', id: 'once' } });
    const admin = await b.raw();
    await untilConsumers(admin, 'MyRpc', 'MyRpc', 1);
    const caller = await b.raw();
    const first = caller.request({ headers: { cmd: 'produce', topic: 'MyRpc', id: 'a' }, body: '{}' });
    const second = caller.request({ headers: { cmd: 'produce', topic: 'MyRpc', id: 'b' }, body: '{}' });
    const d1 = await svc.next((m) => m.headers.id === 'once');
    svc.send({
      headers: { cmd: 'route', recver: d1.headers.sender!, id: d1.headers.origin_id!, origin_status: '200' },
      body: '1',
    });
    expect((await first).bodyText()).toBe('1');
    // The service is still registered on the group (no 503); the second call waits for its next consume.
    svc.send({ headers: { cmd: 'consume', topic: 'MyRpc', id: 'twice' } });
    const d2 = await svc.next((m) => m.headers.id === 'twice');
    svc.send({
      headers: { cmd: 'route', recver: d2.headers.sender!, id: d2.headers.origin_id!, origin_status: '200' },
      body: '2',
    });
    expect((await second).bodyText()).toBe('2');
  });

  it('answers 503 ZBUS_ERR_NO_RESPONDERS at once when no service consumes the topic', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await declare(c, 'MyRpc', { topic_mask: '3' });
    const r = await c.request({ headers: { cmd: 'produce', topic: 'MyRpc' }, body: '{}' });
    expect(r.status).toBe(503);
    expect(r.headers.error_code).toBe('ZBUS_ERR_NO_RESPONDERS');
    expect(r.bodyText()).toContain('no responders');
    // Once the service has gone, the same.
    const svc = await startService(b, 'MyRpc', calculator);
    expect(
      (
        await c.request({
          headers: { cmd: 'produce', topic: 'MyRpc' },
          body: '{"method":"plus","params":[1,1]}',
        })
      ).bodyText(),
    ).toBe('2');
    const gone = closed(svc.client.socket);
    svc.client.close();
    await gone;
    await untilConsumers(c, 'MyRpc', 'MyRpc', 0);
    expect((await c.request({ headers: { cmd: 'produce', topic: 'MyRpc' }, body: '{}' })).status).toBe(503);
  });

  it('answers 504 after the `timeout` header when the service never replies; a late reply is counted', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const svc = await muteService(b, 'Slow');
    const caller = await b.raw();
    let answered = false;
    const reply = caller.request({
      headers: { cmd: 'produce', topic: 'Slow', id: 't1', timeout: '100' },
      body: '{}',
    });
    void reply.then(() => {
      answered = true;
    });
    await svc.taken();
    clock.advance(99);
    await caller.request({ headers: { cmd: 'ping' } }); // a 504 sent at 99 would be in before this reply
    expect(answered).toBe(false);
    clock.advance(1);
    const r = await reply;
    expect(r.status).toBe(504);
    expect(r.headers.id).toBe('t1');
    expect(r.headers.error_code).toBe('ZBUS_ERR_TIMEOUT');
    expect(r.bodyText()).toContain('did not answer within 100 ms');
    // The service answers too late: dropped and counted, never delivered.
    const d = svc.received[0]!;
    svc.client.send({
      headers: { cmd: 'route', recver: d.headers.sender!, id: 't1', origin_status: '200' },
      body: 'late',
    });
    const metrics = async () => await (await fetch(`${b.url}/metrics`)).text();
    let m = await metrics();
    for (let i = 0; i < 200 && !m.includes('zbus_rpc_unroutable_replies_total 1'); i++) m = await metrics();
    expect(m).toContain('zbus_rpc_unroutable_replies_total 1');
    expect(m).toContain('zbus_rpc_timeouts_total 1');
    await caller.request({ headers: { cmd: 'ping' } });
    expect(caller.received.find((x) => x.bodyText() === 'late')).toBeUndefined();
  });
});

describe('RPC by URL', () => {
  it('turns GET /<topic>/<module>/<method>/<p1>/<p2> into a JSON request and answers with the reply', async () => {
    const b = await startTestBroker();
    const svc = await startService(b, 'MyRpc', calculator);
    const r = await fetch(`${b.url}/MyRpc/Calc/plus/1/2`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('3');
    expect(r.headers.get('content-type')).toBe('application/json');
    const req = svc.received[0]!;
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.json<RpcBody>()).toEqual({ module: 'Calc', method: 'plus', params: ['1', '2'] });
  });

  it('escapes what JSON must escape in URL segments (quotes, backslashes, controls, non-ASCII)', async () => {
    const b = await startTestBroker();
    const svc = await startService(b, 'MyRpc', () => [200, 'ok']);
    const params = ['say "hi"', 'a\\b', 'tab\there', 'caf\u00e9 \u{1f600}', 'plain-1.5_~'];
    const url = `${b.url}/MyRpc/Calc/echo/${params.map(encodeURIComponent).join('/')}`;
    expect(await (await fetch(url)).text()).toBe('ok');
    expect(svc.received[0]!.json<RpcBody>()).toEqual({ module: 'Calc', method: 'echo', params });
    expect(svc.received[0]!.bodyText()).toBe(JSON.stringify({ module: 'Calc', method: 'echo', params }));
  });

  it('keeps an empty module segment: /MyRpc//plus/1/2 calls the default module', async () => {
    const b = await startTestBroker();
    const svc = await startService(b, 'MyRpc', calculator);
    const r = await fetch(`${b.url}/MyRpc//plus/1/2`);
    expect(await r.text()).toBe('3');
    expect(svc.received[0]!.json<RpcBody>()).toEqual({ module: '', method: 'plus', params: ['1', '2'] });
  });

  it('accepts the 0.8 form /rpc/<topic>/<method>/<params>?module=m', async () => {
    const b = await startTestBroker();
    const svc = await startService(b, 'MyRpc', calculator);
    const r = await fetch(`${b.url}/rpc/MyRpc/plus/40/2?module=Calc`);
    expect([r.status, await r.text()]).toEqual([200, '42']);
    expect(svc.received[0]!.json<RpcBody>()).toEqual({ module: 'Calc', method: 'plus', params: ['40', '2'] });
  });

  it('parses the 0.8 URL of the original tests: /rpc/MyRpc/plus/1/2/?key1=val1&&key2=value2', async () => {
    const b = await startTestBroker();
    const svc = await startService(b, 'MyRpc', calculator);
    const r = await fetch(`${b.url}/rpc/MyRpc/plus/1/2/?key1=val1&&key2=value2`);
    expect([r.status, await r.text()]).toEqual([200, '3']);
    expect(svc.received[0]!.json<RpcBody>()).toEqual({ module: '', method: 'plus', params: ['1', '2'] });
    expect(svc.received[0]!.headers.key1).toBe('val1');
  });

  it('answers an RPC error with status 600 and the service body', async () => {
    const b = await startTestBroker();
    await startService(b, 'MyRpc', calculator);
    const r = await fetch(`${b.url}/MyRpc/Calc/divide/1/0`);
    expect(r.status).toBe(600);
    expect(await r.json()).toEqual({ message: 'Calc:divide Not Found' });
  });

  it('answers several keep-alive URL calls on one connection in order', async () => {
    const b = await startTestBroker();
    await startService(b, 'MyRpc', calculator);
    const c = await b.raw();
    c.socket.write(
      'GET /MyRpc/Calc/plus/1/1 HTTP/1.1\r\nhost: localhost\r\n\r\n' +
        'GET /ping HTTP/1.1\r\nhost: localhost\r\n\r\n' +
        'GET /MyRpc/Calc/plus/2/2 HTTP/1.1\r\nhost: localhost\r\n\r\n',
    );
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await c.next()).bodyText());
    expect(got).toEqual(['2', 'OK', '4']);
  });

  it('answers 503 at once without a service and 504 after ?timeout=', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ clock });
    const c = await b.raw();
    await declare(c, 'Nobody', { topic_mask: '3' });
    const r = await fetch(`${b.url}/Nobody/m/f/1`);
    expect(r.status).toBe(503);
    expect(r.headers.get('error_code')).toBe('ZBUS_ERR_NO_RESPONDERS');
    const mute = await muteService(b, 'Mute');
    const answer = fetch(`${b.url}/Mute/m/f/1?timeout=80`);
    await mute.taken();
    clock.advance(80);
    const t = await answer;
    expect(t.status).toBe(504);
    expect(t.headers.get('error_code')).toBe('ZBUS_ERR_TIMEOUT');
  });

  it('answers the plain-HTTP caller with the broker default timeout when none is given', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ rpcTimeoutMs: 100, clock });
    const mute = await muteService(b, 'Mute');
    const answer = fetch(`${b.url}/Mute/m/f`);
    await mute.taken();
    clock.advance(100);
    const t = await answer;
    expect(t.status).toBe(504);
    expect(await t.text()).toContain('within 100 ms');
  });
});

describe('route reaches only a caller waiting for that answer', () => {
  async function unroutable(b: TestBroker): Promise<number> {
    const text = await (await fetch(`${b.url}/metrics`)).text();
    return Number(/zbus_rpc_unroutable_replies_total (\d+)/.exec(text)?.[1] ?? -1);
  }

  it('drops a route into a session that made no call: no forged reply reaches it', async () => {
    const b = await startTestBroker();
    const victim = await b.raw();
    const attacker = await b.raw();
    // The attacker learns the victim's session id from a message the victim published.
    await declare(attacker, 'Chat');
    await victim.request({ headers: { cmd: 'produce', topic: 'Chat', id: 'hello' }, body: 'hi' });
    const seen = await attacker.request({ headers: { cmd: 'consume', topic: 'Chat' } });
    const victimId = seen.headers.sender!;
    expect(victimId).toBeTruthy();
    attacker.send({
      headers: { cmd: 'route', topic: 'Chat', recver: victimId, id: 'pending-1', origin_status: '200' },
      body: 'forged',
    });
    attacker.send({ headers: { cmd: 'route', recver: victimId, id: 'hello' }, body: 'forged too' });
    for (let i = 0; i < 200 && (await unroutable(b)) < 2; i++);
    expect(await unroutable(b)).toBe(2);
    await victim.request({ headers: { cmd: 'ping' } });
    expect(victim.received.filter((m) => m.bodyText().startsWith('forged'))).toEqual([]);
  });

  it('answers a waiting call only through a route on the topic the call was made to', async () => {
    const b = await startTestBroker();
    const svc = await startService(b, 'MyRpc', () => undefined);
    const caller = await b.raw();
    const call = caller.request({ headers: { cmd: 'produce', topic: 'MyRpc', id: 'c-1' }, body: '{}' });
    for (let i = 0; i < 500 && svc.received.length === 0; i++)
      await caller.request({ headers: { cmd: 'ping' } });
    const d = svc.received[0]!;
    const other = await b.raw();
    await declare(other, 'Elsewhere', { topic_mask: '3' });
    other.send({
      headers: { cmd: 'route', topic: 'Elsewhere', recver: d.headers.sender!, id: 'c-1' },
      body: 'wrong topic',
    });
    for (let i = 0; i < 200 && (await unroutable(b)) < 1; i++);
    expect(await unroutable(b)).toBe(1);
    svc.client.send({
      headers: { cmd: 'route', topic: 'MyRpc', recver: d.headers.sender!, id: 'c-1', origin_status: '200' },
      body: 'right',
    });
    expect((await call).bodyText()).toBe('right');
  });

  it('with auth, lets a token answer only calls on topics it may route', async () => {
    const b = await startTestBroker({
      auth: {
        tokens: [
          { token: 'admin', operations: ['admin'], topics: [{ topic: '*' }] },
          { token: 'billing-svc', operations: ['route', 'consume'], topics: [{ topic: 'Billing' }] },
        ],
      },
    });
    const admin = await b.raw();
    await declare(admin, 'Payroll', { topic_mask: '3', token: 'admin' });
    admin.send({ headers: { cmd: 'consume', topic: 'Payroll', id: 'svc', token: 'admin' } });
    await admin.request({ headers: { cmd: 'ping' } }); // the consume above is registered
    const caller = await b.raw();
    const call = caller.request({
      headers: { cmd: 'produce', topic: 'Payroll', id: 'p-1', token: 'admin' },
      body: '{}',
    });
    const d = await admin.next((m) => m.headers.id === 'svc' && m.headers.origin_id === 'p-1');
    const intruder = await b.raw();
    const forged = { cmd: 'route', recver: d.headers.sender!, id: 'p-1', token: 'billing-svc' };
    // Naming no topic or the call's topic: checked against Payroll, which this token may not route.
    for (const headers of [forged, { ...forged, topic: 'Payroll' }]) {
      const r = await intruder.request({ headers, body: 'forged' });
      expect([r.status, r.bodyText()]).toEqual([403, '403: Command(route) Topic(Payroll) Forbbiden']);
    }
    // Naming a topic it may route: not the call's topic, dropped.
    intruder.send({ headers: { ...forged, topic: 'Billing' }, body: 'forged' });
    await intruder.request({ headers: { cmd: 'ping' } });
    admin.send({
      headers: { cmd: 'route', topic: 'Payroll', recver: d.headers.sender!, id: 'p-1', token: 'admin' },
      body: 'paid',
    });
    expect((await call).bodyText()).toBe('paid');
    expect(caller.received.filter((m) => m.bodyText() === 'forged')).toEqual([]);
  });
});
