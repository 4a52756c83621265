// Run by connection.test.ts as `node --expose-gc --initial-old-space-size=512` on the built package: prints how
// much the old generation grew while 20,000 requests answered at once went by, after a burst of 30,000
// requests in flight across scavenges (the old space large enough that no mark-compact runs meanwhile).
import { GCProfiler } from 'node:v8';
import { encodeMessage, Message } from '@zbus/protocol';
import { MqClient } from '../dist/index.js';

let transport;
const client = new MqClient('h:1', {
  transport: async ({ handlers }) => {
    transport = { handlers, send: () => true, close() {} };
    return transport;
  },
});
await client.connect();
const answer = (req) =>
  transport.handlers.data(encodeMessage(new Message({ status: 200, headers: { id: req.headers.id } })));
const ping = () => new Message({ headers: { cmd: 'ping' } });
const minorGc = () => globalThis.gc({ type: 'minor' });

const burst = Array.from({ length: 30_000 }, ping);
const replies = burst.map((msg) => client.invoke(msg));
for (let i = 0; i < 4; i++) minorGc();
for (const msg of burst) answer(msg);
await Promise.all(replies);
burst.length = 0;
replies.length = 0;

const profiler = new GCProfiler();
profiler.start();
for (let i = 1; i <= 20_000; i++) {
  const msg = ping();
  const reply = client.invoke(msg);
  answer(msg);
  await reply;
  if (i % 500 === 0) minorGc();
}
const gcs = profiler.stop().statistics;
const oldSpace = (at) => at.heapSpaceStatistics.find((s) => s.spaceName === 'old_space').spaceUsedSize;
process.stdout.write(String(oldSpace(gcs.at(-1).afterGC) - oldSpace(gcs[0].beforeGC)));
await client.close();
