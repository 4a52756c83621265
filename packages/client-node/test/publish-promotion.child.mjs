// Run by promotion.test.ts as `node --expose-gc --initial-old-space-size=512` on the built package: prints how
// much the old generation grew while 20,000 publishes acked at once went by, after a burst of 30,000 publishes whose
// results were kept across scavenges (the old space large enough that no mark-compact runs meanwhile).
import { GCProfiler } from 'node:v8';
import { MqClient } from '@zbus/client-core';
import { encodeMessage, Message } from '@zbus/protocol';
import { Producer } from '../dist/index.js';

const sent = [];
let transport;
const client = new MqClient('h:1', {
  transport: async ({ handlers }) => {
    transport = { handlers, send: (msg) => sent.push(msg.headers.id) > 0, close() {} };
    return transport;
  },
});
await client.connect();
const ackAll = () => {
  for (const id of sent) {
    const ack = new Message({ status: 200, headers: { id, durable: 'interval', offset: '1' }, body: '1' });
    transport.handlers.data(encodeMessage(ack));
  }
  sent.length = 0;
};
const producer = new Producer(client, { maxInFlight: 100_000, maxInFlightBytes: Number.MAX_SAFE_INTEGER });
const minorGc = () => globalThis.gc({ type: 'minor' });
const first = producer.publish({ topic: 't', body: 'x' });
ackAll();
await first;

const burst = Array.from({ length: 30_000 }, () => producer.publish({ topic: 't', body: 'x' }));
for (let i = 0; i < 4; i++) minorGc();
ackAll();
await Promise.all(burst);
burst.length = 0;

const profiler = new GCProfiler();
profiler.start();
for (let i = 1; i <= 20_000; i++) {
  const published = producer.publish({ topic: 't', body: 'x' });
  ackAll();
  await published;
  if (i % 500 === 0) minorGc();
}
const gcs = profiler.stop().statistics;
const oldSpace = (at) => at.heapSpaceStatistics.find((s) => s.spaceName === 'old_space').spaceUsedSize;
process.stdout.write(String(oldSpace(gcs.at(-1).afterGC) - oldSpace(gcs[0].beforeGC)));
await client.close();
