// One behavioural suite, run against both stores: the embedded local store (one broker) and the JetStream store
// (two brokers on a 3-node nats-server cluster). Every test writes through `entry` and reads through `exit`; with
// the local store they are the same broker, with JetStream two different ones, so each test also shows that the
// brokers share topics, groups, acks, delays and RPC services.
import type { Message } from '@zbus/protocol';
import {
  type NatsCluster,
  natsServerMissing,
  RawClient,
  type RunningBroker,
  scaled,
  startBroker,
  startNatsCluster,
  waitFor,
} from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SLOW90 = scaled(90_000);

interface Setup {
  entry: RawClient;
  /** Plain HTTP to the broker `entry` is connected to. */
  entryUrl: string;
  exit: RawClient;
  stop(): Promise<void>;
}

const missing = natsServerMissing();

const STORES: Array<{ name: string; skip: string | undefined; start(): Promise<Setup> }> = [
  {
    name: 'local store',
    skip: undefined,
    async start() {
      const b = await startBroker({ fsync: 'never' });
      const entry = await RawClient.connect(b.port);
      const exit = await RawClient.connect(b.port);
      return {
        entry,
        entryUrl: `http://127.0.0.1:${b.port}`,
        exit,
        async stop() {
          entry.close();
          exit.close();
          await b.stop();
        },
      };
    },
  },
  {
    name: 'JetStream store, two brokers',
    skip: missing,
    async start() {
      const cluster: NatsCluster = await startNatsCluster();
      const brokers: RunningBroker[] = [];
      try {
        for (let i = 0; i < 2; i++) brokers.push(await startBroker({ args: ['--store', cluster.url] }));
      } catch (err) {
        await Promise.all(brokers.map((b) => b.stop()));
        await cluster.stop();
        throw err;
      }
      const entry = await RawClient.connect(brokers[0]!.port);
      const exit = await RawClient.connect(brokers[1]!.port);
      return {
        entry,
        entryUrl: `http://127.0.0.1:${brokers[0]!.port}`,
        exit,
        async stop() {
          entry.close();
          exit.close();
          await Promise.all(brokers.map((b) => b.stop()));
          await cluster.stop();
        },
      };
    },
  },
];

if (missing) console.warn(`JetStream store suite skipped: ${missing}`);

const text = (m: Message) => new TextDecoder().decode(m.body);
let seq = 0;
const fresh = (base: string) => `${base}${Date.now().toString(36)}${++seq}`;

/** A request whose reply is `status`; the reply. */
async function ok(
  c: RawClient,
  headers: Record<string, string>,
  body?: string,
  status = 200,
): Promise<Message> {
  const reply = await c.request({ url: '/', headers, body }, 15_000);
  expect(reply.status, `${headers.cmd} ${text(reply)}`).toBe(status);
  return reply;
}

/** Declares through `entry`, then waits until `exit` knows the topic (another broker learns it from the KV watch). */
async function declare(s: Setup, headers: Record<string, string>): Promise<void> {
  await ok(s.entry, { cmd: 'declare', ...headers });
  for (let i = 0; ; i++) {
    const q = await s.exit.request({
      url: '/',
      headers: { cmd: 'query', topic: headers.topic!, consume_group: headers.consume_group ?? '' },
    });
    if (q.status === 200) return;
    if (i > 200) throw new Error(`${headers.topic} never reached the other broker`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const store of STORES) {
  describe.skipIf(store.skip !== undefined)(`stores: ${store.name}`, () => {
    let s: Setup;
    beforeAll(async () => {
      s = await store.start();
    }, SLOW90);
    afterAll(async () => {
      await s?.stop();
    });

    it('produces through one broker and consumes through the other, offsets per topic', async () => {
      const topic = fresh('Orders');
      await declare(s, { topic });
      const first = await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, 'one');
      await ok(s.entry, { cmd: 'produce', topic, ack: 'true', tag: 'eu.paris' }, 'two');
      expect(first.headers.offset).toBe('0');
      expect(first.headers.durable).toMatch(
        store.skip === undefined && store.name.startsWith('Jet') ? /replicated/ : /.+/,
      );
      const a = await ok(s.exit, { cmd: 'consume', topic });
      const b = await ok(s.exit, { cmd: 'consume', topic });
      expect([text(a), text(b)]).toEqual(['one', 'two']);
      expect([a.headers.offset, b.headers.offset]).toEqual(['0', '1']);
      const byOffset = await ok(s.exit, { cmd: 'consume', topic, offset: '1' });
      expect(text(byOffset)).toBe('two');
    });

    it('filters a group by tag', async () => {
      const topic = fresh('Tagged');
      await declare(s, { topic, consume_group: 'eu', group_filter: 'eu.*', group_start_offset: '0' });
      for (const tag of ['us.ny', 'eu.paris', 'eu', 'eu.rome']) {
        await ok(s.entry, { cmd: 'produce', topic, ack: 'true', tag }, tag);
      }
      const got = [];
      for (let i = 0; i < 2; i++)
        got.push(text(await ok(s.exit, { cmd: 'consume', topic, consume_group: 'eu' })));
      expect(got).toEqual(['eu.paris', 'eu.rome']);
    });

    it('redelivers a nacked message with retry and takes the ack', async () => {
      const topic = fresh('Work');
      await declare(s, { topic, topic_mask: '64' });
      await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, 'job');
      const d = await ok(s.exit, { cmd: 'consume', topic });
      expect(d.headers.retry).toBeUndefined();
      await ok(s.exit, { cmd: 'nack', topic, offset: d.headers.offset!, ack: 'true' });
      const again = await ok(s.exit, { cmd: 'consume', topic });
      expect(again.headers).toMatchObject({ offset: d.headers.offset, retry: '1' });
      await ok(s.entry, { cmd: 'ack', topic, offset: again.headers.offset!, ack: 'true' });
      const q = JSON.parse(text(await ok(s.exit, { cmd: 'query', topic })));
      expect(q.consumeGroupList[0].unackedCount).toBe(0);
    });

    it('holds a delayed message until it comes due', async () => {
      const topic = fresh('Later');
      await declare(s, { topic });
      const r = await ok(s.entry, { cmd: 'produce', topic, ack: 'true', delay: '300' }, 'later');
      expect(r.headers.deliver_at).toBeDefined();
      await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, 'now');
      expect(text(await ok(s.exit, { cmd: 'consume', topic }))).toBe('now');
      const late = await ok(s.exit, { cmd: 'consume', topic });
      expect(text(late)).toBe('later');
      expect(Number(late.headers.timestamp)).toBeGreaterThanOrEqual(Number(r.headers.deliver_at));
    });

    it('answers RPC by route through the other broker, 503 with no service anywhere', async () => {
      const topic = fresh('Calc');
      await declare(s, { topic, topic_mask: String(1 | 2) });
      const none = await s.entry.request({ url: '/', headers: { cmd: 'produce', topic }, body: 'x' });
      expect(none.status).toBe(503);
      const consumeId = s.exit.send({ url: '/', headers: { cmd: 'consume', topic } });
      // The service's broker takes calls for the topic once NATS has spread its subscription: until then a call
      // is answered 503 at once, and is sent again.
      let callId = '';
      for (let i = 0; ; i++) {
        callId = s.entry.send({ url: '/', headers: { cmd: 'produce', topic, ack: 'false' }, body: '1+2' });
        const early = await s.entry.next((m) => m.headers.id === callId, 200).catch(() => undefined);
        if (early === undefined) break; // no 503: the call is with the service
        expect(early.status).toBe(503);
        if (i > 100) throw new Error('the service never became reachable');
      }
      const req = await s.exit.next((m) => m.headers.id === consumeId, 15_000);
      expect(text(req)).toBe('1+2');
      s.exit.send({
        url: '/',
        headers: { cmd: 'route', topic, recver: req.headers.sender!, id: req.headers.origin_id! },
        body: '3',
      });
      const reply = await s.entry.next((m) => m.headers.id === callId, 15_000);
      expect([reply.status, text(reply)]).toEqual([200, '3']);
    });

    it('answers RPC by URL (plain HTTP) through the other broker', async () => {
      const topic = fresh('Calc');
      await declare(s, { topic, topic_mask: String(1 | 2) });
      const consumeId = s.exit.send({ url: '/', headers: { cmd: 'consume', topic } });
      // As above: 503 until the service's broker takes calls for the topic; the call that reaches the service
      // is the one whose answer has not come when the service gets it.
      const delivered = s.exit.next((m) => m.headers.id === consumeId, 15_000);
      let call: Promise<Response> | undefined;
      let req: Message | undefined;
      for (let i = 0; req === undefined; i++) {
        if (i > 100) throw new Error('the service never became reachable');
        const attempt = fetch(`${s.entryUrl}/${topic}/calc/plus/1/2`);
        const first = await Promise.race([
          attempt.then((r) => ({ early: r })),
          delivered.then((m) => ({ m })),
        ]);
        if ('m' in first) {
          call = attempt;
          req = first.m;
        } else expect(first.early.status).toBe(503);
      }
      expect(JSON.parse(text(req))).toEqual({ module: 'calc', method: 'plus', params: ['1', '2'] });
      s.exit.send({
        url: '/',
        headers: { cmd: 'route', topic, recver: req.headers.sender!, id: req.headers.origin_id! },
        body: '3',
      });
      const reply = await call!;
      expect([reply.status, await reply.text()]).toEqual([200, '3']);
    });

    it('delivers each message once per group: unicast within a group, multicast across groups', async () => {
      const topic = fresh('Fan');
      await declare(s, { topic, consume_group: 'billing', group_start_offset: '0' });
      await declare(s, { topic, consume_group: 'audit', group_start_offset: '0' });
      for (const m of ['a', 'b', 'c', 'd']) await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, m);
      const billing = [];
      for (let i = 0; i < 4; i++) {
        const via = i % 2 === 0 ? s.entry : s.exit;
        billing.push(text(await ok(via, { cmd: 'consume', topic, consume_group: 'billing' })));
      }
      const audit = [];
      for (let i = 0; i < 4; i++)
        audit.push(text(await ok(s.exit, { cmd: 'consume', topic, consume_group: 'audit' })));
      expect(billing.sort()).toEqual(['a', 'b', 'c', 'd']);
      expect(audit).toEqual(['a', 'b', 'c', 'd']);
    });

    it('moves a message to <topic>.dlq after max deliver, with why, the nack reason and from where', async () => {
      const topic = fresh('Poison');
      await declare(s, {
        topic,
        topic_mask: '64',
        consume_group: 'w',
        group_max_deliver: '1',
        group_start_offset: '0',
      });
      await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, 'poison');
      const d = await ok(s.exit, { cmd: 'consume', topic, consume_group: 'w' });
      const offset = d.headers.offset!;
      const reason = 'cannot parse the order';
      await ok(s.exit, { cmd: 'nack', topic, consume_group: 'w', offset, reason, ack: 'true' });
      // The next delivery is beyond max deliver 1: it goes to the dead-letter topic, not to this consume, and
      // through the other broker, which must still know why the consumer gave it back.
      const waiting = s.entry.send({
        url: '/',
        headers: { cmd: 'consume', topic, consume_group: 'w', consume_timeout: '3000' },
      });
      const dlq = `${topic}.dlq`;
      let dead: Message | undefined;
      for (let i = 0; dead === undefined; i++) {
        const r = await s.exit.request({
          url: '/',
          headers: { cmd: 'consume', topic: dlq, consume_timeout: '1000' },
        });
        if (r.status === 200 && r.headers.consume_timeout === undefined) dead = r;
        else if (i > 200) throw new Error(`nothing reached ${dlq}: ${r.status} ${text(r)}`);
        else if (r.status === 404) await new Promise((resolve) => setTimeout(resolve, 20)); // not declared yet
      }
      expect(dead && text(dead)).toBe('poison');
      expect(dead!.headers).toMatchObject({
        dlq_reason: 'max_deliver',
        dlq_group: 'w',
        dlq_error: reason,
      });
      await s.entry.next((m) => m.headers.id === waiting, 15_000);
    });

    it('dedupes a produce id within the topic window', async () => {
      const topic = fresh('Once');
      await declare(s, { topic, topic_dedupe_window: '60000' });
      const first = await ok(s.entry, { cmd: 'produce', topic, ack: 'true', id: 'order-1' }, 'x');
      const again = await ok(s.exit, { cmd: 'produce', topic, ack: 'true', id: 'order-1' }, 'x');
      expect(again.headers).toMatchObject({ duplicate: 'true', offset: first.headers.offset });
    });

    it('refuses a produce (429) while the slowest group is maxBacklog behind', async () => {
      const topic = fresh('Full');
      await declare(s, { topic, topic_max_backlog: '2', consume_group: 'slow', group_start_offset: '0' });
      const produce = (body: string) =>
        s.entry.request({ url: '/', headers: { cmd: 'produce', topic, ack: 'true' }, body });
      for (const m of ['a', 'b']) await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, m);
      const full = await produce('c');
      expect([full.status, full.headers.error_code]).toEqual([429, 'ZBUS_ERR_LIMIT']);
      expect(text(full)).toContain(`topic ${topic} backlog is full (maxBacklog=2)`);
      // The group reads one, through the other broker: room for one more once the producer's broker reads the
      // group's position again (JetStream: at most 100 ms after its last read).
      expect(text(await ok(s.exit, { cmd: 'consume', topic, consume_group: 'slow' }))).toBe('a');
      await waitFor(async () => (await produce('c')).status === 200, 'room after a consume');
      expect((await produce('d')).status).toBe(429);
    });

    it('starts a group at an offset or at a time', async () => {
      const topic = fresh('Seek');
      await declare(s, { topic });
      for (const m of ['a0', 'a1']) await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, m);
      const mid = Number(
        (await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, 'a2')).headers.offset === '2'
          ? Date.now() + 5
          : 0,
      );
      await new Promise((r) => setTimeout(r, 10));
      await ok(s.entry, { cmd: 'produce', topic, ack: 'true' }, 'b0');
      await declare(s, { topic, consume_group: 'o', group_start_offset: '1' });
      expect(text(await ok(s.exit, { cmd: 'consume', topic, consume_group: 'o' }))).toBe('a1');
      await declare(s, { topic, consume_group: 't', group_start_time: String(mid) });
      expect(text(await ok(s.exit, { cmd: 'consume', topic, consume_group: 't' }))).toBe('b0');
    });

    it('answers the 0.11 and 0.8 URL forms and the info shapes', async () => {
      const topic = fresh('Url');
      await declare(s, { topic });
      const p = await s.entry.request({
        url: `/${topic}?cmd=produce&ack=true`,
        method: 'POST',
        body: 'via-url',
      });
      expect(p.status).toBe(200);
      const c = await s.exit.request({ url: `/consume/${topic}` });
      expect(text(c)).toBe('via-url');
      const info = JSON.parse(text(await ok(s.exit, { cmd: 'query', topic })));
      expect(info).toMatchObject({ topicName: topic, messageDepth: 1, firstOffset: 0, nextOffset: 1 });
      expect(info.consumeGroupList[0]).toMatchObject({ groupName: topic, messageCount: 0, position: 1 });
    });

    it('says in ServerInfo whether the brokers share a store', async () => {
      const info = JSON.parse(text(await ok(s.exit, { cmd: 'query' })));
      if (store.name.startsWith('Jet')) expect(info.sharedStore).toMatch(/^nats:/);
      else expect(info.sharedStore).toBeUndefined();
    });
  });
}
