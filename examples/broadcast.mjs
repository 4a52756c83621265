// Broadcast: every consumer gets every message. Each consumer declares its own group with a name the broker
// picks (group_name_auto), exclusive to its session and deleted when it disconnects (DELETE_ON_EXIT), so
// nothing is left behind once the listeners are gone.
//
//   node examples/broadcast.mjs             (broker at ZBUS_SERVER, default 127.0.0.1:15555)
import { Broker, Consumer, Mask, MqAdmin, Producer } from '@zbus/client';

const address = process.env.ZBUS_SERVER ?? '127.0.0.1:15555';
const topic = process.env.TOPIC ?? 'examples.notices';
const LISTENERS = 3;
const NOTICES = 3;

const broker = new Broker(address);
const admin = new MqAdmin(broker);
await admin.remove(topic).catch(() => {});
await admin.declareTopic(topic);

let got = 0;
let finish;
const allIn = new Promise((resolve) => {
  finish = resolve;
});
const listeners = Array.from({ length: LISTENERS }, (_, i) => {
  const consumer = new Consumer(broker, {
    topic,
    group: { nameAuto: true, mask: Mask.Exclusive | Mask.DeleteOnExit },
    handler: (msg) => {
      console.log(`listener ${i + 1} (group ${consumer.group}) got: ${msg.bodyText()}`);
      if (++got === LISTENERS * NOTICES) finish();
    },
  });
  return consumer;
});
// One after another: each declare gets its own generated name.
for (const l of listeners) await l.start();

const before = await admin.queryTopic(topic);
console.log(`groups while listening: ${before.consumeGroupList.length - 1} private + the default one`);

const producer = new Producer(broker);
for (let i = 1; i <= NOTICES; i++) await producer.publish({ topic, body: `notice ${i}` });

const timer = setTimeout(() => {
  console.error(`timed out after ${got} deliveries`);
  process.exit(1);
}, 20_000);
await allIn;
clearTimeout(timer);
console.log(`${got} deliveries: each of ${LISTENERS} listeners got all ${NOTICES} notices`);

await Promise.all(listeners.map((l) => l.close()));
// The broker drops a delete-on-exit group when its session goes; give it a moment to notice the closes.
let after = await admin.queryTopic(topic);
for (let i = 0; i < 50 && after.consumeGroupList.length > 1; i++) {
  await new Promise((r) => setTimeout(r, 100));
  after = await admin.queryTopic(topic);
}
console.log(`groups after the listeners left: ${after.consumeGroupList.map((g) => g.groupName).join(', ')}`);

await admin.remove(topic);
await broker.close();
