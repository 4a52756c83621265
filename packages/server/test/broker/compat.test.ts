// What the original 0.11 clients (zbus.js, zbus-python, the Java client) send and must receive, written from the
// wire: the request bytes as those clients write them, the replies checked byte for byte where 0.11 is strict.
// Issue 15; decisions.md §6 "0.11's silences are kept where a 0.11 client may listen".
import { connect, type Socket } from 'node:net';
import { decodeMessage, type Message, MessageDecoder } from '@zbus/protocol';
import { scaled } from '@zbus/testkit';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { WebSocket } from 'ws';
import { declare, startTestBroker } from './helpers.js';

/** The cluster secret of the brokers here that report to a tracker, or take reports (docs/security.md). */
const CLUSTER_TOKEN = 'compat-cluster-secret-0123';

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

// Waits use the real clock even while a test has frozen the broker's timers (vi.useFakeTimers).
const realSetTimeout = setTimeout;
const realClearTimeout = clearTimeout;

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
        const t = realSetTimeout(() => reject(new Error('no matching message in time')), scaled(5000));
        waiter = {
          match,
          resolve: (ms) => {
            realClearTimeout(t);
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
      // A member broker's report (the tracker takes none without the cluster token).
      cmd: 'track_pub ack=false',
      request: [
        ['cmd', 'track_pub'],
        ['ack', 'false'],
        ['cluster_token', CLUSTER_TOKEN],
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
        const b = await startTestBroker({ clusterToken: CLUSTER_TOKEN });
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
    conn.write(Buffer.from('GET /?cmd=heartbeat HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n'));
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

/** One reply read off the socket as bytes: its status line and its headers as written, in order. */
interface RawReply {
  statusLine: string;
  headers: Array<[string, string]>;
  body: string;
}

/** Writes `bytes` on a fresh TCP connection and reads back exactly one reply, unparsed by our decoder. */
async function rawExchange(port: number, bytes: Buffer): Promise<RawReply> {
  const socket = connect(port, '127.0.0.1');
  onTestFinished(() => {
    socket.destroy();
  });
  socket.write(bytes);
  let buf = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers = lines.map((l): [string, string] => {
        const i = l.indexOf(':');
        return [l.slice(0, i), l.slice(i + 1).trim()];
      });
      const length = Number(headers.find(([k]) => k.toLowerCase() === 'content-length')?.[1]);
      if (buf.length < end + 4 + length) return;
      resolve({ statusLine: statusLine!, headers, body: buf.subarray(end + 4, end + 4 + length).toString() });
    });
  });
}

const names = (r: RawReply) => r.headers.map(([k]) => k).sort();

describe('reply headers as 0.11 writes them', () => {
  // 0.11 ReplyKit: an error reply is a new Message with id, status, topic (when the request had one) and a
  // text body: `connection` and `content-length` come with every message, and there is no content type.
  // zbus-python decodes any text/* body into a str and then calls .decode() on it for a non-200 reply.
  // zbus-ts adds `error_code`.
  it('a 404 for a missing topic: id, topic, error_code, connection, content-length; no content type', async () => {
    const b = await startTestBroker();
    // zbus-python MqClient.query('Nope'): build_msg, then an id from invoke().
    const r = await rawExchange(
      b.port,
      wire([
        ['cmd', 'query'],
        ['topic', 'Nope'],
        ['id', 'py-1'],
      ]),
    );
    expect(r.statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(names(r)).toEqual(['connection', 'content-length', 'error_code', 'id', 'topic']);
    expect(Object.fromEntries(r.headers)).toMatchObject({
      id: 'py-1',
      topic: 'Nope',
      error_code: 'ZBUS_ERR_NOT_FOUND',
    });
    expect(r.body).toBe('404: Topic(Nope) Not Found');
  });

  it('a 400 without a topic carries no topic header and no content type', async () => {
    const b = await startTestBroker();
    const r = await rawExchange(
      b.port,
      wire([
        ['cmd', 'remove'],
        ['id', 'py-2'],
      ]),
    );
    expect(r.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(names(r)).toEqual(['connection', 'content-length', 'error_code', 'id']);
    expect(r.body).toBe('400: Bad Format, Missing topic');
  });

  it('a 403 from auth: the same headers, no content type', async () => {
    const b = await startTestBroker({
      auth: { tokens: [{ token: 'admin', operations: ['admin'], topics: [{ topic: '*' }] }] },
    });
    const r = await rawExchange(
      b.port,
      wire([
        ['cmd', 'declare'],
        ['topic', 'T'],
        ['id', 'j-1'],
      ]),
    );
    expect(r.statusLine).toBe('HTTP/1.1 403 Forbidden');
    expect(names(r)).toEqual(['connection', 'content-length', 'error_code', 'id', 'topic']);
    expect(r.body).toBe('403: Command(declare) Topic(T) Forbbiden');
  });

  it('an unknown command keeps 0.11 text/html', async () => {
    const b = await startTestBroker();
    const r = await rawExchange(
      b.port,
      wire([
        ['cmd', 'frobnicate'],
        ['id', 'x-1'],
      ]),
    );
    expect(Object.fromEntries(r.headers)['content-type']).toBe('text/html');
    expect(r.body).toBe('Bad format: command(frobnicate) not support');
  });

  it('the produce acknowledgement: id, topic, connection, content-length plus durable and offset', async () => {
    const b = await startTestBroker();
    await declare(await b.raw(), 'T');
    // zbus.js Producer.publish({topic, body}) through invoke(): the id is added last.
    const r = await rawExchange(
      b.port,
      wire(
        [
          ['topic', 'T'],
          ['cmd', 'produce'],
          ['id', 'js-1'],
        ],
        'hello',
      ),
    );
    expect(r.statusLine).toBe('HTTP/1.1 200 OK');
    expect(names(r)).toEqual(['connection', 'content-length', 'durable', 'id', 'offset', 'topic']);
    expect(r.body).toMatch(/^\d{13}$/);
  });

  it('the other 0.11 acknowledgements (ack, empty, remove, track_pub) carry no content type either', async () => {
    const b = await startTestBroker({ clusterToken: CLUSTER_TOKEN });
    await declare(await b.raw(), 'T');
    const requests: Array<Array<[string, string]>> = [
      [
        ['cmd', 'ack'],
        ['topic', 'T'],
        ['consume_group', 'T'],
        ['offset', '0'],
      ],
      [
        ['cmd', 'empty'],
        ['topic', 'T'],
      ],
      [
        ['cmd', 'track_pub'],
        ['cluster_token', CLUSTER_TOKEN],
      ],
      [
        ['cmd', 'remove'],
        ['topic', 'T'],
      ],
    ];
    for (const [i, h] of requests.entries()) {
      const body =
        h[0]![1] === 'track_pub'
          ? JSON.stringify({ serverInfo: { serverAddress: { address: '127.0.0.1:1' } }, live: false })
          : '';
      const r = await rawExchange(b.port, wire([...h, ['id', `a-${i}`]], body));
      expect([r.statusLine, r.headers.find(([k]) => k === 'content-type')]).toEqual([
        'HTTP/1.1 200 OK',
        undefined,
      ]);
      expect(r.body).toMatch(/^\d{13}$/);
    }
  });
});

describe('tracker pushes after a change', () => {
  // 0.11's Java and Python Producer examples declare a topic and publish at once; their server selector finds the
  // topic in the route table that the track_sub push fills. 0.11 writes the push right behind the declare reply.

  /** The topics of every server in a TrackerInfo push. */
  const topicsOf = (m: Message): string[] =>
    Object.values(m.json<{ serverTable: Record<string, { topicTable: object }> }>().serverTable).flatMap(
      (s) => Object.keys(s.topicTable),
    );

  /** Freezes timers (fake setTimeout/setInterval) so that a push can only come from the request itself. */
  function freezeTimers(): void {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
  }

  async function subscriber(port: number): Promise<Conn> {
    const sub = await tcpConn(port);
    sub.write(wire([['cmd', 'track_sub']])); // zbus.js Broker.addTracker: no id
    await sub.until(() => true);
    return sub;
  }

  it('pushes the first change no later than the declare reply, with no timer involved', async () => {
    const b = await startTestBroker();
    const sub = await subscriber(b.port);
    const producer = await tcpConn(b.port);
    freezeTimers();
    // zbus-python Producer.declare('MyTopic'), then publish at once.
    producer.write(
      wire([
        ['cmd', 'declare'],
        ['topic', 'MyTopic'],
        ['id', 'py-declare'],
      ]),
    );
    await producer.until((m) => m.headers.id === 'py-declare');
    const [push] = await sub.until((m) => topicsOf(m).includes('MyTopic'));
    expect(push!.headers.cmd).toBe('track_pub');
  });

  it('folds later changes of a burst into one push at the end of the window', async () => {
    const b = await startTestBroker();
    const sub = await subscriber(b.port);
    const admin = await tcpConn(b.port);
    freezeTimers();
    admin.write(
      wire([
        ['cmd', 'declare'],
        ['topic', 'First'],
        ['id', 'd1'],
      ]),
    );
    await sub.until((m) => topicsOf(m).includes('First'));
    admin.write(
      wire([
        ['cmd', 'declare'],
        ['topic', 'Second'],
        ['id', 'd2'],
      ]),
    );
    // Each declared before the next (both inside the frozen window), so the one push must name both.
    await admin.until((m) => m.headers.id === 'd2');
    admin.write(
      wire([
        ['cmd', 'declare'],
        ['topic', 'Third'],
        ['id', 'd3'],
      ]),
    );
    await admin.until((m) => m.headers.id === 'd3');
    const before = sub.received.length;
    vi.advanceTimersByTime(100);
    const [push] = await sub.until(() => true);
    expect(topicsOf(push!)).toEqual(expect.arrayContaining(['First', 'Second', 'Third']));
    expect(sub.received.length).toBe(before + 1);
  });

  it('reports a change to the upstream tracker at once, and the tracker pushes it on', async () => {
    const tracker = await startTestBroker({ clusterToken: CLUSTER_TOKEN });
    const sub = await subscriber(tracker.port);
    const server = await startTestBroker({
      trackers: [`127.0.0.1:${tracker.port}`],
      clusterToken: CLUSTER_TOKEN,
    });
    // The server reports when its link to the tracker opens.
    await sub.until((m) => Object.keys(m.json<{ serverTable: object }>().serverTable).length === 2);
    freezeTimers();
    const producer = await tcpConn(server.port);
    producer.write(
      wire([
        ['cmd', 'declare'],
        ['topic', 'Remote'],
        ['id', 'd1'],
      ]),
    );
    await producer.until((m) => m.headers.id === 'd1');
    await sub.until((m) => topicsOf(m).includes('Remote'));
  });
});

describe('group_name_auto with consume_group (the Java broadcast consumers)', () => {
  // Java ConsumerBroadcast: ten Consumers of MyTopic, each with ConsumeGroup.createTempBroadcastGroup(); the
  // Consumer names the group after the topic, so each ConsumeThread declares this, then consumes the name it got.
  const broadcastDeclare = (id: string) =>
    wire([
      ['cmd', 'declare'],
      ['topic', 'MyTopic'],
      ['consume_group', 'MyTopic'],
      ['group_name_auto', 'true'],
      ['group_mask', '48'], // EXCLUSIVE | DELETE_ON_EXIT
      ['id', id],
    ]);

  async function tenConsumers(port: number): Promise<{ conns: Conn[]; names: string[] }> {
    const conns: Conn[] = [];
    const names: string[] = [];
    for (let i = 0; i < 10; i++) {
      const c = await tcpConn(port);
      c.write(broadcastDeclare(`declare-${i}`));
      const [reply] = await c.until((m) => m.headers.id === `declare-${i}`);
      expect(reply!.status).toBe(200);
      const info = reply!.json<{ groupName: string; mask: number }>();
      expect(info.mask).toBe(48);
      names.push(info.groupName);
      c.write(
        wire([
          ['cmd', 'consume'],
          ['topic', 'MyTopic'],
          ['consume_group', info.groupName],
          ['id', `consume-${i}`],
        ]),
      );
      conns.push(c);
    }
    return { conns, names };
  }

  it('names new groups MyTopic0, MyTopic1, ... and leaves the default group as it was', async () => {
    const b = await startTestBroker();
    const admin = await b.raw();
    await declare(admin, 'MyTopic'); // the Producer example declares the topic first: its default group exists
    const { conns, names } = await tenConsumers(b.port);
    expect(names).toEqual(Array.from({ length: 10 }, (_, i) => `MyTopic${i}`));
    const group = await admin.request({
      headers: { cmd: 'query', topic: 'MyTopic', consume_group: 'MyTopic' },
    });
    expect(group.json<{ mask: number }>().mask).toBe(0);
    // Every consumer is let in (no "exclusive, forbbiden") and gets its own copy of each message.
    await admin.request({ headers: { cmd: 'produce', topic: 'MyTopic' }, body: 'to all ten' });
    for (const [i, c] of conns.entries()) {
      const [m] = await c.until((m) => m.headers.id === `consume-${i}`);
      expect([m!.status, m!.bodyText(), m!.headers.consume_group]).toEqual([200, 'to all ten', names[i]]);
    }
  });

  it('on a new topic starts with the topic name itself, as 0.11 does', async () => {
    const b = await startTestBroker();
    const { names } = await tenConsumers(b.port);
    expect(names).toEqual(['MyTopic', ...Array.from({ length: 9 }, (_, i) => `MyTopic${i}`)]);
  });

  it('uses another named group as the prefix', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const name = async () =>
      (
        await c.request({
          headers: { cmd: 'declare', topic: 'T', consume_group: 'Audit', group_name_auto: 'true' },
        })
      ).json<{ groupName: string }>().groupName;
    expect([await name(), await name(), await name()]).toEqual(['Audit', 'Audit0', 'Audit1']);
  });
});
