// Producer against the real broker: pipelining on one connection, batches, fire-and-forget, body codecs.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { msgpackCodec } from '@zbus/rpc/msgpack';
import { type RunningBroker, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { nextId } from '../../src/ids.js';
import { Broker, Message, MqClient, Producer } from '../../src/index.js';
import { serverTime } from '../../src/producer.js';

setFlagsFromString('--expose-gc');

let server: RunningBroker;
let broker: Broker;
let reader: MqClient;

beforeAll(async () => {
  server = await startBroker();
  broker = new Broker(server.address);
  reader = new MqClient(server.address);
  await reader.connect();
});

afterAll(async () => {
  await reader?.close();
  await broker?.close();
  await server?.stop();
});

describe('Producer', () => {
  it('pipelines many concurrent publishes on one connection, each acked with its own offset', async () => {
    await reader.declareTopic('p-many');
    const producer = new Producer(broker);
    const n = 2_000;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => producer.publish({ topic: 'p-many', body: `m${i}` })),
    );
    const offsets = results.map((r) => r.offset!);
    expect(new Set(offsets).size).toBe(n);
    expect(Math.max(...offsets) - Math.min(...offsets)).toBe(n - 1);
    expect(results.every((r) => r.durability === 'fsync')).toBe(true);
    // one connection carried them all
    expect(producer.client()).toBe(broker.client());
    const info = await reader.queryTopic('p-many');
    expect(info.messageDepth).toBe(n);
  });

  it('gives every publish its own random, UUID-shaped id, across the batches ids are made in', async () => {
    await reader.declareTopic('p-ids');
    const producer = new Producer(broker);
    await producer.publish({ topic: 'p-ids', body: 'first' }); // the core path; the fast path makes ids after it
    const n = 300;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => producer.publish({ topic: 'p-ids', body: `m${i}` })),
    );
    const ids = results.map((r) => r.id);
    expect(new Set(ids).size).toBe(n);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // a publish that names its id keeps it
    expect((await producer.publish({ topic: 'p-ids', id: 'mine-1', body: 'x' })).id).toBe('mine-1');
  });

  it('makes ids that keep nothing else alive: one kept of every 64 costs its own size', () => {
    const gc = runInNewContext('gc') as () => void;
    const kept = new Array<string>(4_096).fill(''); // its own bytes are counted before
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < kept.length * 64; i++) {
      const id = nextId();
      if (i % 64 === 0) kept[i / 64] = id;
    }
    gc();
    const perKept = (process.memoryUsage().heapUsed - before) / kept.length;
    // a 36-character string is about 50 bytes; a view of the string the batch was made in held its 2.3 KB
    expect(perKept).toBeLessThan(200);
    expect(new Set(kept).size).toBe(kept.length);
  });

  it('gives a result whose kept id holds only itself, not the ack it came in', async () => {
    await reader.declareTopic('p-kept-ids');
    const producer = new Producer(broker);
    const gc = runInNewContext('gc') as () => void;
    const kept = new Array<string>(2_000).fill('');
    // What the ids alone hold: the heap with them less the heap once they are dropped. A full GC may free
    // something else too (flushed bytecode), never less: the least of three tries.
    let perKept = Number.POSITIVE_INFINITY;
    for (let t = 0; t < 3; t++) {
      await Promise.all(
        kept.map((_, i) =>
          producer.publish({ topic: 'p-kept-ids', body: 'x' }).then((r) => {
            kept[i] = r.id;
          }),
        ),
      );
      gc();
      const held = process.memoryUsage().heapUsed;
      kept.fill('');
      gc();
      perKept = Math.min(perKept, (held - process.memoryUsage().heapUsed) / kept.length);
    }
    // 56 bytes for a 36-character string; the ack's id was a view that held the ack's whole head (208)
    expect(perKept).toBeLessThan(80);
  });

  it("reads an ack's broker time from its bytes, as the body's text would give it", async () => {
    await reader.declareTopic('p-time');
    const producer = new Producer(broker);
    await producer.publish({ topic: 'p-time', body: 'first' }); // the core path
    const text = vi.spyOn(Message.prototype, 'bodyText');
    try {
      const r = await producer.publish({ topic: 'p-time', body: 'x' });
      expect(text).not.toHaveBeenCalled();
      expect(Number.isInteger(r.serverTime)).toBe(true);
      expect(r.serverTime).toBe(Number(r.reply.bodyText()));
    } finally {
      text.mockRestore();
    }
    // Anything but ASCII digits reads as core's produceResult reads it: the text, trimmed, as a finite number.
    const time = (body: string, encoding?: string) =>
      serverTime(new Message({ status: 200, body, headers: encoding ? { encoding } : {} }));
    expect(time('0017')).toBe(17);
    expect(time(' 17\n')).toBe(17);
    expect(time('1e3')).toBe(1000);
    expect(time('17.5')).toBe(17.5);
    expect(time('1700000000000000')).toBe(1700000000000000);
    expect(time('')).toBeUndefined();
    expect(time('ok')).toBeUndefined();
    expect(time('Infinity')).toBeUndefined();
    expect(time('17', 'utf-16le')).toBeUndefined();
  });

  it('bounds the publishes in flight with maxInFlight', async () => {
    await reader.declareTopic('p-bounded');
    const producer = new Producer(broker, { maxInFlight: 8 });
    let peak = 0;
    const all = Array.from({ length: 100 }, async (_, i) => {
      const p = producer.publish({ topic: 'p-bounded', body: String(i) });
      peak = Math.max(peak, producer.inFlight);
      return p;
    });
    await Promise.all(all);
    expect(peak).toBeLessThanOrEqual(8);
    await producer.flush();
    expect(producer.inFlight).toBe(0);
  });

  it('publishBatch resolves with the acks in order', async () => {
    await reader.declareTopic('p-batch');
    const producer = new Producer(broker);
    const acks = await producer.publishBatch([
      { topic: 'p-batch', body: 'a' },
      { topic: 'p-batch', body: 'b' },
      { topic: 'p-batch', body: 'c' },
    ]);
    expect(acks.map((a) => a.offset)).toEqual([acks[0]!.offset, acks[0]!.offset! + 1, acks[0]!.offset! + 2]);
  });

  it('fire-and-forget publishes get no reply and are stored', async () => {
    await reader.declare('p-ff', { group: 'g' });
    const producer = new Producer(broker);
    const r = await producer.publish({ topic: 'p-ff', body: 'ff' }, { ack: false });
    expect(r).toBeUndefined();
    const got = await reader.consume('p-ff', { group: 'g', timeout: 2_000 });
    expect(got!.bodyText()).toBe('ff');
  });

  it('sends string, bytes, JSON and msgpack bodies with their content types', async () => {
    await reader.declare('p-bodies', { group: 'g' });
    const producer = new Producer(broker);
    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255, 13, 10]);
    await producer.publish({ topic: 'p-bodies', body: 'text ✓ 中文' });
    await producer.publish({ topic: 'p-bodies', body: bytes, contentType: 'application/octet-stream' });
    await producer.publish({ topic: 'p-bodies', body: { a: [1, 'ü'] } });
    await producer.publish({ topic: 'p-bodies', body: { a: [1, 'ü'], b: bytes }, codec: msgpackCodec });
    const take = async () => (await reader.consume('p-bodies', { group: 'g', timeout: 2_000 }))!;
    const t = await take();
    expect(t.contentType).toMatch(/^text\/plain/);
    expect(t.bodyText()).toBe('text ✓ 中文');
    const b = await take();
    expect(b.contentType).toBe('application/octet-stream');
    expect(new Uint8Array(b.body)).toEqual(bytes);
    const j = await take();
    expect(j.contentType).toBe('application/json');
    expect(j.json()).toEqual({ a: [1, 'ü'] });
    const m = await take();
    expect(m.contentType).toBe('application/x-msgpack');
    const decoded = msgpackCodec.decode(m.body) as { a: unknown[]; b: Uint8Array };
    expect(decoded.a).toEqual([1, 'ü']);
    expect(new Uint8Array(decoded.b)).toEqual(bytes);
  });

  it('publishes a Message as is, keeping its headers', async () => {
    await reader.declare('p-msg', { group: 'g' });
    const producer = new Producer(broker);
    const m = new Message({ headers: { topic: 'p-msg', tag: 'x.y', 'x-trace': 't1' }, body: 'raw' });
    await producer.publish(m);
    const got = await reader.consume('p-msg', { group: 'g', timeout: 2_000 });
    expect(got!.tag).toBe('x.y');
    expect(got!.get('x-trace')).toBe('t1');
    // the same object again is a second message, not a duplicate of the first
    const again = await producer.publish(m);
    expect(m.id).toBeUndefined();
    const second = await reader.consume('p-msg', { group: 'g', timeout: 2_000 });
    expect(second!.id).toBe(again.id);
  });
});
