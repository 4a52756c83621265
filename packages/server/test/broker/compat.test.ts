// What the original 0.11 clients (zbus.js, zbus-python, the Java client) send and must receive, written from the
// wire: the request bytes as those clients write them, the replies checked byte for byte where 0.11 is strict.
// Issue 15; decisions.md §6 "0.11's silences are kept where a 0.11 client may listen".
import { connect, type Socket } from 'node:net';
import { decodeMessage, type Message, MessageDecoder } from '@zbus/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket } from 'ws';
import { declare, startTestBroker } from './helpers.js';

/** A request as zbus.js's httpEncode writes it: request line, headers in order, content-length, body. */
function wire(headers: Array<[string, string]>, body = ''): Buffer {
  const bytes = Buffer.from(body);
  let head = 'GET / HTTP/1.1\r\n';
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  head += `content-length: ${bytes.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), bytes]);
}

/** One connection, raw bytes out, decoded messages in; TCP or WebSocket (one message per binary frame). */
interface Conn {
  write(bytes: Buffer): void;
  /** Everything received up to and including the first message `match` accepts. */
  until(match: (m: Message) => boolean): Promise<Message[]>;
  /** Every message received so far, in order. */
  readonly received: Message[];
}

function collector(): Pick<Conn, 'until' | 'received'> & { add(m: Message): void } {
  const received: Message[] = [];
  let waiter: { match: (m: Message) => boolean; resolve: (ms: Message[]) => void } | undefined;
  let from = 0;
  const check = () => {
    if (!waiter) return;
    for (let i = from; i < received.length; i++) {
      if (waiter.match(received[i]!)) {
        const got = received.slice(from, i + 1);
        from = i + 1;
        const w = waiter;
        waiter = undefined;
        w.resolve(got);
        return;
      }
    }
  };
  return {
    received,
    add(m) {
      received.push(m);
      check();
    },
    until(match) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no matching message within 5000 ms')), 5000);
        waiter = {
          match,
          resolve: (ms) => {
            clearTimeout(t);
            resolve(ms);
          },
        };
        check();
      });
    },
  };
}

async function tcpConn(port: number): Promise<Conn & { socket: Socket }> {
  const c = collector();
  const decoder = new MessageDecoder((m) => c.add(m));
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  onTestFinished(() => {
    socket.destroy();
  });
  return { socket, write: (b) => socket.write(b), until: c.until, received: c.received };
}

async function wsConn(port: number): Promise<Conn> {
  const c = collector();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('message', (data: Buffer) => c.add(decodeMessage(new Uint8Array(data))));
  onTestFinished(() => ws.terminate());
  return { write: (b) => ws.send(b, { binary: true }), until: c.until, received: c.received };
}

describe('requests 0.11 leaves unanswered', () => {
  // Each command 0.11 never answers (zbus-protocol.md §5), and a request that settles after it on the same
  // connection: its reply proves the command was handled, so anything the command got back came before.
  type Case = {
    cmd: string;
    request: Array<[string, string]>;
    body?: string;
    /** An answered request ordered behind the command (the store completes appends and acks in order). */
    barrier: Array<[string, string]>;
    isBarrierReply: (m: Message) => boolean;
  };
  const ping: Pick<Case, 'barrier' | 'isBarrierReply'> = {
    barrier: [['cmd', 'ping']],
    isBarrierReply: (m) => m.bodyText() === 'OK',
  };
  const cases: Case[] = [
    // zbus.js: `{cmd: 'heartbeat'}` every 60 s on every connection, never with an id.
    { cmd: 'heartbeat', request: [['cmd', 'heartbeat']], ...ping },
    {
      cmd: 'produce ack=false',
      request: [
        ['cmd', 'produce'],
        ['topic', 'T'],
        ['ack', 'false'],
      ],
      body: 'quiet',
      barrier: [
        ['cmd', 'produce'],
        ['topic', 'T'],
      ],
      isBarrierReply: (m) => m.headers.durable !== undefined,
    },
    {
      cmd: 'ack ack=false',
      request: [
        ['cmd', 'ack'],
        ['topic', 'T'],
        ['consume_group', 'T'],
        ['offset', '0'],
        ['ack', '0'], // the Java client's ackAsync
      ],
      barrier: [
        ['cmd', 'ack'],
        ['topic', 'T'],
        ['consume_group', 'T'],
        ['offset', '0'],
      ],
      isBarrierReply: (m) => m.headers.pending === 'false',
    },
    {
      cmd: 'unconsume',
      request: [
        ['cmd', 'unconsume'],
        ['topic', 'T'],
        ['consume_group', 'T'],
      ],
      ...ping,
    },
    {
      // zbus.js RpcProcessor: the reply of a call whose caller has gone.
      cmd: 'route',
      request: [
        ['recver', 'gone-session'],
        ['topic', 'T'],
        ['ack', 'false'],
        ['cmd', 'route'],
        ['origin_status', '200'],
      ],
      body: '3',
      ...ping,
    },
    {
      cmd: 'track_pub ack=false',
      request: [
        ['cmd', 'track_pub'],
        ['ack', 'false'],
      ],
      body: JSON.stringify({
        serverInfo: { serverAddress: { address: '127.0.0.1:1', sslEnabled: false } },
        live: false,
      }),
      ...ping,
    },
    // 0.11: a command that names a topic rather than a handler is not answered.
    { cmd: 'command named as a topic', request: [['cmd', 'frob']], ...ping },
  ];

  const transports = [
    { name: 'plain HTTP (no id on the connection, ever)', plainHttp: true, ids: false, open: tcpConn },
    {
      name: 'TCP, a connection that has sent an id',
      plainHttp: false,
      ids: false,
      open: async (port: number) => {
        const c = await tcpConn(port);
        c.write(
          wire([
            ['cmd', 'ping'],
            ['id', 'first'],
          ]),
        );
        await c.until((m) => m.headers.id === 'first');
        return c;
      },
    },
    { name: 'TCP, with an id', plainHttp: false, ids: true, open: tcpConn },
    { name: 'WebSocket, no id', plainHttp: false, ids: false, open: wsConn },
    { name: 'WebSocket, with an id', plainHttp: false, ids: true, open: wsConn },
  ];

  for (const t of transports) {
    for (const c of cases) {
      const answered = t.plainHttp && c.cmd !== 'heartbeat';
      it(`${c.cmd} over ${t.name}: ${answered ? 'an empty 200' : 'no reply'}`, async () => {
        const b = await startTestBroker();
        const admin = await b.raw();
        await declare(admin, 'T');
        await declare(admin, 'frob');
        const conn = await t.open(b.port);
        const withId = (h: Array<[string, string]>, id: string) =>
          t.ids ? [...h, ['id', id] as [string, string]] : h;
        conn.write(wire(withId(c.request, 'cmd-1'), c.body));
        conn.write(wire(withId(c.barrier, 'barrier-1')));
        const got = await conn.until(c.isBarrierReply);
        const before = got.slice(0, -1);
        if (answered) {
          expect(before).toHaveLength(1);
          expect([before[0]!.status, before[0]!.body.length]).toEqual([200, 0]);
        } else {
          expect(before.map((m) => `${m.status} ${m.bodyText()}`)).toEqual([]);
        }
      });
    }
  }

  it('a heartbeat during shutdown gets no reply either (other requests get 503)', async () => {
    const b = await startTestBroker();
    const conn = await wsConn(b.port);
    // Written before close() in the same tick: the broker reads them once it is closing.
    conn.write(wire([['cmd', 'heartbeat']]));
    conn.write(
      wire([
        ['cmd', 'ping'],
        ['id', 'last'],
      ]),
    );
    const closing = b.broker.close();
    const got = await conn.until((m) => m.headers.id === 'last');
    expect(got.map((m) => `${m.status} ${m.bodyText()}`)).toEqual(['503 503: the broker is shutting down']);
    await closing;
  });

  it('a plain-HTTP heartbeat with connection: close gets no reply, only the close', async () => {
    const b = await startTestBroker();
    const conn = await tcpConn(b.port);
    const ended = new Promise<void>((resolve) => conn.socket.once('end', () => resolve()));
    conn.write(Buffer.from('GET /?cmd=heartbeat HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
    await ended;
    expect(conn.received).toEqual([]);
  });
});

describe('zbus.js Broker connections', () => {
  // zbus.js Broker.addTracker: `send({cmd: 'track_sub', token})` (no id), then a heartbeat (no id) every 60 s.
  // Any message that is not a TrackerInfo reaches its tracker handler, which throws (new ServerAddress(undefined)).
  for (const [name, open] of [
    ['TCP', tcpConn],
    ['WebSocket', wsConn],
  ] as const) {
    it(`a tracker subscription over ${name} sees only TrackerInfo, heartbeats or not`, async () => {
      const b = await startTestBroker();
      const conn = await open(b.port);
      conn.write(wire([['cmd', 'track_sub']]));
      const [info] = await conn.until(() => true);
      expect(info!.json<{ serverTable: object }>()).toHaveProperty('serverTable');
      for (let i = 0; i < 3; i++) conn.write(wire([['cmd', 'heartbeat']]));
      conn.write(wire([['cmd', 'ping']]));
      const got = await conn.until((m) => m.bodyText() === 'OK');
      expect(got.map((m) => m.bodyText())).toEqual(['OK']);
    });
  }
});
