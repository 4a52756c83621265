// Cross-site requests (decisions.md §6, issue 14 item 7): a page of another origin can make the operator's
// browser send the broker a GET (an <img>), a form POST or a WebSocket handshake. Browsers say so with Fetch
// Metadata (`Sec-Fetch-Site`) and `Origin`; such requests may not change state unless the origin is allowed,
// and the monitor's cookie counts only on requests from the broker's own pages. Clients that send neither
// header (curl, ab, zbus clients) are not affected.
import { request } from 'node:http';
import { hostname } from 'node:os';
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

  it('keeps /metrics from pages of other origins, auth off too; probes stay open', async () => {
    const b = await startTestBroker({ insecure: true });
    const metrics = await http(`${b.url}/metrics`, EVIL);
    expect([metrics.status, metrics.headers.error_code]).toEqual([403, 'ZBUS_ERR_CROSS_SITE']);
    expect((await http(`${b.url}/metrics`, { 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await http(`${b.url}/metrics`, {})).status).toBe(200);
    expect((await http(`${b.url}/readyz`, EVIL)).status).toBe(200);
  });

  it('answers, in protected mode, only requests addressed to localhost or a loopback address (DNS rebinding)', async () => {
    const b = await startTestBroker(); // no auth: protected mode
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    // The attacker points its own names at 127.0.0.1: to the browser its page and the broker are then one
    // origin. Over plain HTTP to such a name, browsers send no Fetch Metadata, and a GET no Origin either.
    const rebound = (name: string): Array<Record<string, string>> => {
      const host = `${name}:${b.port}`;
      return [
        { host, 'sec-fetch-site': 'same-origin', origin: `http://${host}` },
        { host, origin: `http://${host}` },
        { host },
      ];
    };
    // Names that look like loopback are the attacker's DNS all the same; the machine's own host name, 0.0.0.0
    // and *.localhost are names some browsers send unmarked GETs to.
    const names = ['evil.example', '127.0.0.1.evil.example', '127.evil.example', '0.0.0.0', hostname()];
    for (const name of [...names, 'app.localhost', '[::ffff:127.0.0.1]']) {
      for (const headers of rebound(name)) {
        const what = JSON.stringify(headers);
        for (const path of ['/remove/T', '/?cmd=query&topic=T', '/metrics', '/', '/?cmd=ping']) {
          const r = await http(`${b.url}${path}`, headers);
          expect([r.status, r.headers.error_code], `${path} ${what}`).toEqual([
            403,
            'ZBUS_ERR_PROTECTED_MODE',
          ]);
          expect(r.body).toContain('localhost');
        }
        const upgrade = {
          ...headers,
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        };
        expect((await http(`${b.url}/`, upgrade)).status, what).toBe(403);
        // Probes do not care who asks.
        expect((await http(`${b.url}/healthz`, headers)).status, what).toBe(200);
      }
    }
    expect((await c.request({ headers: { cmd: 'query', topic: 'T' } })).status).toBe(200);
    // Loopback names, browser or not; and zbus clients on raw TCP, which send no Host.
    for (const host of [
      `localhost:${b.port}`,
      `127.0.0.1:${b.port}`,
      `127.1.2.3:${b.port}`,
      `[::1]:${b.port}`,
    ]) {
      for (const marks of [{}, { 'sec-fetch-site': 'same-origin' }] as Array<Record<string, string>>) {
        const own = await http(`${b.url}/?cmd=declare&topic=Fine`, { host, ...marks });
        expect(own.status, host).toBe(200);
      }
    }
    // With auth on, or insecure, any name: auth decides, or the operator opened the broker.
    const open = await startTestBroker({ insecure: true });
    expect((await http(`${open.url}/?cmd=declare&topic=Any`, { host: 'broker.example' })).status).toBe(200);
  });

  it('counts the monitor cookie on unmarked requests only for its pages: a plain-HTTP <img> GET rides nothing', async () => {
    const auth: AuthConfig = {
      tokens: [{ token: 'admin-secret', name: 'ops', operations: ['admin'], topics: [{ topic: '*' }] }],
    };
    const b = await startTestBroker({ auth });
    const admin = await b.raw();
    await admin.request({ headers: { cmd: 'declare', topic: 'T', token: 'admin-secret' } });
    // A same-site page of another port on a plain-HTTP name: the browser sends the cookie and no mark.
    const cookie = { cookie: 'token=admin-secret', host: `broker.example:${b.port}` };
    const removed = await http(`${b.url}/remove/T`, cookie);
    expect([removed.status, removed.headers.error_code]).toEqual([403, 'ZBUS_ERR_FORBIDDEN']);
    expect(
      (await admin.request({ headers: { cmd: 'query', topic: 'T', token: 'admin-secret' } })).status,
    ).toBe(200);
    // The dashboard itself still opens with the cookie (its pages change and reveal nothing) ...
    expect((await http(`${b.url}/`, cookie)).status).toBe(200);
    // ... and a token in the header or URL is not a cookie: it counts wherever it comes from.
    expect((await http(`${b.url}/?cmd=query&topic=T&token=admin-secret`, cookie)).status).toBe(200);
  });

  it('classifies requests by Host in protected mode, then Sec-Fetch-Site, then Origin against Host', () => {
    const p = new OriginPolicy(['https://App.example.com/'], false);
    expect(p.siteOf({})).toBe('unmarked');
    expect(p.siteOf({ host: 'anything.example' })).toBe('unmarked');
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
    const guarded = new OriginPolicy([], true);
    expect(guarded.siteOf({})).toBe('unmarked'); // raw TCP zbus clients send no Host
    expect(guarded.siteOf({ host: 'localhost:1' })).toBe('unmarked');
    expect(guarded.siteOf({ host: 'LOCALHOST' })).toBe('unmarked');
    expect(guarded.siteOf({ host: '[::1]:1', 'sec-fetch-site': 'same-origin' })).toBe('own');
    expect(guarded.siteOf({ host: 'evil.example:1', 'sec-fetch-site': 'same-origin' })).toBe('unlisted-host');
    expect(guarded.siteOf({ host: '127.0.0.1.nip.io' })).toBe('unlisted-host');
    expect(guarded.siteOf({ host: '' })).toBe('unlisted-host');
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
