// The TCP transport's fast paths for a Consumer's automatic ack (one per delivered message) and for a publish as the
// Producer builds it: the same bytes as writeHead, without writeHead. writeHead is wrapped to count its calls, so
// the tests fail without the paths.
import net from 'node:net';
import type * as protocol from '@zbus/protocol';
import { encodeMessage, Message } from '@zbus/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { nextId } from '../src/ids.js';
import { tcpTransport } from '../src/index.js';

const heads = vi.hoisted(() => ({ written: [] as string[], ascii: [] as string[] }));

vi.mock('@zbus/protocol', async (importOriginal) => {
  const original = await importOriginal<typeof protocol>();
  return {
    ...original,
    writeHead: (msg: Message, out: Uint8Array, at: number) => {
      heads.written.push(msg.headers.cmd ?? '');
      return original.writeHead(msg, out, at);
    },
    putAscii: (text: string, out: Uint8Array, at: number) => {
      heads.ascii.push(text);
      return original.putAscii(text, out, at);
    },
  };
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A server that keeps what it reads; `until(n)` resolves once n bytes are in. */
async function sink() {
  let received = Buffer.alloc(0);
  let want = Number.POSITIVE_INFINITY;
  let reached = () => {};
  const server = net.createServer((s) => {
    s.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= want) reached();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const transport = await tcpTransport()({
    address: `127.0.0.1:${port}`,
    connectTimeout: 10_000,
    handlers: { data: () => {}, closed: () => {} },
  });
  return {
    transport,
    until(n: number): Promise<string> {
      want = n;
      return new Promise<void>((resolve) => {
        reached = resolve;
        if (received.length >= n) resolve();
      }).then(() => received.toString('latin1'));
    },
    async close() {
      transport.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An ack as the core Consumer builds it for `ack: false` (the connection adds the id). */
function autoAck(topic: string, group: string, offset: string, id: string): Message {
  const m = new Message();
  const h = m.headers;
  h.cmd = 'ack';
  h.topic = topic;
  h.consume_group = group;
  h.offset = offset;
  h.ack = 'false';
  h.id = id;
  return m;
}

describe('tcpTransport and a consumer ack', () => {
  it('writes an automatic ack byte for byte as writeHead would, without writeHead', async () => {
    const peer = await sink();
    const acks = [
      autoAck('T', 'g', '0', 'a1b2c3d4-0000-4000-8000-000000000001'),
      autoAck('T', 'g', '1234567890', 'a1b2c3d4-0000-4000-8000-000000000002'),
      autoAck('Other', 'G2', '7', 'x'),
      autoAck('T', 'g', '8', 'line\r\nbreak'),
      autoAck('tópico', 'grupo', '9', 'id-9'),
    ];
    // Not an automatic ack: an extra header, an ack that asks for a reply, a nack.
    const withHeader = autoAck('T', 'g', '10', 'id-10');
    withHeader.headers.reason = 'r';
    const replied = autoAck('T', 'g', '11', 'id-11');
    replied.headers.ack = 'true';
    const others = [withHeader, replied, new Message({ headers: { cmd: 'nack', topic: 'T', offset: '12' } })];
    const all = [...acks, ...others];
    try {
      const expected = Buffer.concat(all.map((m) => encodeMessage(m)));
      heads.written.length = 0;
      for (const m of all) peer.transport.send(m);
      expect(await peer.until(expected.length)).toBe(expected.toString('latin1'));
      // Every automatic ack took the fast path (writeHead gives up on the non-ASCII one and goes through a
      // string); the other three messages took writeHead.
      expect(heads.written).toEqual(['ack', 'ack', 'nack']);
    } finally {
      await peer.close();
    }
  });
});

/** A publish as the Producer builds it: `toProduceMessage` (cmd, topic, content type) and then its id. */
function publish(topic: string, body: string | Uint8Array, id: string, contentType = 'text/plain'): Message {
  const m = new Message();
  const h = m.headers;
  h.cmd = 'produce';
  h.topic = topic;
  h['content-type'] = contentType;
  h.id = id;
  m.body = typeof body === 'string' ? Buffer.from(body) : body;
  return m;
}

describe('tcpTransport and a publish', () => {
  it('writes a publish byte for byte as writeHead would, without writeHead', async () => {
    const peer = await sink();
    const fast = [
      publish('T', 'x'.repeat(100), 'a1b2c3d4-0000-4000-8000-000000000001'),
      publish('T', '', 'id-0'),
      publish('T', 'y'.repeat(12345), 'id-2'),
      publish('Other', new Uint8Array([1, 2, 3]), 'id-3', 'application/octet-stream'),
      publish('T', 'z', 'line\r\nbreak'),
      publish('bad\r\ntopic', 'z', 'id-5', 'text/plain\0'),
      publish('tópico', 'z', 'id-6'),
    ];
    // Not the Producer's shape: another header, another order, a non-ASCII id (writeHead gives up on that one too
    // and goes through a string).
    const tagged = publish('T', 'z', 'id-7');
    tagged.headers.tag = 't';
    const reordered = new Message({
      headers: { cmd: 'produce', id: 'id-8', topic: 'T', 'content-type': 'a/b' },
    });
    const all = [...fast, tagged, reordered, publish('T', 'z', 'ïd-9')];
    try {
      const expected = Buffer.concat(all.map((m) => encodeMessage(m)));
      heads.written.length = 0;
      for (const m of all) peer.transport.send(m);
      expect(await peer.until(expected.length)).toBe(expected.toString('latin1'));
      expect(heads.written).toEqual(['produce', 'produce', 'produce']);
    } finally {
      await peer.close();
    }
  });
});

describe('tcpTransport and the ids of publishes', () => {
  it('writes the id nextId just made without checking its characters, and checks any other id', async () => {
    const peer = await sink();
    const sent: Message[] = [];
    const send = (m: Message) => {
      sent.push(m);
      peer.transport.send(m);
    };
    try {
      heads.ascii.length = 0;
      send(publish('T', 'x', nextId()));
      send(publish('T', 'x', 'line\r\nbreak'));
      send(publish('T', 'x', nextId()));
      const early = publish('T', 'x', nextId());
      send(publish('T', 'x', nextId()));
      send(early); // not the last id made: checked
      const expected = Buffer.concat(sent.map((m) => encodeMessage(m)));
      expect(await peer.until(expected.length)).toBe(expected.toString('latin1'));
      expect(heads.ascii).toEqual(['line\r\nbreak', early.headers.id]);
    } finally {
      await peer.close();
    }
  });
});

/** After the transport's end-of-tick write, if one is due (nextTick callbacks run in order). */
const tick = () => new Promise<void>((resolve) => process.nextTick(resolve));

describe('tcpTransport and the acks of a wide window', () => {
  const consume = (window: number) =>
    new Message({
      headers: { cmd: 'consume', topic: 'T', consume_group: 'g', consume_window: String(window) },
    });

  it('holds automatic acks of several turns for one write, in order, when every consume has a wide window', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const writes = vi.spyOn(net.Socket.prototype, 'write');
    const peer = await sink();
    try {
      const first = consume(1000);
      peer.transport.send(first);
      await tick();
      expect(writes).toHaveBeenCalledTimes(1);
      const acks = [0, 1, 2].map((i) => autoAck('T', 'g', String(i), `id-${i}`));
      for (const a of acks) {
        peer.transport.send(a);
        await tick(); // the end of the tick: without the wait each ack left in a write of its own here
      }
      expect(writes).toHaveBeenCalledTimes(1);
      vi.advanceTimersByTime(1);
      expect(writes).toHaveBeenCalledTimes(2);
      const expected = Buffer.concat([first, ...acks].map((m) => encodeMessage(m))).toString('latin1');
      expect(await peer.until(expected.length)).toBe(expected);
    } finally {
      await peer.close();
    }
  });

  it('sends held acks with the next other message, and once 9 wait', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const writes = vi.spyOn(net.Socket.prototype, 'write');
    const peer = await sink();
    try {
      peer.transport.send(consume(64));
      await tick();
      peer.transport.send(autoAck('T', 'g', '1', 'a'));
      await tick();
      expect(writes).toHaveBeenCalledTimes(1);
      peer.transport.send(new Message({ headers: { cmd: 'ping' } }));
      await tick();
      expect(writes).toHaveBeenCalledTimes(2);
      for (let i = 0; i < 8; i++) peer.transport.send(autoAck('T', 'g', String(i), 'b'));
      await tick();
      expect(writes).toHaveBeenCalledTimes(2);
      peer.transport.send(autoAck('T', 'g', '8', 'b'));
      await tick();
      expect(writes).toHaveBeenCalledTimes(3);
    } finally {
      await peer.close();
    }
  });

  it('sends the acks of each turn at its end on a connection with a narrow window', async () => {
    const writes = vi.spyOn(net.Socket.prototype, 'write');
    const peer = await sink();
    try {
      peer.transport.send(consume(1000));
      peer.transport.send(consume(8));
      await tick();
      peer.transport.send(autoAck('T', 'g', '1', 'a'));
      await tick();
      expect(writes).toHaveBeenCalledTimes(2);
    } finally {
      await peer.close();
    }
  });
});
