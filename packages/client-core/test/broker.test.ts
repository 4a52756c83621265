// The tracker-aware Broker against in-memory servers (not a broker: each answers a few commands the way the
// real one does), so that routing, fallback and retries can be checked step by step.
import { Message } from '@zbus/protocol';
import { describe, expect, it } from 'vitest';
import type { ServerInfo, TrackerInfo, TransportFactory } from '../src/index.js';
import { Broker, bindTransport, MqAdmin, MqClient, Producer } from '../src/index.js';
import { FakeConnection } from './fake-transport.js';

interface FakeServer {
  /** The address it announces. */
  announce: string;
  topics: string[];
  /** Answer track_sub (a TrackerInfo listing `tracks`) or refuse it with 400. */
  tracker: boolean;
  tracks: string[];
  /** Refuse connections. */
  down: boolean;
  /** Hold produce requests unanswered. */
  hold: boolean;
  produced: string[];
  conns: FakeConnection[];
}

function cluster(spec: Record<string, Partial<FakeServer>>) {
  const servers = new Map<string, FakeServer>();
  for (const [address, s] of Object.entries(spec)) {
    servers.set(address, {
      announce: address,
      topics: [],
      tracker: true,
      tracks: [address],
      down: false,
      hold: false,
      produced: [],
      conns: [],
      ...s,
    });
  }
  const info = (s: FakeServer): ServerInfo => ({
    serverAddress: { address: s.announce, sslEnabled: false },
    serverVersion: '0.11.4',
    infoVersion: 1,
    trackerList: [],
    topicTable: Object.fromEntries(
      s.topics.map((t) => [
        t,
        {
          serverAddress: { address: s.announce, sslEnabled: false },
          serverVersion: '0.11.4',
          topicName: t,
          mask: 0,
          messageDepth: 0,
          consumerCount: 1,
          consumeGroupList: [],
          creator: '',
          createdTime: 0,
          lastUpdatedTime: 0,
        },
      ]),
    ),
  });
  const trackerInfo = (s: FakeServer, version: number): TrackerInfo => ({
    serverAddress: { address: s.announce, sslEnabled: false },
    serverVersion: '0.11.4',
    infoVersion: version,
    serverTable: Object.fromEntries(
      s.tracks.map((a) => {
        const t = [...servers.values()].find((x) => x.announce === a) as FakeServer;
        return [a, info(t)];
      }),
    ),
  });
  let version = 1;
  const factory: TransportFactory = async ({ address, handlers }) => {
    const s = [...servers.entries()].find(([a, x]) => a === address || x.announce === address)?.[1];
    if (s === undefined || s.down) throw new Error('ECONNREFUSED');
    const conn = new FakeConnection(handlers);
    s.conns.push(conn);
    conn.onSend = (m) => {
      const id = m.headers.id as string;
      const cmd = m.headers.cmd;
      const reply = (status: number, body: unknown, headers: Record<string, string> = {}) =>
        queueMicrotask(() =>
          conn.reply(
            new Message({
              status,
              headers: { id, 'content-type': 'application/json', ...headers },
              body: JSON.stringify(body),
            }),
          ),
        );
      if (cmd === 'track_sub') {
        if (s.tracker) reply(200, trackerInfo(s, version++), { cmd: 'track_pub' });
        else reply(400, 'Bad format: command(track_sub) not support');
      } else if (cmd === 'produce') {
        if (s.hold) return;
        s.produced.push(m.bodyText());
        reply(200, Date.now());
      } else if (cmd === 'declare') {
        if (!s.topics.includes(m.headers.topic as string)) s.topics.push(m.headers.topic as string);
        reply(200, info(s).topicTable[m.headers.topic as string]);
      } else if (cmd === 'ping') reply(200, 'OK');
    };
    return conn;
  };
  /** Pushes every tracker's current view to its subscribers. */
  const push = () => {
    for (const s of servers.values()) {
      if (!s.tracker) continue;
      for (const c of s.conns) {
        if (!c.closed && c.sent.some((m) => m.headers.cmd === 'track_sub')) {
          c.reply(
            new Message({
              status: 200,
              headers: { cmd: 'track_pub' },
              body: JSON.stringify(trackerInfo(s, version++)),
            }),
          );
        }
      }
    }
  };
  /** The server dies: refuses new connections, drops the open ones. */
  const kill = (address: string) => {
    const s = servers.get(address) as FakeServer;
    s.down = true;
    for (const c of s.conns) c.drop(new Error('ECONNRESET'));
  };
  return { servers, factory, push, kill };
}

const opts = { reconnectDelay: 20, reconnectMaxDelay: 50, heartbeatInterval: 0 };

describe('Broker (tracker-aware)', () => {
  it('routes a single address to itself before and after the TrackerInfo, reached at the given address', async () => {
    const c = cluster({ 'localhost:1': { announce: '10.0.0.5:1', topics: ['q'], tracks: ['10.0.0.5:1'] } });
    const b = new Broker('localhost:1', { ...opts, transport: c.factory });
    expect(b.select('q')).toBe('localhost:1');
    await b.ready();
    expect([...b.table.servers.keys()]).toEqual(['10.0.0.5:1']);
    // The tracker's own server is reached at the address it was given as, not the announced one.
    expect(b.select('q')).toBe('localhost:1');
    expect(b.client('q')).toBe(b.client());
    await b.close();
  });

  it('falls back to the given address when track_sub is refused (an old server)', async () => {
    const c = cluster({ 'h:1': { tracker: false } });
    // A readyTimeout longer than the test's: ready() resolving at all shows it did not wait for it.
    const b = new Broker('h:1', { ...opts, transport: c.factory, readyTimeout: 3_600_000 });
    await b.ready();
    expect(b.table.servers.size).toBe(0);
    expect(b.route('consume', 'q')).toEqual(['h:1']);
    await new Producer(b).publish({ topic: 'q', body: 'x' });
    expect(c.servers.get('h:1')?.produced).toEqual(['x']);
    // The subscription connection is closed; only the data connection stays.
    await expect.poll(() => c.servers.get('h:1')?.conns.filter((x) => !x.closed).length).toBe(1);
    await b.close();
  });

  it('emits serverJoin, serverLeave and updated, and closes the clients of a server that left (after 1 s)', async () => {
    const c = cluster({
      'a:1': { tracks: ['a:1', 'b:1'], topics: ['q'] },
      'b:1': { tracker: false, topics: ['q'] },
    });
    const b = new Broker('a:1', { ...opts, transport: c.factory });
    const events: string[] = [];
    b.on('serverJoin', (s) => events.push(`join ${s}`));
    b.on('serverLeave', (s) => events.push(`leave ${s}`));
    b.on('updated', () => events.push('updated'));
    await b.ready();
    expect(events).toEqual(['join a:1', 'join b:1', 'updated']);
    const onB = b.clientAt('b:1');
    await onB.connect();
    (c.servers.get('a:1') as FakeServer).tracks = ['a:1'];
    c.push();
    await expect.poll(() => events.at(-2)).toBe('leave b:1');
    expect(onB.state).toBe('open'); // closed a moment later (in case b comes back at once)
    await expect.poll(() => onB.state).toBe('closed');
    await b.close();
  });

  it('producers fail fast on a dead server and, with retry, republish elsewhere (same id)', async () => {
    // Only a holds the topic: publishes go there first, b comes next.
    const c = cluster({
      'a:1': { tracks: ['a:1', 'b:1'], topics: ['q'], hold: true },
      'b:1': { tracker: false },
    });
    const b = new Broker('a:1', { ...opts, transport: c.factory });
    await b.ready();
    expect(b.route('produce', 'q')).toEqual(['a:1', 'b:1']);
    const plain = new Producer(b);
    const retrying = new Producer(b, { retry: { attempts: 2, backoffMs: 0 } });
    const p1 = plain.publish({ topic: 'q', body: 'p' }).catch((e: unknown) => e);
    const p2 = retrying.publish({ topic: 'q', body: 'r', id: 'fixed-id' });
    const onAConns = (c.servers.get('a:1') as FakeServer).conns;
    await expect
      .poll(() => onAConns.flatMap((x) => x.sent).filter((m) => m.headers.cmd === 'produce').length)
      .toBe(2);
    c.kill('a:1');
    const err = await p1;
    expect(err).toMatchObject({ code: 'ZBUS_ERR_CONNECTION_CLOSED' });
    const r = await p2;
    expect(r.server).toBe('b:1');
    expect(r.id).toBe('fixed-id');
    expect((c.servers.get('b:1') as FakeServer).produced).toEqual(['r']);
    // While a's connection is down, new publishes go to b at once.
    expect(b.route('produce', 'q')[0]).toBe('b:1');
    expect((await plain.publish({ topic: 'q', body: 'n' })).server).toBe('b:1');
    await b.close();
  });

  it('MqAdmin declares on every server: the first answer, or one result per server with *All', async () => {
    const c = cluster({ 'a:1': { tracks: ['a:1', 'b:1'] }, 'b:1': { tracker: false } });
    const b = new Broker('a:1', { ...opts, transport: c.factory });
    const admin = new MqAdmin(b);
    await admin.declare('q');
    expect(c.servers.get('a:1')?.topics).toEqual(['q']);
    expect(c.servers.get('b:1')?.topics).toEqual(['q']);
    const all = await admin.declareAll('r');
    expect(all.map((x) => x.server).sort()).toEqual(['a:1', 'b:1']);
    expect(all.every((x) => x.error === undefined && x.value !== undefined)).toBe(true);
    await b.close();
  });

  it('ready() rejects at once when no address can be reached (not after readyTimeout)', async () => {
    const c = cluster({ 'h:1': { down: true } });
    // A readyTimeout longer than the test's: rejecting at all shows it did not wait for it.
    const b = new Broker('h:1', { ...opts, transport: c.factory, readyTimeout: 3_600_000 });
    await expect(b.ready()).rejects.toMatchObject({ code: 'ZBUS_ERR_CONNECTION_CLOSED' });
    await b.close();
  });

  it('clientFactory builds tracker subscriptions too', async () => {
    const c = cluster({ 'h:1': {} });
    const made: string[] = [];
    const b = new Broker('h:1', {
      ...opts,
      transport: c.factory,
      clientFactory: (address, o) => {
        made.push(address);
        return new MqClient(address, o);
      },
    });
    await b.ready();
    expect(made).toEqual(['h:1', 'h:1']); // the tracker subscription and the shared client
    await b.close();
  });

  it('bindTransport splits the transport options off and hands every Broker client to onClient', async () => {
    const c = cluster({ 'h:1': {} });
    const seen: unknown[] = [];
    const watched: string[] = [];
    const bound = bindTransport<{ knob?: number }>({
      keys: ['knob'],
      transport: (o) => {
        seen.push(o);
        return c.factory;
      },
      onClient: (client) => void watched.push(client.address),
    });
    const clientOptions = bound.clientOptions({ knob: 3, timeout: 50 });
    expect(seen).toEqual([{ knob: 3 }]);
    expect(clientOptions).not.toHaveProperty('knob');
    expect(clientOptions.timeout).toBe(50);
    const b = new Broker('h:1', bound.brokerOptions({ ...opts, knob: 1 }));
    await b.ready();
    expect(watched).toEqual(['h:1', 'h:1']); // the tracker subscription and the shared client
    await b.close();
  });
});
