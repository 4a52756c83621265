// Hostile web pages (issue 14 item 7, docs/security.md "Web pages of other origins"): any page the operator
// opens can make their browser send the broker requests. The matrix is generated from the command list: every
// command a page of another origin may not run, in every URL form, with every way browsers mark such a request
// (Sec-Fetch-Site, Origin, both), is refused with 403 ZBUS_ERR_CROSS_SITE and changes nothing. Then real
// Chromium, on a page of another port of the same host (same site: the dashboard's SameSite cookie goes along),
// tries an <img> GET, a no-cors fetch, a form POST and a WebSocket against a broker without auth and one with an
// admin logged in. Last, real Chromium told (--host-resolver-rules) that the attacker's names resolve to
// 127.0.0.1 opens a page there, DNS rebinding: to the browser it is one origin with a broker in protected mode.
import { createServer } from 'node:http';
import { connect as netConnect } from 'node:net';
import { COMMANDS } from '@zbus/protocol';
import { chromiumMissing, launchChromium, scaled } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { chaosBroker, report, Wire } from './helpers.js';

const SLOW10 = scaled(10_000);
const SLOW120 = scaled(120_000);

/**
 * What a page of another origin may still ask for (auth/origin.ts crossSiteSafe): navigations and liveness, and
 * the login form, though not its POST (login CSRF): `login` is tried as a POST only.
 */
const SAFE = new Set(['home', 'page', 'js', 'css', 'img', 'favicon.ico', 'ping', 'heartbeat']);
const REFUSED = [...COMMANDS].filter((c) => !SAFE.has(c));

/** One request on its own connection; the status and the error_code of the answer. */
function exchange(port: number, head: string, body = ''): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const s = netConnect(port, '127.0.0.1', () => s.end(head + body));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer to ${JSON.stringify(head.slice(0, 80))}`));
    }, SLOW10);
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      text += c;
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        code: /\r\nerror_code: ([^\r]+)/i.exec(text)?.[1] ?? '',
      });
    });
  });
}

describe('cross-site requests', () => {
  it(
    'refuses every command a foreign page may not run, in every form and every browser marking',
    async () => {
      const b = await chaosBroker({ fsync: 'never' });
      const admin = await Wire.open(b.port);
      await admin.request({ headers: { cmd: 'declare', topic: 'Victim', consume_group: 'g' } });
      await admin.request({ headers: { cmd: 'produce', topic: 'Victim' }, body: 'keep me' });
      const before = (await admin.request({ headers: { cmd: 'query', topic: 'Victim' } })).bodyText();
      const own = `http://127.0.0.1:${b.port}`;
      const markings: Record<string, string> = {
        'cross-site, Origin': `sec-fetch-site: cross-site\r\norigin: http://evil.example\r\n`,
        'cross-site, no Origin (<img>)': 'sec-fetch-site: cross-site\r\n',
        'same-site, another port': 'sec-fetch-site: same-site\r\norigin: http://127.0.0.1:1\r\n',
        'Origin only (no Fetch Metadata)': 'origin: http://evil.example\r\n',
        'Origin null (sandboxed frame)': 'origin: null\r\n',
        'Origin extending the host': `origin: ${own}.evil.example\r\n`,
        'the broker’s Origin, but cross-site': `sec-fetch-site: cross-site\r\norigin: ${own}\r\n`,
      };
      const forms: Record<string, (cmd: string) => [string, string]> = {
        '?cmd=': (cmd) => [`GET /Victim/g?cmd=${cmd}&offset=0 HTTP/1.1\r\n`, ''],
        '0.8 URL': (cmd) => [`GET /${cmd}/Victim/g HTTP/1.1\r\n`, ''],
        'cmd header': (cmd) => [`GET / HTTP/1.1\r\ncmd: ${cmd}\r\ntopic: Victim\r\n`, ''],
        'form POST': (cmd) => [
          `POST /Victim?cmd=${cmd} HTTP/1.1\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 7\r\n`,
          'token=x',
        ],
      };
      const deviations: string[] = [];
      let tried = 0;
      for (const cmd of REFUSED) {
        for (const [form, make] of Object.entries(forms)) {
          if (cmd === 'login' && form !== 'form POST') continue;
          for (const [marking, headers] of Object.entries(markings)) {
            const [start, body] = make(cmd);
            const r = await exchange(
              b.port,
              `${start}host: 127.0.0.1:${b.port}\r\n${headers}connection: close\r\n\r\n`,
              body,
            );
            tried++;
            if (r.status !== 403 || r.code !== 'ZBUS_ERR_CROSS_SITE') {
              deviations.push(`${cmd} ${form} (${marking}): ${r.status} ${r.code}`);
            }
          }
        }
      }
      // Produce by path and RPC by URL name no command at all.
      for (const path of ['/Victim', '/Victim/m/f/1', '/rpc/Victim/f']) {
        for (const [marking, headers] of Object.entries(markings)) {
          const r = await exchange(
            b.port,
            `POST ${path} HTTP/1.1\r\nhost: localhost\r\n${headers}content-length: 1\r\nconnection: close\r\n\r\n`,
            'x',
          );
          tried++;
          if (r.status !== 403) deviations.push(`${path} (${marking}): ${r.status} ${r.code}`);
        }
      }
      const after = (await admin.request({ headers: { cmd: 'query', topic: 'Victim' } })).bodyText();
      report('cross-site matrix', { commands: REFUSED.length, attempts: tried, deviations });
      expect(deviations).toEqual([]);
      expect(after.replace(/"lastUpdatedTime":\d+/g, '')).toBe(before.replace(/"lastUpdatedTime":\d+/g, ''));
      const kept = await admin.request({ headers: { cmd: 'consume', topic: 'Victim', consume_group: 'g' } });
      expect(kept.bodyText()).toBe('keep me');
    },
    SLOW120,
  );

  const missing = chromiumMissing();
  it.skipIf(missing !== undefined)(
    'keeps a page of another port from removing, reading or riding the admin cookie (real Chromium)',
    async () => {
      const open = await chaosBroker({ fsync: 'never' });
      const secured = await chaosBroker({
        fsync: 'never',
        auth: {
          tokens: [{ token: 'admin-secret', name: 'ops', operations: ['admin'], topics: [{ topic: '*' }] }],
        },
      });
      for (const [b, token] of [
        [open, undefined],
        [secured, 'admin-secret'],
      ] as const) {
        const w = await Wire.open(b.port);
        const t: Record<string, string> = token === undefined ? {} : { token };
        await w.request({ headers: { cmd: 'declare', topic: 'Victim', ...t } });
        await w.request({ headers: { cmd: 'produce', topic: 'Victim', ...t }, body: 'secret' });
      }
      // The hostile page: every way a page can reach another origin without CORS.
      const attack = (port: number) => `<!doctype html><meta charset="utf-8"><body>
<iframe name="sink"></iframe>
<form id="f" method="post" target="sink" action="http://127.0.0.1:${port}/Victim?cmd=remove"><input name="x" value="1"></form>
<script>
const base = 'http://127.0.0.1:${port}';
const results = {};
const img = (path) => new Promise((r) => { const i = new Image(); i.onload = i.onerror = () => r('done'); i.src = base + path; });
const ws = () => new Promise((r) => { const s = new WebSocket('ws://127.0.0.1:${port}/'); s.onopen = () => r('opened'); s.onerror = () => r('refused'); });
window.attack = (async () => {
  results.img = await img('/remove/Victim');
  results.imgEmpty = await img('/Victim?cmd=empty');
  results.fetch = await fetch(base + '/Victim?cmd=remove', { mode: 'no-cors', credentials: 'include' }).then(() => 'sent', () => 'failed');
  results.post = await fetch(base + '/Victim', { method: 'POST', mode: 'no-cors', credentials: 'include', body: 'injected' }).then(() => 'sent', () => 'failed');
  results.form = await new Promise((r) => { document.querySelector('iframe').onload = () => r('submitted'); document.getElementById('f').submit(); });
  results.ws = await ws();
  return results;
})();
</script>`;
      const site = createServer((req, res) => {
        const port = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('port'));
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(attack(port));
      });
      await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
      onTestFinished(() => {
        site.close();
      });
      const sitePort = (site.address() as { port: number }).port;
      const chromium = await launchChromium();
      onTestFinished(() => chromium.close());
      const ctx = await chromium.newContext();
      const page = await ctx.newPage();
      // The operator logs in to the secured broker's dashboard: its cookie is now in this browser.
      await page.goto(`http://127.0.0.1:${secured.port}/?cmd=login`);
      await page.fill('#token', 'admin-secret');
      await Promise.all([
        page.waitForURL(`http://127.0.0.1:${secured.port}/`),
        page.click('button[type=submit]'),
      ]);
      expect((await ctx.cookies()).map((c) => c.name)).toContain('token');
      const seen: Record<string, unknown> = {};
      for (const b of [open, secured]) {
        await page.goto(`http://127.0.0.1:${sitePort}/?port=${b.port}`);
        // Runs in the page: `globalThis` there is the page's window.
        seen[b.port === open.port ? 'open' : 'secured'] = await page.evaluate(
          () => (globalThis as unknown as { attack: Promise<unknown> }).attack,
        );
      }
      // Nothing changed on either broker: the topic is there, with its one message, and nothing was added.
      const state: Record<string, string> = {};
      for (const [name, b, token] of [
        ['open', open, undefined],
        ['secured', secured, 'admin-secret'],
      ] as const) {
        const w = await Wire.open(b.port);
        const t: Record<string, string> = token === undefined ? {} : { token };
        const q = await w.request({ headers: { cmd: 'query', topic: 'Victim', ...t } });
        state[name] =
          `${q.status} depth ${q.status === 200 ? q.json<{ messageDepth: number }>().messageDepth : '-'}`;
      }
      report('cross-site browser', { sitePort, attacks: seen, after: state });
      expect(state).toEqual({ open: '200 depth 1', secured: '200 depth 1' });
      expect(seen).toMatchObject({ open: { ws: 'refused' }, secured: { ws: 'refused' } });
    },
    scaled(120_000),
  );

  it.skipIf(missing !== undefined)(
    'keeps a DNS-rebound page from using a broker in protected mode (real Chromium)',
    async () => {
      const b = await chaosBroker({ fsync: 'never' }); // no auth: protected mode
      const w = await Wire.open(b.port);
      await w.request({ headers: { cmd: 'declare', topic: 'Victim' } });
      await w.request({ headers: { cmd: 'produce', topic: 'Victim' }, body: 'secret' });
      // The attacker's DNS answers 127.0.0.1 for its own names: to the browser, the attacker's page and the
      // broker are then one origin, so the page may send anything and read every answer.
      const rebound = ['rebind.test', '127.0.0.1.rebind.test'];
      const chromium = await launchChromium({
        args: [`--host-resolver-rules=${rebound.map((n) => `MAP ${n} 127.0.0.1`).join(',')}`],
      });
      onTestFinished(() => chromium.close());
      const page = await (await chromium.newContext()).newPage();
      const attack = () =>
        page.evaluate(async () => {
          const status = (path: string) =>
            fetch(path).then(
              (r) => r.status,
              () => 0,
            );
          return {
            query: await status('/?cmd=query&topic=Victim'),
            consume: await status('/Victim?cmd=consume'),
            metrics: await status('/metrics'),
            remove: await status('/remove/Victim'),
            ws: await new Promise<string>((r) => {
              // Runs in the page: `globalThis` there is the page's window.
              const { host } = (globalThis as unknown as { location: { host: string } }).location;
              const s = new WebSocket(`ws://${host}/`);
              s.onopen = () => r('opened');
              s.onerror = () => r('refused');
            }),
          };
        });
      const seen: Record<string, unknown> = {};
      for (const name of rebound) {
        await page.goto(`http://${name}:${b.port}/`);
        seen[name] = await attack();
      }
      // The broker's own name, for contrast: its pages may use it (the dashboard does).
      await page.goto(`http://localhost:${b.port}/`);
      const own = await page.evaluate(() => fetch('/?cmd=ping').then((r) => r.status));
      report('dns rebinding', { seen, own });
      const refused = { query: 403, consume: 403, metrics: 403, remove: 403, ws: 'refused' };
      expect(seen).toEqual(Object.fromEntries(rebound.map((n) => [n, refused])));
      expect(own).toBe(200);
      const q = await w.request({ headers: { cmd: 'query', topic: 'Victim' } });
      expect(q.json<{ messageDepth: number }>().messageDepth).toBe(1);
    },
    scaled(120_000),
  );
});
