// Consumer against the real broker: handler and iterator modes, windows, connections, pause/resume/close with
// handlers in flight, ack/nack/redelivery, group options, declareOnMissing.
import { latch, type RunningBroker, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Broker, type ConsumedMessage, Consumer, Mask, MqClient, Producer } from '../../src/index.js';

let server: RunningBroker;
let broker: Broker;
let admin: MqClient;
let producer: Producer;

beforeAll(async () => {
  server = await startBroker();
  broker = new Broker(server.address);
  admin = broker.client();
  producer = new Producer(broker);
});

afterAll(async () => {
  await broker?.close();
  await server?.stop();
});

async function publish(topic: string, n: number, prefix = 'm'): Promise<void> {
  await producer.publishBatch(Array.from({ length: n }, (_, i) => ({ topic, body: `${prefix}${i}` })));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function consumer(options: ConstructorParameters<typeof Consumer>[1]): Consumer {
  const c = new Consumer(broker, options);
  onTestFinished(() => c.close());
  return c;
}

describe('Consumer', () => {
  it('hands every message to the handler, restored, with the group', async () => {
    await admin.declare('c-basic', { group: 'g' });
    const got: ConsumedMessage[] = [];
    const done = latch(5);
    const c = consumer({
      topic: 'c-basic',
      group: 'g',
      handler: (m) => {
        got.push(m);
        done.countDown();
      },
    });
    await c.start();
    const acks = await producer.publishBatch(
      Array.from({ length: 5 }, (_, i) => ({ topic: 'c-basic', body: `b${i}` })),
    );
    await done.wait();
    expect(got.map((m) => m.bodyText())).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
    expect(got.map((m) => m.id)).toEqual(acks.map((a) => a.id));
    expect(got[0]!.consumeGroup).toBe('g');
    expect(got[0]!.status).toBeUndefined();
  });

  it('is an async iterator; break closes it', async () => {
    await admin.declare('c-iter', { group: 'g' });
    await publish('c-iter', 3, 'i');
    const c = new Consumer(broker, { topic: 'c-iter', group: 'g' });
    const seen: string[] = [];
    for await (const m of c) {
      seen.push(m.bodyText());
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['i0', 'i1', 'i2']);
    expect(c.state).toBe('closed');
  });

  it('break acks the message read last and leaves delivered but unread ones unacked', async () => {
    await admin.declare('c-iter-ack', { group: { name: 'g', mask: Mask.AckRequired, ackTimeout: 60_000 } });
    await publish('c-iter-ack', 5, 'a');
    const c = new Consumer(broker, { topic: 'c-iter-ack', group: 'g', window: 4 });
    for await (const m of c) {
      expect(m.bodyText()).toBe('a0');
      // a0 is being read and a1..a3 wait in the iterator's queue; nothing is acked yet
      await expect.poll(async () => (await admin.queryGroup('c-iter-ack', 'g')).unackedCount).toBe(4);
      break;
    }
    expect(c.state).toBe('closed');
    // a0 was handled; a1..a3 were never read, so the broker must deliver them again; a4 was never sent
    expect(await admin.queryGroup('c-iter-ack', 'g')).toMatchObject({ unackedCount: 3, messageCount: 1 });
  });

  it('runs up to `window` handlers at once per connection and keeps consuming as they finish', async () => {
    await admin.declare('c-window', { group: 'g' });
    let running = 0;
    let peak = 0;
    // The first handlers wait until four run at once, so the peak does not depend on how fast deliveries come.
    const four = latch(4, 10_000);
    const done = latch(40, 10_000);
    const c = consumer({
      topic: 'c-window',
      group: 'g',
      window: 4,
      handler: async () => {
        running++;
        peak = Math.max(peak, running);
        four.countDown();
        await four.wait();
        await new Promise((r) => setTimeout(r, 5));
        running--;
        done.countDown();
      },
    });
    await c.start();
    await publish('c-window', 40);
    await done.wait();
    expect(peak).toBe(4);
  });

  it('consumes a memory topic with a window above 1', async () => {
    await admin.declare('c-memory', { topicMask: Mask.Memory, group: 'g' });
    const done = latch(30, 10_000);
    const seen: string[] = [];
    const c = consumer({
      topic: 'c-memory',
      group: 'g',
      window: 4,
      handler: async (m) => {
        seen.push(m.bodyText());
        await new Promise((r) => setTimeout(r, 2));
        done.countDown();
      },
    });
    await c.start();
    await publish('c-memory', 30);
    await done.wait();
    expect(new Set(seen).size).toBe(30);
  });

  it('spreads a group over connectionCount connections', async () => {
    await admin.declare('c-conns', { group: 'g' });
    const clients = new Set<MqClient>();
    const done = latch(20, 10_000);
    const c = consumer({
      topic: 'c-conns',
      group: 'g',
      connectionCount: 3,
      handler: async (_m, client) => {
        clients.add(client);
        await new Promise((r) => setTimeout(r, 10));
        done.countDown();
      },
    });
    await c.start();
    await publish('c-conns', 20);
    await done.wait();
    expect(clients.size).toBe(3);
    const info = await admin.queryGroup('c-conns', 'g');
    expect(info.consumerCount).toBe(3);
  });

  it('pause() stops taking messages but finishes handlers in flight; resume() goes on', async () => {
    await admin.declare('c-pause', { group: 'g' });
    const gate = deferred();
    const entered = latch(1);
    const seen: string[] = [];
    let finished = 0;
    const c = consumer({
      topic: 'c-pause',
      group: 'g',
      handler: async (m) => {
        seen.push(m.bodyText());
        entered.countDown();
        if (m.bodyText() === 'p0') await gate.promise;
        finished++;
      },
    });
    await c.start();
    await publish('c-pause', 1, 'p');
    await entered.wait();
    await c.pause();
    expect(c.inFlight).toBe(1);
    gate.resolve();
    await publish('c-pause', 3, 'q');
    // nothing new while paused (the broker holds the messages)
    await expect.poll(() => finished).toBe(1);
    const group = await admin.queryGroup('c-pause', 'g');
    expect(group.messageCount).toBe(3);
    expect(seen).toEqual(['p0']);
    c.resume();
    await expect.poll(() => seen.length).toBe(4);
    expect(seen).toEqual(['p0', 'q0', 'q1', 'q2']);
  });

  it('close() waits for handlers in flight (their acks included) and takes nothing new', async () => {
    await admin.declare('c-close', { group: { name: 'g', mask: Mask.AckRequired, ackTimeout: 60_000 } });
    const gate = deferred();
    const entered = latch(2);
    let finished = 0;
    const c = new Consumer(broker, {
      topic: 'c-close',
      group: 'g',
      window: 2,
      handler: async () => {
        entered.countDown();
        await gate.promise;
        finished++;
      },
    });
    await c.start();
    await publish('c-close', 5);
    await entered.wait();
    let closed = false;
    const closing = c.close().then(() => {
      closed = true;
    });
    // Everything close() can do without the handlers (the unconsume round trips) is done by the time the
    // consumer's own group shows no consumer; it still waits for them.
    await expect.poll(async () => (await admin.queryGroup('c-close', 'g')).consumerCount).toBe(0);
    expect(closed).toBe(false);
    gate.resolve();
    await closing;
    expect(finished).toBe(2);
    // both were acked before close finished: only the 3 never delivered remain
    const info = await admin.queryGroup('c-close', 'g');
    expect(info.messageCount).toBe(3);
    expect(info.consumerCount).toBe(0);
  });

  it('redelivers a message whose handler threw (auto mode nacks it), with retry = 1', async () => {
    await admin.declare('c-nack', { group: { name: 'g', mask: Mask.AckRequired, ackTimeout: 60_000 } });
    const attempts: (number | undefined)[] = [];
    const errors: Error[] = [];
    const done = latch(2);
    const c = consumer({
      topic: 'c-nack',
      group: 'g',
      onError: (e) => errors.push(e),
      handler: (m) => {
        attempts.push(m.retry);
        done.countDown();
        if (m.retry === undefined) throw new Error('first try fails');
      },
    });
    await c.start();
    await publish('c-nack', 1);
    await done.wait();
    expect(attempts).toEqual([undefined, 1]);
    expect(errors.map((e) => e.message)).toEqual(['first try fails']);
  });

  it('manual mode: msg.nack({delay}) redelivers later, msg.ack() settles, msg.touch() extends', async () => {
    await admin.declare('c-manual', { group: { name: 'g', mask: Mask.AckRequired, ackTimeout: 60_000 } });
    const times: number[] = [];
    const done = latch(2);
    const c = consumer({
      topic: 'c-manual',
      group: 'g',
      ackMode: 'manual',
      handler: async (m) => {
        times.push(Date.now());
        await m.touch();
        if (m.retry === undefined) await m.nack({ delay: 300 });
        else await m.ack();
        expect(m.settled).toBe(true);
        done.countDown();
      },
    });
    await c.start();
    await publish('c-manual', 1);
    await done.wait();
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(250);
    await expect.poll(async () => (await admin.queryGroup('c-manual', 'g')).messageCount).toBe(0);
  });

  it('redelivers an unacked message after the group ack timeout', async () => {
    await admin.declare('c-timeout', { group: { name: 'g', mask: Mask.AckRequired, ackTimeout: 300 } });
    const retries: (number | undefined)[] = [];
    const done = latch(2);
    const c = consumer({
      topic: 'c-timeout',
      group: 'g',
      ackMode: 'manual',
      window: 2,
      handler: async (m) => {
        retries.push(m.retry);
        done.countDown();
        if (m.retry !== undefined) await m.ack(); // the first delivery is left unacked
      },
    });
    await c.start();
    await publish('c-timeout', 1);
    await done.wait();
    expect(retries).toEqual([undefined, 1]);
  });

  it('declares the group with start rules and filter; group_name_auto picks a name', async () => {
    await admin.declareTopic('c-start');
    await publish('c-start', 3, 'old');
    await producer.publish({ topic: 'c-start', body: 'tagged', tag: 'stock.hk.1' });
    const seen: string[] = [];
    const c = consumer({
      topic: 'c-start',
      group: { name: 'from0', startOffset: 0, filter: 'stock.#' },
      handler: (m) => {
        seen.push(m.bodyText());
      },
    });
    await c.start();
    await expect.poll(() => seen).toEqual(['tagged']);
    const auto = consumer({ topic: 'c-start', group: { nameAuto: true, startOffset: 0 }, handler: () => {} });
    await auto.start();
    expect(auto.group).toBeDefined();
    expect(auto.group).not.toBe('from0');
  });

  it('re-declares a group that was removed under it (declareOnMissing)', async () => {
    await admin.declare('c-missing', { group: 'g' });
    const seen: string[] = [];
    const c = consumer({ topic: 'c-missing', group: 'g', handler: (m) => void seen.push(m.bodyText()) });
    await c.start();
    await admin.remove('c-missing', 'g');
    // the waiting consume got a 404; the consumer declares the group again and keeps consuming
    await expect
      .poll(async () => (await admin.queryTopic('c-missing')).consumeGroupList.map((g) => g.groupName))
      .toContain('g');
    await publish('c-missing', 1, 'after');
    await expect.poll(() => seen).toEqual(['after0']);
  });

  it('consumes over a single MqClient (no Broker): its own connection to the same server', async () => {
    const client = new MqClient(server.address);
    onTestFinished(() => client.close());
    const done = latch(2);
    const got: string[] = [];
    const c = new Consumer(client, {
      topic: 'c-single',
      handler: (m) => {
        got.push(m.bodyText());
        done.countDown();
      },
    });
    onTestFinished(() => c.close());
    await c.start();
    await new Producer(client).publishBatch([
      { topic: 'c-single', body: 'a' },
      { topic: 'c-single', body: 'b' },
    ]);
    await done.wait();
    expect(got).toEqual(['a', 'b']);
    await c.close();
    expect(client.state).toBe('open'); // the consumer closed its own connection, not the client it was given
  });
});
