// Every MqClient command against the real broker (packages/testkit starts apps/broker on a loopback port).
import { type RunningBroker, scaled, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, Mask, Message, MqAdmin, MqClient, ZbusError } from '../../src/index.js';

let broker: RunningBroker;
let client: MqClient;

beforeAll(async () => {
  broker = await startBroker();
  client = new MqClient(broker.address, { timeout: scaled(5_000) });
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await broker?.stop();
});

describe('MqClient against the broker', () => {
  it('declare creates a topic (TopicInfo) and a group (ConsumeGroupInfo)', async () => {
    const topic = await client.declareTopic('mc-declare');
    expect(topic).toMatchObject({ topicName: 'mc-declare', mask: 0 });
    expect(typeof topic.serverVersion).toBe('string');
    const group = await client.declareGroup('mc-declare', {
      name: 'g1',
      filter: 'a.#',
      mask: Mask.AckRequired,
    });
    expect(group).toMatchObject({ topicName: 'mc-declare', groupName: 'g1', filter: 'a.#' });
    expect(group.mask & Mask.AckRequired).toBe(Mask.AckRequired);
    const auto = (await client.declare('mc-declare', { group: { nameAuto: true } })) as { groupName: string };
    expect(auto.groupName).toMatch(/^mc-declare/i);
    expect(auto.groupName).not.toBe('g1');
  });

  it('declare sets retention limits, which TopicInfo shows; 0 lifts one', async () => {
    const info = (await client.declare('mc-retention', {
      retention: { bytes: 10 * 1024 ** 3, ms: 7 * 86_400_000, messages: 1_000_000 },
    })) as { retention?: unknown };
    expect(info.retention).toEqual({ bytes: 10 * 1024 ** 3, ms: 7 * 86_400_000, messages: 1_000_000 });
    await client.declare('mc-retention', { retention: { ms: 0 } });
    expect((await client.queryTopic('mc-retention')).retention).toEqual({
      bytes: 10 * 1024 ** 3,
      messages: 1_000_000,
    });
    await expect(client.declare('mc-retention', { retention: { messages: -1 } })).rejects.toMatchObject({
      code: 'ZBUS_ERR_BAD_REQUEST',
      message: expect.stringContaining('topic_retention_messages must be an integer from 0 to'),
    });
  });

  it('produce resolves with offset, durability and server time', async () => {
    await client.declareTopic('mc-produce');
    const before = Date.now();
    const r1 = await client.produce({ topic: 'mc-produce', body: 'hello' });
    const r2 = await client.produce({ topic: 'mc-produce', body: { n: 2 }, tag: 'a.b', id: 'my-id-2' });
    expect(r1).toMatchObject({ topic: 'mc-produce', durability: 'fsync' });
    expect(r1!.offset).toBeTypeOf('number');
    expect(r2!.offset).toBe(r1!.offset! + 1);
    expect(r2!.id).toBe('my-id-2');
    expect(r1!.serverTime).toBeGreaterThanOrEqual(before - 1_000);
  });

  it('produce to a missing topic rejects with ZBUS_ERR_NOT_FOUND and the broker text', async () => {
    // The broker sends error texts without a content type, as 0.11 does; the message is read all the same.
    const err = await client.produce({ topic: 'mc-missing-topic', body: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZbusError);
    expect(err).toMatchObject({
      code: 'ZBUS_ERR_NOT_FOUND',
      status: 404,
      message: '404: Topic(mc-missing-topic) Not Found',
    });
  });

  it('consume returns the next message restored (id, url, method), or undefined on timeout', async () => {
    await client.declare('mc-consume', { group: 'g' });
    const m = new Message({ method: 'POST', url: '/orders/42?x=1' });
    m.set('topic', 'mc-consume');
    m.set('x-custom', 'yes');
    m.setBody('payload ✓');
    const r = await client.produce(m);
    const got = await client.consume('mc-consume', { group: 'g', timeout: 2_000 });
    expect(got).toBeDefined();
    expect(got!.id).toBe(r!.id);
    expect(got!.url).toBe('/orders/42?x=1');
    expect(got!.method).toBe('POST');
    expect(got!.status).toBeUndefined();
    expect(got!.bodyText()).toBe('payload ✓');
    expect(got!.get('x-custom')).toBe('yes');
    expect(got!.offset).toBe(r!.offset);
    expect(got!.consumeGroup).toBe('g');
    expect(await client.consume('mc-consume', { group: 'g', timeout: 200 })).toBeUndefined();
  });

  it('consume by offset reads one stored message', async () => {
    await client.declareTopic('mc-offset');
    const a = await client.produce({ topic: 'mc-offset', body: 'a' });
    await client.produce({ topic: 'mc-offset', body: 'b' });
    const got = await client.consume('mc-offset', { offset: a!.offset! });
    expect(got!.bodyText()).toBe('a');
    await expect(client.consume('mc-offset', { offset: 999_999 })).rejects.toMatchObject({
      code: 'ZBUS_ERR_NOT_FOUND',
    });
  });

  it('consume of a missing group rejects with ZBUS_ERR_NOT_FOUND', async () => {
    await client.declareTopic('mc-nogroup');
    await expect(client.consume('mc-nogroup', { group: 'nope', timeout: 500 })).rejects.toMatchObject({
      code: 'ZBUS_ERR_NOT_FOUND',
    });
  });

  it('unconsume releases a waiting consume; 404 for a missing group', async () => {
    await client.declare('mc-unconsume', { group: 'g' });
    await client.unconsume('mc-unconsume', 'g');
    await expect(client.unconsume('mc-unconsume', 'missing')).rejects.toMatchObject({
      code: 'ZBUS_ERR_NOT_FOUND',
    });
  });

  it('ack, nack (with delay) and touch work on an ack-required group', async () => {
    await client.declare('mc-ack', { group: { name: 'g', mask: Mask.AckRequired, ackTimeout: 60_000 } });
    await client.produce({ topic: 'mc-ack', body: 'one' });
    const first = await client.consume('mc-ack', { group: 'g', timeout: 2_000 });
    expect(first!.retry).toBeUndefined();
    await client.touch('mc-ack', 'g', first!.offset!);
    await client.nack('mc-ack', 'g', first!.offset!, { delay: 50 });
    const again = await client.consume('mc-ack', { group: 'g', timeout: 3_000 });
    expect(again!.bodyText()).toBe('one');
    expect(again!.retry).toBe(1);
    await client.ack('mc-ack', 'g', again!.offset!);
    expect(await client.consume('mc-ack', { group: 'g', timeout: 300 })).toBeUndefined();
    const info = await client.queryGroup('mc-ack', 'g');
    expect(info.messageCount).toBe(0);
  });

  it('query answers ServerInfo, TopicInfo and ConsumeGroupInfo', async () => {
    await client.declare('mc-query', { group: 'g' });
    await client.produce({ topic: 'mc-query', body: '1' });
    const server = await client.queryServer();
    expect(server.topicTable['mc-query']).toBeDefined();
    const topic = await client.queryTopic('mc-query');
    expect(topic).toMatchObject({ topicName: 'mc-query', messageDepth: 1 });
    expect(topic.consumeGroupList.map((g) => g.groupName)).toContain('g');
    const group = await client.queryGroup('mc-query', 'g');
    expect(group).toMatchObject({ topicName: 'mc-query', groupName: 'g' });
    await expect(client.queryTopic('mc-query-none')).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND' });
  });

  it('server and tracker describe the broker', async () => {
    const server = await client.server();
    expect(server.serverAddress.address).toBe(broker.address);
    const tracker = await client.tracker();
    expect(tracker.serverTable).toBeTypeOf('object');
  });

  it('empty removes messages; remove deletes a group, then the topic', async () => {
    await client.declare('mc-remove', { group: 'g' });
    await client.produce({ topic: 'mc-remove', body: '1' });
    await client.empty('mc-remove');
    expect(await client.consume('mc-remove', { group: 'g', timeout: 200 })).toBeUndefined();
    await client.remove('mc-remove', 'g');
    await expect(client.queryGroup('mc-remove', 'g')).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND' });
    await client.remove('mc-remove');
    await expect(client.queryTopic('mc-remove')).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND' });
  });

  it('heartbeat is sent without a reply and the connection stays usable; ping answers', async () => {
    client.heartbeat();
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    await expect(client.server()).resolves.toBeDefined();
  });

  it('route delivers the answer to a call another session is waiting for, as a response', async () => {
    const other = new MqClient(broker.address);
    await other.connect();
    try {
      // The broker routes only answers to calls still waiting on an RPC topic (docs/security.md).
      await client.declareTopic('mc-route', Mask.Rpc);
      const delivered = client.consume('mc-route', { timeout: 5_000 });
      for (let i = 0; i < 200 && (await client.queryTopic('mc-route')).consumerCount === 0; i++);
      const call = other.invoke(
        new Message({ headers: { cmd: 'produce', topic: 'mc-route', ack: 'false' }, body: 'who am i' }),
      );
      const request = (await delivered)!;
      const session = request.sender!;
      expect(session).toBeTruthy();
      const reply = new Message({
        status: 201,
        headers: { id: request.id!, topic: 'mc-route', 'x-k': 'v' },
        body: 'hi',
      });
      client.route(reply, session);
      const got = await call;
      expect(got.status).toBe(201);
      expect(got.bodyText()).toBe('hi');
      expect(got.get('x-k')).toBe('v');
    } finally {
      await other.close();
    }
  });
});

describe('MqAdmin', () => {
  it('declares, queries, empties and removes through a broker', async () => {
    const b = new Broker(broker.address);
    const admin = new MqAdmin(b, { timeout: scaled(3_000) });
    try {
      expect(await admin.declareTopic('adm-t', Mask.Memory)).toMatchObject({ topicName: 'adm-t' });
      expect(await admin.declareGroup('adm-t', { name: 'g', filter: 'x.*' })).toMatchObject({
        groupName: 'g',
      });
      expect((await admin.queryServer()).topicTable['adm-t']).toBeDefined();
      expect(await admin.queryTopic('adm-t')).toMatchObject({ topicName: 'adm-t' });
      expect(await admin.queryGroup('adm-t', 'g')).toMatchObject({ filter: 'x.*' });
      expect(await admin.query('adm-t', 'g')).toMatchObject({ groupName: 'g' });
      await admin.empty('adm-t');
      await admin.removeGroup('adm-t', 'g');
      await admin.removeTopic('adm-t');
      await expect(admin.queryTopic('adm-t')).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND' });
      expect((await admin.server()).serverAddress.address).toBe(broker.address);
      expect(await admin.tracker()).toHaveProperty('serverTable');
    } finally {
      await admin.close();
      await b.close();
    }
  });
});
