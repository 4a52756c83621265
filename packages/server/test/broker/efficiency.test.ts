// Work per delivery, counted rather than timed (the store's own counts of reads and timers are in
// test/store/efficiency.test.ts): a delivery decodes nothing and copies no bytes of the stored record, so a
// change that brings back a parse or a copy per message fails here rather than in a benchmark.
import { createHook } from 'node:async_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMessage, Message, MessageDecoder } from '@zbus/protocol';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { MemoryTopic } from '../../src/store/memory-topic.js';
import { declare, startTestBroker } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/** A TCP connection whose replies are framed by hand (by content-length), so that the test decodes nothing. */
async function rawSocket(port: number): Promise<{ socket: Socket; replies(n: number): Promise<string[]> }> {
  const socket = connect(port, '127.0.0.1');
  onTestFinished(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const got: string[] = [];
  let pending = '';
  let wake: (() => void) | undefined;
  socket.setEncoding('latin1').on('data', (s: string) => {
    pending += s;
    for (;;) {
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) break;
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(pending.slice(0, end + 2))?.[1] ?? 0);
      if (pending.length < end + 4 + length) break;
      got.push(pending.slice(0, end + 4 + length));
      pending = pending.slice(end + 4 + length);
    }
    wake?.();
  });
  return {
    socket,
    async replies(n) {
      // One promise per call, however many chunks the replies come in (the promise count test counts ours too).
      if (got.length < n)
        await new Promise<void>((resolve) => {
          wake = () => {
            if (got.length >= n) resolve();
          };
        });
      return got.splice(0, n);
    },
  };
}

/**
 * A broker with topic T, a raw consumer of it whose consume the broker has taken (a ping behind it was answered),
 * and a raw producer's connection.
 */
async function consumerAndProducer() {
  const b = await startTestBroker({ fsync: { intervalMs: 100 } });
  await declare(await b.raw(), 'T');
  const consumer = await rawSocket(b.port);
  const consume = { cmd: 'consume', topic: 'T', id: 'c', consume_window: '8' };
  consumer.socket.write(encodeMessage(new Message({ headers: consume })).slice());
  consumer.socket.write(encodeMessage(new Message({ headers: { cmd: 'ping', id: 'ready' } })).slice());
  expect((await consumer.replies(1))[0]).toMatch(/\r\nid: ready\r\n/);
  return { consumer, producer: await rawSocket(b.port) };
}

/** Counts the ways JavaScript code copies bytes, while installed. */
function countCopies(): () => number {
  const isBytes = (v: unknown) => ArrayBuffer.isView(v) || Array.isArray(v);
  const spies = [
    vi.spyOn(Uint8Array.prototype, 'set'),
    vi.spyOn(Uint8Array.prototype, 'slice'),
    vi.spyOn(Buffer.prototype, 'copy'),
    vi.spyOn(Buffer, 'concat'),
  ];
  const from = vi.spyOn(Buffer, 'from');
  const typedFrom = vi.spyOn(Uint8Array, 'from');
  return () =>
    spies.reduce((n, s) => n + s.mock.calls.length, 0) +
    from.mock.calls.filter(([v]) => isBytes(v)).length +
    typedFrom.mock.calls.length;
}

/**
 * Counts the calls of `target[key]` made from the broker's code (not the test runner's own) until the returned
 * function is called. Not a vi.spyOn: a spy records every call's arguments, and one of Promise#then may chain
 * promises of its own.
 */
function countBrokerCalls<T extends object>(target: T, key: keyof T & string): () => number {
  const original = target[key] as (...args: unknown[]) => unknown;
  const install = (value: unknown) =>
    Object.defineProperty(target, key, { value, writable: true, configurable: true });
  let n = 0;
  install(function (this: unknown, ...args: unknown[]) {
    if (/\/packages\/(server|protocol)\/src\//.test(new Error().stack ?? '')) n++;
    return original.apply(this, args);
  });
  onTestFinished(() => {
    install(original);
  });
  return () => {
    install(original);
    return n;
  };
}

/** Counts the promises made (by anyone) until the returned function is called; it returns the count. */
function countPromises(): () => number {
  let n = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') n++;
    },
  });
  hook.enable();
  onTestFinished(() => {
    hook.disable();
  });
  return () => {
    hook.disable();
    return n;
  };
}

/** Counts the bytes JavaScript code copies (typed-array set, Buffer copy), while installed. */
function countCopiedBytes(): () => number {
  const set = vi.spyOn(Uint8Array.prototype, 'set');
  const copy = vi.spyOn(Buffer.prototype, 'copy');
  return () =>
    set.mock.calls.reduce((n, [src]) => n + (src as ArrayLike<number>).length, 0) +
    copy.mock.calls.reduce((n, args, i) => {
      const self = copy.mock.contexts[i] as Buffer;
      const [, , start = 0, end = self.length] = args as [unknown, number?, number?, number?];
      return n + Math.max(0, Math.min(end, self.length) - start);
    }, 0);
}

describe('efficiency of a produce', () => {
  it('copies a body into its stored form and into the write batch, and no more', async () => {
    const N = 32;
    const BODY = 4000;
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    const producer = await rawSocket(b.port);
    const body = 'x'.repeat(BODY);
    const requests = Array.from({ length: N }, (_, i) =>
      encodeMessage(new Message({ headers: { cmd: 'produce', topic: 'T', id: `m-${i}` }, body })).slice(),
    );
    const copied = countCopiedBytes();
    // One at a time: each produce is a batch of its own in the store.
    for (const request of requests) {
      producer.socket.write(request);
      const [ack] = await producer.replies(1);
      expect(ack).toMatch(/^HTTP\/1\.1 200 /);
    }
    const bytes = copied();
    vi.restoreAllMocks();
    // The stored form (head + body) and the record in the write batch: about 2 x (BODY + a few hundred) per
    // message. A copy of each written batch for the tail readers' cache (views now) would make it 3 x.
    expect(bytes / N).toBeGreaterThan(2 * BODY);
    expect(bytes / N).toBeLessThan(2.5 * BODY);
  });
});

describe('efficiency of the stored lines a producer repeats', () => {
  it('knows which of its header names are stored lines without a Set lookup per name', async () => {
    const N = 16;
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    const producer = await rawSocket(b.port);
    const headers = (i: number) => ({
      cmd: 'produce',
      topic: 'T',
      'content-type': 'text/plain',
      id: `m-${i}`,
    });
    const requests = Array.from({ length: N + 1 }, (_, i) =>
      encodeMessage(new Message({ headers: headers(i), body: 'x' })).slice(),
    );
    // The first produce makes the connection's kept lines; the others find them.
    producer.socket.write(requests[0] as Uint8Array);
    await producer.replies(1);
    const lookups = countBrokerCalls(Set.prototype, 'has');
    for (const request of requests.slice(1)) {
      producer.socket.write(request);
      const [ack] = await producer.replies(1);
      expect(ack).toMatch(/^HTTP\/1\.1 200 /);
    }
    // A lookup per header name (rootStoredLine) made it nine per produce.
    expect(lookups() / N).toBeLessThanOrEqual(2);
  });

  it('takes a produce by URL through the pipeline with two Set lookups, both of its command', async () => {
    const N = 16;
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    const producer = await rawSocket(b.port);
    const request = (url: string) => `GET ${url} HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: ab\r\n\r\n`;
    for (const url of ['/produce/T', '/T?cmd=produce']) {
      // The first two make the connection's kept lines; the others find them.
      for (let i = 0; i < 2; i++) {
        producer.socket.write(request(url));
        await producer.replies(1);
      }
      const lookups = countBrokerCalls(Set.prototype, 'has');
      for (let i = 0; i < N; i++) {
        producer.socket.write(request(url));
        const [ack] = await producer.replies(1);
        expect(ack).toMatch(/^HTTP\/1\.1 200 /);
      }
      // resolveCommand's COMMANDS lookup and the cookie rule's; the reserved paths (/metrics, /healthz,
      // /readyz) made it three, hashing each request's path.
      expect(lookups() / N).toBeLessThanOrEqual(2);
    }
  });
});

describe('efficiency of a produce to a disk topic', () => {
  it('makes no promise per message: the write batch answers each produce through a callback', async () => {
    const N = 256;
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    const producer = await rawSocket(b.port);
    // Plain-HTTP produces as ab sends them (no id: the broker draws one), pipelined in one write.
    const requests = Array.from(
      { length: N },
      (_, i) => `GET /produce/T?body=m${i} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`,
    ).join('');
    const promises = countPromises();
    producer.socket.write(requests);
    const acks = await producer.replies(N);
    const made = promises();
    expect(acks.every((r) => r.startsWith('HTTP/1.1 200 OK\r\n'))).toBe(true);
    expect(acks.map((r) => /\r\noffset: (\d+)/.exec(r)?.[1])).toEqual(
      Array.from({ length: N }, (_, i) => String(i)),
    );
    // Only the write batches (and this test's own wait) make promises. A promise per append, its reaction
    // in the produce handler and the pipeline's in-flight tracking made three or more per message.
    expect(made).toBeLessThan(N / 4);
  });
});

describe('efficiency of a reply', () => {
  it('answers a request on its own with one write of one buffer (no writev)', async () => {
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    const client = await rawSocket(b.port);
    const N = 8;
    const writes = vi.spyOn(Socket.prototype, '_write');
    const writevs = vi.spyOn(Socket.prototype, '_writev');
    // One at a time, as `ab -k` sends them: each reply is the only message of its turn on the connection.
    for (let i = 0; i < N; i++) {
      client.socket.write(`GET /T?cmd=produce&body=m${i} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      const [ack] = await client.replies(1);
      expect(ack).toMatch(/^HTTP\/1\.1 200 OK\r\ntopic: T\r\n/);
    }
    const broker = (calls: { mock: { contexts: unknown[] } }) =>
      calls.mock.contexts.filter((c) => c !== client.socket).length;
    const counted = { writes: broker(writes), writevs: broker(writevs) };
    vi.restoreAllMocks();
    expect(counted).toEqual({ writes: N, writevs: 0 });
  });

  it('hands a connection that only acks its acks without corking its socket', async () => {
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    const client = await rawSocket(b.port);
    const N = 8;
    const corks = vi.spyOn(Socket.prototype, 'cork');
    const writes = vi.spyOn(Socket.prototype, 'write');
    // Alone, as `ab -k` sends them, then pipelined: each turn's acks are one chunk, corked or not.
    for (let i = 0; i < N; i++) {
      client.socket.write(`GET /T?cmd=produce&body=m${i} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      await client.replies(1);
    }
    client.socket.write(
      Array.from(
        { length: N },
        (_, i) => `GET /T?cmd=produce&body=p${i} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`,
      ).join(''),
    );
    const acks = await client.replies(N);
    const broker = (calls: { mock: { contexts: unknown[] } }) =>
      calls.mock.contexts.filter((c) => c !== client.socket).length;
    const counted = { corks: broker(corks), writes: broker(writes) };
    vi.restoreAllMocks();
    expect(acks.every((a) => a.startsWith('HTTP/1.1 200 OK\r\ntopic: T\r\n'))).toBe(true);
    // cork and uncork around the one chunk cost more than the rest of handing it over.
    expect(counted.corks).toBe(0);
    expect(counted.writes).toBeLessThanOrEqual(N + N);
  });

  it('writes a small reply into the head slab as one buffer, with no encodeMessage', async () => {
    const N = 16;
    const b = await startTestBroker();
    const client = await rawSocket(b.port);
    const encodes = countBrokerCalls(TextEncoder.prototype, 'encodeInto');
    const writes = vi.spyOn(Socket.prototype, 'write');
    // ab's requests: HTTP/1.0 keep-alive, one at a time; /ping is answered by a reply built as a Message.
    for (let i = 0; i < N; i++) {
      client.socket.write('GET /ping HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: 127.0.0.1\r\n\r\n');
      const [reply] = await client.replies(1);
      expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(reply).toMatch(/\r\nconnection: Keep-Alive\r\ncontent-length: \d+\r\n\r\n/);
    }
    const chunks = writes.mock.calls.filter((_, i) => writes.mock.contexts[i] !== client.socket);
    vi.restoreAllMocks();
    expect(encodes()).toBe(0);
    expect(chunks.map(([chunk]) => Buffer.isBuffer(chunk))).toEqual(Array(N).fill(true));
  });
});

describe('efficiency of a produce ack', () => {
  it('joins the acks of one turn into one socket write and encodes no head through encodeMessage', async () => {
    const N = 64;
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    const producer = await rawSocket(b.port);
    // Pipelined as the Node client sends them: each with its own id, in one write.
    const requests = Array.from(
      { length: N },
      (_, i) => `GET / HTTP/1.1\r\ncmd: produce\r\ntopic: T\r\nid: m-${i}\r\ncontent-length: 2\r\n\r\nhi`,
    ).join('');
    const writes = vi.spyOn(Socket.prototype, 'write');
    const encodes = countBrokerCalls(TextEncoder.prototype, 'encodeInto');
    const stringWrites = countBrokerCalls(Buffer.prototype, 'write');
    producer.socket.write(requests);
    const acks = await producer.replies(N);
    const chunks = writes.mock.calls.filter((_, i) => writes.mock.contexts[i] !== producer.socket);
    const [encoded, strings] = [encodes(), stringWrites()];
    vi.restoreAllMocks();
    expect(acks.map((r) => /\r\nid: (m-\d+)\r\n/.exec(r)?.[1])).toEqual(
      Array.from({ length: N }, (_, i) => `m-${i}`),
    );
    expect(acks[0]).toMatch(
      /^HTTP\/1\.1 200 OK\r\ntopic: T\r\ndurable: none\r\noffset: 0\r\nid: m-0\r\nconnection: Keep-Alive\r\ncontent-length: 13\r\n\r\n\d{13}$/,
    );
    // A socket write per ack (N) cost the socket's stream more than the ack itself; encodeMessage (a TextEncoder
    // call per reply) checked every header again.
    expect(chunks.length).toBeLessThan(N / 4);
    expect(encoded).toBe(0);
    // Neither the acks nor the stored forms are strings for C++ to encode (the acks of a turn joined as one
    // string were about 700 bytes of garbage per produce): both are bytes from the start.
    expect(chunks.filter(([chunk]) => typeof chunk === 'string')).toEqual([]);
    expect(strings).toBe(0);
  });
});

describe('efficiency of a delivery', () => {
  it('decodes nothing and copies none of the stored bytes per delivery', async () => {
    const N = 64;
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    // One write of N produces: one batch in the store, so every record is still in its recently written batches.
    const producer = await rawSocket(b.port);
    const produces = [];
    for (let i = 0; i < N; i++) {
      const headers = { cmd: 'produce', topic: 'T', id: `m-${i}`, tag: 'a.b', 'x-trace': `t-${i}` };
      produces.push(encodeMessage(new Message({ headers, body: `payload ${i}` })).slice());
    }
    producer.socket.write(Buffer.concat(produces));
    const acks = await producer.replies(N);
    expect(acks.every((r) => r.startsWith('HTTP/1.1 200 '))).toBe(true);

    const consumer = await rawSocket(b.port);
    const consume = { cmd: 'consume', topic: 'T', id: 'c', consume_window: String(N) };
    const request = Buffer.from(encodeMessage(new Message({ headers: consume })));
    const parses = vi.spyOn(MessageDecoder.prototype, 'push');
    const copies = countCopies();
    const writes = vi.spyOn(Socket.prototype, 'write');
    const stringWrites = countBrokerCalls(Buffer.prototype, 'write');
    consumer.socket.write(request);
    const deliveries = await consumer.replies(N);
    const [parsed, copied, headStrings] = [parses.mock.calls.length, copies(), stringWrites()];
    const chunks = writes.mock.calls.filter((_, i) => writes.mock.contexts[i] !== consumer.socket);
    vi.restoreAllMocks();

    expect(deliveries.map((d) => /\r\norigin_id: (\S+)/.exec(d)?.[1])).toEqual(
      Array.from({ length: N }, (_, i) => `m-${i}`),
    );
    expect(deliveries[N - 1]).toMatch(
      /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\nx-trace: t-63\r\n[\s\S]*\r\n\r\npayload 63$/,
    );
    // The consume request itself is the only thing decoded (in one chunk or two), whatever N is.
    expect(parsed).toBeLessThanOrEqual(2);
    expect(copied).toBeLessThanOrEqual(2);
    // Heads are written as bytes, not built as strings first (a string head cost ~1.5 KB of garbage each).
    expect(chunks.length).toBeGreaterThanOrEqual(N);
    expect(chunks.filter(([chunk]) => typeof chunk === 'string')).toEqual([]);
    // Nor as a string written into the slab: writeHead puts the bytes there (a head string and its flattening
    // were about 800 bytes of garbage per delivery).
    expect(headStrings).toBe(0);
  });

  it('sends a delivery in the turn of the write batch that stored it, not a turn later', async () => {
    const { consumer, producer } = await consumerAndProducer();

    // The broker's end of the consumer's connection: was it uncorked in the same macrotask that corked it
    // (the store's write batch, run from a setImmediate), or only from the next turn's setImmediate, after a
    // whole turn of polling? A nextTick queued at the cork runs as soon as that macrotask ends.
    const isConsumer = (s: Socket) => s.remotePort === consumer.socket.localPort;
    let corkingTaskOver = true;
    let uncorkedInCorkingTask: boolean | undefined;
    const cork = Socket.prototype.cork;
    const uncork = Socket.prototype.uncork;
    vi.spyOn(Socket.prototype, 'cork').mockImplementation(function (this: Socket) {
      if (isConsumer(this)) {
        corkingTaskOver = false;
        process.nextTick(() => {
          corkingTaskOver = true;
        });
      }
      cork.call(this);
    });
    vi.spyOn(Socket.prototype, 'uncork').mockImplementation(function (this: Socket) {
      if (isConsumer(this)) uncorkedInCorkingTask ??= !corkingTaskOver;
      uncork.call(this);
    });
    producer.socket.write(
      encodeMessage(new Message({ headers: { cmd: 'produce', topic: 'T', id: 'm-1' }, body: 'x' })).slice(),
    );
    const [delivery] = await consumer.replies(1);
    vi.restoreAllMocks();
    expect(delivery).toMatch(/\r\norigin_id: m-1\r\n/);
    expect(uncorkedInCorkingTask).toBe(true);
  });

  it('sends the deliveries of a write batch before its produce acks', async () => {
    const { consumer, producer } = await consumerAndProducer();

    // Which of the broker's two sockets hands its bytes to the kernel first in the turn that stored the message
    // (a corked socket on uncork, through _writev or _write; an ack-only one, never corked, through _write).
    const order: string[] = [];
    const sent = (socket: Socket) => {
      if (socket.remotePort === consumer.socket.localPort) order.push('delivery');
      else if (socket.remotePort === producer.socket.localPort) order.push('ack');
    };
    const socket = Socket.prototype as Required<Socket>;
    const write = socket._write;
    const writev = socket._writev;
    vi.spyOn(socket, '_write').mockImplementation(function (this: Socket, chunk, encoding, callback) {
      sent(this);
      write.call(this, chunk, encoding, callback);
    });
    vi.spyOn(socket, '_writev').mockImplementation(function (this: Socket, chunks, callback) {
      sent(this);
      writev.call(this, chunks, callback);
    });
    producer.socket.write(
      encodeMessage(new Message({ headers: { cmd: 'produce', topic: 'T', id: 'm-1' }, body: 'x' })).slice(),
    );
    const [[delivery], [ack]] = await Promise.all([consumer.replies(1), producer.replies(1)]);
    vi.restoreAllMocks();
    expect(delivery).toMatch(/\r\norigin_id: m-1\r\n/);
    expect(ack).toMatch(/^HTTP\/1\.1 200 /);
    expect(order).toEqual(['delivery', 'ack']);
  });

  it('leaves no end-of-turn immediate due once the write batch sent its writes', async () => {
    const { consumer, producer } = await consumerAndProducer();

    // Immediates the TCP transport schedules to uncork its connections, and how many of them ran. One left due
    // after the write batch flushed everything costs the event loop a turn (an epoll_pwait) that does nothing.
    const ours = new Set<number>();
    let scheduled = 0;
    let ran = 0;
    const hook = createHook({
      init(id, type) {
        if (type !== 'Immediate' || !/transport\/tcp-connection\.ts/.test(new Error().stack ?? '')) return;
        ours.add(id);
        scheduled++;
      },
      before(id) {
        if (ours.has(id)) ran++;
      },
    });
    hook.enable();
    onTestFinished(() => {
      hook.disable();
    });
    producer.socket.write(
      encodeMessage(new Message({ headers: { cmd: 'produce', topic: 'T', id: 'm-1' }, body: 'x' })).slice(),
    );
    const [[delivery], [ack]] = await Promise.all([consumer.replies(1), producer.replies(1)]);
    // A turn later: an immediate still due would have run by now.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    hook.disable();
    expect(delivery).toMatch(/\r\norigin_id: m-1\r\n/);
    expect(ack).toMatch(/^HTTP\/1\.1 200 /);
    expect(scheduled).toBeGreaterThanOrEqual(1);
    expect(ran).toBe(0);
  });

  it('answers consumes without a promise per message while the records are read ahead', async () => {
    const N = 400;
    const dataDir = mkdtempSync(join(tmpdir(), 'zbus-efficiency-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startTestBroker({ dataDir });
    await declare(await first.raw(), 'T');
    const producer = await rawSocket(first.port);
    const produces = [];
    for (let i = 0; i < N; i++) {
      produces.push(encodeMessage(new Message({ headers: { cmd: 'produce', topic: 'T' }, body: `m${i}` })));
    }
    producer.socket.write(Buffer.concat(produces));
    await producer.replies(N);
    await first.broker.close();
    // A new broker: the records come from the file (one read per 64 KiB), not from recently written batches.
    const b = await startTestBroker({ dataDir });
    const consumer = await rawSocket(b.port);
    const consumes = [];
    for (let i = 0; i < N; i++) {
      consumes.push(encodeMessage(new Message({ headers: { cmd: 'consume', topic: 'T', id: `c-${i}` } })));
    }
    const request = Buffer.concat(consumes);
    const promises = countPromises();
    consumer.socket.write(request);
    const deliveries = await consumer.replies(N);
    const made = promises();
    expect(deliveries.map((d) => /\r\n\r\n(m\d+)$/.exec(d)?.[1])).toEqual(
      Array.from({ length: N }, (_, i) => `m${i}`),
    );
    // A consume whose record is in the read window is answered synchronously; only the reads (and this test's
    // own wait) make promises. Taking each record through the store's async next() made several per message.
    expect(made).toBeLessThan(N / 4);
  });
});

describe('efficiency of an RPC call by URL', () => {
  it('chains no promise, arms no timer and writes once per I/O turn, whatever the number of calls', async () => {
    const N = 32;
    const b = await startTestBroker();
    await declare(await b.raw(), 'MyRpc', { topic_mask: '3' });
    // A 0.11-style service on a raw socket, consuming with a window of N and answering with route.
    const service = await rawSocket(b.port);
    const consume = { cmd: 'consume', topic: 'MyRpc', id: 'svc', consume_window: String(N) };
    service.socket.write(encodeMessage(new Message({ headers: consume })).slice());
    service.socket.write(encodeMessage(new Message({ headers: { cmd: 'ping', id: 'ready' } })).slice());
    expect((await service.replies(1))[0]).toMatch(/\r\nid: ready\r\n/);

    const caller = await rawSocket(b.port);
    const calls = Array.from(
      { length: N },
      (_, i) => `GET /MyRpc/calc/plus/${i}/1 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`,
    );
    // Promise reactions chained with then/catch/finally (an `await` chains none this way).
    const thens = countBrokerCalls(Promise.prototype, 'then');
    const stringifies = countBrokerCalls(JSON, 'stringify');
    const timers = [countBrokerCalls(globalThis, 'setTimeout'), countBrokerCalls(globalThis, 'setInterval')];
    const writes = [vi.spyOn(Socket.prototype, '_writev'), vi.spyOn(Socket.prototype, '_write')];
    const parses = vi.spyOn(MessageDecoder.prototype, 'push');
    const copies = countCopies();
    // Pipelined in one write: one read, so every delivery to the service leaves in the same I/O turn.
    caller.socket.write(calls.join(''));
    const deliveries = await service.replies(N);
    const routes = deliveries.map((d, i) => {
      const sender = /\r\nsender: (\S+)/.exec(d)![1]!;
      const id = /\r\norigin_id: (\S+)/.exec(d)![1]!;
      expect(d).toMatch(/\r\n\r\n\{"module":"calc","method":"plus","params":\["\d+","1"\]\}$/);
      const head = `POST / HTTP/1.1\r\ncmd: route\r\ntopic: MyRpc\r\nrecver: ${sender}\r\nid: ${id}\r\n`;
      return `${head}origin_status: 200\r\ncontent-length: ${String(i + 1).length}\r\n\r\n${i + 1}`;
    });
    service.socket.write(routes.join(''));
    const replies = await caller.replies(N);
    const counted = {
      thens: thens(),
      stringifies: stringifies(),
      timers: timers.reduce((n, count) => n + count(), 0),
      // The broker's writes, not the test's own two.
      writes: writes.reduce(
        (n, s) => n + s.mock.contexts.filter((c) => c !== caller.socket && c !== service.socket).length,
        0,
      ),
      parses: parses.mock.calls.length,
      copies: copies(),
    };
    vi.restoreAllMocks();

    expect(replies.map((r) => r.slice(r.indexOf('\r\n\r\n') + 4))).toEqual(
      Array.from({ length: N }, (_, i) => String(i + 1)),
    );
    // Per call: a copy into the stored form and one into the memory topic, and the routed reply's short body
    // behind its head (a reply leaves as one buffer); no promise (a memory topic appends at once), no timer
    // (one sweep serves every call), no write of its own (the deliveries to the service leave in one write, as
    // do the replies to the caller), no decode beyond the chunks read.
    expect(counted.copies).toBeLessThanOrEqual(3 * N);
    expect(counted.thens).toBeLessThanOrEqual(2);
    // The JSON request of a plain URL is built by hand: JSON.stringify of it cost about a microsecond per call.
    expect(counted.stringifies).toBe(0);
    expect(counted.timers).toBeLessThanOrEqual(1);
    expect(counted.writes).toBeLessThanOrEqual(4);
    expect(counted.parses).toBeLessThanOrEqual(4);
  });
});

describe('efficiency of an ack after a route', () => {
  it('runs no delivery loop for an ack of a delivery its route settled already', async () => {
    const b = await startTestBroker();
    await declare(await b.raw(), 'MyRpc', { topic_mask: '3' });
    // A 0.11 service that acks every request after answering it (the ack settles nothing: the route did).
    const service = await rawSocket(b.port);
    const consume = { cmd: 'consume', topic: 'MyRpc', id: 'svc', consume_window: '4' };
    service.socket.write(encodeMessage(new Message({ headers: consume })).slice());
    service.socket.write(encodeMessage(new Message({ headers: { cmd: 'ping', id: 'ready' } })).slice());
    expect((await service.replies(1))[0]).toMatch(/\r\nid: ready\r\n/);
    const caller = await rawSocket(b.port);
    caller.socket.write('GET /MyRpc/calc/plus/1/2 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    const [delivery] = await service.replies(1);
    const field = (name: string) => new RegExp(`\r\n${name}: (\\S+)`).exec(delivery!)![1]!;
    const [sender, id, offset] = [field('sender'), field('origin_id'), field('offset')];

    // The broker's memory groups are of this class: a delivery loop asks the group for its next message.
    const probe = await new MemoryTopic('probe', { mask: 3 }, {}).declareGroup('probe', {});
    const nexts = vi.spyOn(Object.getPrototypeOf(probe), 'nextNow');
    const route = { cmd: 'route', topic: 'MyRpc', recver: sender, id, origin_status: '200' };
    const ack = { cmd: 'ack', topic: 'MyRpc', id: 'a-1', offset };
    service.socket.write(encodeMessage(new Message({ headers: route, body: '3' })).slice());
    service.socket.write(encodeMessage(new Message({ headers: ack })).slice());
    const [reply] = await caller.replies(1);
    const [acked] = await service.replies(1);
    const runs = nexts.mock.calls.length;
    vi.restoreAllMocks();

    expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n3$/);
    expect(acked).toMatch(/\r\nid: a-1\r\n/);
    // The route gave the window its credit back and the ack found nothing to settle: neither looks for more
    // messages (the ack did, once per request, before).
    expect(runs).toBe(0);
  });
});
