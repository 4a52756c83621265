// Proxy topics end to end: a real target HTTP server, a real broker and a real `zbus proxy` process, all on
// loopback. A caller's plain HTTP request to http://<broker>/<entry>/<path> reaches the target and the
// target's answer comes back (zbus-protocol.md §12 httpProxy, docs/dmz.md).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BROKER_CLI, RawClient, type RunningBroker, scaled, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { proxyOptionsFromArgs } from '../src/proxy/cli.js';
import { filtered, requestHeaders, responseHeaders } from '../src/proxy/headers.js';
import { resolveProxyOptions } from '../src/proxy/options.js';
import { startProxy } from '../src/proxy/proxy.js';
import { PathRefused, targetUrl } from '../src/proxy/target-path.js';
import { confinementTargets } from './proxy-targets.js';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The target: echoes what it got as JSON, with a few special paths. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const url = req.url ?? '/';
    const status = /^\/status\/(\d{3})/.exec(url);
    if (url.startsWith('/slow')) {
      // Far past any proxy timeout in these tests: a 504 can only come from the proxy's own timer.
      const t = setTimeout(() => res.end('late'), 600_000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    if (url.startsWith('/binary')) {
      // The body reversed, so both directions carry every byte value.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.from(body).reverse());
      return;
    }
    if (url.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(200_000, 7));
      return;
    }
    const seen: Seen = { method: req.method ?? '', url, headers: req.headers, body: body.toString('utf8') };
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.writeHead(status ? Number(status[1]) : 200, {
      'content-type': 'application/json',
      'x-reply': 'from target',
      'x-secret': 'do not return',
      recver: 'someone-else',
    });
    res.end(JSON.stringify(seen));
  });
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

interface ProxyProcess {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns the built CLI: `zbus proxy ...`, resolved when it prints that it is ready. */
async function spawnProxy(args: string[]): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [BROKER_CLI, 'proxy', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`proxy not ready in time:\n${out}`)), scaled(15_000));
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (/zbus proxy \S+ ready/.test(out)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`proxy exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Repeats `fn` until `ok` accepts its result or `scaled(10 s)` pass, and returns the last result (the caller's
 * expect then shows it), so tests wait for an event instead of sleeping.
 */
async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const end = Date.now() + scaled(10_000);
  for (;;) {
    const last = await fn();
    if (ok(last) || Date.now() > end) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('zbus proxy (process)', () => {
  let target: Server;
  let targetPort: number;
  let broker: RunningBroker;
  let proxy: ProxyProcess;
  let base: string;
  let configFile: string;

  beforeAll(async () => {
    target = createServer(handler);
    targetPort = await listen(target);
    broker = await startBroker({ fsync: 'never' });
    base = `http://127.0.0.1:${broker.port}`;
    configFile = join(tmpdir(), `zbus-proxy-${process.pid}-${Date.now()}.json`);
    writeFileSync(
      configFile,
      JSON.stringify({
        broker: broker.address,
        entries: [
          {
            entry: 'Orders',
            target: `http://127.0.0.1:${targetPort}`,
            connections: 4,
            timeout: 1_000,
            sendFilter: ['x-drop', 'x-internal-*'],
            recvFilter: ['x-secret'],
            maxBodyBytes: 100_000,
          },
          { entry: 'Down', target: `http://127.0.0.1:${await closedPort()}`, connections: 1 },
        ],
      }),
    );
    proxy = await spawnProxy(['--config', configFile]);
  });

  afterAll(async () => {
    await proxy?.stop();
    await broker?.stop();
    rmSync(configFile, { force: true });
    target?.closeAllConnections();
    await new Promise((r) => target?.close(r));
  });

  it('forwards GET /<entry>/api/orders?x=1 to the target as /api/orders?x=1', async () => {
    const res = await fetch(`${base}/Orders/api/orders?x=1`, { headers: { 'x-custom': 'hi' } });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as Seen;
    expect(seen.method).toBe('GET');
    expect(seen.url).toBe('/api/orders?x=1');
    expect(seen.headers['x-custom']).toBe('hi');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    // the broker's own headers, and the query pair the URL rules copied into a header, stay behind
    for (const h of [
      'cmd',
      'topic',
      'sender',
      'remote-addr',
      'origin_url',
      'origin_method',
      'id',
      'x',
      'token',
    ]) {
      expect(seen.headers[h], h).toBeUndefined();
    }
    expect(seen.headers.host).toBe(`127.0.0.1:${targetPort}`);
  });

  it('matches the entry without regard to case and drops a ?token= meant for the broker', async () => {
    const res = await fetch(`${base}/orders/a/b?token=secret&y=2`);
    const seen = (await res.json()) as Seen;
    expect(seen.url).toBe('/a/b?y=2');
  });

  it('forwards POST, PUT, PATCH and DELETE with their bodies', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const res = await fetch(`${base}/Orders/api/orders/7`, {
        method,
        body: `${method} body`,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
      });
      expect(res.status, method).toBe(200);
      const seen = (await res.json()) as Seen;
      expect(seen.method).toBe(method);
      expect(seen.url).toBe('/api/orders/7');
      expect(seen.body).toBe(`${method} body`);
      expect(seen.headers['content-type']).toBe('text/plain; charset=utf-8');
    }
  });

  it('filters headers both ways and never lets the target steer the route', async () => {
    const res = await fetch(`${base}/Orders/h`, {
      headers: { 'x-drop': '1', 'x-internal-user': 'u', 'x-keep': 'k' },
    });
    const seen = (await res.json()) as Seen;
    expect(seen.headers['x-keep']).toBe('k');
    expect(seen.headers['x-drop']).toBeUndefined();
    expect(seen.headers['x-internal-user']).toBeUndefined();
    expect(res.headers.get('x-reply')).toBe('from target');
    expect(res.headers.get('x-secret')).toBeNull();
    expect(res.headers.get('recver')).toBeNull();
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('set-cookie')).toBe('a=1, b=2');
  });

  it('passes status codes through: 201, 404, 500', async () => {
    for (const status of [201, 404, 500]) {
      const res = await fetch(`${base}/Orders/status/${status}`, { method: 'POST', body: 'x' });
      expect(res.status).toBe(status);
      expect(((await res.json()) as Seen).url).toBe(`/status/${status}`);
    }
  });

  it('carries binary bodies unchanged both ways', async () => {
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 13) % 256;
    const res = await fetch(`${base}/Orders/binary`, {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const back = new Uint8Array(await res.arrayBuffer());
    expect(Buffer.from(back).equals(Buffer.from(bytes).reverse())).toBe(true);
  });

  it('answers 20 concurrent requests, each with its own answer', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${base}/Orders/concurrent/${i}`, { method: 'POST', body: `n=${i}` }).then(async (r) => ({
          status: r.status,
          seen: (await r.json()) as Seen,
        })),
      ),
    );
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      expect(a.seen.url).toBe(`/concurrent/${i}`);
      expect(a.seen.body).toBe(`n=${i}`);
    });
  });

  it('refuses a request body over maxBodyBytes with 413 and a response over it with 502', async () => {
    const res = await fetch(`${base}/Orders/upload`, { method: 'POST', body: Buffer.alloc(150_000, 1) });
    expect(res.status).toBe(413);
    expect(await res.text()).toMatch(/exceeds 100000 bytes \(maxBodyBytes/);
    const big = await fetch(`${base}/Orders/big`);
    expect(big.status).toBe(502);
    expect(await big.text()).toMatch(/exceeds 100000 bytes/);
  });

  it('answers 504 with a clear body when the target is too slow', async () => {
    const res = await fetch(`${base}/Orders/slow`);
    expect(res.status).toBe(504);
    expect(res.headers.get('error_code')).toBe('ZBUS_ERR_TIMEOUT');
    expect(await res.text()).toMatch(/did not answer within 1000 ms/);
  });

  it('answers 502 with a clear body when the target is down', async () => {
    const res = await fetch(`${base}/Down/api/orders`);
    expect(res.status).toBe(502);
    expect(res.headers.get('error_code')).toBe('ZBUS_ERR_BAD_GATEWAY');
    expect(await res.text()).toMatch(
      /^502: target http:\/\/127\.0\.0\.1:\d+ of entry Down unreachable: .*ECONNREFUSED/,
    );
  });

  it('answers 503 at once on a proxy topic nobody consumes', async () => {
    const c = await RawClient.connect(broker.port);
    onTestFinished(() => c.close());
    const info = await c.request({ headers: { cmd: 'declare', topic: 'Nobody', topic_mask: '5' } });
    expect(info.status).toBe(200);
    // 503 NO_RESPONDERS, not the 504 that the 10 s RPC timeout would give.
    const res = await fetch(`${base}/Nobody/api/orders`);
    expect(res.status).toBe(503);
    expect(res.headers.get('error_code')).toBe('ZBUS_ERR_NO_RESPONDERS');
  });

  it('serves again after the proxy process is killed and started again', async () => {
    await proxy.stop();
    const gone = await until(
      () => fetch(`${base}/Orders/after`).then((r) => r.status),
      (s) => s === 503,
    );
    expect(gone).toBe(503);
    proxy = await spawnProxy(['--config', configFile]);
    const res = await fetch(`${base}/Orders/after`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as Seen).url).toBe('/after');
  });

  it('takes a single entry from flags', async () => {
    const p = await spawnProxy([
      '--broker',
      broker.address,
      '--entry',
      'Flags',
      '--target',
      `http://127.0.0.1:${targetPort}/base`,
      '--connections',
      '2',
      '--timeout',
      '2000',
    ]);
    onTestFinished(() => p.stop());
    expect(p.output()).toMatch(/entry Flags -> http:\/\/127\.0\.0\.1:\d+\/base \(2 connections\)/);
    const res = await fetch(`${base}/Flags/x?q=1`);
    expect(((await res.json()) as Seen).url).toBe('/base/x?q=1');
    const exited = once(p.child, 'exit');
    p.child.kill('SIGTERM');
    expect((await exited)[0]).toBe(0);
  });

  it('prints help, and refuses incomplete flags with a clear message and exit code 2', () => {
    const help = spawnSync(process.execPath, [BROKER_CLI, 'proxy', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--target <url>');
    const bad = spawnSync(process.execPath, [BROKER_CLI, 'proxy', '--entry', 'X'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--entry needs --target');
    expect(bad.stderr).toContain("Run 'zbus proxy --help' for usage.");
    const none = spawnSync(process.execPath, [BROKER_CLI, 'proxy'], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('nothing to proxy');
    const url = spawnSync(process.execPath, [BROKER_CLI, 'proxy', '--entry', 'X', '--target', 'ftp://h'], {
      encoding: 'utf8',
    });
    expect(url.status).toBe(2);
    expect(url.stderr).toContain('must be an http:// or https:// URL');
  });
});

/** Writes one raw request (the target exactly as given, no client normalising it) and reads the answer. */
function rawGet(port: number, target: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () =>
      s.end(`GET ${target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`),
    );
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('error', reject);
    s.once('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
  });
}

describe('proxy path confinement', () => {
  it('never reaches another service or leaves the base path, whatever the encoding', async () => {
    // The internal service next to the targets: nothing a caller sends through the DMZ may reach it.
    const { entries, inner, internalHits, seen } = await confinementTargets();
    const broker = await startBroker({ fsync: 'never' });
    onTestFinished(() => broker.stop().then(() => undefined));
    const proxy = await startProxy({ broker: broker.address, entries });
    onTestFinished(() => proxy.close());
    const attempts = [
      `//${inner}/secret`,
      `///${inner}/secret`,
      `/\\${inner}/secret`,
      `/\\\\${inner}/secret`,
      `/%2f%2f${inner}/secret`,
      `/%5c%5c${inner}/secret`,
      `/http://${inner}/secret`,
      `/@${inner}/secret`,
      `/..//${inner}/secret`,
      '/../admin',
      '/a/../../admin',
      '/%2e%2e/admin',
      '/%2E%2E/%2e%2e/admin',
      '/.%2e/admin',
      '/..%2fadmin',
      '/%2e%2e%2fadmin',
      '/..%5cadmin',
      '/..\\admin',
      '/%252e%252e/admin',
      '/%c0%ae%c0%ae/admin',
      '/..;/admin',
      '/%00/admin',
    ];
    const answers: Array<[string, number]> = [];
    for (const entry of ['/orders', '/root']) {
      for (const a of attempts) answers.push([entry + a, (await rawGet(broker.port, entry + a)).status]);
    }
    // A caller may still use dots and odd characters inside the base path.
    const fine = await rawGet(broker.port, '/orders/a/./b/../c%20d');
    expect(fine.text).toContain('target saw /api/a/c%20d');
    expect(internalHits).toEqual([]);
    for (const url of seen.api) expect(url === '/api' || url.startsWith('/api/'), url).toBe(true);
    for (const url of seen.root)
      expect(url.includes('..') || url.toLowerCase().includes('%2e'), url).toBe(false);
    // Each was refused with 400 (by the proxy, or by the broker before it), or answered by the target itself
    // under its base path (`//host/x` becomes the path //host/x there, on the target's own origin).
    for (const [url, status] of answers) expect([200, 400], url).toContain(status);
    expect(proxy.stats().Orders!.badPath).toBeGreaterThan(10);
  });
});

describe('zbus proxy options', () => {
  it('takes -s/--server and --token, or ZBUS_SERVER and ZBUS_TOKEN, like the other commands', () => {
    const entry = ['--entry', 'E', '--target', 'http://127.0.0.1:8080'];
    const env = { ZBUS_SERVER: 'env-host:15555', ZBUS_TOKEN: 'env-token' };
    expect(proxyOptionsFromArgs(entry, env)).toMatchObject({ broker: 'env-host:15555', token: 'env-token' });
    expect(proxyOptionsFromArgs(['-s', 'flag-host:1', '--token', 't', ...entry], env)).toMatchObject({
      broker: 'flag-host:1',
      token: 't',
    });
    expect(proxyOptionsFromArgs(['--server', 'h:2', ...entry], {})).toMatchObject({ broker: 'h:2' });
    expect(proxyOptionsFromArgs(['--broker', 'h:3', ...entry], env)).toMatchObject({ broker: 'h:3' });
    const none = proxyOptionsFromArgs(entry, {});
    expect(none === 'help' ? none : [none.broker, none.token]).toEqual([undefined, undefined]);
  });
});

describe('startProxy (in process)', () => {
  it('forwards, round-robins over targets, counts, and stops answering after close', async () => {
    const hits = [0, 0];
    const servers = [0, 1].map((i) =>
      createServer((req, res) => {
        hits[i] = (hits[i] ?? 0) + 1;
        req.resume();
        req.on('end', () => res.end(`target ${i}`));
      }),
    );
    const ports = await Promise.all(servers.map(listen));
    onTestFinished(async () => {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    });
    const broker = await startBroker({ fsync: 'never' });
    onTestFinished(() => broker.stop().then(() => undefined));
    const lines: string[] = [];
    const proxy = await startProxy({
      broker: broker.address,
      entries: [
        {
          entry: 'Lib',
          target: [...ports.map((p) => `http://127.0.0.1:${p}`), `http://127.0.0.1:${await closedPort()}`],
          connections: 2,
        },
      ],
      log: (_level, m) => lines.push(m),
    });
    let closed = false;
    onTestFinished(() => (closed ? undefined : proxy.close()));
    expect(lines.join('\n')).toMatch(/entry Lib -> /);
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`http://127.0.0.1:${broker.port}/Lib/rr`);
      expect(res.status).toBe(200);
      bodies.push(await res.text());
    }
    // the dead third target passes its turn on to the next live one
    expect(hits[0]! + hits[1]!).toBe(6);
    expect(hits[0]).toBeGreaterThanOrEqual(2);
    expect(hits[1]).toBeGreaterThanOrEqual(2);
    expect(proxy.stats().Lib).toMatchObject({ forwarded: 6, badGateway: 0 });
    await proxy.close();
    closed = true;
    const after = await until(
      () => fetch(`http://127.0.0.1:${broker.port}/Lib/rr`).then((r) => r.status),
      (s) => s === 503,
    );
    expect(after).toBe(503);
  });

  it('reconnects after the broker restarts and declares its entry again', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('still here'));
    });
    const port = await listen(server);
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const broker = await startBroker({ fsync: 'never' });
    onTestFinished(() => broker.stop().then(() => undefined));
    const proxy = await startProxy({
      broker: broker.address,
      entries: [{ entry: 'Again', target: `http://127.0.0.1:${port}`, connections: 2 }],
      reconnectMaxDelay: 500,
    });
    onTestFinished(() => proxy.close());
    expect((await fetch(`http://127.0.0.1:${broker.port}/Again/x`)).status).toBe(200);
    await broker.restart();
    const res = await until(
      () =>
        fetch(`http://127.0.0.1:${broker.port}/Again/x`).then(async (r) => ({
          status: r.status,
          text: await r.text(),
        })),
      (r) => r.status === 200,
    );
    expect(res).toEqual({ status: 200, text: 'still here' });
  });

  it('consumes with its token on a broker with auth, and keeps retrying, saying why, with a wrong one', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('authorised'));
    });
    const port = await listen(server);
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const authFile = join(tmpdir(), `zbus-proxy-auth-${process.pid}-${Date.now()}.json`);
    writeFileSync(
      authFile,
      JSON.stringify({
        tokens: [
          {
            token: 'proxy-t',
            operations: ['declare', 'consume', 'route', 'query'],
            topics: [{ topic: 'Secure' }],
          },
          { token: '', operations: ['produce'], topics: [{ topic: 'Secure' }] },
        ],
      }),
    );
    onTestFinished(() => rmSync(authFile, { force: true }));
    const broker = await startBroker({ fsync: 'never', args: ['--auth', authFile] });
    onTestFinished(() => broker.stop().then(() => undefined));
    const { createProxy } = await import('../src/proxy/proxy.js');
    const lines: string[] = [];
    const wrong = createProxy({
      broker: broker.address,
      token: 'not-the-token',
      entries: [{ entry: 'Secure', target: `http://127.0.0.1:${port}`, connections: 1 }],
      reconnectDelay: 20,
      reconnectMaxDelay: 40,
      log: (level, m) => lines.push(`${level} ${m}`),
    });
    const failing = wrong.start().catch((e: Error) => e);
    await until(
      async () => lines.length,
      (n) => n >= 2,
    );
    expect(lines[0]).toMatch(/^warn entry Secure: cannot consume on .*Forbbiden.*retrying in 20 ms/);
    await wrong.close();
    await failing;
    const proxy = await startProxy({
      broker: broker.address,
      token: 'proxy-t',
      entries: [{ entry: 'Secure', target: `http://127.0.0.1:${port}`, connections: 2 }],
    });
    onTestFinished(() => proxy.close());
    const res = await fetch(`http://127.0.0.1:${broker.port}/Secure/x`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('authorised');
  });

  it('retries with backoff until the broker is there', async () => {
    const port = await closedPort();
    const lines: string[] = [];
    const { createProxy } = await import('../src/proxy/proxy.js');
    const proxy = createProxy({
      broker: `127.0.0.1:${port}`,
      entries: [{ entry: 'Later', target: 'http://127.0.0.1:1' }],
      reconnectDelay: 20,
      reconnectMaxDelay: 40,
      log: (level, m) => lines.push(`${level} ${m}`),
    });
    const started = proxy.start().catch((e: Error) => e);
    await until(
      async () => lines.length,
      (n) => n >= 3,
    );
    expect(lines[0]).toMatch(/^warn entry Later: cannot consume on 127\.0\.0\.1:\d+: .*retrying in 20 ms/);
    await proxy.close();
    expect(await started).toBeInstanceOf(Error);
  });
});

describe('proxy options and headers', () => {
  it('rejects bad options with a message naming the option', () => {
    expect(() => resolveProxyOptions({ entries: [] })).toThrow(/entries needs at least one entry/);
    expect(() => resolveProxyOptions({ entries: [{ entry: 'a', target: 'ftp://x' }] })).toThrow(
      /entries\[0\]\.target\[0\] must be an http/,
    );
    expect(() =>
      resolveProxyOptions({ entries: [{ entry: 'a', target: 'http://x', connections: 0 }] }),
    ).toThrow(/entries\[0\]\.connections must be an integer >= 1/);
    expect(() =>
      resolveProxyOptions({
        entries: [
          { entry: 'a', target: 'http://x' },
          { entry: 'A', target: 'http://y' },
        ],
      }),
    ).toThrow(/entry A is listed twice/);
    expect(() =>
      resolveProxyOptions({ broker: 'nohost', entries: [{ entry: 'a', target: 'http://x' }] }),
    ).toThrow(/broker must be host:port/);
  });

  it('maps caller URLs onto the target', () => {
    const t = new URL('http://svc:8080/');
    const at = (url: string, entry: string, target = t) => targetUrl(url, entry, target).href;
    expect(at('/Orders/api/orders?x=1', 'orders')).toBe('http://svc:8080/api/orders?x=1');
    expect(at('/Orders', 'Orders')).toBe('http://svc:8080/');
    expect(at('/OrdersX/a', 'Orders')).toBe('http://svc:8080/OrdersX/a');
    expect(at('/Orders/a?token=t&b=1&token', 'Orders', new URL('http://svc/v1/'))).toBe(
      'http://svc/v1/a?b=1',
    );
    // Resolved and encoded again, within the base path.
    const v1 = new URL('http://svc/v1');
    expect(at('/o/a/./b/../c', 'o', v1)).toBe('http://svc/v1/a/c');
    expect(at('/o/a/%2e%2e/b', 'o', v1)).toBe('http://svc/v1/b');
    expect(at('/o/a%20b/%7Ex/$&+,;=:@', 'o', v1)).toBe('http://svc/v1/a%20b/~x/$&+,;=:@');
    expect(at('/o//127.0.0.1:9/secret', 'o', v1)).toBe('http://svc/v1//127.0.0.1:9/secret');
    expect(at('/o/a\\b', 'o', v1)).toBe('http://svc/v1/a/b');
    expect(at('/%6F/x', 'o', v1)).toBe('http://svc/v1/x');
  });

  it('refuses caller paths that leave the base path or that a target could read as another path', () => {
    const t = new URL('http://svc:8080/api/');
    for (const url of [
      '/o/..',
      '/o/../admin',
      '/o/a/../../admin',
      '/o/%2e%2e/admin',
      '/o/%2E%2E',
      '/o/.%2e/admin',
      '/o/..%2fadmin',
      '/o/%2e%2e%2fadmin',
      '/o/..%5cadmin',
      '/o/..\\admin',
      '/o/%252e%252e/admin',
      '/o/%c0%ae%c0%ae/admin',
      '/o/..;/admin',
      '/o/.. /admin',
      '/o/%2f%2fevil/x',
      '/o/a%00b',
      '/o/%',
      'http://evil/x',
    ]) {
      expect(() => targetUrl(url, 'o', t), url).toThrow(PathRefused);
    }
  });

  it('keeps the caller headers, rejoins the charset and filters by name or prefix', () => {
    const h = requestHeaders(
      {
        cmd: 'produce',
        sender: 's',
        'remote-addr': '10.0.0.9:5555',
        'content-type': 'text/plain',
        encoding: 'latin1',
        connection: 'keep-alive, x-hop',
        'x-hop': '1',
        'x-a': 'a',
        'x-secret-1': 's',
        q: 'v w',
      },
      '/e/p?q=v%20w',
      ['x-secret-*'],
    );
    expect(h).toEqual({
      'content-type': 'text/plain; charset=latin1',
      'x-a': 'a',
      'x-forwarded-for': '10.0.0.9',
    });
    expect(
      responseHeaders({ 'Content-Length': '3', id: 'x', 'X-B': ['1', '2'], 'x-c': 'c' }, ['x-c']),
    ).toEqual({ 'x-b': '1, 2' });
    expect(filtered('x-internal-a', ['x-internal-*'])).toBe(true);
    expect(filtered('x-internal', ['x-internal-*'])).toBe(false);
  });
});
