// The monitor pages on the main port (zbus-protocol.md §10): `/` (home), `/<file>?cmd=js|css|img`, login and
// logout. With auth on, the broker lets only `admin` tokens reach the pages and assets (auth.ts); a browser
// without one is sent to the login form, which accepts admin tokens only. The login cookie is HttpOnly and
// SameSite=Strict (decisions.md §3).
import { readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { Message } from '@zbus/protocol';
import type { BrokerState } from '../commands/context.js';
import { textReply } from '../commands/reply.js';

export const MONITOR_COMMANDS = new Set([
  'home',
  'login',
  'logout',
  'js',
  'css',
  'img',
  'page',
  'favicon.ico',
]);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
};

function page(status: number, html: string): Message {
  return textReply(status, 'text/html; charset=utf-8', html);
}

function redirect(location: string, cookie?: string): Message {
  const m = new Message({ status: 302 });
  m.set('location', location);
  if (cookie !== undefined) m.set('set-cookie', cookie);
  return m;
}

const LOGIN_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>zbus login</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px system-ui,sans-serif;display:grid;place-items:center;height:100vh;margin:0;background:#f5f6f8}
form{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002;display:grid;gap:.75rem;min-width:18rem}
input,button{font:inherit;padding:.5rem}button{cursor:pointer}</style></head>
<body><form method="post" action="/?cmd=login"><h1>zbus monitor</h1>
<label for="token">Token</label><input id="token" name="token" type="password" autofocus autocomplete="current-password">
<button type="submit">Log in</button>{{error}}</form></body></html>`;

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>zbus-ts</title></head>
<body><h1>zbus-ts broker</h1><p>The monitor's assets were not found on this broker (monitorDir is not set or not
built). The broker itself is running: try <a href="/healthz">/healthz</a> or <a href="/metrics">/metrics</a>.</p></body></html>`;

/**
 * The login cookie, bound to the broker's own origin as far as cookies allow: HttpOnly, SameSite=Strict, Path=/,
 * and with TLS the `__Host-` prefix (Secure, no Domain: this host only). Cookies ignore ports, so the broker also
 * takes the cookie only from requests its own pages send (auth/origin.ts).
 */
function loginCookie(state: BrokerState, value: string): string {
  const attributes = 'Path=/; HttpOnly; SameSite=Strict';
  return state.sslEnabled ? `__Host-token=${value}; ${attributes}; Secure` : `token=${value}; ${attributes}`;
}

/** What a browser gets for a monitor page it may not see: the login form (undefined for assets: a 403). */
export function monitorLoginRedirect(cmd: string): Message | undefined {
  return cmd === 'home' || cmd === 'page' ? redirect('/?cmd=login') : undefined;
}

export async function serveMonitor(
  state: BrokerState,
  cmd: string,
  msg: Message,
  path: readonly string[],
): Promise<Message> {
  const auth = state.auth;
  if (cmd === 'login') {
    if (!auth) return redirect('/');
    if (msg.method === 'POST') {
      const token = new URLSearchParams(msg.bodyText()).get('token') ?? '';
      if (auth.isAdmin(token)) return redirect('/', loginCookie(state, encodeURIComponent(token)));
      const why =
        token !== '' && auth.find(token)
          ? 'This token may not open the monitor (admin only).'
          : 'Invalid token.';
      return page(401, LOGIN_PAGE.replace('{{error}}', `<p role="alert">${why}</p>`));
    }
    return page(200, LOGIN_PAGE.replace('{{error}}', ''));
  }
  if (cmd === 'logout') {
    return redirect('/?cmd=login', `${loginCookie(state, '')}; Max-Age=0`);
  }
  if (cmd === 'home' || cmd === 'page') {
    const html = await readAsset(state, 'index.html');
    if (!html) return page(200, NOT_BUILT);
    const m = new Message({ status: 200 });
    m.set('content-type', TYPES['.html']!);
    m.set('cache-control', 'no-store');
    m.body = html;
    return m;
  }
  // Assets: the file name is the first path segment (`/app.js?cmd=js`); only a bare name is accepted.
  const name = cmd === 'favicon.ico' ? 'favicon.ico' : basename(path[0] ?? '');
  const data = name && !name.startsWith('.') ? await readAsset(state, name) : undefined;
  if (!data) return page(404, '<h1>404 Not Found</h1>');
  const m = new Message({ status: 200 });
  m.set('content-type', TYPES[extname(name)] ?? 'application/octet-stream');
  m.set('cache-control', 'max-age=300');
  m.body = data;
  return m;
}

async function readAsset(state: BrokerState, name: string): Promise<Uint8Array | undefined> {
  const dir = state.options.monitorDir;
  if (!dir) return undefined;
  try {
    return await readFile(join(dir, name));
  } catch {
    return undefined;
  }
}
