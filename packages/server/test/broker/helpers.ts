// In-process brokers for the broker's own tests: real listener on 127.0.0.1, a fresh data dir, cleanup
// registered beside the resource.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '@zbus/testkit';
import { onTestFinished } from 'vitest';
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
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
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
