// AbortSignal on publish, invoke, consume, start and close, and `await using` on clients, Broker and Consumer
// (issue 19), against the real broker.
import { type RunningBroker, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  Broker,
  type ConsumedMessage,
  Consumer,
  MqClient,
  Producer,
  RpcInvoker,
  ServiceBootstrap,
} from '../../src/index.js';

let server: RunningBroker;
let broker: Broker;

beforeAll(async () => {
  server = await startBroker({ fsync: 'never' });
  broker = new Broker(server.address);
  await broker.client().declareTopic('a-topic');
});

afterAll(async () => {
  await broker?.close();
  await server?.stop();
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Freezes the broker (SIGSTOP) for the rest of the test: requests wait, nothing is answered. */
function freeze(b: RunningBroker): void {
  b.process.kill('SIGSTOP');
  onTestFinished(() => {
    b.process.kill('SIGCONT');
  });
}

describe('AbortSignal', () => {
  it('aborts a publish waiting for its ack', async () => {
    const own = await startBroker({ fsync: 'never' });
    onTestFinished(async () => {
      await own.stop();
    });
    const client = new MqClient(own.address);
    onTestFinished(() => client.close({ signal: AbortSignal.abort() }));
    await client.declareTopic('t');
    const producer = new Producer(client);
    await expect(
      producer.publish({ topic: 't', body: 'x' }, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    freeze(own);
    const ac = new AbortController();
    const waiting = producer.publish({ topic: 't', body: 'y' }, { signal: ac.signal });
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    expect(producer.inFlight).toBe(0);
    expect(client.pendingCount).toBe(0);
  });

  it('aborts an RPC call that the service has not answered', async () => {
    const release = deferred();
    const service = await new ServiceBootstrap()
      .serviceName('AbortRpc')
      .serviceAddress(server.address)
      .addModule('', { slow: () => release.promise.then(() => 'late') })
      .start();
    onTestFinished(async () => {
      release.resolve();
      await service.close();
    });
    const rpc = new RpcInvoker(broker, { topic: 'AbortRpc' });
    const ac = new AbortController();
    const call = rpc.invoke({ method: 'slow', signal: ac.signal });
    ac.abort(new Error('user went away'));
    await expect(call).rejects.toThrow('user went away');
    const viaProxy = rpc.proxy('', { signal: AbortSignal.abort() }).slow?.();
    await expect(viaProxy).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('aborts a one-shot consume that waits for a message', async () => {
    const ac = new AbortController();
    const waiting = broker
      .client()
      .consume('a-topic', { group: 'nobody-publishes', timeout: 60_000, signal: ac.signal });
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('aborts Consumer.start() against a broker that does not answer, and closes the consumer', async () => {
    const own = await startBroker({ fsync: 'never' });
    onTestFinished(async () => {
      await own.stop();
    });
    const b = new Broker(own.address, { readyTimeout: 0 });
    onTestFinished(() => b.close({ signal: AbortSignal.abort() }));
    await b.client().connect();
    freeze(own);
    const c = new Consumer(b, { topic: 'frozen', handler: () => {} });
    const ac = new AbortController();
    const starting = c.start({ signal: ac.signal });
    ac.abort();
    await expect(starting).rejects.toMatchObject({ name: 'AbortError' });
    expect(['closing', 'closed']).toContain(c.state);
  });

  it("ends a consumer and its iteration when the consumer's signal aborts", async () => {
    const ac = new AbortController();
    const c = new Consumer(broker, { topic: 'a-topic', group: 'iter', signal: ac.signal });
    const got: string[] = [];
    const first = deferred();
    const loop = (async () => {
      for await (const m of c) {
        got.push(m.bodyText());
        first.resolve();
      }
    })();
    await new Producer(broker).publish({ topic: 'a-topic', body: 'one' });
    await first.promise;
    ac.abort();
    await loop;
    expect(got).toEqual(['one']);
    expect(c.state).toBe('closed');
  });

  it('close({ signal }) stops waiting for a running handler', async () => {
    const stuck = deferred();
    const running = deferred();
    const c = new Consumer(broker, {
      topic: 'a-topic',
      group: 'stuck',
      closeTimeout: 60_000,
      handler: async (_m: ConsumedMessage) => {
        running.resolve();
        await stuck.promise;
      },
    });
    onTestFinished(() => stuck.resolve());
    await c.start();
    await new Producer(broker).publish({ topic: 'a-topic', body: 'x' });
    await running.promise;
    const ac = new AbortController();
    const closing = c.close({ signal: ac.signal });
    ac.abort();
    await closing;
    expect(c.state).toBe('closed');
    expect(c.inFlight).toBe(1); // the handler still runs; close did not wait for it
  });
});

describe('await using', () => {
  it('closes an MqClient, a Broker and a Consumer at the end of the scope', async () => {
    let client: MqClient | undefined;
    let b: Broker | undefined;
    let consumer: Consumer | undefined;
    {
      await using c = new MqClient(server.address);
      await using bb = new Broker(server.address);
      await using cons = new Consumer(bb, { topic: 'a-topic', group: 'scoped', handler: () => {} });
      await c.ping();
      await cons.start();
      client = c;
      b = bb;
      consumer = cons;
    }
    expect(client?.state).toBe('closed');
    expect(consumer?.state).toBe('closed');
    expect(b?.stats().connections).toEqual([]);
  });
});
