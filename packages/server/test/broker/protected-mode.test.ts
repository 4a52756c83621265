// Protected mode (decisions.md §6, issue 14 item 8), as in Redis: a broker without auth serves clients on its
// loopback interface only, unless `insecure`; others get 403 ZBUS_ERR_PROTECTED_MODE saying how to open it, and
// their connection is closed. It announces a loopback address, so local clients that reconnect to the announced
// address (0.11 `Broker`, ours) keep working. Off-loopback clients are made by connecting to this machine's own
// non-internal address (the traffic stays on this host); without one, those cases skip.
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket } from 'ws';
import { isLoopback } from '../../src/auth/loopback.js';
import { type BrokerOptions, createBroker } from '../../src/index.js';

const ownAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a?.family === 'IPv4' && !a.internal)?.address;
if (!ownAddress) console.warn('protected mode: no non-internal IPv4 address here; off-loopback cases skip');

async function start(options: BrokerOptions) {
  const dataDir = mkdtempSync(join(tmpdir(), 'zbus-protected-'));
  const broker = createBroker({ port: 0, fsync: 'never', logLevel: 'silent', dataDir, ...options });
  const { port } = await broker.listen();
  onTestFinished(async () => {
    await broker.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { broker, port };
}

async function raw(host: string, port: number): Promise<RawClient> {
  const c = await RawClient.connect(port, host);
  onTestFinished(() => c.close());
  return c;
}

function handshake(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${host}:${port}/`);
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('protected mode', () => {
  it('knows loopback peers: 127.0.0.0/8, ::1 and IPv4 loopback mapped into IPv6', () => {
    for (const a of ['127.0.0.1:5', '127.9.8.7:1', '::1:4000', '::ffff:127.0.0.1:9'])
      expect(isLoopback(a), a).toBe(true);
    for (const a of [
      '192.0.2.2:5',
      '::ffff:10.0.0.1:9',
      'fd00::2:1',
      '1.127.0.0:1',
      '?:0',
      '127.evil.example:80',
    ]) {
      expect(isLoopback(a), a).toBe(false);
    }
  });

  it('serves loopback clients and announces a loopback address when listening on every interface', async () => {
    const { broker, port } = await start({ host: '0.0.0.0' });
    expect(broker.announced).toBe(`127.0.0.1:${port}`);
    const c = await raw('127.0.0.1', port);
    const info = await c.request({ headers: { cmd: 'server' } });
    expect(info.json<{ serverAddress: { address: string } }>().serverAddress.address).toBe(
      `127.0.0.1:${port}`,
    );
    expect((await c.request({ headers: { cmd: 'declare', topic: 'T' } })).status).toBe(200);
    expect(await handshake('127.0.0.1', port)).toBe(101);
  });

  it.skipIf(!ownAddress)(
    'refuses other clients with a message saying how to open the broker, then closes',
    async () => {
      const { port } = await start({ host: '0.0.0.0' });
      const c = await raw(ownAddress!, port);
      const closed = new Promise<void>((resolve) => c.socket.once('close', () => resolve()));
      const r = await c.request({ headers: { cmd: 'declare', topic: 'T' } });
      expect([r.status, r.headers.error_code]).toEqual([403, 'ZBUS_ERR_PROTECTED_MODE']);
      expect(r.bodyText()).toContain('--auth');
      expect(r.bodyText()).toContain('--insecure');
      await closed;
      const http = await fetch(`http://${ownAddress}:${port}/T?cmd=produce&body=x`);
      expect(http.status).toBe(403);
      expect(await http.text()).toContain('protected mode');
      expect(await handshake(ownAddress!, port)).toBe(403);
      // Probes still get their answer; /metrics (which names every topic) does not.
      expect((await fetch(`http://${ownAddress}:${port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://${ownAddress}:${port}/metrics`)).status).toBe(403);
      // Nothing was declared.
      const local = await raw('127.0.0.1', port);
      expect((await local.request({ headers: { cmd: 'query', topic: 'T' } })).status).toBe(404);
    },
  );

  it.skipIf(!ownAddress)('serves every client with insecure, or with auth on (auth decides)', async () => {
    const insecure = await start({ host: ownAddress!, insecure: true });
    const c = await raw(ownAddress!, insecure.port);
    expect((await c.request({ headers: { cmd: 'declare', topic: 'T' } })).status).toBe(200);
    const withAuth = await start({
      host: ownAddress!,
      auth: { tokens: [{ token: 't', operations: ['*'], topics: [{ topic: '*' }] }] },
    });
    const a = await raw(ownAddress!, withAuth.port);
    expect((await a.request({ headers: { cmd: 'declare', topic: 'T', token: 't' } })).status).toBe(200);
    expect((await a.request({ headers: { cmd: 'declare', topic: 'T' } })).status).toBe(403);
  });

  it('refuses to start without auth on an address only other machines use', () => {
    expect(() => createBroker({ host: '192.0.2.77' })).toThrow(/protected mode.*--auth.*--insecure/);
    expect(() => createBroker({ host: '192.0.2.77', insecure: true })).not.toThrow();
    expect(() => createBroker({ host: '127.0.0.1' })).not.toThrow();
    expect(() => createBroker({ host: '::' })).not.toThrow();
  });
});
