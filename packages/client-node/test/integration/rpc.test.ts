// RPC over the real broker: a service started with ServiceBootstrap, called with RpcInvoker, ClientBootstrap,
// plain HTTP (GET /MyRpc/math/plus/1/2) and a raw 0.11-style request.
import { msgpackCodec } from '@zbus/rpc/msgpack';
import { RawClient, type RunningBroker, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  Broker,
  ClientBootstrap,
  HttpClient,
  Mask,
  Message,
  MqClient,
  RpcError,
  RpcInvoker,
  ServiceBootstrap,
  ZbusError,
} from '../../src/index.js';

interface MathApi {
  plus(a: number, b: number): number;
  echo(s: string): string;
  fail(message: string): never;
  slow(ms: number): Promise<string>;
  bytes(b: Uint8Array): Uint8Array;
  whoami(): string;
}

class MathService {
  calls = 0;
  plus(a: number, b: number): number {
    this.calls++;
    return a + b;
  }
  echo(s: string): string {
    return s;
  }
  fail(message: string): never {
    const e = new RangeError(message) as RangeError & { code: string };
    e.code = 'E_RANGE';
    throw e;
  }
  async slow(ms: number): Promise<string> {
    await new Promise((r) => setTimeout(r, ms));
    return 'late';
  }
  bytes(b: Uint8Array): Uint8Array {
    return b;
  }
}

let server: RunningBroker;
let service: ServiceBootstrap;
let client: MqClient;
const impl = new MathService();

beforeAll(async () => {
  server = await startBroker();
  service = await new ServiceBootstrap()
    .codec(msgpackCodec)
    .serviceName('MyRpc')
    .serviceAddress(server.address)
    .connectionCount(2)
    .addModule('math', impl)
    .addModule('', {
      hello: (name: string) => `hello ${name}`,
      page: () =>
        new Message({
          status: 200,
          headers: { 'content-type': 'application/octet-stream' },
          body: new Uint8Array([0, 1, 255]),
        }),
    })
    .start();
  client = new MqClient(server.address);
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await service?.close();
  await server?.stop();
});

describe('RPC through the broker', () => {
  it('calls a method and gets the result', async () => {
    const rpc = new RpcInvoker(client, { topic: 'MyRpc', module: 'math' });
    expect(await rpc.invoke('plus', 1, 2)).toBe(3);
    expect(await rpc.invoke({ module: 'math', method: 'plus', params: [40, 2] })).toBe(42);
    expect(await new RpcInvoker(client, { topic: 'MyRpc' }).invoke('hello', 'zbus')).toBe('hello zbus');
  });

  it('calls through a typed proxy, 32 callers at once', async () => {
    const math = new RpcInvoker(client, { topic: 'MyRpc' }).proxy<MathApi>('math');
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => math.plus(i, i)));
    expect(results).toEqual(Array.from({ length: 32 }, (_, i) => 2 * i));
  });

  it('turns a thrown error into RpcError (600) with the remote message', async () => {
    const math = new RpcInvoker(client, { topic: 'MyRpc' }).proxy<MathApi>('math');
    const err = await math.fail('out of range: 中文').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toBeInstanceOf(ZbusError);
    expect(err).toMatchObject({ code: 'ZBUS_ERR_RPC', status: 600, message: 'out of range: 中文' });
    expect((err as RpcError).remote).toMatchObject({ name: 'RangeError', code: 'E_RANGE' });
  });

  it('reports a missing method as RpcError naming it', async () => {
    const rpc = new RpcInvoker(client, { topic: 'MyRpc', module: 'math' });
    await expect(rpc.invoke('minus', 1, 2)).rejects.toMatchObject({
      code: 'ZBUS_ERR_RPC',
      message: 'math:minus Not Found',
    });
  });

  it('times out a slow call with ZBUS_ERR_TIMEOUT, and the service keeps working', async () => {
    const rpc = new RpcInvoker(client, { topic: 'MyRpc', module: 'math' });
    // (the reply comes after 400 ms: a rejection with ZBUS_ERR_TIMEOUT is the 100 ms timeout's)
    await expect(rpc.invoke({ method: 'slow', params: [400], timeout: 100 })).rejects.toMatchObject({
      code: 'ZBUS_ERR_TIMEOUT',
    });
    expect(await rpc.invoke('plus', 2, 2)).toBe(4);
  });

  // "At once": with a call timeout longer than the test's, waiting for the timeout would fail the test.
  it('fails at once with ZBUS_ERR_NO_RESPONDERS when no service consumes the topic', async () => {
    await client.declareTopic('NobodyRpc', Mask.Memory | Mask.Rpc);
    const rpc = new RpcInvoker(client, { topic: 'NobodyRpc', timeout: 120_000 });
    await expect(rpc.invoke('anything')).rejects.toMatchObject({
      code: 'ZBUS_ERR_NO_RESPONDERS',
      status: 503,
    });
  });

  it('fails at once with ZBUS_ERR_NOT_FOUND when the service was never started (no topic)', async () => {
    const rpc = new RpcInvoker(client, { topic: 'NeverStartedRpc', timeout: 120_000 });
    await expect(rpc.invoke('anything')).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND', status: 404 });
    const boot = new ClientBootstrap().serviceName('NeverStartedRpc').serviceAddress(server.address);
    onTestFinished(() => boot.close());
    await expect(boot.proxy('m').plus?.(1, 2)).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND' });
  });

  it('carries unicode and binary payloads (JSON, msgpack, raw bytes)', async () => {
    const text = 'unicode ✓ 中文 Ελληνικά 🎉 \u0000 end';
    const json = new RpcInvoker(client, { topic: 'MyRpc', module: 'math' });
    expect(await json.invoke('echo', text)).toBe(text);
    const mp = new RpcInvoker(client, { topic: 'MyRpc', module: 'math', codec: msgpackCodec });
    const bytes = new Uint8Array(256).map((_, i) => i);
    expect(new Uint8Array(await mp.invoke<Uint8Array>('bytes', bytes))).toEqual(bytes);
    expect(await mp.invoke('echo', text)).toBe(text);
    await expect(mp.invoke('fail', 'mp error ✓')).rejects.toMatchObject({
      code: 'ZBUS_ERR_RPC',
      message: 'mp error ✓',
    });
    const raw = await json.invokeRaw({ module: '', method: 'page' });
    expect(raw.contentType).toBe('application/octet-stream');
    expect(new Uint8Array(raw.body)).toEqual(new Uint8Array([0, 1, 255]));
  });

  it('answers GET /MyRpc/math/plus/1/2 from plain HTTP (fetch)', async () => {
    const res = await fetch(`http://${server.address}/MyRpc/math/plus/1/2`);
    expect(res.status).toBe(200);
    expect(await res.json()).toBe(3);
    const def = await fetch(`http://${server.address}/MyRpc//hello/web`);
    expect(await def.json()).toBe('hello web');
    const err = await fetch(`http://${server.address}/MyRpc/math/fail/boom`);
    expect(err.status).toBe(600);
    expect(await err.json()).toMatchObject({ message: 'boom', name: 'RangeError' });
  });

  it('works through HttpClient (RPC by URL and RpcInvoker over HTTP)', async () => {
    const http = new HttpClient(server.address);
    try {
      expect(await http.rpc('MyRpc', 'math', 'plus', 5, 6)).toBe(11);
      expect(await http.rpc('MyRpc', 'math', 'echo', 'a b/c ✓')).toBe('a b/c ✓');
      const rpc = new RpcInvoker(http, { topic: 'MyRpc', module: 'math' });
      expect(await rpc.invoke('plus', 7, 8)).toBe(15);
      await expect(rpc.invoke('fail', 'over http')).rejects.toMatchObject({
        code: 'ZBUS_ERR_RPC',
        message: 'over http',
      });
      // Error texts come without a content type (as from 0.11) and are still the error's message.
      await expect(http.produce('NoSuchTopic', 'x')).rejects.toMatchObject({
        code: 'ZBUS_ERR_NOT_FOUND',
        message: '404: Topic(NoSuchTopic) Not Found',
      });
    } finally {
      await http.close();
    }
  });

  it('answers a raw 0.11-style request on a plain socket', async () => {
    const raw = await RawClient.connect(server.port);
    try {
      const reply = await raw.request({
        headers: {
          cmd: 'produce',
          topic: 'MyRpc',
          ack: 'false',
          id: 'r-42',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ module: 'math', method: 'plus', params: [1, 2] }),
      });
      expect(reply.status).toBe(200);
      expect(reply.id).toBe('r-42');
      expect(reply.contentType).toMatch(/application\/json/);
      expect(reply.bodyText()).toBe('3');
    } finally {
      raw.close();
    }
  });

  it('a service is visible to callers as soon as start() resolves', async () => {
    for (let i = 0; i < 5; i++) {
      const name = `EagerRpc${i}`;
      const s = await new ServiceBootstrap()
        .serviceName(name)
        .serviceAddress(server.address)
        .addModule('', { n: () => i })
        .start();
      try {
        expect(await new RpcInvoker(client, { topic: name }).invoke('n')).toBe(i);
      } finally {
        await s.close();
      }
    }
  });

  it('ClientBootstrap gives proxies over TCP', async () => {
    const cb = new ClientBootstrap().serviceName('MyRpc').serviceAddress(server.address).timeout(3_000);
    try {
      const math = cb.proxy<MathApi>('math');
      expect(await math.plus(100, 1)).toBe(101);
    } finally {
      await cb.close();
    }
  });

  it('a service with several connections serves callers on other brokers handles', async () => {
    const broker = new Broker(server.address);
    try {
      const rpc = new RpcInvoker(broker.client(), { topic: 'MyRpc', module: 'math' });
      const before = impl.calls;
      await Promise.all(Array.from({ length: 50 }, (_, i) => rpc.invoke('plus', i, 1)));
      expect(impl.calls - before).toBe(50);
      const info = await broker.client().queryTopic('MyRpc');
      expect(info.consumerCount).toBe(2);
    } finally {
      await broker.close();
    }
  });

  it('a service acks nothing after its route, but acks each delivery of an ack-required group', async () => {
    // A fresh broker, so that its ack counter holds only this test's acks.
    const own = await startBroker();
    onTestFinished(async () => {
      await own.stop();
    });
    const caller = new MqClient(own.address, { reconnect: false });
    onTestFinished(() => caller.close());
    const acks = async () => {
      const text = await (await fetch(`http://${own.address}/metrics`)).text();
      return Number(/^zbus_acks_total (\d+)$/m.exec(text)?.[1]);
    };
    const serve = async (topic: string) => {
      // Window 2: twenty calls go through only if every delivery's credit comes back.
      const s = await new ServiceBootstrap()
        .serviceName(topic)
        .serviceAddress(own.address)
        .window(2)
        .addModule('', { echo: (x: number) => x })
        .start();
      const rpc = new RpcInvoker(caller, { topic, timeout: 10_000 });
      for (let i = 0; i < 20; i++) expect(await rpc.invoke('echo', i)).toBe(i);
      await s.close(); // pings its connection after its last ack
    };
    // On an RPC topic the route settles the delivery (the broker gives the credit back on it).
    await serve('NoAckRpc');
    expect(await acks()).toBe(0);
    // An ack-required group's store waits for the ack itself, route or not.
    await caller.declare('AckedRpc', {
      topicMask: Mask.Memory | Mask.Rpc,
      group: { name: 'AckedRpc', mask: Mask.AckRequired },
    });
    await serve('AckedRpc');
    expect(await acks()).toBe(20);
  });
});
