// A slow reader must not make the broker buffer without bound: a consumer with a big window that never reads
// gets pushes only while its socket is below writeHighWaterMark; the rest waits in the store. Other clients
// carry on as usual, and the slow reader gets everything once it reads again.
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeMessage, Message, MessageDecoder } from '@zbus/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { declare, startTestBroker, untilConsumers } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Off-heap bytes (message bodies live there) after a full GC, once pending callbacks have run. */
async function external(): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return process.memoryUsage().external;
}

const MiB = 1024 * 1024;
const COUNT = 128;

describe('backpressure', () => {
  it('keeps memory bounded for a consumer that never reads, and other clients unaffected', async () => {
    const b = await startTestBroker({ writeHighWaterMark: MiB });
    const admin = await b.raw();
    await declare(admin, 'Big');
    await declare(admin, 'Big', { consume_group: 'slow' });
    await declare(admin, 'Big', { consume_group: 'fast' });

    // The slow reader asks for everything, then never reads its socket.
    const slow: Socket = connect(b.port, '127.0.0.1');
    onTestFinished(() => {
      slow.destroy();
    });
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.pause();
    const consume = {
      cmd: 'consume',
      topic: 'Big',
      consume_group: 'slow',
      id: 's',
      consume_window: String(COUNT),
    };
    slow.write(encodeMessage(new Message({ headers: consume })));
    await untilConsumers(admin, 'Big', 'slow', 1);

    // A fast consumer of another group drains as messages come.
    const fast = await b.raw();
    fast.send({
      headers: {
        cmd: 'consume',
        topic: 'Big',
        consume_group: 'fast',
        id: 'f',
        consume_window: String(COUNT),
      },
    });
    await untilConsumers(admin, 'Big', 'fast', 1);
    const fastIds: string[] = [];
    const drained = (async () => {
      while (fastIds.length < COUNT)
        fastIds.push((await fast.next((m) => m.headers.id === 'f')).headers.origin_id!);
    })();

    const before = await external();
    const body = new Uint8Array(MiB).fill(0x61);
    for (let i = 0; i < COUNT; i++) {
      const r = await admin.request({ headers: { cmd: 'produce', topic: 'Big', id: `b${i}` }, body });
      expect(r.status).toBe(200);
    }
    await drained;
    expect(fastIds).toEqual(Array.from({ length: COUNT }, (_, i) => `b${i}`));
    expect((await admin.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');

    // 128 MiB went to the slow reader's group; without backpressure all of it would sit in its write queue.
    const grown = (await external()) - before;
    expect(grown).toBeLessThan(64 * MiB);
    const slowGroup = (
      await admin.request({ headers: { cmd: 'query', topic: 'Big', consume_group: 'slow' } })
    ).json<{
      messageCount: number;
      position: number;
    }>();
    // The broker took only what fits the high-water mark and the socket buffers; the rest waits in the store.
    expect(slowGroup.position).toBeLessThan(COUNT / 2);
    expect(slowGroup.messageCount).toBe(COUNT - slowGroup.position);

    // Reading again, the slow consumer gets every message, in order.
    const got: string[] = [];
    const decoder = new MessageDecoder((m: Message) => {
      got.push(m.headers.origin_id!);
    });
    const all = new Promise<void>((resolve) => {
      slow.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        if (got.length >= COUNT) resolve();
      });
    });
    slow.resume();
    await all;
    expect(got).toEqual(Array.from({ length: COUNT }, (_, i) => `b${i}`));
  });
});
