import { encodeMessage, Message, MessageDecoder } from '@zbus/protocol';
import { deafSocket, waitFor } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { closed, declare, startTestBroker, untilConsumers, wsConnect } from './helpers.js';

const MiB = 1024 * 1024;
const COUNT = 64;

/** A gauge or counter of the broker's /metrics. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
}

/** Bytes queued toward every connection of the broker now. */
function queued(url: string): Promise<number> {
  return metric(url, 'zbus_connections_queued_bytes');
}

describe('backpressure', () => {
  it('keeps a consumer that never reads to its high-water mark, and other clients unaffected', async () => {
    const b = await startTestBroker({ writeHighWaterMark: MiB });
    const admin = await b.raw();
    await declare(admin, 'Big');
    await declare(admin, 'Big', { consume_group: 'slow' });
    await declare(admin, 'Big', { consume_group: 'fast' });

    // The slow reader asks for everything, then never reads its socket.
    const slow = await deafSocket(b.port, onTestFinished);
    const consume = {
      cmd: 'consume',
      topic: 'Big',
      consume_group: 'slow',
      id: 's',
      consume_window: String(COUNT),
    };
    slow.write(encodeMessage(new Message({ headers: consume })));
    await untilConsumers(admin, 'Big', 'slow', 1);

    // A fast consumer of another group drains as messages come.
    const fast = await b.raw();
    fast.send({
      headers: {
        cmd: 'consume',
        topic: 'Big',
        consume_group: 'fast',
        id: 'f',
        consume_window: String(COUNT),
      },
    });
    await untilConsumers(admin, 'Big', 'fast', 1);
    const fastIds: string[] = [];
    const drained = (async () => {
      while (fastIds.length < COUNT)
        fastIds.push((await fast.next((m) => m.headers.id === 'f')).headers.origin_id!);
    })();

    const body = new Uint8Array(MiB).fill(0x61);
    let peak = 0;
    for (let i = 0; i < COUNT; i++) {
      const r = await admin.request({ headers: { cmd: 'produce', topic: 'Big', id: `b${i}` }, body });
      expect(r.status).toBe(200);
      if (i % 8 === 7) peak = Math.max(peak, await queued(b.url));
    }
    await drained;
    expect(fastIds).toEqual(Array.from({ length: COUNT }, (_, i) => `b${i}`));
    expect((await admin.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');

    // 64 MiB went to the slow reader's group; without backpressure all of it would sit in its write queue.
    // Past the high-water mark a push batch may still add its rest (256 KiB) or one message.
    peak = Math.max(peak, await queued(b.url));
    expect(peak).toBeLessThanOrEqual(MiB + 256 * 1024 + MiB + 4096);
    const slowGroup = (
      await admin.request({ headers: { cmd: 'query', topic: 'Big', consume_group: 'slow' } })
    ).json<{
      messageCount: number;
      position: number;
    }>();
    // The broker took only what fits the high-water mark and the socket buffers; the rest waits in the store.
    expect(slowGroup.position).toBeLessThan(COUNT / 2);
    expect(slowGroup.messageCount).toBe(COUNT - slowGroup.position);

    // Reading again, the slow consumer gets every message, in order.
    const got: string[] = [];
    const decoder = new MessageDecoder((m: Message) => {
      got.push(m.headers.origin_id!);
    });
    const all = new Promise<void>((resolve) => {
      slow.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        if (got.length >= COUNT) resolve();
      });
    });
    slow.resume();
    await all;
    expect(got).toEqual(Array.from({ length: COUNT }, (_, i) => `b${i}`));
  });
});

describe('a consumer over its high-water mark', () => {
  it('gets no share of what its group takes for the consumers that read', async () => {
    const b = await startTestBroker({ writeHighWaterMark: 64 * 1024 });
    const admin = await b.raw();
    // Ack mode with a long ack timeout: nothing is redelivered during the test, so a message pushed to the
    // stuck consumer would never reach the reading one.
    await declare(admin, 'Shared', { consume_group: 'g', group_mask: '64', group_ack_timeout: '3600000' });
    const stuck = await deafSocket(b.port, onTestFinished);
    const consume = {
      cmd: 'consume',
      topic: 'Shared',
      consume_group: 'g',
      id: 's',
      consume_window: '100000',
    };
    stuck.write(encodeMessage(new Message({ headers: consume })));
    await untilConsumers(admin, 'Shared', 'g', 1);

    // Produce until the group holds 6 MiB the stuck consumer did not take: its queue is past the high-water
    // mark and its socket buffers (4 MiB of send buffer at most on Linux) are full.
    const body = new Uint8Array(256 * 1024).fill(0x62);
    const untaken = async () =>
      (await admin.request({ headers: { cmd: 'query', topic: 'Shared', consume_group: 'g' } })).json<{
        messageCount: number;
      }>().messageCount;
    let big = 0;
    while ((await untaken()) < 24) {
      expect(big, 'the stuck consumer took every message').toBeLessThan(200);
      await admin.request({ headers: { cmd: 'produce', topic: 'Shared', id: `big${big++}` }, body });
    }

    // A consumer that reads joins the group: what the stuck one left, and every message produced from now on,
    // must reach it.
    const good = await b.raw();
    good.send({
      headers: { cmd: 'consume', topic: 'Shared', consume_group: 'g', id: 'g', consume_window: '16' },
    });
    await untilConsumers(admin, 'Shared', 'g', 2);
    const N = 64;
    for (let i = 0; i < N; i++) {
      await admin.request({ headers: { cmd: 'produce', topic: 'Shared', id: `n${i}` }, body: 'x' });
    }
    const got = new Set<string>();
    while (got.size < N) {
      const m = await good.next((x) => x.headers.id === 'g' && x.headers.origin_id !== undefined);
      if (m.headers.origin_id!.startsWith('n')) got.add(m.headers.origin_id!);
      good.send({
        headers: { cmd: 'ack', topic: 'Shared', consume_group: 'g', offset: m.headers.offset!, ack: 'false' },
      });
    }
    expect([...got].sort()).toEqual(Array.from({ length: N }, (_, i) => `n${i}`).sort());
  });
});

/** Pipelined reads of one 1 MiB message: the 300 of issue 14 item 9 run against a broker process (chaos suite). */
const READS = 100;

describe('pipelined reads by offset', () => {
  it('take turns below writeHighWaterMark on TCP, and all arrive once the client reads', async () => {
    const b = await startTestBroker({ writeHighWaterMark: MiB });
    const admin = await b.raw();
    await declare(admin, 'Big');
    const body = new Uint8Array(MiB).fill(0x62);
    await admin.request({ headers: { cmd: 'produce', topic: 'Big', id: 'one' }, body });
    const s = await deafSocket(b.port, onTestFinished);
    const reads = Array.from({ length: READS }, (_, i) =>
      encodeMessage(new Message({ headers: { cmd: 'consume', topic: 'Big', offset: '0', id: `r${i}` } })),
    );
    s.write(Buffer.concat(reads));
    // The broker stops reading from it; the 100 MiB it was asked for are not read from the store meanwhile.
    await waitFor(async () => (await metric(b.url, 'zbus_connections_paused')) === 1, 'the reader paused');
    expect(await queued(b.url)).toBeLessThanOrEqual(2 * MiB + 4096);
    const got: string[] = [];
    const decoder = new MessageDecoder((m: Message) => {
      expect(m.body.length).toBe(MiB);
      got.push(m.headers.id!);
    });
    const all = new Promise<void>((resolve) => {
      s.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        if (got.length === READS) resolve();
      });
    });
    s.resume();
    await all;
    expect(got.sort()).toEqual(Array.from({ length: READS }, (_, i) => `r${i}`).sort());
    expect(await metric(b.url, 'zbus_connections_paused')).toBe(0);
  });

  it('take turns on WebSocket too, where reading now stops at the cap and the high-water mark', async () => {
    const b = await startTestBroker({ writeHighWaterMark: MiB });
    const admin = await b.raw();
    await declare(admin, 'Big');
    await admin.request({ headers: { cmd: 'produce', topic: 'Big' }, body: new Uint8Array(MiB).fill(0x63) });
    const ws = await wsConnect(b.port);
    ws.ws.pause(); // the client stops reading its socket
    const ids = Array.from({ length: READS }, () =>
      ws.send({ headers: { cmd: 'consume', topic: 'Big', offset: '0' } }),
    );
    await waitFor(async () => (await metric(b.url, 'zbus_connections_paused')) === 1, 'the reader paused');
    expect(await queued(b.url)).toBeLessThanOrEqual(2 * MiB + 4096);
    ws.ws.resume();
    const replies = await Promise.all(ids.map((id) => ws.next((m) => m.headers.id === id, 30_000)));
    expect(replies.every((r) => r.status === 200 && r.body.length === MiB)).toBe(true);
  });

  it('stops reading a WebSocket at maxInflightPerConnection (it had no cap)', async () => {
    const b = await startTestBroker({ maxInflightPerConnection: 8 });
    const admin = await b.raw();
    await declare(admin, 'T');
    const ws = await wsConnect(b.port);
    const before = await metric(b.url, 'zbus_requests_total');
    // Frames without an id are answered in order: every later reply waits behind the long-poll.
    ws.ws.send('GET /T?cmd=consume HTTP/1.1\r\n\r\n');
    for (let i = 0; i < 200; i++) ws.ws.send('GET /ping HTTP/1.1\r\n\r\n');
    await waitFor(async () => (await metric(b.url, 'zbus_connections_paused')) === 1, 'the WebSocket paused');
    const fromBurst = (await metric(b.url, 'zbus_requests_total')) - before - 1; // minus the metrics requests
    expect(fromBurst).toBeLessThanOrEqual(8 + 1 + 1);
    await admin.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'unblock' });
    expect((await ws.next()).bodyText()).toBe('unblock');
    for (let i = 0; i < 200; i++) expect((await ws.next()).bodyText()).toBe('OK');
  });
});

describe('peers that do not read', () => {
  it('are closed after writeStallTimeoutMs when they take no byte', async () => {
    const b = await startTestBroker({ writeHighWaterMark: MiB, writeStallTimeoutMs: 200 });
    const admin = await b.raw();
    await declare(admin, 'Big');
    await admin.request({ headers: { cmd: 'produce', topic: 'Big' }, body: new Uint8Array(MiB) });
    const s = await deafSocket(b.port, onTestFinished);
    for (let i = 0; i < 64; i++) {
      s.write(
        encodeMessage(new Message({ headers: { cmd: 'consume', topic: 'Big', offset: '0', id: `x${i}` } })),
      );
    }
    await waitFor(
      async () => (await metric(b.url, 'zbus_connections_closed_slow_total')) === 1,
      'the slow reader closed',
    );
    expect(await queued(b.url)).toBeLessThan(64 * 1024); // what it held went with it
    // The client sees the close once it reads what was sent before it.
    s.on('data', () => {});
    s.resume();
    await closed(s, 30_000);
    expect((await admin.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
  });

  it('are closed at once when routed replies push their queue past maxWriteQueueBytes', async () => {
    const limits = { writeHighWaterMark: 64 * 1024, maxBodyBytes: 64 * 1024, maxHeaderBytes: 4096 };
    const b = await startTestBroker({ ...limits, maxWriteQueueBytes: 256 * 1024, writeStallTimeoutMs: 0 });
    const svc = await b.raw();
    await svc.request({ headers: { cmd: 'declare', topic: 'Rpc', topic_mask: '3' } });
    svc.send({ headers: { cmd: 'consume', topic: 'Rpc', id: 'svc', consume_window: '1000' } });
    await untilConsumers(svc, 'Rpc', 'Rpc', 1);
    // The caller sends its calls and never reads; each answer is 60 KiB, 30 MiB in all (past the kernel's
    // socket buffers, which take the first few MiB).
    const caller = await deafSocket(b.port, onTestFinished);
    const CALLS = 500;
    for (let i = 0; i < CALLS; i++) {
      caller.write(encodeMessage(new Message({ headers: { cmd: 'produce', topic: 'Rpc', id: `c${i}` } })));
    }
    const answer = new Uint8Array(60 * 1024).fill(0x61);
    let answered = 0;
    const slowClosed = async () => (await metric(b.url, 'zbus_connections_closed_slow_total')) === 1;
    while (answered < CALLS && !(answered % 50 === 0 && (await slowClosed()))) {
      const d = await svc.next((m) => m.headers.id === 'svc');
      svc.send({
        headers: { cmd: 'route', recver: d.headers.sender!, id: d.headers.origin_id!, origin_status: '200' },
        body: answer,
      });
      answered++;
    }
    await waitFor(slowClosed, 'the caller closed');
    // Closed well before all 30 MiB were queued for it.
    expect(answered).toBeLessThan(CALLS);
    caller.on('data', () => {});
    caller.resume();
    await closed(caller, 30_000);
  });
});
