// Every limit answers with a clear status and message and never takes the broker down: maxHeaderBytes (431),
// maxBodyBytes (413), maxConnections (503), maxInflightPerConnection, idleTimeoutMs (heartbeat keeps alive),
// maxTopics and maxGroupsPerTopic (429).
import { ManualClock, RawClient } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { closed, curl, declare, hasCommand, startTestBroker, wsConnect } from './helpers.js';

describe('maxHeaderBytes', () => {
  it('answers 431 when the header block exceeds maxHeaderBytes, then closes the connection', async () => {
    const b = await startTestBroker({ maxHeaderBytes: 2048 });
    const c = await RawClient.connect(b.port);
    onTestFinished(() => c.close());
    const gone = closed(c.socket);
    c.socket.write(`GET /ping HTTP/1.1\r\nx-big: ${'a'.repeat(3000)}\r\n\r\n`);
    const r = await c.next();
    expect(r.status).toBe(431);
    expect(r.headers.error_code).toBe('ZBUS_ERR_HEADERS_TOO_LARGE');
    expect(r.bodyText()).toBe('431: header block exceeds 2048 bytes (maxHeaderBytes)');
    expect(r.headers.connection).toBe('close');
    await gone;
    const ok = await b.raw();
    expect((await ok.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
  });

  it('answers 431 to fetch as well', async () => {
    const b = await startTestBroker({ maxHeaderBytes: 2048 });
    const r = await fetch(`${b.url}/ping`, { headers: { 'x-big': 'b'.repeat(4000) } });
    expect(r.status).toBe(431);
    expect(await r.text()).toContain('(maxHeaderBytes)');
  });
});

describe('maxBodyBytes', () => {
  it('answers 413 as soon as a content-length over maxBodyBytes is announced', async () => {
    const b = await startTestBroker({ maxBodyBytes: 1024 });
    const admin = await b.raw();
    await declare(admin, 'T');
    const c = await RawClient.connect(b.port);
    onTestFinished(() => c.close());
    const gone = closed(c.socket);
    // Only the head is sent: the broker must not wait for a body it will refuse.
    c.socket.write('POST /T HTTP/1.1\r\ncontent-length: 5000\r\n\r\n');
    const r = await c.next();
    expect(r.status).toBe(413);
    expect(r.headers.error_code).toBe('ZBUS_ERR_BODY_TOO_LARGE');
    expect(r.bodyText()).toContain('(maxBodyBytes)');
    await gone;
    const q = await admin.request({ headers: { cmd: 'query', topic: 'T' } });
    expect(q.json<{ messageDepth: number }>().messageDepth).toBe(0);
  });

  it('answers 413 to a chunked body that grows past the limit', async () => {
    const b = await startTestBroker({ maxBodyBytes: 1024 });
    const c = await RawClient.connect(b.port);
    onTestFinished(() => c.close());
    c.socket.write('POST /T HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n400\r\n');
    c.socket.write(`${'x'.repeat(1024)}\r\n10\r\n${'y'.repeat(16)}\r\n0\r\n\r\n`);
    const r = await c.next();
    expect(r.status).toBe(413);
  });

  it.skipIf(!hasCommand('curl'))('answers 413 to curl', async () => {
    const b = await startTestBroker({ maxBodyBytes: 1024 });
    const r = await curl(['--data-binary', '@-', `${b.url}/T`], 'z'.repeat(4096));
    expect(r.status).toBe(413);
    expect(r.body).toBe('413: content-length exceeds 1024 bytes (maxBodyBytes)');
  });

  it('answers 413 to an oversized WebSocket frame body and keeps the WebSocket open', async () => {
    const b = await startTestBroker({ maxBodyBytes: 1024 });
    const ws = await wsConnect(b.port);
    ws.send({ headers: { cmd: 'produce', topic: 'T' }, body: 'w'.repeat(2000) });
    const r = await ws.next();
    expect(r.status).toBe(413);
    expect((await ws.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
  });
  it('answers 413 to a `body` header or a `?body=` longer than maxBodyBytes, on every transport', async () => {
    const b = await startTestBroker({ maxBodyBytes: 1024 });
    const admin = await b.raw();
    await declare(admin, 'T');
    const big = 'h'.repeat(2000);
    const header = await admin.request({ headers: { cmd: 'produce', topic: 'T', body: big } });
    expect([header.status, header.headers.error_code]).toEqual([413, 'ZBUS_ERR_BODY_TOO_LARGE']);
    expect(header.bodyText()).toBe('413: body exceeds 1024 bytes (maxBodyBytes)');
    const query = await fetch(`${b.url}/T?cmd=produce&body=${big}`);
    expect(query.status).toBe(413);
    const ws = await wsConnect(b.port);
    const frame = await ws.request({ headers: { cmd: 'produce', topic: 'T', body: big } });
    expect(frame.status).toBe(413);
    // Within the limit both forms still store their message.
    const ok = await fetch(`${b.url}/T?cmd=produce&body=${'s'.repeat(1024)}`);
    expect(ok.status).toBe(200);
    const q = await admin.request({ headers: { cmd: 'query', topic: 'T' } });
    expect(q.json<{ messageDepth: number }>().messageDepth).toBe(1);
  });
});

describe('maxConnections', () => {
  it('answers 503 to a connection past maxConnections and closes it; a freed slot is reusable', async () => {
    const b = await startTestBroker({ maxConnections: 2 });
    const c1 = await b.raw();
    const c2 = await b.raw();
    await c1.request({ headers: { cmd: 'ping' } });
    await c2.request({ headers: { cmd: 'ping' } });
    const third = await RawClient.connect(b.port);
    onTestFinished(() => third.close());
    const gone = closed(third.socket);
    const r = await third.next();
    expect(r.status).toBe(503);
    expect(r.headers.error_code).toBe('ZBUS_ERR_LIMIT');
    expect(r.bodyText()).toBe('503: too many connections (maxConnections)');
    await gone;
    // Plain HTTP clients read the same answer.
    expect((await fetch(`${b.url}/healthz`)).status).toBe(503);
    const c1gone = closed(c1.socket);
    c1.close();
    await c1gone;
    // The broker notices the close on its side shortly after; retry until the slot is free.
    let r2 = await fetch(`${b.url}/healthz`, { headers: { connection: 'close' } });
    for (let i = 0; i < 100 && r2.status === 503; i++) {
      r2 = await fetch(`${b.url}/healthz`, { headers: { connection: 'close' } });
    }
    expect(r2.status).toBe(200);
  });

  it('frees a refused connection as soon as its client closes, so a burst of refusals all get 503', async () => {
    const b = await startTestBroker({ maxConnections: 1 });
    const held = await b.raw();
    await held.request({ headers: { cmd: 'ping' } });
    // Node resets connections past maxConnections + 64 it still holds; 100 refusals in a row stay under that
    // only if each refused socket is released when its client closes, not when the broker's timer runs out.
    for (let i = 0; i < 100; i++) {
      const refused = await RawClient.connect(b.port);
      onTestFinished(() => refused.close());
      const gone = closed(refused.socket);
      refused.send({ headers: { cmd: 'ping' } }); // clients talk first: the refused socket has bytes to read
      const answer = await Promise.race([refused.next().then((m) => m.status), gone.then(() => 'reset')]);
      expect([i, answer]).toEqual([i, 503]);
      await gone;
    }
  });
});

describe('maxTopics and maxGroupsPerTopic', () => {
  it('answers 429 to the declare of one topic more, memory or disk; a removed one frees its place', async () => {
    const b = await startTestBroker({ maxTopics: 3 });
    const c = await b.raw();
    for (const [topic, mask] of [
      ['T1', '0'],
      ['T2', '1'],
      ['T3', '0'],
    ] as const) {
      expect((await c.request({ headers: { cmd: 'declare', topic, topic_mask: mask } })).status).toBe(200);
    }
    for (const mask of ['0', '1']) {
      const r = await c.request({ headers: { cmd: 'declare', topic: 'T4', topic_mask: mask } });
      expect([r.status, r.headers.error_code, r.bodyText()]).toEqual([
        429,
        'ZBUS_ERR_LIMIT',
        '429: the broker holds 3 topics (maxTopics)',
      ]);
    }
    // Declaring the topics that exist again, or a group of one, is not a new topic.
    expect((await c.request({ headers: { cmd: 'declare', topic: 'T1' } })).status).toBe(200);
    expect((await c.request({ headers: { cmd: 'declare', topic: 'T3', consume_group: 'g' } })).status).toBe(
      200,
    );
    expect((await c.request({ headers: { cmd: 'remove', topic: 'T2' } })).status).toBe(200);
    expect((await c.request({ headers: { cmd: 'declare', topic: 'T4' } })).status).toBe(200);
  });

  it('answers 429 to one group more on a topic, named or picked by the broker', async () => {
    const b = await startTestBroker({ maxGroupsPerTopic: 3 });
    const c = await b.raw();
    // The default group (named as the topic) is the first.
    await declare(c, 'G');
    for (const g of ['a', 'b']) {
      expect((await c.request({ headers: { cmd: 'declare', topic: 'G', consume_group: g } })).status).toBe(
        200,
      );
    }
    const refused: Record<string, string>[] = [
      { cmd: 'declare', topic: 'G', consume_group: 'c' },
      { cmd: 'declare', topic: 'G', group_name_auto: 'true' },
    ];
    for (const headers of refused) {
      const r = await c.request({ headers });
      expect([r.status, r.headers.error_code, r.bodyText()]).toEqual([
        429,
        'ZBUS_ERR_LIMIT',
        '429: topic G has 3 groups (maxGroupsPerTopic)',
      ]);
    }
    // A group that exists may be declared again (to change its settings); another topic has its own count.
    expect(
      (await c.request({ headers: { cmd: 'declare', topic: 'G', consume_group: 'a', group_filter: 'x' } }))
        .status,
    ).toBe(200);
    expect((await c.request({ headers: { cmd: 'declare', topic: 'H', consume_group: 'c' } })).status).toBe(
      200,
    );
  });
});

describe('maxInflightPerConnection', () => {
  it('keeps reading a pipelining connection in bounded steps and answers every request in order', async () => {
    const b = await startTestBroker({ maxInflightPerConnection: 2, fsync: 'always' });
    const c = await b.raw();
    await declare(c, 'T');
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      ids.push(c.send({ headers: { cmd: 'produce', topic: 'T', id: `p${i}` }, body: String(i) }));
    }
    const replies = await Promise.all(ids.map((id) => c.next((m) => m.headers.id === id)));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(replies.map((r) => Number(r.headers.offset))).toEqual(ids.map((_, i) => i));
  });
});

describe('plain HTTP replies held behind a long-poll', () => {
  it('stops reading once maxInflightPerConnection replies wait for an earlier one, and answers all later', async () => {
    const b = await startTestBroker({ maxInflightPerConnection: 8 });
    const admin = await b.raw();
    await declare(admin, 'T');
    const c = await b.raw();
    const handled = async () => {
      const m = await (await fetch(`${b.url}/metrics`)).text();
      return Number(/^zbus_requests_total (\d+)/m.exec(m)![1]);
    };
    const before = await handled();
    // The first request waits; plain-HTTP replies must leave in order, so every later reply waits behind it.
    let burst = 'GET /T?cmd=consume HTTP/1.1\r\nhost: localhost\r\n\r\n';
    for (let i = 0; i < 200; i++) burst += 'GET /ping HTTP/1.1\r\nhost: localhost\r\n\r\n';
    c.socket.write(burst);
    // Give the broker every chance to read on (an event that takes 100 ms), then count what it handled.
    await admin.request({
      headers: { cmd: 'consume', topic: 'T', consume_group: 'T', consume_timeout: '100' },
    });
    const fromBurst = (await handled()) - before - 2; // minus this consume and the metrics request
    expect(fromBurst).toBeGreaterThan(0);
    expect(fromBurst).toBeLessThanOrEqual(8 + 1);
    await admin.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'unblock' });
    expect((await c.next()).bodyText()).toBe('unblock');
    for (let i = 0; i < 200; i++) expect((await c.next()).bodyText()).toBe('OK');
  });
});

describe('idle timeout and heartbeat', () => {
  // idleTimeoutMs runs on the broker's clock: these tests move a manual one.
  const IDLE = 1000;

  it('closes a TCP connection silent for idleTimeoutMs, not before', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ idleTimeoutMs: IDLE, clock });
    const c = await b.raw();
    await c.request({ headers: { cmd: 'ping' } }); // the broker has the connection
    clock.advance(IDLE - 1);
    // Still open: a close decided by then would have come before this ping is read.
    expect((await c.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
    const gone = closed(c.socket);
    clock.advance(2 * IDLE);
    await gone;
  });

  it('closes a silent WebSocket after idleTimeoutMs too', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ idleTimeoutMs: IDLE, clock });
    const ws = await wsConnect(b.port);
    await ws.request({ headers: { cmd: 'ping' } });
    const gone = new Promise((resolve) => ws.ws.once('close', resolve));
    clock.advance(2 * IDLE);
    await gone;
  });

  it('keeps a connection that sends heartbeats, and never answers them', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ idleTimeoutMs: IDLE, clock });
    const c = await b.raw();
    const other = await b.raw();
    // A heartbeat every half timeout, for three timeouts, and nothing else.
    for (let i = 0; i < 6; i++) {
      c.send({ headers: { cmd: 'heartbeat' } });
      await other.request({ headers: { cmd: 'ping' } }); // a turn of the broker's I/O: it read the heartbeat
      clock.advance(IDLE / 2);
    }
    expect((await c.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
    expect(c.received).toHaveLength(0);
  });

  it('closes idle connections on the real clock by default', async () => {
    const b = await startTestBroker({ idleTimeoutMs: 100 });
    const c = await b.raw();
    const started = Date.now();
    await closed(c.socket, 5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });
});

describe('bad input', () => {
  it('survives a flood of malformed and truncated connections', async () => {
    const b = await startTestBroker();
    const inputs = [
      'GET / HTTP/9.9\r\n\r\n',
      'GET /x HTTP/1.1\r\ncontent-length: -5\r\n\r\n',
      'GET /x HTTP/1.1\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n',
      'POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      'GET /x HTTP/1.1\r\nbad header line\r\n\r\n',
      '\u0016\u0003\u0001\u0000', // a TLS hello to a broker without TLS
      'POST /x HTTP/1.1\r\ncontent-length: 100\r\n\r\nshort',
    ];
    await Promise.all(
      inputs.map(async (input) => {
        const c = await RawClient.connect(b.port);
        onTestFinished(() => c.close());
        c.socket.write(input);
        c.socket.end();
        await closed(c.socket);
      }),
    );
    const ok = await b.raw();
    expect((await ok.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
  });
});
