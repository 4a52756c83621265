// In-process brokers for the broker's own tests: real listener on 127.0.0.1, a fresh data dir, cleanup
// registered beside the resource.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GCProfiler, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decodeMessage, encodeMessage, Message, type MessageInit } from '@zbus/protocol';
import { type ManualClock, RawClient, scaled } from '@zbus/testkit';
import { onTestFinished } from 'vitest';
import { type ClientOptions, WebSocket } from 'ws';
import { type Broker, type BrokerOptions, createBroker } from '../../src/index.js';

export interface TestBroker {
  broker: Broker;
  port: number;
  url: string;
  dataDir: string;
  raw(): Promise<RawClient>;
}

export async function startTestBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'zbus-broker-test-'));
  const broker = createBroker({
    host: '127.0.0.1',
    port: 0,
    fsync: 'never',
    logLevel: 'silent',
    ...options,
    dataDir,
  });
  const { port } = await broker.listen();
  const clients: RawClient[] = [];
  onTestFinished(async () => {
    for (const c of clients) c.close();
    await broker.close();
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    broker,
    port,
    url: `http://127.0.0.1:${port}`,
    dataDir,
    async raw() {
      const c = await RawClient.connect(port);
      clients.push(c);
      return c;
    },
  };
}

/** Runs curl (from a child process) and splits its `-i` output into status, headers and body. */
export interface CurlResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Every response curl printed (`-i` shows 100 Continue and each reply of a keep-alive run). */
  raw: string;
}

export function hasCommand(name: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
  return r.status === 0;
}

export function curl(args: string[], input?: string | Uint8Array): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('curl', ['-sS', '-i', '--max-time', '10', ...args], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (s: string) => {
      out += s;
    });
    child.stderr!.on('data', (s: string) => {
      err += s;
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) {
        reject(new Error(`curl exited with ${code}: ${err}`));
        return;
      }
      // Skip interim responses (100 Continue); the last head is the final reply.
      let rest = out;
      let head = '';
      for (;;) {
        const end = rest.indexOf('\r\n\r\n');
        head = end < 0 ? rest : rest.slice(0, end);
        rest = end < 0 ? '' : rest.slice(end + 4);
        if (!/^HTTP\/1\.[01] 1\d\d/.test(head)) break;
      }
      const lines = head.split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status, headers, body: rest, raw: out });
    });
  });
}

/** Resolves when the socket has closed (the peer ended it or it was destroyed). */
export function closed(socket: Socket, timeoutMs = 5000): Promise<void> {
  if (socket.destroyed && socket.closed) return Promise.resolve();
  const limit = scaled(timeoutMs);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`socket still open after ${limit} ms`)), limit);
    socket.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** A fresh declare of each topic over one raw connection. */
export async function declare(c: RawClient, topic: string, headers: Record<string, string> = {}) {
  const r = await c.request({ headers: { cmd: 'declare', topic, ...headers } });
  if (r.status !== 200) throw new Error(`declare ${topic} failed: ${r.status} ${r.bodyText()}`);
  return r;
}

/**
 * A consume given `ms` of the broker's (manual) clock: sent with consume_timeout `ms`; once the broker has armed
 * that timer, the clock moves `ms` on. Resolves with the reply: a delivery, or the empty consume_timeout answer.
 */
export async function consumeFor(
  c: RawClient,
  clock: ManualClock,
  ms: number,
  headers: Record<string, string>,
): Promise<Message> {
  const armed = clock.armed(clock.now() + ms);
  const reply = c.request({ headers: { cmd: 'consume', ...headers, consume_timeout: String(ms) } });
  await armed;
  clock.advance(ms);
  return reply;
}

/** A WebSocket zbus connection: each frame one HTTP-formatted message; replies matched by `id`. */
export class WsClient {
  readonly frames: Array<{ msg: Message; binary: boolean }> = [];
  #waiters: Array<{
    match: (m: Message) => boolean;
    resolve: (f: { msg: Message; binary: boolean }) => void;
  }> = [];
  #seq = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      const f = { msg: decodeMessage(new Uint8Array(data)), binary };
      const i = this.#waiters.findIndex((w) => w.match(f.msg));
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(f);
      else this.frames.push(f);
    });
  }

  static connect(url: string, options?: ClientOptions): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      ws.once('open', () => resolve(new WsClient(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`handshake answered ${res.statusCode}`)),
      );
    });
  }

  /** Sends one message as one frame (binary, as zbus.js does with arraybuffer) and returns its id. */
  send(init: MessageInit, binary = true): string {
    const m = new Message(init);
    if (m.headers.id === undefined) m.set('id', `ws-${++this.#seq}`);
    this.ws.send(encodeMessage(m).slice(), { binary });
    return m.headers.id!;
  }

  nextFrame(match: (m: Message) => boolean = () => true, timeoutMs = 5000) {
    const i = this.frames.findIndex((f) => match(f.msg));
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]!);
    const limit = scaled(timeoutMs);
    return new Promise<{ msg: Message; binary: boolean }>((resolve, reject) => {
      const w = {
        match,
        resolve: (f: { msg: Message; binary: boolean }) => {
          clearTimeout(t);
          resolve(f);
        },
      };
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`no matching frame within ${limit} ms`));
      }, limit);
      this.#waiters.push(w);
    });
  }

  async next(match: (m: Message) => boolean = () => true, timeoutMs = 5000): Promise<Message> {
    return (await this.nextFrame(match, timeoutMs)).msg;
  }

  async request(init: MessageInit, timeoutMs = 5000): Promise<Message> {
    const id = this.send(init);
    return this.next((m) => m.headers.id === id, timeoutMs);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** A WebSocket client closed with the test. */
export async function wsConnect(port: number, options?: ClientOptions): Promise<WsClient> {
  const c = await WsClient.connect(`ws://127.0.0.1:${port}/`, options);
  onTestFinished(() => c.close());
  return c;
}

/** Polls ConsumeGroupInfo until the group has `n` consumers (a consume sent on another connection landed). */
export async function untilConsumers(c: RawClient, topic: string, group: string, n: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = await c.request({ headers: { cmd: 'query', topic, consume_group: group } });
    if (r.status === 200 && r.json<{ consumerCount: number }>().consumerCount === n) return;
  }
  throw new Error(`${topic}/${group} never reached ${n} consumers`);
}

/** Polls until the group is gone (query answers 404). */
export async function untilGroupGone(c: RawClient, topic: string, group: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = await c.request({ headers: { cmd: 'query', topic, consume_group: group } });
    if (r.status === 404) return;
  }
  throw new Error(`${topic}/${group} still exists`);
}

/** V8's `gc()` in a test process started without `--expose-gc`: a full collection, or `{ type: 'minor' }`. */
export function exposedGc(): (options?: { type: 'minor' }) => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as (options?: { type: 'minor' }) => void;
}

type HeapSnapshotStats = { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] };
const oldSpace = (s: HeapSnapshotStats): number =>
  s.heapSpaceStatistics.find((space) => space.spaceName === 'old_space')!.spaceUsedSize;

/**
 * Bytes the scavenges moved to the old generation while `run` ran: what died young does not count, and a
 * mark-compact meanwhile does not hide what was promoted.
 */
export async function promotedByScavenges(run: () => unknown): Promise<number> {
  const profiler = new GCProfiler();
  profiler.start();
  await run();
  let promoted = 0;
  for (const g of profiler.stop().statistics)
    if (g.gcType === 'Scavenge') promoted += oldSpace(g.afterGC) - oldSpace(g.beforeGC);
  return promoted;
}
