// A work queue: one producer, two workers sharing the group "workers". The group requires acks, so a job
// whose handler throws is redelivered (here: job 7 fails once) and every job is done exactly once.
//
//   node examples/work-queue.mjs            (broker at ZBUS_SERVER, default 127.0.0.1:15555)
import { Broker, Consumer, Mask, MqAdmin, Producer } from '@zbus/client';

const address = process.env.ZBUS_SERVER ?? '127.0.0.1:15555';
const topic = process.env.TOPIC ?? 'examples.jobs';
const JOBS = 10;

const broker = new Broker(address);
const admin = new MqAdmin(broker);
// Start from a clean topic so that the run is repeatable.
await admin.remove(topic).catch(() => {});
await admin.declare(topic, { group: { name: 'workers', mask: Mask.AckRequired, ackTimeout: 5_000 } });

const doneBy = new Map(); // job -> worker
let failedOnce = false;
let finish;
const allDone = new Promise((resolve) => {
  finish = resolve;
});

function worker(name) {
  return new Consumer(broker, {
    topic,
    group: 'workers',
    // ackMode 'auto' (the default): resolving acks the job, throwing nacks it and the broker redelivers it.
    handler: async (msg) => {
      const job = msg.json();
      if (job.n === 7 && !failedOnce) {
        failedOnce = true;
        console.log(`${name} failed job ${job.n}; it will be redelivered`);
        throw new Error('flaky job');
      }
      await new Promise((r) => setTimeout(r, 10)); // the work
      if (doneBy.has(job.n)) throw new Error(`job ${job.n} done twice`);
      doneBy.set(job.n, name);
      console.log(`${name} did job ${job.n}${msg.retry ? ` (delivery ${msg.retry + 1})` : ''}`);
      if (doneBy.size === JOBS) finish();
    },
    onError: (err) => {
      if (err.message !== 'flaky job') console.error(`${name}: ${err.message}`);
    },
  });
}

const workers = [worker('worker-1'), worker('worker-2')];
await Promise.all(workers.map((w) => w.start()));

const producer = new Producer(broker);
for (let n = 1; n <= JOBS; n++) await producer.publish({ topic, body: { n } });
console.log(`published ${JOBS} jobs`);

const timer = setTimeout(() => {
  console.error(`only ${doneBy.size} of ${JOBS} jobs done after 20 s`);
  process.exit(1);
}, 20_000);
await allDone;
clearTimeout(timer);

const counts = {};
for (const w of doneBy.values()) counts[w] = (counts[w] ?? 0) + 1;
console.log(`${JOBS} jobs done: ${JSON.stringify(counts)}`);

await Promise.all(workers.map((w) => w.close()));
await admin.remove(topic);
await broker.close();
