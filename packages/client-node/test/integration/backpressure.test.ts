// Backpressure by bytes against a real broker that stops reading (SIGSTOP: its socket buffers fill, then ours):
// a producer waits instead of growing the client's memory, and every message arrives once the broker reads again
// (issue 17).
import { setImmediate as nextTurn } from 'node:timers/promises';
import { scaled, startBroker } from '@zbus/testkit';
import { expect, it, onTestFinished } from 'vitest';
import { MqClient, Producer } from '../../src/index.js';

const SLOW120 = scaled(120_000);

const MiB = 1024 * 1024;

it(
  'a producer of 1 MiB messages waits for a broker that stopped reading; its memory stays bounded',
  async () => {
    const broker = await startBroker({ fsync: 'never' });
    onTestFinished(async () => {
      broker.process.kill('SIGCONT');
      await broker.stop();
    });
    const client = new MqClient(broker.address, {
      highWaterMark: MiB,
      maxQueuedBytes: 4 * MiB,
      heartbeatInterval: 0,
      timeout: 120_000,
    });
    onTestFinished(() => client.close());
    await client.declareTopic('bp');
    const producer = new Producer(client, { maxInFlightBytes: 4 * MiB });
    const blocked = new Promise<void>((resolve) => client.on('backpressure', (b) => b && resolve()));

    broker.process.kill('SIGSTOP');
    const TOTAL = 90; // 90 MiB: under the broker's default backlog limit of the topic
    const baseline = process.memoryUsage().arrayBuffers;
    let published = 0;
    const loop = (async () => {
      for (let i = 0; i < TOTAL; i++) {
        // A fresh buffer each time, as an application's messages are.
        await producer.publish({ topic: 'bp', body: new Uint8Array(MiB).fill(i) }, { ack: false });
        published++;
      }
    })();

    await Promise.race([blocked, loop]); // (the loop ending first is the failure this test is for)
    await nextTurn(); // the loop runs into the wait
    const stuckAt = published;
    expect(stuckAt).toBeLessThan(TOTAL);
    expect(client.stats().blocked).toBe(true);
    expect(producer.inFlightBytes).toBeLessThanOrEqual(4 * MiB + MiB);
    expect(client.stats().queuedBytes).toBeLessThanOrEqual(4 * MiB + MiB);
    // What the loop made so far is all the memory there is: the kernel's and Node's socket buffers hold what was
    // written, nothing queues up behind them. (Without backpressure all 90 MiB were buffered by now.)
    expect(process.memoryUsage().arrayBuffers - baseline).toBeLessThan((stuckAt + 8) * MiB);
    await nextTurn();
    expect(published).toBe(stuckAt);

    broker.process.kill('SIGCONT');
    await loop;
    expect(published).toBe(TOTAL);
    // Fire-and-forget appends finish in the background; an acked one after them finishes after them.
    const last = await producer.publish({ topic: 'bp', body: 'last' });
    expect(last.offset).toBe(TOTAL);
    expect((await client.queryTopic('bp')).messageDepth).toBe(TOTAL + 1);
  },
  SLOW120,
);
