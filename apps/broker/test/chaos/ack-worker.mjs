// A consumer process for ack-consumers.test.ts: consumes an ack-required group with a window, "handles"
// each message for a random time and acks it. It reports on stdout, one line per event:
//   D <origin_id> <retry> <offset>   a delivery arrived (before handling)
//   S <origin_id>                    handled: its ack is being sent
//   A <origin_id>                    its ack was answered 200
// A message tagged `poison` crashes the handler (the process exits at once, without an ack). The test
// SIGKILLs these processes at random moments, mid-handler.
// argv: port topic group window handlerMaxMs seed
import { connect } from 'node:net';
import { encodeMessage, Message, MessageDecoder } from '@zbus/protocol';

const [port, topic, group, window, handlerMaxMs, seed] = process.argv.slice(2);
let s = Number(seed) >>> 0;
const rand = () => {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  return s / 4294967296;
};
let seq = 0;
const acks = new Map();
const out = [];
const flush = () => {
  if (out.length > 0) process.stdout.write(out.splice(0).join(''));
};
const pull = () =>
  socket.write(
    encodeMessage(
      new Message({
        headers: { cmd: 'consume', topic, consume_group: group, consume_window: window, id: 'pull' },
      }),
    ),
  );
const socket = connect(Number(port), '127.0.0.1', pull);
const decoder = new MessageDecoder((m) => {
  const id = m.headers.id;
  if (id === 'pull') {
    if (m.headers.origin_id === undefined) return; // an empty or error reply
    const key = m.headers.origin_id;
    out.push(`D ${key} ${m.headers.retry ?? 0} ${m.headers.offset}\n`);
    if (m.headers.tag === 'poison') {
      flush();
      process.exit(3);
    }
    flush();
    setTimeout(
      () => {
        const ackId = `ack${++seq}`;
        acks.set(ackId, key);
        process.stdout.write(`S ${key}\n`);
        socket.write(
          encodeMessage(
            new Message({
              headers: { cmd: 'ack', topic, consume_group: group, offset: m.headers.offset, id: ackId },
            }),
          ),
        );
        // A window of 1 is the 0.11 behaviour: one message per consume, so ask again.
        if (window === '1') pull();
      },
      Math.floor(rand() * Number(handlerMaxMs)),
    );
    return;
  }
  const key = acks.get(id);
  if (key !== undefined) {
    acks.delete(id);
    if (m.status === 200) out.push(`A ${key}\n`);
    flush();
  }
});
socket.on('data', (chunk) => decoder.push(chunk));
socket.on('close', () => process.exit(0));
socket.on('error', () => process.exit(0));
