// Fan-out (multicast): two groups, "billing" and "audit", on one topic. Each group gets every message;
// consumers inside one group would share that group's messages instead.
//
//   node examples/fanout.mjs                (broker at ZBUS_SERVER, default 127.0.0.1:15555)
import { Broker, Consumer, MqAdmin, Producer } from '@zbus/client';

const address = process.env.ZBUS_SERVER ?? '127.0.0.1:15555';
const topic = process.env.TOPIC ?? 'examples.orders';
const ORDERS = 5;

const broker = new Broker(address);
const admin = new MqAdmin(broker);
await admin.remove(topic).catch(() => {});
// Declare both groups before publishing: a group reads what is published after it exists (or from where
// its declare says: startOffset, startTime, startCopy).
await admin.declare(topic, { group: 'billing' });
await admin.declare(topic, { group: 'audit' });

const received = { billing: [], audit: [] };
let finish;
const allIn = new Promise((resolve) => {
  finish = resolve;
});
const consumers = Object.keys(received).map(
  (group) =>
    new Consumer(broker, {
      topic,
      group,
      handler: (msg) => {
        received[group].push(msg.json().order);
        console.log(`${group} got order ${msg.json().order}`);
        if (received.billing.length === ORDERS && received.audit.length === ORDERS) finish();
      },
    }),
);
await Promise.all(consumers.map((c) => c.start()));

const producer = new Producer(broker);
for (let order = 1; order <= ORDERS; order++) await producer.publish({ topic, body: { order } });

const timer = setTimeout(() => {
  console.error(`timed out: ${JSON.stringify(received)}`);
  process.exit(1);
}, 20_000);
await allIn;
clearTimeout(timer);
console.log(`billing got ${received.billing.length}, audit got ${received.audit.length}`);

await Promise.all(consumers.map((c) => c.close()));
await admin.remove(topic);
await broker.close();
