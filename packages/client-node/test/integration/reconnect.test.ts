// Broker restarts under live clients: consumers keep consuming, publishes in flight settle (never hang),
// services come back. Each test restarts its own broker (same port and data directory).
import { type RunningBroker, scaled, startBroker } from '@zbus/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Broker,
  Consumer,
  MqClient,
  type ProduceResult,
  Producer,
  RpcInvoker,
  ServiceBootstrap,
  ZbusError,
} from '../../src/index.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

/** Reconnect fast; requests time out, but not before a busy machine answers. */
const fast = { reconnectDelay: 50, reconnectMaxDelay: 300, timeout: scaled(3_000) };

async function broker(): Promise<RunningBroker> {
  const b = await startBroker();
  cleanup.push(() => b.stop());
  return b;
}

describe('reconnect after a broker restart', () => {
  it('a consumer keeps consuming (graceful restart)', async () => {
    const server = await broker();
    const b = new Broker(server.address, fast);
    cleanup.push(() => b.close());
    await b.client().declare('r-consume', { group: 'g' });
    const seen: string[] = [];
    const c = new Consumer(b, {
      topic: 'r-consume',
      group: 'g',
      handler: (m) => void seen.push(m.bodyText()),
    });
    cleanup.push(() => c.close());
    await c.start();
    const producer = new Producer(b);
    await producer.publish({ topic: 'r-consume', body: 'before' });
    await expect.poll(() => seen).toEqual(['before']);

    const reconnected = new Promise<void>((resolve) => b.client().on('connected', () => resolve()));
    await server.kill('SIGTERM');
    await server.restart();
    await reconnected;
    await expect.poll(() => b.client().connected).toBe(true);
    await producer.publish({ topic: 'r-consume', body: 'after' });
    await expect.poll(() => seen).toEqual(['before', 'after']);
  });

  it('a consumer keeps consuming (kill -9 and restart)', async () => {
    const server = await broker();
    const b = new Broker(server.address, fast);
    cleanup.push(() => b.close());
    await b.client().declare('r-kill', { group: 'g' });
    const seen: string[] = [];
    const c = new Consumer(b, { topic: 'r-kill', group: 'g', handler: (m) => void seen.push(m.bodyText()) });
    cleanup.push(() => c.close());
    await c.start();
    const producer = new Producer(b);
    await producer.publish({ topic: 'r-kill', body: 'before' });
    await expect.poll(() => seen).toEqual(['before']);
    await server.restart(); // SIGKILL, then the same port and data
    await expect.poll(() => b.client().connected).toBe(true);
    await producer.publish({ topic: 'r-kill', body: 'after' });
    await expect.poll(() => seen.includes('after')).toBe(true);
    // The broker may hand 'before' out again after a crash (its group position is not synced on every read).
    expect(seen.filter((s) => s === 'after')).toHaveLength(1);
    expect(seen.every((s) => s === 'before' || s === 'after')).toBe(true);
  });

  it("a producer's pending publishes fail or succeed, never hang", async () => {
    const server = await broker();
    const client = new MqClient(server.address, { ...fast, timeout: 2_000 });
    cleanup.push(() => client.close());
    await client.declareTopic('r-produce');
    const producer = new Producer(client);
    const pending: Promise<PromiseSettledResult<ProduceResult>>[] = [];
    const publish = (i: number) =>
      pending.push(
        producer.publish({ topic: 'r-produce', body: `m${i}` }).then(
          (value) => ({ status: 'fulfilled', value }) as const,
          (reason: unknown) => ({ status: 'rejected', reason }) as const,
        ),
      );
    for (let i = 0; i < 300; i++) publish(i);
    const killing = server.kill();
    for (let i = 300; i < 600; i++) publish(i);
    await killing;
    const settled = await Promise.race([
      Promise.all(pending),
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), scaled(8_000))),
    ]);
    expect(settled).not.toBe('hung');
    const results = settled as PromiseSettledResult<ProduceResult>[];
    const unexpected = results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as PromiseRejectedResult).reason as Error)
      .filter(
        (e) =>
          !(e instanceof ZbusError) || !['ZBUS_ERR_CONNECTION_CLOSED', 'ZBUS_ERR_TIMEOUT'].includes(e.code),
      )
      .map((e) => `${(e as ZbusError).code}: ${e.message}`);
    expect(unexpected).toEqual([]);
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    // after a restart the same producer works again
    await server.restart();
    await expect.poll(() => client.connected).toBe(true);
    const after = await producer.publish({ topic: 'r-produce', body: 'after' });
    expect(after.offset).toBeGreaterThanOrEqual(ok);
  });

  it('an RPC service comes back and re-declares its memory topic', async () => {
    const server = await broker();
    const service = await new ServiceBootstrap()
      .serviceName('RestartRpc')
      .serviceAddress(server.address)
      .addModule('', { ping: () => 'pong' })
      .start();
    cleanup.push(() => service.close());
    const client = new MqClient(server.address, fast);
    cleanup.push(() => client.close());
    const rpc = new RpcInvoker(client, { topic: 'RestartRpc', timeout: 2_000 });
    expect(await rpc.invoke('ping')).toBe('pong');
    await server.restart();
    await expect
      .poll(async () => rpc.invoke('ping').catch((e: ZbusError) => e.code), {
        timeout: scaled(15_000),
        interval: 200,
      })
      .toBe('pong');
  });
});
