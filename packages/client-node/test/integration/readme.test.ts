// The README examples, run against a real broker (addresses swapped for the test broker's).
import { type RunningBroker, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  Broker,
  ClientBootstrap,
  Consumer,
  HttpClient,
  Mask,
  MqAdmin,
  Producer,
  RpcInvoker,
  ServiceBootstrap,
} from '../../src/index.js';

let server: RunningBroker;
beforeAll(async () => {
  server = await startBroker();
});
afterAll(async () => {
  await server?.stop();
});

it('README: publish and consume', async () => {
  const broker = new Broker(server.address);
  const admin = new MqAdmin(broker);
  await admin.declare('orders', { group: { name: 'billing', mask: Mask.AckRequired } });
  const producer = new Producer(broker);
  const { offset, durability } = await producer.publish({ topic: 'orders', body: { id: 1, total: 9.5 } });
  expect([offset, durability]).toEqual([0, 'fsync']);
  const billed: number[] = [];
  const consumer = new Consumer(broker, {
    topic: 'orders',
    group: 'billing',
    window: 8,
    handler: async (msg) => {
      billed.push(msg.json<{ id: number }>().id);
    },
  });
  await consumer.start();
  await expect.poll(() => billed).toEqual([1]);
  await consumer.close();

  await admin.declare('orders', { group: 'audit' });
  await producer.publishBatch([
    { topic: 'orders', body: 'a' },
    { topic: 'orders', body: 'stop' },
  ]);
  const seen: string[] = [];
  for await (const msg of new Consumer(broker, {
    topic: 'orders',
    group: { name: 'audit', startOffset: 0 },
  })) {
    seen.push(msg.bodyText());
    if (msg.bodyText() === 'stop') break;
  }
  expect(seen.at(-1)).toBe('stop');
  await broker.close();
});

it('README: RPC and plain HTTP', async () => {
  class MathService {
    plus(a: number, b: number) {
      return a + b;
    }
  }
  const service = await new ServiceBootstrap()
    .serviceName('MyRpc')
    .serviceAddress(server.address)
    .connectionCount(2)
    .addModule('math', new MathService())
    .start();
  const client = new ClientBootstrap().serviceName('MyRpc').serviceAddress(server.address);
  const math = client.proxy<MathService>('math');
  expect(await math.plus(1, 2)).toBe(3);

  const res = await fetch(`http://${server.address}/MyRpc/math/plus/1/2`);
  expect(await res.text()).toBe('3');

  const broker = new Broker(server.address);
  expect(await new RpcInvoker(broker.client(), { topic: 'MyRpc', module: 'math' }).invoke('plus', 1, 2)).toBe(
    3,
  );

  const http = new HttpClient(`http://${server.address}`);
  await new MqAdmin(broker).declare('orders2', { group: 'billing' });
  await http.produce('orders2', { id: 2 });
  const msg = await http.consume('orders2', { group: 'billing', timeout: 1_000 });
  expect(msg?.json()).toEqual({ id: 2 });
  expect(await http.rpc('MyRpc', 'math', 'plus', 1, 2)).toBe(3);
  expect(await new RpcInvoker(http, { topic: 'MyRpc', module: 'math' }).invoke('plus', 3, 4)).toBe(7);
  await http.close();
  await broker.close();
  await client.close();
  await service.close();
});
