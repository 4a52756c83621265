// A network fuzzer: random and mutated HTTP messages on raw TCP, WebSocket frames (whole zbus messages
// mutated, and raw frame bytes), and URL forms, all at one running broker. It must stay up, answer errors
// (or close the connection), and leave stored data intact: a topic seeded before the fuzzing is read back
// and compared afterwards, and nothing may appear outside the data directory.
import { isUtf8 } from 'node:buffer';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMessage, Message } from '@zbus/protocol';
import { scaled } from '@zbus/testkit';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { WebSocket } from 'ws';
import { CHAOS, chaosBroker, payloadFor, prng, readAll, report, rssKiB, Wire } from './helpers.js';

// each fuzzer takes up to 2 minutes: longer than the default test timeout (both scale with the load).
vi.setConfig({ testTimeout: scaled(120_000) });

type Rand = ReturnType<typeof prng>;
const enc = new TextEncoder();

interface Exchange {
  data: Buffer;
  closedByServer: boolean;
  timedOut: boolean;
}

/** Writes `bytes` on a fresh connection (half-closing it when `end`), collects the answer until close or timeout. */
function exchange(port: number, bytes: Uint8Array, end: boolean, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timedOut = false;
    const s = netConnect(port, '127.0.0.1', () => {
      s.write(bytes);
      if (end) s.end();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      s.destroy();
    }, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closedByServer: !timedOut, timedOut });
    });
  });
}

/** Sends the handshake, waits for the 101, then sends `frame`; collects until close or timeout. */
function exchangeAfterUpgrade(
  port: number,
  handshake: string,
  frame: Uint8Array,
  timeoutMs: number,
): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timedOut = false;
    let upgraded = false;
    const s = netConnect(port, '127.0.0.1', () => s.write(handshake));
    const timer = setTimeout(() => {
      timedOut = true;
      s.destroy();
    }, timeoutMs);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (!upgraded && Buffer.concat(chunks).includes('\r\n\r\n')) {
        upgraded = true;
        s.write(frame);
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closedByServer: !timedOut, timedOut });
    });
  });
}

function statuses(data: Buffer): number[] {
  return [...data.toString('latin1').matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}

/** Runs `n` tasks with at most `width` at once. */
async function pool(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

const FUZZ_TOPICS = ['Fz', 'fz2', 'Fz.dlq', 'x'];

/** Valid messages the mutator starts from. */
function corpus(): Uint8Array[] {
  const m = (init: ConstructorParameters<typeof Message>[0]) => encodeMessage(new Message(init));
  return [
    m({ headers: { cmd: 'produce', topic: 'Fz', id: 'f1' }, body: 'hello' }),
    m({ headers: { cmd: 'declare', topic: 'fz2', consume_group: 'g', group_mask: '64' } }),
    m({ headers: { cmd: 'consume', topic: 'Fz', consume_group: 'Fz', consume_timeout: '50' } }),
    m({ headers: { cmd: 'query', topic: 'Fz' } }),
    m({ headers: { cmd: 'ack', topic: 'fz2', consume_group: 'g', offset: '0' } }),
    m({ headers: { cmd: 'route', recver: 'nobody', id: 'r1' }, body: 'x' }),
    m({ headers: { cmd: 'track_pub' }, body: '{"serverInfo":{}}' }),
    m({ url: '/Fz?cmd=produce&body=abc', headers: {} }),
    m({ url: '/declare/fz2/g2', headers: {} }),
    m({ method: 'POST', url: '/Fz', headers: { 'content-type': 'application/json' }, body: '{"a":1}' }),
    enc.encode('GET /?cmd=server HTTP/1.1\r\nhost: localhost\r\n\r\n'),
    enc.encode('POST /Fz HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'),
    enc.encode('GET /metrics HTTP/1.0\r\n\r\n'),
    enc.encode(
      'GET / HTTP/1.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n',
    ),
  ];
}

const NASTY = [
  '\0',
  '\r',
  '\n',
  '\r\n\r\n',
  ':',
  ' ',
  '\t',
  'content-length: -1\r\n',
  'content-length: 99999999999999999999\r\n',
  'content-length: 5\r\ncontent-length: 7\r\n',
  'transfer-encoding: chunked\r\n',
  'topic: ../../etc\r\n',
  'topic: \u0000\r\n',
  'cmd: remove\r\n',
  'offset: -5\r\n',
  'consume_window: 1e309\r\n',
  'group_mask: 4294967296\r\n',
  '\u00ff\u00fe',
  'HTTP/1.1 200 OK\r\n',
  '%00%2e%2e%2f',
];

function mutate(rnd: Rand, input: Uint8Array): Uint8Array {
  let b = Buffer.from(input);
  const ops = 1 + rnd.int(4);
  for (let k = 0; k < ops; k++) {
    const at = b.length === 0 ? 0 : rnd.int(b.length);
    switch (rnd.int(7)) {
      case 0: // flip bits
        if (b.length > 0) b[at] = b[at]! ^ (1 << rnd.int(8));
        break;
      case 1: // random byte
        if (b.length > 0) b[at] = rnd.int(256);
        break;
      case 2: // delete a run
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rnd.int(8))]);
        break;
      case 3: // insert something nasty
        b = Buffer.concat([b.subarray(0, at), Buffer.from(rnd.pick(NASTY), 'latin1'), b.subarray(at)]);
        break;
      case 4: // duplicate a run
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + rnd.int(40)), b.subarray(at)]);
        break;
      case 5: // truncate
        b = b.subarray(0, at);
        break;
      default: {
        // random garbage
        const g = Buffer.alloc(1 + rnd.int(64));
        for (let i = 0; i < g.length; i++) g[i] = rnd.int(256);
        b = Buffer.concat([b.subarray(0, at), g, b.subarray(at)]);
      }
    }
  }
  return b;
}

function tree(dir: string): string[] {
  return readdirSync(dir).sort();
}

async function seeded(o: { auth?: unknown } = {}) {
  // The data dir sits alone in a parent dir, so anything written outside it shows up there.
  const parent = mkdtempSync(join(tmpdir(), 'zbus-chaos-fuzz-'));
  const dataDir = join(parent, 'data');
  mkdirSync(dataDir);
  onTestFinished(() => rmSync(parent, { recursive: true, force: true }));
  const b = await chaosBroker({
    dataDir,
    fsync: 'never',
    config: { maxHeaderBytes: 8192, maxBodyBytes: 256 * 1024, idleTimeoutMs: 3000, rpcTimeoutMs: 500 },
    ...o,
  });
  const w = await Wire.connect(b.port);
  await w.request({ headers: { cmd: 'declare', topic: 'Keep' } });
  const N = 200;
  await Promise.all(
    Array.from({ length: N }, (_, i) =>
      w.request({ headers: { cmd: 'produce', topic: 'Keep', id: `k${i}` }, body: payloadFor(`k${i}`, 100) }),
    ),
  );
  w.close();
  const verify = async () => {
    expect(b.process.exitCode, `broker exited:\n${b.output().slice(-2000)}`).toBeNull();
    const health = await fetch(`http://127.0.0.1:${b.port}/healthz`);
    expect(health.status).toBe(200);
    const got = await readAll(b.port, 'Keep');
    expect(got.depth).toBe(N);
    expect(got.missing).toEqual([]);
    expect(got.records.map((r) => r.id)).toEqual(Array.from({ length: N }, (_, i) => `k${i}`));
    expect(got.records.every((r) => r.body === payloadFor(r.id, 100))).toBe(true);
    expect(tree(parent)).toEqual(['data']);
  };
  return { b, verify, parent };
}

describe('network fuzzer', () => {
  it(`survives ${CHAOS.fuzzInputs} random and mutated HTTP messages on raw TCP`, async () => {
    const rnd = prng(CHAOS.seed + 11);
    const { b, verify } = await seeded();
    const base = corpus();
    const tally = new Map<string, number>();
    const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
    let answered = 0;
    let closedSilently = 0;
    let hung = 0;
    await pool(CHAOS.fuzzInputs, 16, async () => {
      let input: Uint8Array;
      const kind = rnd.int(10);
      if (kind === 0) {
        input = Buffer.alloc(1 + rnd.int(512));
        for (let i = 0; i < input.length; i++) input[i] = rnd.int(256);
      } else if (kind === 1) {
        // several messages pipelined, one of them mutated
        const parts = Array.from({ length: 2 + rnd.int(4) }, () => rnd.pick(base));
        const j = rnd.int(parts.length);
        parts[j] = mutate(rnd, parts[j]!);
        input = Buffer.concat(parts);
      } else input = mutate(rnd, rnd.pick(base));
      const x = await exchange(b.port, input, rnd.next() < 0.8, 400);
      const st = statuses(x.data);
      for (const s of st) count(String(s));
      if (st.length > 0) answered++;
      else if (x.timedOut) hung++;
      else closedSilently++;
    });
    const rss = rssKiB(b.process.pid!);
    report('fuzz tcp', {
      inputs: CHAOS.fuzzInputs,
      answered,
      closedWithoutAnswer: closedSilently,
      openAfter400ms: hung,
      statuses: Object.fromEntries([...tally].sort()),
      brokerRssKiB: rss,
    });
    await verify();
    // Every error class the decoder knows came back as a status, not as a crash.
    expect(tally.get('400')).toBeGreaterThan(0);
    expect(rss).toBeLessThan(400 * 1024);
  });

  it(`survives ${CHAOS.fuzzInputs} WebSocket frames (mutated zbus messages and raw frame bytes)`, async () => {
    const rnd = prng(CHAOS.seed + 13);
    const { b, verify } = await seeded();
    const base = corpus().slice(0, 10);
    let sent = 0;
    let replies = 0;
    let closes = 0;
    let closedByServer = 0;
    const closeCodes = new Map<number, number>();
    const half = Math.floor(CHAOS.fuzzInputs / 2);
    // (1) Well-formed frames holding mutated messages: each gets an answer (or none, as 0.11 does for
    // a few commands), and the connection stays usable.
    await pool(Math.ceil(half / 50), 4, async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${b.port}/`);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      let got = 0;
      ws.on('message', () => {
        got++;
      });
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      for (let i = 0; i < 50 && ws.readyState === WebSocket.OPEN; i++) {
        const frame = rnd.next() < 0.1 ? Buffer.alloc(0) : mutate(rnd, rnd.pick(base));
        // Text frames must hold UTF-8 (the server closes with 1007 otherwise, tested below).
        ws.send(frame, { binary: !isUtf8(frame) || rnd.next() < 0.5 });
        sent++;
      }
      // A well-formed probe at the end must still be answered on the same connection, unless the server
      // closed it for a protocol reason (a text frame that is not UTF-8 must be closed with 1007).
      const probe = encodeMessage(new Message({ headers: { cmd: 'query', topic: 'Keep', id: 'probe' } }));
      const answered = new Promise<boolean>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error('the probe was neither answered nor its connection closed')),
          scaled(10_000),
        );
        ws.on('message', (d: Buffer) => {
          if (d.toString('latin1').includes('\r\nid: probe\r\n')) {
            clearTimeout(t);
            resolve(true);
          }
        });
        ws.once('close', () => {
          clearTimeout(t);
          resolve(false);
        });
      });
      if (ws.readyState === WebSocket.OPEN) ws.send(probe);
      const ok = await answered;
      if (!ok) {
        const code = await closed;
        expect([1007, 1009]).toContain(code);
        closedByServer++;
      }
      replies += got;
      ws.close();
      const code = await closed;
      closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
    });
    // (2) Raw frame bytes after a real handshake: bad opcodes, unmasked frames, reserved bits, absurd
    // lengths. The server must close such a connection, not hang or die.
    const handshake =
      'GET / HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
      'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n';
    let rawOpen = 0;
    await pool(half, 16, async () => {
      const payload = mutate(rnd, rnd.pick(base));
      const head = Buffer.alloc(2 + 8 + 4);
      head[0] = rnd.next() < 0.5 ? 0x80 | rnd.int(16) : rnd.int(256);
      let p = 2;
      const lenKind = rnd.int(4);
      if (lenKind === 0) head[1] = 0x80 | Math.min(payload.length, 125);
      else if (lenKind === 1) {
        head[1] = 0x80 | 126;
        head.writeUInt16BE(rnd.int(65536), 2);
        p = 4;
      } else if (lenKind === 2) {
        head[1] = 0x80 | 127;
        head.writeUInt32BE(rnd.int(2 ** 32), 2);
        head.writeUInt32BE(rnd.int(2 ** 32), 6);
        p = 10;
      } else head[1] = rnd.int(256); // maybe unmasked
      const mask = Buffer.from([rnd.int(256), rnd.int(256), rnd.int(256), rnd.int(256)]);
      mask.copy(head, p);
      const frame = Buffer.concat([head.subarray(0, p + 4), payload]);
      // Half of them behind the handshake in the same write, half after the 101 answer.
      const x =
        rnd.next() < 0.5
          ? await exchange(b.port, Buffer.concat([Buffer.from(handshake), frame]), false, 300)
          : await exchangeAfterUpgrade(b.port, handshake, frame, 300);
      sent++;
      if (x.timedOut) rawOpen++;
      else closes++;
    });
    const rss = rssKiB(b.process.pid!);
    report('fuzz websocket', {
      framesSent: sent,
      repliesToWellFormedFrames: replies,
      wellFormedConnectionsClosedByServer: closedByServer,
      rawFrameConnectionsClosedByServer: closes,
      rawFrameConnectionsStillOpenAfter300ms: rawOpen,
      closeCodes: Object.fromEntries(closeCodes),
      brokerRssKiB: rss,
    });
    await verify();
    expect(rss).toBeLessThan(400 * 1024);
  });

  it(`survives ${CHAOS.fuzzInputs} URL forms (0.11, 0.8, RPC, reserved paths, broken encodings)`, async () => {
    const rnd = prng(CHAOS.seed + 17);
    const { b, verify } = await seeded();
    const names = [
      ...FUZZ_TOPICS,
      '..',
      '.',
      '%2e%2e',
      '%2E%2E%2F..%2Fetc',
      '%00',
      '%',
      '%ZZ',
      '%C0%AE%C0%AE',
      '\u00e9t\u00e9',
      'a%2Fb',
      'a\\b',
      'x'.repeat(300),
      'metrics',
      'rpc',
      '',
    ];
    const cmds = [
      'produce',
      'consume',
      'declare',
      'query',
      'remove',
      'empty',
      'rpc',
      'track_sub',
      'tracker',
      'server',
      'login',
      'logout',
      'js',
      'css',
      'img',
      'page',
      'home',
      'favicon.ico',
      'ping',
      'heartbeat',
      'nack',
      'touch',
      'ack',
      'unconsume',
      'route',
      'bogus',
      'PRODUCE',
    ];
    const keys = [
      'cmd',
      'topic',
      'token',
      'consume_group',
      'group_mask',
      'topic_mask',
      'offset',
      'consume_window',
      'delay',
      'deliver_at',
      'body',
      'group_start_offset',
      'group_filter',
      'module',
      'timeout',
      'consume_timeout',
      'ack',
      'id',
      'tag',
    ];
    const values = [
      '',
      '0',
      '1',
      '-1',
      '64',
      '3',
      'NaN',
      '1e400',
      '99999999999999999999',
      '%00',
      '..%2F..',
      'x'.repeat(200),
      'true',
      'a=b',
      '#',
      '*',
    ];
    const url = (): string => {
      const segs: string[] = [];
      const form = rnd.int(4);
      if (form === 1) segs.push(rnd.pick(cmds));
      if (form === 2) segs.push('rpc');
      for (let i = 0, n = rnd.int(5); i < n; i++) segs.push(rnd.pick(names));
      let u = `/${segs.join('/')}`;
      if (form === 3)
        u = rnd.pick(['/metrics', '/healthz', '/readyz', '/', '//', '/?', '/#frag', '*', 'http://evil/x']);
      const q: string[] = [];
      if (rnd.next() < 0.6) q.push(`consume_timeout=50`);
      for (let i = 0, n = rnd.int(5); i < n; i++) {
        const k = rnd.pick(keys);
        const v = k === 'cmd' ? rnd.pick(cmds) : rnd.pick(values);
        q.push(rnd.next() < 0.1 ? `${k}` : `${k}=${v}`);
      }
      if (rnd.next() < 0.1) q.push('&&&==');
      return q.length > 0 ? `${u}?${q.join('&')}` : u;
    };
    const tally = new Map<string, number>();
    let answered = 0;
    let unanswered = 0;
    await pool(CHAOS.fuzzInputs, 24, async () => {
      const method = rnd.pick(['GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']);
      const u = url();
      const body = method === 'POST' && rnd.next() < 0.5 ? 'fuzz-body' : '';
      const req = `${method} ${u} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
      const x = await exchange(b.port, Buffer.from(req, 'latin1'), false, 500);
      const st = statuses(x.data);
      if (st.length > 0) {
        answered++;
        const k = String(st[0]);
        tally.set(k, (tally.get(k) ?? 0) + 1);
      } else unanswered++;
    });
    const rss = rssKiB(b.process.pid!);
    report('fuzz url forms', {
      inputs: CHAOS.fuzzInputs,
      answered,
      unansweredWithin500ms: unanswered,
      statuses: Object.fromEntries([...tally].sort()),
      brokerRssKiB: rss,
    });
    await verify();
    expect(tally.get('500') ?? 0, 'no request should end in an internal error').toBe(0);
  });
});
