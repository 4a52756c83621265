// How the transport treats the edges of a connection's life: bytes that follow the upgrade request in the same
// TCP write, and a client that half-closes its socket after sending its requests.
import { connect, type Socket } from 'node:net';
import { encodeMessage, Message, MessageDecoder } from '@zbus/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { declare, startTestBroker, untilConsumers } from './helpers.js';

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
    onTestFinished(() => {
      s.destroy();
    });
  });
}

/** Everything the server sends until it closes the connection. */
function readToClose(s: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

function decodeAll(bytes: Uint8Array): Message[] {
  const out: Message[] = [];
  new MessageDecoder((m) => {
    out.push(m);
  }).push(bytes);
  return out;
}

/** A masked client frame (RFC 6455 §5.2) holding `payload` as text. */
function clientFrame(payload: Uint8Array): Buffer {
  const data = Buffer.from(payload);
  const mask = Buffer.from([0x11, 0x22, 0x33, 0x44]);
  const head =
    data.length < 126
      ? Buffer.from([0x81, 0x80 | data.length])
      : Buffer.from([0x81, 0x80 | 126, data.length >> 8, data.length & 0xff]);
  return Buffer.concat([head, mask, Buffer.from(data.map((c, i) => c ^ mask[i % 4]!))]);
}

const HANDSHAKE =
  'GET / HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
  'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n';

describe('WebSocket upgrade', () => {
  it('answers frames sent in the same TCP write as the upgrade request', async () => {
    const b = await startTestBroker();
    const s = await open(b.port);
    const frames = [1, 2, 3].map((i) =>
      clientFrame(encodeMessage(new Message({ headers: { cmd: 'ping', id: `p${i}` } }))),
    );
    let text = '';
    const answered = new Promise<void>((resolve) => {
      s.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (['p1', 'p2', 'p3'].every((id) => text.includes(`\r\nid: ${id}\r\n`))) resolve();
      });
    });
    s.write(Buffer.concat([Buffer.from(HANDSHAKE), ...frames]));
    await answered;
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
  });
});

describe('half-closed clients', () => {
  it('get the replies to every request sent before their FIN, then the broker closes', async () => {
    const b = await startTestBroker({ fsync: 'always' });
    const admin = await b.raw();
    await declare(admin, 'Half');
    const s = await open(b.port);
    const all = readToClose(s);
    const N = 50;
    const requests = Array.from({ length: N }, (_, i) =>
      encodeMessage(new Message({ headers: { cmd: 'produce', topic: 'Half', id: `h${i}` }, body: `m${i}` })),
    );
    s.end(Buffer.concat(requests));
    const replies = decodeAll(await all);
    expect(replies.map((r) => r.headers.id).sort()).toEqual(
      Array.from({ length: N }, (_, i) => `h${i}`).sort(),
    );
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const q = await admin.request({ headers: { cmd: 'query', topic: 'Half' } });
    expect(q.json<{ messageDepth: number }>().messageDepth).toBe(N);
  });

  it('answer plain-HTTP requests in order; a consume still waiting ends as if its timeout ran out', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'Poll');
    const s = await open(b.port);
    const all = readToClose(s);
    // The produce is stored by the time its reply is due; a consume that would wait gets the empty
    // consume_timeout answer (a peer that closed both ways looks the same, and must not be handed a message).
    s.end(
      'POST /Poll HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\n\r\nfirst' +
        'GET /Poll?cmd=consume HTTP/1.1\r\nhost: localhost\r\n\r\n' +
        'GET /Poll?cmd=consume HTTP/1.1\r\nhost: localhost\r\n\r\n' +
        'GET /?cmd=ping HTTP/1.1\r\nhost: localhost\r\n\r\n',
    );
    const replies = decodeAll(await all);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(replies[1]!.bodyText()).toBe('first');
    expect(replies[2]!.headers.consume_timeout).toBe('true');
    expect(replies[3]!.bodyText()).toBe('OK');
    // Nobody consumes any more, so the next message waits for a real consumer.
    await untilConsumers(admin, 'Poll', 'Poll', 0);
  });

  it('answer an RPC call that the service answers after the FIN', async () => {
    const b = await startTestBroker();
    const svc = await b.raw();
    await svc.request({ headers: { cmd: 'declare', topic: 'Calc', topic_mask: '3' } });
    svc.send({ headers: { cmd: 'consume', topic: 'Calc', id: 'svc' } });
    const admin = await b.raw();
    await untilConsumers(admin, 'Calc', 'Calc', 1);
    const s = await open(b.port);
    const all = readToClose(s);
    s.end(
      'GET /Calc/m/plus/1/2 HTTP/1.1\r\nhost: localhost\r\n\r\nGET /?cmd=ping HTTP/1.1\r\nhost: localhost\r\n\r\n',
    );
    // The service answers only once the caller's FIN has long been read.
    const d = await svc.next((m) => m.headers.id === 'svc');
    svc.send({
      headers: { cmd: 'route', recver: d.headers.sender!, id: d.headers.origin_id!, origin_status: '200' },
      body: '3',
    });
    const replies = decodeAll(await all);
    expect(replies.map((r) => [r.status, r.bodyText()])).toEqual([
      [200, '3'],
      [200, 'OK'],
    ]);
  });
});
