// The connection under MqClient against an in-memory transport: the outbound queue and its byte bound,
// AbortSignal, stats and `await using`. (Against a real broker: packages/client-node/test/integration.)
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Message } from '@zbus/protocol';
import { describe, expect, it } from 'vitest';
import { MqClient } from '../src/index.js';
import { fakeTransport } from './fake-transport.js';

const MiB = 1024 * 1024;

function produce(topic: string, bytes: number): Message {
  return new Message({ headers: { cmd: 'produce', topic }, body: new Uint8Array(bytes) });
}

function answer(req: Message): Message {
  return new Message({ status: 200, headers: { id: req.id as string } });
}

describe('Connection (under MqClient)', () => {
  it('holds messages while the transport is over its high-water mark and writes them in order on drain', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory });
    await c.connect();
    const events: boolean[] = [];
    c.on('backpressure', (blocked) => events.push(blocked));
    const conn = t.last();
    conn.room = false;
    c.send(produce('a', 10)); // written; the transport now says it is full
    c.send(produce('b', 20));
    c.send(produce('c', 30));
    expect(conn.sent.map((m) => m.topic)).toEqual(['a']);
    expect(c.stats()).toMatchObject({ blocked: true, queued: 2, queuedBytes: 20 + 30 + 2 * 256 });
    expect(events).toEqual([true]);
    conn.drain();
    expect(conn.sent.map((m) => m.topic)).toEqual(['a', 'b', 'c']);
    expect(c.stats()).toMatchObject({ blocked: false, queued: 0, queuedBytes: 0 });
    expect(events).toEqual([true, false]);
    await c.close();
  });

  it('fails invoke past maxQueuedBytes, while produce waits for room', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory, maxQueuedBytes: 2 * MiB });
    await c.connect();
    const conn = t.last();
    conn.onSend = (m, cn) => {
      if (m.cmd === 'produce' && m.ack) queueMicrotask(() => cn.reply(answer(m)));
    };
    conn.room = false;
    c.send(produce('first', 10)); // blocks the transport
    c.send(produce('q', MiB)); // waits in the client
    c.send(produce('q', MiB - 1024));
    await expect(c.invoke(produce('over', MiB))).rejects.toMatchObject({
      code: 'ZBUS_ERR_LIMIT',
      message: expect.stringMatching(/\(maxQueuedBytes\)$/),
    });
    let done = false;
    const acked = c.produce({ topic: 'waits', body: 'x' }).then((r) => {
      done = true;
      return r;
    });
    await Promise.resolve();
    expect(done).toBe(false);
    expect(conn.sent.map((m) => m.topic)).toEqual(['first']);
    conn.drain();
    expect((await acked)?.topic).toBe('waits');
    expect(conn.sent.map((m) => m.topic)).toEqual(['first', 'q', 'q', 'waits']);
    await c.close();
  });

  it('produce with ack: false resolves only once the transport has room', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory });
    await c.connect();
    const conn = t.last();
    conn.room = false;
    await c.produce({ topic: 'a', body: 'x' }, { ack: false }); // room before it: written
    let second = false;
    const p = c.produce({ topic: 'b', body: 'y' }, { ack: false }).then(() => {
      second = true;
    });
    await Promise.resolve();
    expect(second).toBe(false);
    conn.drain();
    await p;
    expect(conn.sent.map((m) => [m.topic, m.headers.ack])).toEqual([
      ['a', 'false'],
      ['b', 'false'],
    ]);
    await c.close();
  });

  it('an aborted request rejects with the signal reason and leaves the queue', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory });
    await c.connect();
    const conn = t.last();
    // written, then aborted while it waits for the reply
    const ac = new AbortController();
    const written = c.invoke(new Message({ headers: { cmd: 'query' } }), { signal: ac.signal });
    ac.abort();
    await expect(written).rejects.toMatchObject({ name: 'AbortError' });
    expect(c.pendingCount).toBe(0);
    // queued behind a full transport, then aborted: its bytes leave the bound, it is never written
    conn.room = false;
    c.send(produce('blocker', 1));
    const ac2 = new AbortController();
    const queued = c.invoke(produce('never', 1000), { signal: ac2.signal });
    expect(c.stats().queuedBytes).toBe(1000 + 256);
    ac2.abort(new Error('changed my mind'));
    await expect(queued).rejects.toThrow('changed my mind');
    expect(c.stats()).toMatchObject({ queued: 0, queuedBytes: 0, inFlight: 0 });
    conn.drain();
    expect(conn.sent.map((m) => m.topic)).toEqual([undefined, 'blocker']);
    // an aborted signal rejects at once
    await expect(c.ping({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    await c.close();
  });

  it('close({ signal }) stops waiting for requests in flight when the signal aborts', async () => {
    const t = fakeTransport();
    const c = new MqClient('h:1', { transport: t.factory, closeTimeout: 60_000 });
    await c.connect();
    const never = c.invoke(new Message({ headers: { cmd: 'query' } }), { timeout: 60_000 });
    const ac = new AbortController();
    const closing = c.close({ signal: ac.signal });
    ac.abort();
    await closing;
    await expect(never).rejects.toMatchObject({ code: 'ZBUS_ERR_CONNECTION_CLOSED' });
    expect(c.state).toBe('closed');
  });

  it('stats() reports in-flight requests, reconnects and the rtt of the last ping', async () => {
    const t = fakeTransport();
    t.state.onConnect = (conn) => {
      conn.onSend = (m, cn) => {
        if (m.cmd === 'ping') queueMicrotask(() => cn.reply(answer(m)));
      };
    };
    const c = new MqClient('h:1', { transport: t.factory, reconnectDelay: 1 });
    await c.connect();
    expect(c.stats()).toMatchObject({ server: 'h:1', state: 'open', reconnects: 0, rtt: undefined });
    const rtt = await c.ping();
    expect(c.stats().rtt).toBe(rtt);
    const pending = c.invoke(new Message({ headers: { cmd: 'query' } }));
    expect(c.stats().inFlight).toBe(1);
    const back = new Promise<void>((resolve) => c.on('connected', () => resolve()));
    t.last().drop(new Error('ECONNRESET'));
    await expect(pending).rejects.toMatchObject({ code: 'ZBUS_ERR_CONNECTION_CLOSED' });
    await back;
    expect(c.stats()).toMatchObject({ state: 'open', reconnects: 1, inFlight: 0 });
    expect(c.stats().inMsgs).toBeGreaterThan(0);
    await c.close();
  });

  it('await using closes the client at the end of the scope', async () => {
    const t = fakeTransport();
    let client: MqClient | undefined;
    {
      await using c = new MqClient('h:1', { transport: t.factory });
      await c.connect();
      client = c;
      expect(client.state).toBe('open');
    }
    expect(client?.state).toBe('closed');
    expect(t.last().closed).toBe(true);
  });

  it('lets answered requests die young after a burst of requests (built package)', () => {
    // After a burst outlived scavenges, V8 allocates every later table of the pending Map in the old generation, and
    // may do the same with every later object of a literal; each dead old one keeps the requests it held (message,
    // promise, reply) alive through scavenges: 28.7 MB reached the old generation in 20,000 requests, 2.9-3.2 MB now.
    const out = execFileSync(
      process.execPath,
      [
        '--expose-gc',
        '--initial-old-space-size=512',
        join(import.meta.dirname, 'pending-promotion.child.mjs'),
      ],
      { encoding: 'utf8' },
    );
    expect(Number(out)).toBeLessThan(8 * MiB);
  });
});
