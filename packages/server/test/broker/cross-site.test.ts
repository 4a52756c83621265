// Cross-site requests (decisions.md §6, issue 14 item 7): a page of another origin can make the operator's
// browser send the broker a GET (an <img>), a form POST or a WebSocket handshake. Browsers say so with Fetch
// Metadata (`Sec-Fetch-Site`) and `Origin`; such requests may not change state unless the origin is allowed,
// and the monitor's cookie counts only on requests from the broker's own pages. Clients that send neither
// header (curl, ab, zbus clients) are not affected.
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { OriginPolicy } from '../../src/auth/origin.js';
import type { AuthConfig } from '../../src/index.js';
import { startTestBroker } from './helpers.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with exactly these headers (fetch would add or refuse some of them). */
function http(url: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves with the handshake's status: 101 when the WebSocket opened. */
function handshake(port: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers });
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

const EVIL = { 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' };

describe('cross-site requests', () => {
  it('refuses state-changing requests that browsers mark cross-site or same-site, in every form', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await c.request({ headers: { cmd: 'produce', topic: 'T' }, body: 'kept' });
    const sameSite = { 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:1' };
    const imgTag = { 'sec-fetch-site': 'cross-site' }; // an <img src> GET carries no Origin
    const oldBrowser = { origin: 'http://evil.example' }; // no Fetch Metadata: Origin against Host
    for (const headers of [EVIL, sameSite, imgTag, oldBrowser]) {
      for (const [method, path] of [
        ['GET', '/remove/T'],
        ['GET', '/T?cmd=empty'],
        ['GET', '/T?cmd=consume'],
        ['POST', '/T'],
        ['GET', '/produce/T?body=x'],
        ['GET', '/?cmd=query'],
      ] as const) {
        const r = await http(`${b.url}${path}`, headers, method, method === 'POST' ? 'x' : undefined);
        expect([r.status, r.headers.error_code], `${method} ${path} ${JSON.stringify(headers)}`).toEqual([
          403,
          'ZBUS_ERR_CROSS_SITE',
        ]);
        expect(r.body).toContain('--allow-origin');
      }
      const cmdHeader = await http(`${b.url}/`, { ...headers, cmd: 'remove', topic: 'T' });
      expect(cmdHeader.status).toBe(403);
    }
    // Nothing changed: the message is still there for the default group.
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T' } });
    expect(d.bodyText()).toBe('kept');
  });

  it('serves the broker’s own pages, typed URLs, and clients that are not browsers', async () => {
    const b = await startTestBroker();
    const own = `http://127.0.0.1:${b.port}`;
    const notForeign: Array<Record<string, string>> = [
      {},
      { 'sec-fetch-site': 'same-origin', origin: own },
      { 'sec-fetch-site': 'none' },
      { origin: own }, // no Fetch Metadata, Origin equals Host
    ];
    for (const headers of notForeign) {
      const r = await http(`${b.url}/?cmd=declare&topic=Mine`, headers);
      expect(r.status, JSON.stringify(headers)).toBe(200);
    }
    // A cross-site navigation to the monitor, or a ping, is still answered.
    expect((await http(`${b.url}/`, EVIL)).status).toBe(200);
    expect((await http(`${b.url}/?cmd=ping`, EVIL)).status).toBe(200);
    expect((await http(`${b.url}/healthz`, EVIL)).status).toBe(200);
  });

  it('lets pages of an allowed origin change state', async () => {
    const b = await startTestBroker({ allowOrigins: ['https://app.example.com'] });
    const ok = await http(`${b.url}/?cmd=declare&topic=App`, {
      'sec-fetch-site': 'cross-site',
      origin: 'https://app.example.com',
    });
    expect(ok.status).toBe(200);
    expect((await http(`${b.url}/?cmd=declare&topic=App`, EVIL)).status).toBe(403);
    const any = await startTestBroker({ allowOrigins: ['*'] });
    expect((await http(`${any.url}/?cmd=declare&topic=Any`, EVIL)).status).toBe(200);
  });

  it('refuses WebSocket handshakes from pages of other origins unless allowed', async () => {
    const b = await startTestBroker({ allowOrigins: ['https://app.example.com'] });
    expect(await handshake(b.port, { origin: 'http://evil.example' })).toBe(403);
    expect(await handshake(b.port, { 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:1' })).toBe(
      403,
    );
    expect(await handshake(b.port, { origin: `http://127.0.0.1:${b.port}` })).toBe(101);
    expect(await handshake(b.port, { origin: 'https://app.example.com' })).toBe(101);
    expect(await handshake(b.port, {})).toBe(101); // zbus clients on Node send no Origin
  });

  it('binds the monitor cookie to the broker’s own pages', async () => {
    const auth: AuthConfig = {
      tokens: [{ token: 'admin-secret', name: 'ops', operations: ['admin'], topics: [{ topic: '*' }] }],
    };
    const b = await startTestBroker({ auth, allowOrigins: ['http://127.0.0.1:1'] });
    const cookie = 'token=admin-secret';
    const own = await http(`${b.url}/?cmd=declare&topic=Own`, {
      cookie,
      'sec-fetch-site': 'same-origin',
      origin: b.url,
    });
    expect(own.status).toBe(200);
    // Same site, another port, even an allowed origin: the cookie does not count there.
    const other = await http(`${b.url}/?cmd=declare&topic=Other`, {
      cookie,
      'sec-fetch-site': 'same-site',
      origin: 'http://127.0.0.1:1',
    });
    expect([other.status, other.headers.error_code]).toEqual([403, 'ZBUS_ERR_FORBIDDEN']);
    const metrics = await http(`${b.url}/metrics`, { cookie, 'sec-fetch-site': 'cross-site' });
    expect(metrics.status).toBe(403);
  });

  it('classifies requests by Sec-Fetch-Site, then Origin against Host', () => {
    const p = new OriginPolicy(['https://App.example.com/']);
    expect(p.siteOf({})).toBe('own');
    expect(p.siteOf({ 'sec-fetch-site': 'same-origin', origin: 'http://x' })).toBe('own');
    expect(p.siteOf({ 'sec-fetch-site': 'none' })).toBe('own');
    expect(p.siteOf({ 'sec-fetch-site': 'cross-site' })).toBe('foreign');
    expect(p.siteOf({ 'sec-fetch-site': 'same-site', origin: 'http://h:1' })).toBe('foreign');
    expect(p.siteOf({ 'sec-fetch-site': 'cross-site', origin: 'https://app.example.com' })).toBe('allowed');
    expect(p.siteOf({ origin: 'http://broker:15555', host: 'broker:15555' })).toBe('own');
    expect(p.siteOf({ origin: 'http://broker', host: 'broker:80' })).toBe('own');
    expect(p.siteOf({ origin: 'https://broker', host: 'broker:443' })).toBe('own');
    expect(p.siteOf({ origin: 'http://broker:8080', host: 'broker:15555' })).toBe('foreign');
    expect(p.siteOf({ origin: 'null', host: 'broker:15555' })).toBe('foreign');
  });
});

describe('monitor cookie with TLS', () => {
  it('is named __Host-token and marked Secure, and is read back and stripped like token', async () => {
    const { selfSignedCert } = await import('@zbus/testkit');
    let cert: { cert: string; key: string };
    try {
      cert = selfSignedCert();
    } catch {
      return; // no openssl: tls.test.ts says so
    }
    const b = await startTestBroker({
      tls: cert,
      auth: { tokens: [{ token: 's3cret', operations: ['admin'], topics: [{ topic: '*' }] }] },
    });
    // Plain HTTP on the TLS port still works (the first byte decides); the cookie is what matters here.
    const login = await http(
      `${b.url}/?cmd=login`,
      { 'content-type': 'application/x-www-form-urlencoded' },
      'POST',
      'token=s3cret',
    );
    expect(login.status).toBe(302);
    const setCookie = String(login.headers['set-cookie']);
    expect(setCookie).toMatch(/^__Host-token=s3cret; Path=\/; HttpOnly; SameSite=Strict; Secure/);
    expect(setCookie).not.toMatch(/Domain=/i);
    const page = await http(`${b.url}/`, { cookie: '__Host-token=s3cret' });
    expect(page.status).toBe(200);
  });
});
