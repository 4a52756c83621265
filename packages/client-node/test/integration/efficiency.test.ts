// Work per publish, counted rather than timed (the broker's own counts are in
// packages/server/test/broker/efficiency.test.ts): a change that brings back a head string or a promise per
// publish fails here rather than in the peers benchmark.
import { createHook } from 'node:async_hooks';
import { type RunningBroker, startBroker } from '@zbus/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MqClient, Producer } from '../../src/index.js';

let server: RunningBroker;
let client: MqClient;

beforeAll(async () => {
  server = await startBroker({ fsync: 'interval=100' });
  client = new MqClient(server.address, { heartbeatInterval: 0 });
  await client.connect();
  await client.declareTopic('eff');
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

afterEach(() => {
  vi.restoreAllMocks();
});

const N = 200;

describe('efficiency of a publish', () => {
  it('encodes each head straight into the write batch, building no head string', async () => {
    const producer = new Producer(client);
    await producer.publish({ topic: 'eff', body: 'warm-up' });
    const write = vi.spyOn(Buffer.prototype, 'write');
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => producer.publish({ topic: 'eff', body: `m${i}` })),
    );
    expect(new Set(results.map((r) => r.offset)).size).toBe(N);
    // A head built as a string is written into the batch with Buffer#write; writeHead needs none. Only the ids the
    // Producer made are written with it (they need no check of each character).
    const ids = new Set(results.map((r) => r.id));
    expect(write.mock.calls.filter(([text]) => !ids.has(text as string))).toEqual([]);
  });

  it('makes one promise per acked publish given no options: its request, which the connection settles', async () => {
    const producer = new Producer(client);
    await producer.publish({ topic: 'eff', body: 'warm-up' });
    let promises = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'PROMISE') promises++;
      },
    });
    hook.enable();
    const all = Promise.all(
      Array.from({ length: N }, (_, i) => producer.publish({ topic: 'eff', body: `m${i}` })),
    );
    await all;
    hook.disable();
    // One is the request's; Promise.all makes the other per element. The core's async publish awaiting its
    // request makes 4 per publish (under a promise hook an await makes two), a `then` per layer several more.
    expect(promises).toBeLessThanOrEqual(2 * N + 16);
  });
});
