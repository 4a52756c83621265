// Plain HTTP against the broker's one port: every URL form from fetch (undici) and curl, long-poll consume,
// keep-alive and pipelining in order, `connection: close`, HTTP/1.0 as `ab` sends it, and the reserved
// /metrics, /healthz and /readyz endpoints.
import { RawClient } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { closed, curl, declare, hasCommand, startTestBroker } from './helpers.js';

const get = async (url: string, init?: RequestInit) => {
  const r = await fetch(url, init);
  return { status: r.status, headers: r.headers, body: await r.text() };
};

describe('URL forms over fetch', () => {
  it('declares with the 0.8 form /declare/<topic> and the 0.11 form /<topic>?cmd=declare', async () => {
    const b = await startTestBroker();
    const a = await get(`${b.url}/declare/MyTopic`);
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toContain('application/json');
    expect(JSON.parse(a.body)).toMatchObject({ topicName: 'MyTopic', mask: 0 });
    const c = await get(`${b.url}/Other?cmd=declare`);
    expect(JSON.parse(c.body)).toMatchObject({ topicName: 'Other' });
    const g = await get(`${b.url}/Other/g1?cmd=declare&group_filter=a.%23`);
    expect(JSON.parse(g.body)).toMatchObject({ topicName: 'Other', groupName: 'g1', filter: 'a.#' });
  });

  it('produces with /produce/<topic>, /<topic>?cmd=produce, a bare /<topic> and a POST body', async () => {
    const b = await startTestBroker();
    await get(`${b.url}/declare/MyTopic`);
    const before = Date.now();
    const p1 = await get(`${b.url}/produce/MyTopic?body=one`);
    expect(p1.status).toBe(200);
    expect(Number(p1.body)).toBeGreaterThanOrEqual(before);
    expect((await get(`${b.url}/MyTopic?cmd=produce&body=two`)).status).toBe(200);
    expect((await get(`${b.url}/MyTopic?body=three`)).status).toBe(200);
    const p4 = await get(`${b.url}/MyTopic`, { method: 'POST', body: 'four, from a POST body' });
    expect(p4.status).toBe(200);
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const url = i % 2 === 0 ? `${b.url}/MyTopic?cmd=consume` : `${b.url}/consume/MyTopic`;
      bodies.push((await get(url)).body);
    }
    expect(bodies).toEqual(['one', 'two', 'three', 'four, from a POST body']);
  });

  it('URL-decodes query values and merges them as headers only where a header is absent', async () => {
    const b = await startTestBroker();
    await get(`${b.url}/declare/T`);
    await get(`${b.url}/T?cmd=produce&tag=Stock.HK&body=caf%C3%A9%20au%20lait`, {
      headers: { tag: 'From.Header' },
    });
    const d = await get(`${b.url}/T?cmd=consume`);
    expect(d.body).toBe('café au lait');
    expect(d.headers.get('tag')).toBe('From.Header');
    expect(d.headers.get('origin_id')).toBeTruthy();
  });

  it('keeps the content-type charset as sent and reports method and URL of the stored request', async () => {
    const b = await startTestBroker();
    await get(`${b.url}/declare/T`);
    await get(`${b.url}/T/extra?cmd=produce&x=1`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=iso-8859-1' },
      body: 'latin',
    });
    const c = await b.raw();
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T' } });
    expect(d.bodyText()).toBe('latin');
    expect(d.headers.origin_method).toBe('POST');
    expect(d.headers.origin_url).toBe('/T/extra?cmd=produce&x=1');
    const r = await get(`${b.url}/T?cmd=produce`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=gbk' },
      body: 'again',
    });
    expect(r.status).toBe(200);
    const h = await get(`${b.url}/T?cmd=consume`);
    expect(h.headers.get('content-type')).toBe('text/plain; charset=gbk');
  });

  it('takes a missing body from a `body` header, with or without a cmd header', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T', body: 'from a header' } });
    await get(`${b.url}/T`, { headers: { body: 'from an HTTP header' } });
    expect((await c.request({ headers: { cmd: 'consume', topic: 'T' } })).bodyText()).toBe('from a header');
    expect((await c.request({ headers: { cmd: 'consume', topic: 'T' } })).bodyText()).toBe(
      'from an HTTP header',
    );
  });

  it('answers a GET /<topic>?cmd=consume long-poll when a message arrives', async () => {
    const b = await startTestBroker();
    await get(`${b.url}/declare/MyTopic`);
    const c = await b.raw();
    // The long-poll is registered once the group shows a consumer.
    const waiting = get(`${b.url}/MyTopic?cmd=consume`);
    for (;;) {
      const g = await c.request({ headers: { cmd: 'query', topic: 'MyTopic', consume_group: 'MyTopic' } });
      if (g.json<{ consumerCount: number }>().consumerCount === 1) break;
    }
    await get(`${b.url}/MyTopic`, { method: 'POST', body: 'arrived' });
    const r = await waiting;
    expect(r.status).toBe(200);
    expect(r.body).toBe('arrived');
    expect(r.headers.get('consume_group')).toBe('MyTopic');
  });

  it('reads a consume group from the URL: /<topic>/<group>?cmd=consume and /consume/<topic>/<group>', async () => {
    const b = await startTestBroker();
    await get(`${b.url}/declare/T`);
    await get(`${b.url}/T/g1?cmd=declare`);
    await get(`${b.url}/declare/T/g2`);
    await get(`${b.url}/T?body=x`);
    const r1 = await get(`${b.url}/T/g1?cmd=consume`);
    const r2 = await get(`${b.url}/consume/T/g2`);
    expect([r1.body, r1.headers.get('consume_group')]).toEqual(['x', 'g1']);
    expect([r2.body, r2.headers.get('consume_group')]).toEqual(['x', 'g2']);
  });

  it('parses the URL of the 0.11 tests: /mytopic/group1/?cmd=consume&&token=xxxyyy', async () => {
    const b = await startTestBroker();
    await get(`${b.url}/declare/mytopic/group1`);
    await get(`${b.url}/mytopic?body=for-group1`);
    const r = await get(`${b.url}/mytopic/group1/?cmd=consume&&token=xxxyyy`);
    expect([r.status, r.body, r.headers.get('consume_group')]).toEqual([200, 'for-group1', 'group1']);
  });

  it('answers plain-HTTP requests 0.11 leaves unanswered (ack=false, unconsume) with an empty 200', async () => {
    // compat.test.ts has every transport and command; a heartbeat is never answered, even here.
    const b = await startTestBroker();
    await get(`${b.url}/declare/T`);
    const quiet = await get(`${b.url}/T?cmd=produce&ack=false&body=x`);
    expect(quiet.status).toBe(200);
    expect(quiet.body).toBe('');
    expect((await get(`${b.url}/T?cmd=unconsume`)).status).toBe(200);
    // The quiet produce was stored all the same.
    expect((await get(`${b.url}/T?cmd=consume`)).body).toBe('x');
  });

  it('answers server and tracker info over plain HTTP', async () => {
    const b = await startTestBroker();
    const s = await get(`${b.url}/?cmd=server`);
    expect(JSON.parse(s.body).serverAddress.address).toBe(`127.0.0.1:${b.port}`);
    const t = await get(`${b.url}/?cmd=tracker`);
    expect(Object.keys(JSON.parse(t.body).serverTable)).toEqual([`127.0.0.1:${b.port}`]);
    const q = await get(`${b.url}/?cmd=query`);
    expect(JSON.parse(q.body)).toHaveProperty('topicTable');
  });

  it('answers errors with their 0.11 status and text', async () => {
    const b = await startTestBroker();
    const missing = await get(`${b.url}/produce/Nope?body=x`);
    expect(missing.status).toBe(404);
    expect(missing.body).toBe('404: Topic(Nope) Not Found');
    expect(missing.headers.get('error_code')).toBe('ZBUS_ERR_NOT_FOUND');
    const unknown = await get(`${b.url}/T?cmd=frobnicate`);
    expect(unknown.status).toBe(400);
    expect(unknown.body).toBe('Bad format: command(frobnicate) not support');
    const q = await get(`${b.url}/query/Nope`);
    expect(q.status).toBe(404);
  });

  it('answers a plain request with the cmd header through fetch headers', async () => {
    const b = await startTestBroker();
    const r = await get(`${b.url}/`, { headers: { cmd: 'declare', topic: 'ByHeader' } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ topicName: 'ByHeader' });
    const s = await get(`${b.url}/anything/at/all`, { headers: { cmd: 'ping' } });
    expect(s.body).toBe('OK');
  });
});

describe.skipIf(!hasCommand('curl'))('URL forms over curl', () => {
  it('produces and consumes with GET URLs', async () => {
    const b = await startTestBroker();
    expect((await curl([`${b.url}/declare/MyTopic`])).status).toBe(200);
    const p = await curl([`${b.url}/produce/MyTopic?body=hello`]);
    expect(p.status).toBe(200);
    expect(p.headers['content-length']).toBe(String(p.body.length));
    const c = await curl([`${b.url}/MyTopic?cmd=consume`]);
    expect(c.status).toBe(200);
    expect(c.body).toBe('hello');
    expect(c.headers.origin_id).toBeDefined();
  });

  it('stores a POST body sent with --data-binary', async () => {
    const b = await startTestBroker();
    await curl([`${b.url}/declare/T`]);
    const p = await curl(['--data-binary', 'posted by curl', `${b.url}/T?cmd=produce`]);
    expect(p.status).toBe(200);
    expect((await curl([`${b.url}/consume/T`])).body).toBe('posted by curl');
  });

  it('stores a chunked request body read from stdin', async () => {
    const b = await startTestBroker();
    await curl([`${b.url}/declare/T`]);
    const big = 'chunk '.repeat(5000);
    const p = await curl(
      ['-H', 'Transfer-Encoding: chunked', '--data-binary', '@-', `${b.url}/produce/T`],
      big,
    );
    expect(p.status).toBe(200);
    const c = await curl([`${b.url}/consume/T`]);
    expect(c.body).toBe(big);
  });

  it('answers `Expect: 100-continue` (curl sends it for bodies over 1 MB) with 100 Continue', async () => {
    const b = await startTestBroker();
    await curl([`${b.url}/declare/T`]);
    const big = 'x'.repeat(2 * 1024 * 1024);
    const p = await curl(
      ['--data-binary', '@-', '-H', 'content-type: text/plain', `${b.url}/produce/T`],
      big,
    );
    // Without the interim reply curl stalls for a second before sending the body anyway.
    expect(p.raw).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    expect(p.status).toBe(200);
    const c = await curl([`${b.url}/consume/T`]);
    expect(c.body.length).toBe(big.length);
  });

  it('reuses one connection for several URLs (keep-alive)', async () => {
    const b = await startTestBroker();
    await curl([`${b.url}/declare/T`]);
    const r = await curl([
      '-w',
      '[connects=%{num_connects}]',
      `${b.url}/T?body=a`,
      `${b.url}/T?body=b`,
      `${b.url}/T?cmd=consume`,
    ]);
    // -w prints after each transfer: the first opened a connection, the next two reused it.
    expect(r.raw.match(/\[connects=\d\]/g)).toEqual(['[connects=1]', '[connects=0]', '[connects=0]']);
    expect(r.body).toContain('a');
  });
});

describe('HTTP/1.1 and HTTP/1.0 on a raw socket', () => {
  it('answers pipelined requests without an id in request order, even when the first one waits', async () => {
    const b = await startTestBroker();
    await get(`${b.url}/declare/T`);
    const c = await b.raw();
    c.socket.write(
      'GET /T/T?cmd=declare HTTP/1.1\r\nhost: localhost\r\n\r\n' +
        'GET /T?cmd=consume HTTP/1.1\r\nhost: localhost\r\n\r\n' +
        'GET /ping HTTP/1.1\r\nhost: localhost\r\n\r\n' +
        'POST /T HTTP/1.1\r\nhost: localhost\r\ncontent-length: 7\r\n\r\npayload' +
        'GET /query/T HTTP/1.1\r\nhost: localhost\r\n\r\n',
    );
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await c.next());
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(replies[0]!.json<{ groupName: string }>().groupName).toBe('T');
    // The consume was answered by the produce that came after it, and still went out second.
    expect(replies[1]!.bodyText()).toBe('payload');
    expect(replies[1]!.headers.origin_id).toBeDefined();
    expect(replies[2]!.bodyText()).toBe('OK');
    expect(Number(replies[3]!.bodyText())).toBeGreaterThan(0);
    // Requests run concurrently (only their replies are ordered): the query may not see the produce yet.
    expect(replies[4]!.json<{ topicName: string }>().topicName).toBe('T');
    expect(c.socket.destroyed).toBe(false);
  });

  it('answers HEAD with a head and no body, so the next reply on the connection stays in sync', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    c.socket.write(
      'HEAD /healthz HTTP/1.1\r\nhost: localhost\r\n\r\nGET /ping HTTP/1.1\r\nhost: localhost\r\n\r\n',
    );
    const head = await c.next();
    expect([head.status, head.body.length]).toEqual([200, 0]);
    expect((await c.next()).bodyText()).toBe('OK');
  });

  it('answers a produce ack without its body to HEAD and closes after one to `connection: close`', async () => {
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    const c = await b.raw();
    let raw = '';
    c.socket.setEncoding('latin1').on('data', (d: string) => {
      raw += d;
    });
    const gone = closed(c.socket);
    c.socket.write(
      'HEAD /produce/T?body=a HTTP/1.1\r\nhost: localhost\r\n\r\n' +
        'GET /produce/T?body=b HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n',
    );
    await gone;
    const ack = (offset: number, connection: string, length: number) =>
      `HTTP/1.1 200 OK\r\ntopic: T\r\ndurable: none\r\noffset: ${offset}\r\nid: [^\\r]+\r\n` +
      `connection: ${connection}\r\ncontent-length: ${length}\r\n\r\n`;
    expect(raw).toMatch(new RegExp(`^${ack(0, 'Keep-Alive', 0)}${ack(1, 'close', 13)}\\d{13}$`));
  });

  it('closes the connection after replying to `connection: close`', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const gone = closed(c.socket);
    c.socket.write('GET /ping HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    const r = await c.next();
    expect(r.bodyText()).toBe('OK');
    expect(r.headers.connection).toBe('close');
    await gone;
  });

  it('keeps an HTTP/1.0 connection with `Connection: Keep-Alive` open, as ab -k sends it', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await admin.request({ headers: { cmd: 'declare', topic: 'MyTopic' } });
    const c = await b.raw();
    let raw = '';
    c.socket.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
    });
    const ab = `GET /produce/MyTopic HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: 127.0.0.1:${b.port}\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n`;
    c.socket.write(ab + ab);
    const r1 = await c.next();
    const r2 = await c.next();
    for (const r of [r1, r2]) {
      expect(r.status).toBe(200);
      expect(r.headers.connection?.toLowerCase()).toBe('keep-alive');
    }
    // ab needs a content-length and the keep-alive token in each reply's head.
    expect(raw.match(/\r\ncontent-length: \d+\r\n/gi)).toHaveLength(2);
    expect(raw.match(/\r\nconnection: keep-alive\r\n/gi)).toHaveLength(2);
    expect(Number(r2.headers.offset)).toBe(1);
    expect(c.socket.destroyed).toBe(false);
  });

  it('closes an HTTP/1.0 connection without keep-alive after the reply', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const gone = closed(c.socket);
    c.socket.write('GET /ping HTTP/1.0\r\n\r\n');
    const r = await c.next();
    expect([r.bodyText(), r.headers.connection]).toEqual(['OK', 'close']);
    await gone;
  });

  it('answers malformed bytes with 400 and closes the connection', async () => {
    const b = await startTestBroker();
    const c = await RawClient.connect(b.port);
    const gone = closed(c.socket);
    c.socket.write('NOT HTTP AT ALL\r\n\r\n');
    const r = await c.next();
    expect(r.status).toBe(400);
    expect(r.headers.error_code).toBe('ZBUS_ERR_BAD_MESSAGE');
    await gone;
    // The broker carries on.
    expect((await get(`${b.url}/healthz`)).status).toBe(200);
  });
});

describe('/metrics, /healthz, /readyz', () => {
  it('serves health and readiness', async () => {
    const b = await startTestBroker();
    const h = await get(`${b.url}/healthz`);
    expect([h.status, h.body]).toEqual([200, 'ok\n']);
    const r = await get(`${b.url}/readyz`);
    expect([r.status, r.body]).toEqual([200, 'ready\n']);
  });

  it('serves Prometheus text with connection, request, topic and group figures', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'x' });
    await c.request({ headers: { cmd: 'produce', topic: 'Nope' }, body: 'x' });
    const m = await get(`${b.url}/metrics`);
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    expect(m.body).toContain('# TYPE zbus_requests_total counter');
    expect(m.body).toMatch(/^zbus_connections [1-9]/m);
    expect(m.body).toContain('zbus_messages_produced_total{topic="T"} 1');
    expect(m.body).toContain('zbus_topic_messages{topic="T"} 1');
    expect(m.body).toContain('zbus_group_backlog{topic="T",group="T"} 1');
    expect(m.body).toContain('zbus_errors_total{code="ZBUS_ERR_NOT_FOUND"} 1');
  });

  it('serves the group-commit histograms of fsync=always', async () => {
    const b = await startTestBroker({ fsync: 'always' });
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'x' });
    const m = (await get(`${b.url}/metrics`)).body;
    expect(m).toContain('# TYPE zbus_store_fsync_records histogram');
    expect(m).toContain('zbus_store_fsync_records_bucket{le="1"} 1');
    expect(m).toContain('zbus_store_fsync_records_count 1');
    expect(m).toContain('zbus_store_fsync_records_sum 1');
    expect(m).toMatch(/^zbus_store_fsync_seconds_bucket\{le="\+Inf"\} 1$/m);
    expect(m).toMatch(/^zbus_store_commit_wait_seconds_count 1$/m);
  });

  it('still reaches a topic named like an endpoint through the cmd header', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'metrics' } });
    const p = await c.request({ headers: { cmd: 'produce', topic: 'metrics' }, body: 'x' });
    expect(p.status).toBe(200);
    expect((await get(`${b.url}/metrics`)).body).toContain('# TYPE');
  });
});
