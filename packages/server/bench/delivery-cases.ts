// The cases bench/delivery.mjs times: storing a produce and building a delivery's head, with the stored form
// (src/mq/delivery.ts) and with the code before it (test/broker/older-delivery.ts), on the request `ab` sends.
import { decodeMessage, encodeHead, type Message } from '@zbus/protocol';
import { buildDelivery, encodeStored } from '../src/mq/delivery.js';
import { olderDelivery, olderRecord } from '../test/broker/older-delivery.js';

const ID = 'f3c1a2b4-5d6e-4f70-8192-a3b4c5d6e7f8';
const AB_REQUEST = Buffer.from(
  'GET /produce/MyTopic HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: 127.0.0.1:33159\r\n' +
    'User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n',
);

/** A produce as the broker holds it when it stores one: command resolved, id, sender, host, remote-addr set. */
function produced(): Message {
  const m = decodeMessage(AB_REQUEST);
  m.headers.cmd = 'produce';
  m.headers.topic = 'MyTopic';
  m.set('id', ID);
  m.set('sender', '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0');
  m.set('host', '127.0.0.1:15555');
  m.set('remote-addr', '127.0.0.1:45678');
  return m;
}

const record = (data: Uint8Array) => ({
  offset: 12345,
  timestamp: 1_764_000_000_000,
  id: ID,
  tag: undefined,
  data,
  retry: 0,
});
const older = record(olderRecord(produced()));
const stored = record(encodeStored(produced(), ID, 'MyTopic'));
const requests = Array.from({ length: 1024 }, produced);
let k = 0;
const next = () => (requests[k++ & 1023] as Message).clone();

export const cases: Array<[string, () => unknown]> = [
  ['store a produce: before (delete 6 headers, encodeMessage)', () => olderRecord(next())],
  ['store a produce: stored form (encodeStored)', () => encodeStored(next(), ID, 'MyTopic')],
  ['(the clone of the request both store cases include)', () => next()],
  [
    'deliver: before (decode, set 8 headers, delete 1, encodeHead)',
    () => encodeHead(olderDelivery(older, 'c-1', 'MyTopic', 'MyTopic')),
  ],
  [
    'deliver: stored form (buildDelivery, encodeHead)',
    () => encodeHead(buildDelivery(stored, 'c-1', 'MyTopic', 'MyTopic')),
  ],
  [
    'deliver a record stored before the stored form (rewritten first)',
    () => encodeHead(buildDelivery(older, 'c-1', 'MyTopic', 'MyTopic')),
  ],
];
