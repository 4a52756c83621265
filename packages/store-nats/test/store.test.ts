// The JetStream store against a real 3-node nats-server cluster: two store instances play two brokers.

import type { Delivery, Group, Topic } from '@zbus/server';
import { type NatsCluster, natsServerMissing, scaled, startNatsCluster, waitFor } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsGroup } from '../src/group.js';
import { NatsStore } from '../src/store.js';

const missing = natsServerMissing();
if (missing) console.warn(`skipping the JetStream store tests: ${missing}`);

const enc = (s: string) => new TextEncoder().encode(s);
const text = (d: Delivery | undefined) => (d ? new TextDecoder().decode(d.data) : undefined);

/** The next deliveries of a group, waiting for them through onAvailable (pulls are asynchronous). */
async function take(topic: Topic, group: Group, n: number, timeoutMs = 15_000): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + scaled(timeoutMs);
  while (out.length < n) {
    out.push(...(await group.nextBatch!(n - out.length, 1 << 20)));
    if (out.length >= n) break;
    if (Date.now() > deadline) throw new Error(`got ${out.length} of ${n} deliveries`);
    await new Promise<void>((resolve) => {
      const off = topic.onAvailable(() => {
        off();
        clearTimeout(t);
        resolve();
      });
      const t = setTimeout(() => {
        off();
        resolve();
      }, 1000);
    });
  }
  return out;
}

describe.skipIf(missing !== undefined)('JetStream store', () => {
  let cluster: NatsCluster;
  let a: NatsStore;
  let b: NatsStore;
  let seq = 0;
  const fresh = () => `T${Date.now().toString(36)}_${++seq}`;

  beforeAll(async () => {
    cluster = await startNatsCluster();
    a = await NatsStore.open({ servers: [cluster.servers[0]!], replicas: 3 });
    b = await NatsStore.open({ servers: [cluster.servers[1]!], replicas: 3 });
  }, scaled(60_000));

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await cluster?.stop();
  });

  /** Waits until store `s` sees topic (and group) `name` through its KV watch. */
  function seen(s: NatsStore, name: string, group?: string): Promise<Topic> {
    const found = () => {
      const t = s.topic(name);
      return t && (group === undefined || t.group(group)) ? t : undefined;
    };
    const now = found();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${name} never appeared`));
      }, scaled(15_000));
      const off = s.onChange(() => {
        const t = found();
        if (!t) return;
        clearTimeout(timer);
        off();
        resolve(t);
      });
    });
  }

  it('stores messages with per-topic offsets and reads them back through another broker', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 0, creator: 'test' });
    const r0 = await t.append({ id: 'm0', data: enc('zero') });
    const r1 = await t.append({ id: 'm1', tag: 'x.y', data: enc('one') });
    expect([r0.offset, r1.offset]).toEqual([0, 1]);
    expect(r0.durability).toBe('replicated');
    const tb = await seen(b, name.toLowerCase());
    expect(tb.name).toBe(name);
    const rec = await tb.read(1);
    expect(rec).toMatchObject({ offset: 1, id: 'm1', tag: 'x.y' });
    expect(new TextDecoder().decode(rec!.data)).toBe('one');
    expect(await tb.read(5)).toBeUndefined();
  });

  it('shares one unicast group between two brokers: each message goes to one of them', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 0 });
    const ga = await t.declareGroup('g', { start: { offset: 0 } });
    const tb = await seen(b, name, 'g');
    for (let i = 0; i < 20; i++) await t.append({ id: `m${i}`, data: enc(`m${i}`) });
    const fromA = await take(t, ga, 10);
    const fromB = await take(tb, tb.group('g')!, 10);
    const all = [...fromA, ...fromB].map((d) => d.offset).sort((x, y) => x - y);
    expect(all).toEqual([...Array(20).keys()]);
  });

  it('makes a group whose consumer is missing whole again when it is declared again', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 0 });
    const g = (await t.declareGroup('g', { start: { offset: 0 } })) as NatsGroup;
    // What a declare that failed between the group's KV entry and its consumer leaves behind.
    await a.jsm.consumers.delete(g.topic.stream, g.consumerName);
    await t.append({ id: 'm0', data: enc('m0') });
    await t.declareGroup('g', {});
    expect((await a.jsm.consumers.info(g.topic.stream, g.consumerName)).name).toBe(g.consumerName);
    expect((await take(t, g, 1)).map(text)).toEqual(['m0']);
  });

  it('re-declares a group as its entry is now, not as this broker last saw it', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 0 });
    const g = (await t.declareGroup('g', { start: { offset: 0 } })) as NatsGroup;
    const firstGen = { ...g.meta };
    const tb = await seen(b, name, 'g');
    await tb.declareGroup('g', { start: { offset: 0 } }); // broker b replaces the consumer: generation 2
    await waitFor(() => g.meta.generation === 2, 'broker a to see generation 2');
    // Broker a's copy lagging b's re-declare, as it does for the KV watch's delay.
    g.applyMeta(firstGen);
    const oldConsumer = g.consumerName;
    await t.declareGroup('g', {});
    expect(g.meta.generation).toBe(2);
    await expect(a.jsm.consumers.info(g.topic.stream, oldConsumer)).rejects.toThrow(/not found/i);
    await t.append({ id: 'm0', data: enc('m0') });
    expect((await take(t, g, 1)).map(text)).toEqual(['m0']);
  });

  it('filters by tag on the server, one pattern or several', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 0 });
    const one = await t.declareGroup('one', { filter: 'a.*', start: { offset: 0 } });
    const rest = await t.declareGroup('rest', { filter: 'b.#', start: { offset: 0 } });
    const both = await t.declareGroup('both', { filter: 'a.x;c', start: { offset: 0 } });
    for (const tag of ['a.x', 'a', 'b', 'b.y.z', 'c', undefined, 'a.x.y']) {
      await t.append({ id: `id-${tag}`, tag, data: enc(String(tag)) });
    }
    expect((await take(t, one, 1)).map(text)).toEqual(['a.x']);
    expect((await take(t, rest, 2)).map(text)).toEqual(['b', 'b.y.z']);
    expect((await take(t, both, 2)).map(text)).toEqual(['a.x', 'c']);
  });

  it('acks, nacks with redelivery counted in retry, and dead-letters after max deliver', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 64 });
    const g = await t.declareGroup('w', { start: { offset: 0 }, maxDeliver: 2, ackTimeoutMs: 60_000 });
    await t.append({ id: 'keep', data: enc('keep') });
    await t.append({ id: 'bad', data: enc('bad') });
    const [d0, d1] = await take(t, g, 2);
    expect(await g.ack(d0!.offset)).toBe(true);
    expect(await g.nack(d1!.offset)).toBe(true);
    const [again] = await take(t, g, 1);
    expect(again).toMatchObject({ offset: 1, retry: 1 });
    await g.nack(again!.offset);
    // The third delivery exceeds max deliver 2: the broker that pulls it moves it to <topic>.dlq instead.
    expect(await g.nextBatch!(1, 1 << 20)).toEqual([]);
    const dlq = await seen(a, `${name}.dlq`, `${name}.dlq`);
    const [dead] = await take(dlq, dlq.group(`${name}.dlq`)!, 1);
    expect(dead).toMatchObject({ id: 'bad' });
  });

  it('holds delayed messages in JetStream until they come due', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 0 });
    const g = await t.declareGroup('g', { start: { offset: 0 } });
    const at = Date.now() + 700;
    const r = await t.append({ id: 'later', data: enc('later'), deliverAt: at });
    expect(r).toMatchObject({ offset: -1, deliverAt: at });
    await t.append({ id: 'now', data: enc('now') });
    const [first] = await take(t, g, 1);
    expect(text(first)).toBe('now');
    const [second] = await take(t, g, 1);
    expect(text(second)).toBe('later');
    expect(Date.now()).toBeGreaterThanOrEqual(at);
  });

  it('dedupes produce ids within the window', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 0, dedupeWindowMs: 60_000 });
    const first = await t.append({ id: 'same', data: enc('1') });
    const second = await t.append({ id: 'same', data: enc('2') });
    expect(second).toMatchObject({ duplicate: true, offset: first.offset });
  });

  it('seeks a group by offset and by time', async () => {
    const name = fresh();
    const t = await a.declareTopic(name, { mask: 0 });
    for (let i = 0; i < 3; i++) await t.append({ id: `a${i}`, data: enc(`a${i}`) });
    // JetStream stamps in nanoseconds, Date.now() in milliseconds: keep the two batches apart by a few ms.
    await new Promise((r) => setTimeout(r, 3));
    const mid = Date.now();
    await new Promise((r) => setTimeout(r, 3));
    for (let i = 0; i < 3; i++) await t.append({ id: `b${i}`, data: enc(`b${i}`) });
    const byOffset = await t.declareGroup('o', { start: { offset: 4 } });
    expect((await take(t, byOffset, 1))[0]!.offset).toBe(4);
    const byTime = await t.declareGroup('t', { start: { time: mid } });
    expect(text((await take(t, byTime, 1))[0])).toBe('b0');
    await expect(t.declareGroup('bad', { start: { offset: 1, msgId: 'nope' } })).rejects.toMatchObject({
      code: 'ZBUS_ERR_SEEK',
    });
  });

  it('removes a topic on every broker', async () => {
    const name = fresh();
    await a.declareTopic(name, { mask: 0 });
    await seen(b, name);
    const gone = new Promise<void>((resolve) => {
      const off = b.onChange((c) => {
        if (c.kind === 'topic' && c.removed && c.topic === name) {
          off();
          resolve();
        }
      });
    });
    expect(await a.removeTopic(name)).toBe(true);
    await gone;
    expect(b.topic(name)).toBeUndefined();
  });
  it(
    'declares a replicated topic while a node restarts: it waits for the node rather than failing',
    async () => {
      // Long enough for a restart on a busy machine; the default (5 s) bounds the wait in production.
      const c = await NatsStore.open({
        servers: [cluster.servers[0]!],
        replicas: 3,
        requestTimeoutMs: scaled(10_000),
      });
      try {
        const node = cluster.nodes[2]!;
        await node.kill('SIGKILL');
        // Three replicas need the third node: JetStream answers "insufficient resources" (or, while the meta
        // leader is re-elected, "jetstream not enabled") until it is back.
        const declared = c.declareTopic(fresh(), { mask: 0 });
        await node.restart();
        expect((await declared).info().messageDepth).toBe(0);
      } finally {
        await c.close();
      }
    },
    scaled(60_000),
  );
  // Last: it stops the cluster. The refresh gives up only after its request timeout and retries (5 s each by
  // default), and then three JetStream nodes restart: more than the default 20 s on a busy machine.
  it(
    'refuses to report a topic it cannot read the state of, rather than report it empty',
    async () => {
      const name = fresh();
      const t = await a.declareTopic(name, { mask: 0 });
      for (let i = 0; i < 3; i++) await t.append({ id: `m${i}`, data: enc('x') });
      await a.refresh(name);
      expect(t.info().messageDepth).toBe(3);
      await Promise.all(cluster.nodes.map((n) => n.kill('SIGKILL')));
      try {
        await expect(a.refresh(name)).rejects.toMatchObject({ code: expect.stringMatching(/^ZBUS_ERR_/) });
      } finally {
        await Promise.all(cluster.nodes.map((n) => n.restart()));
      }
    },
    scaled(60_000),
  );
});
