import { Message, ZbusError } from '@zbus/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Broker, MqClient, restoreDelivery } from '../src/index.js';
import { backoffDelay } from '../src/timers.js';
import { fakeTransport } from './fake-transport.js';

function ok(
  req: Message,
  init: { body?: string; headers?: Record<string, string>; status?: number } = {},
): Message {
  return new Message({
    status: init.status ?? 200,
    headers: { id: req.id!, ...init.headers },
    body: init.body ?? '',
  });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('MqClient (core, in-memory transport)', () => {
  it('matches replies by id, out of order', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory });
    await c.connect();
    const a = c.invoke(new Message({ headers: { cmd: 'query', topic: 'a' } }));
    const b = c.invoke(new Message({ headers: { cmd: 'query', topic: 'b' } }));
    const [ma, mb] = t.last().sent;
    t.last().reply(ok(mb!, { body: 'B' }));
    t.last().reply(ok(ma!, { body: 'A' }));
    expect((await a).bodyText()).toBe('A');
    expect((await b).bodyText()).toBe('B');
    expect(ma!.id).not.toBe(mb!.id);
    await c.close();
  });

  it('adds the token to requests that have none', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory, token: 'abc' });
    await c.connect();
    c.send(new Message({ headers: { cmd: 'route', recver: 'x' } }));
    c.send(new Message({ headers: { cmd: 'route', recver: 'x', token: 'own' } }));
    expect(t.last().sent.map((m) => m.token)).toEqual(['abc', 'own']);
    await c.close();
  });

  it('rejects with ZBUS_ERR_TIMEOUT after the per-call timeout and forgets the request', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory });
    await c.connect();
    const err = await c
      .invoke(new Message({ headers: { cmd: 'query', topic: 'slow' } }), { timeout: 20 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ZbusError);
    expect(err).toMatchObject({ code: 'ZBUS_ERR_TIMEOUT', status: 504 });
    expect(err.message).toBe('query slow timed out after 20 ms (timeout)');
    expect(c.pendingCount).toBe(0);
    // a late reply becomes a plain message event
    const seen: Message[] = [];
    c.on('message', (m) => seen.push(m));
    t.last().reply(ok(t.last().sent[0]!));
    expect(seen).toHaveLength(1);
    await c.close();
  });

  it('gives typed errors for error replies of typed commands', async () => {
    const t = fakeTransport();
    t.state.onConnect = (conn) => {
      conn.onSend = (m) =>
        conn.reply(
          ok(m, {
            status: 404,
            headers: { error_code: 'ZBUS_ERR_NOT_FOUND' },
            body: '404: Topic(x) Not Found',
          }),
        );
    };
    const c = new MqClient('h:1', { transport: t.factory });
    await expect(c.queryTopic('x')).rejects.toMatchObject({
      code: 'ZBUS_ERR_NOT_FOUND',
      status: 404,
      message: '404: Topic(x) Not Found',
    });
    await c.close();
  });

  it('connects lazily on the first request', async () => {
    const t = fakeTransport();
    t.state.onConnect = (conn) => {
      conn.onSend = (m) =>
        conn.reply(ok(m, { body: '1700000000000', headers: { offset: '7', durable: 'fsync' } }));
    };
    const c = new MqClient('h:1', { transport: t.factory });
    const r = await c.produce({ topic: 'T', body: { a: 1 } });
    expect(r).toMatchObject({ topic: 'T', offset: 7, durability: 'fsync', serverTime: 1700000000000 });
    const sent = t.last().sent[0]!;
    expect(sent.cmd).toBe('produce');
    expect(sent.contentType).toBe('application/json');
    expect(sent.bodyText()).toBe('{"a":1}');
    expect(sent.id).toMatch(/^[0-9a-f-]{36}$/);
    await c.close();
  });

  it('fails the first connect with ZBUS_ERR_CONNECTION_CLOSED', async () => {
    const t = fakeTransport();
    t.state.refuse = 1;
    const c = new MqClient('h:1', { transport: t.factory });
    await expect(c.connect()).rejects.toMatchObject({ code: 'ZBUS_ERR_CONNECTION_CLOSED' });
    expect(c.state).toBe('idle');
    await c.connect();
    expect(c.connected).toBe(true);
    await c.close();
  });

  it('fails requests written to a lost connection, reconnects with backoff, and re-declares', async () => {
    const t = fakeTransport();
    t.state.onConnect = (conn) => {
      conn.onSend = (m) => {
        if (m.cmd === 'declare')
          conn.reply(ok(m, { body: JSON.stringify({ topicName: m.topic, groupName: 'g' }) }));
      };
    };
    const c = new MqClient('h:1', { transport: t.factory, reconnectDelay: 5, reconnectMaxDelay: 20 });
    const events: string[] = [];
    c.on('connected', (i) => events.push(`connected reconnect=${i.reconnect}`));
    c.on('disconnected', () => events.push('disconnected'));
    await c.declare('T', { group: { name: 'g', startOffset: 5 } });
    const inflight = c.invoke(new Message({ headers: { cmd: 'query' } }));
    t.state.refuse = 2;
    t.last().drop(new Error('ECONNRESET'));
    await expect(inflight).rejects.toMatchObject({ code: 'ZBUS_ERR_CONNECTION_CLOSED' });
    // a request made while disconnected waits for the next connection
    // (a timeout far past any reconnect: this request must wait, not time out)
    const later = c.invoke(new Message({ headers: { cmd: 'query', topic: 'later' } }), { timeout: 600_000 });
    await expect.poll(() => c.connected).toBe(true);
    expect(t.state.attempts).toBe(4); // first, two refused, one good
    const conn = t.last();
    expect(conn.sent[0]!.cmd).toBe('declare'); // re-declared before anything else
    expect(conn.sent[0]!.consumeGroup).toBe('g');
    expect(conn.sent[0]!.get('group_start_offset')).toBeUndefined(); // never moves the group again
    expect(conn.sent[1]!.topic).toBe('later');
    conn.reply(ok(conn.sent[1]!, { body: 'x' }));
    expect((await later).bodyText()).toBe('x');
    expect(events).toEqual(['connected reconnect=false', 'disconnected', 'connected reconnect=true']);
    await c.close();
  });

  it('with reconnect: false, fails a request at once when the broker is gone, and retries nothing', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory, reconnect: false, reconnectDelay: 1 });
    await c.connect();
    t.last().drop();
    await expect.poll(() => c.state).toBe('idle');
    t.state.refuse = 1_000;
    // The request dials once (lazily), hears the refusal, and no reconnect is scheduled behind it.
    await expect(c.invoke(new Message({ headers: { cmd: 'query' } }))).rejects.toMatchObject({
      code: 'ZBUS_ERR_CONNECTION_CLOSED',
    });
    expect(c.state).toBe('idle');
    expect(t.state.attempts).toBe(2);
    await c.close();
  });

  it('fails queued requests that outlive their timeout while disconnected', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory, reconnectDelay: 1000, reconnectMaxDelay: 1000 });
    await c.connect();
    t.last().drop();
    await expect.poll(() => c.state).toBe('reconnecting');
    await expect(c.invoke(new Message({ headers: { cmd: 'query' } }), { timeout: 30 })).rejects.toMatchObject(
      {
        code: 'ZBUS_ERR_TIMEOUT',
      },
    );
    await c.close();
  });

  it('close() waits for requests in flight, then refuses new ones', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory });
    await c.connect();
    const p = c.invoke(new Message({ headers: { cmd: 'query' } }));
    const closing = c.close();
    await expect(c.invoke(new Message({ headers: { cmd: 'query' } }))).rejects.toMatchObject({
      code: 'ZBUS_ERR_CONNECTION_CLOSED',
    });
    expect(t.last().closed).toBe(false);
    t.last().reply(ok(t.last().sent[0]!, { body: 'done' }));
    expect((await p).bodyText()).toBe('done');
    await closing;
    expect(t.last().closed).toBe(true);
    expect(c.state).toBe('closed');
  });

  it('close() gives up on in-flight requests after closeTimeout', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory, closeTimeout: 20 });
    await c.connect();
    const p = c.invoke(new Message({ headers: { cmd: 'query' } }));
    await c.close();
    await expect(p).rejects.toMatchObject({ code: 'ZBUS_ERR_CONNECTION_CLOSED' });
  });

  it('sends a heartbeat every heartbeatInterval', async () => {
    vi.useFakeTimers();
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory, heartbeatInterval: 1_000 });
    await c.connect();
    vi.advanceTimersByTime(3_100);
    expect(t.last().sent.filter((m) => m.cmd === 'heartbeat')).toHaveLength(3);
    vi.useRealTimers();
    await c.close();
  });

  it('streams every message of a windowed consume to its handler', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory });
    await c.connect();
    const got: string[] = [];
    const s = c.stream(
      new Message({ headers: { cmd: 'consume', topic: 'T', consume_window: '3' } }),
      (m) => got.push(m.bodyText()),
      () => {},
    );
    const req = t.last().sent[0]!;
    for (const b of ['1', '2', '3']) t.last().reply(ok(req, { body: b, headers: { origin_id: `o${b}` } }));
    expect(got).toEqual(['1', '2', '3']);
    expect(s.id).toBe(req.id);
    s.cancel();
    await c.close();
  });

  it('route() moves the status into origin_status and needs a recver', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory });
    await c.connect();
    const reply = new Message({ status: 600, headers: { id: 'r-1' }, body: '{}' });
    c.route(reply, 'session-9');
    const sent = t.last().sent[0]!;
    expect(sent.status).toBeUndefined();
    expect(sent.headers).toMatchObject({
      cmd: 'route',
      recver: 'session-9',
      origin_status: '600',
      id: 'r-1',
    });
    expect(() => c.route(new Message())).toThrow(/recver/);
    await c.close();
  });

  it('drops a connection that does not answer ping within pingTimeout, and reconnects', async () => {
    const t = fakeTransport(); // answers nothing
    const c = new MqClient('h:1', {
      transport: t.factory,
      heartbeatInterval: 30,
      pingTimeout: 20,
      reconnectDelay: 5,
    });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    await c.connect();
    await expect.poll(() => t.connections.length).toBeGreaterThanOrEqual(2);
    expect(t.connections[0]!.closed).toBe(true);
    expect(t.connections[0]!.sent.map((m) => m.cmd).slice(0, 2)).toEqual(['heartbeat', 'ping']);
    expect(errors[0]).toBe('no answer to ping from h:1 within 20 ms (pingTimeout)');
    await c.close();
  });

  it('keeps a connection that answers its pings', async () => {
    const t = fakeTransport();
    t.state.onConnect = (conn) => {
      conn.onSend = (m) => {
        if (m.cmd === 'ping') conn.reply(ok(m, { body: 'pong' }));
      };
    };
    const c = new MqClient('h:1', { transport: t.factory, heartbeatInterval: 20, pingTimeout: 15 });
    await c.connect();
    await expect.poll(() => t.last().sent.filter((m) => m.cmd === 'ping').length).toBeGreaterThanOrEqual(3);
    expect(t.connections).toHaveLength(1);
    await c.close();
  });

  it('retryInitialConnect keeps trying the first connection; queued requests wait for it', async () => {
    const t = fakeTransport();
    t.state.refuse = 3;
    t.state.onConnect = (conn) => {
      conn.onSend = (m) => conn.reply(ok(m, { body: 'late but fine' }));
    };
    const c = new MqClient('h:1', { transport: t.factory, retryInitialConnect: true, reconnectDelay: 5 });
    const queued = c.invoke(new Message({ headers: { cmd: 'query' } }), { timeout: 600_000 });
    await c.connect();
    expect(t.state.attempts).toBe(4);
    expect((await queued).bodyText()).toBe('late but fine');
    await c.close();
  });

  it('Broker builds its clients with clientFactory when given', async () => {
    const t = fakeTransport();
    const made: string[] = [];
    const b = new Broker('h:1;h:2', {
      transport: t.factory,
      clientFactory: (address, options) => {
        made.push(address);
        return new MqClient(address, options);
      },
    });
    expect(b.client()).toBe(b.client());
    b.createClient({ token: 't' });
    expect(made).toEqual(['h:1', 'h:1']);
    await b.close();
  });

  it('validates options', () => {
    const t = fakeTransport();
    expect(() => new MqClient('h:1', { transport: t.factory, timeout: -1 })).toThrow(/timeout/);
    expect(
      () => new MqClient('h:1', { transport: t.factory, reconnectDelay: 10, reconnectMaxDelay: 5 }),
    ).toThrow(/reconnectMaxDelay/);
    expect(() => new MqClient('', { transport: t.factory })).toThrow(/address/);
  });
});

describe('restoreDelivery', () => {
  it('restores id, url, method and status as 0.11 clients do', () => {
    const m = new Message({
      status: 200,
      headers: {
        id: 'consume-1',
        origin_id: 'm-1',
        origin_url: '/x?y=1',
        origin_method: 'POST',
        offset: '3',
        consume_group: 'g',
      },
    });
    restoreDelivery(m);
    expect(m.id).toBe('m-1');
    expect(m.url).toBe('/x?y=1');
    expect(m.method).toBe('POST');
    expect(m.status).toBeUndefined();
    expect(m.offset).toBe(3);
    expect(m.headers.origin_id).toBeUndefined();
    const r = restoreDelivery(
      new Message({ status: 200, headers: { id: 'c', origin_id: 'o', origin_status: '404' } }),
    );
    expect(r.status).toBe(404);
  });
});

describe('helpers', () => {
  it('backoffDelay doubles up to the max with bounded jitter', () => {
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 100, 1000, 0, () => 0.5))).toEqual([
      100, 200, 400, 800, 1000,
    ]);
    expect(backoffDelay(0, 100, 1000, 0.2, () => 0)).toBe(80);
    expect(backoffDelay(0, 100, 1000, 0.2, () => 1)).toBe(120);
  });
});
