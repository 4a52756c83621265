// Deny by default (decisions.md §6, issue 14 item 1): the cases are GENERATED from the command registry and the
// monitor's command list, so a command added to either is refused without a token in every form a request can
// take (cmd header on raw TCP and on plain HTTP, `?cmd=`, the 0.8 URL, RPC by URL, each URL form also in a
// WebSocket frame and a raw TCP message, a WebSocket frame with a cmd header) until it
// is deliberately made public, which this file pins to `ping` and `heartbeat` (and the login form).
import { Mask, type Message } from '@zbus/protocol';
import { describe, expect, it } from 'vitest';
import { PUBLIC_COMMANDS, PUBLIC_MONITOR_COMMANDS } from '../../src/auth/auth.js';
import { COMMAND_HANDLERS } from '../../src/commands/registry.js';
import { MONITOR_COMMANDS } from '../../src/http/monitor.js';
import type { AuthConfig } from '../../src/index.js';
import { startTestBroker, wsConnect } from './helpers.js';

const ADMIN = 'admin-secret';
const auth: AuthConfig = {
  tokens: [{ token: ADMIN, name: 'ops', operations: ['admin'], topics: [{ topic: '*' }] }],
};

const CHECKED = [...COMMAND_HANDLERS.keys(), ...MONITOR_COMMANDS].filter(
  (c) => !PUBLIC_COMMANDS.has(c) && !PUBLIC_MONITOR_COMMANDS.has(c),
);

interface Answer {
  status: number;
  code: string | undefined;
  location: string | undefined;
}

const fromMessage = (m: Message): Answer => ({
  status: m.status ?? 0,
  code: m.headers.error_code,
  location: m.headers.location,
});

async function fromFetch(r: Response): Promise<Answer> {
  await r.arrayBuffer();
  return {
    status: r.status,
    code: r.headers.get('error_code') ?? undefined,
    location: r.headers.get('location') ?? undefined,
  };
}

/** Refused: 403 ZBUS_ERR_FORBIDDEN, or, for a monitor page, a redirect to the login form. */
function refused(a: Answer): boolean {
  return (
    (a.status === 403 && a.code === 'ZBUS_ERR_FORBIDDEN') ||
    (a.status === 302 && a.location === '/?cmd=login')
  );
}

describe('deny by default', () => {
  it('keeps the public lists short: ping and heartbeat, and the monitor login form', () => {
    expect([...PUBLIC_COMMANDS].sort()).toEqual(['heartbeat', 'ping']);
    expect([...PUBLIC_MONITOR_COMMANDS].sort()).toEqual(['login', 'logout']);
    expect(CHECKED).toContain('rpc');
    expect(CHECKED.length).toBe(COMMAND_HANDLERS.size + MONITOR_COMMANDS.size - 4);
  });

  it('refuses every registered command in every form without a token, and changes nothing', async () => {
    const b = await startTestBroker({ auth });
    const admin = await b.raw();
    const as = (headers: Record<string, string>) => admin.request({ headers: { ...headers, token: ADMIN } });
    expect((await as({ cmd: 'declare', topic: 'T', consume_group: 'g' })).status).toBe(200);
    expect(
      (await as({ cmd: 'declare', topic: 'Svc', topic_mask: String(Mask.Rpc | Mask.Memory) })).status,
    ).toBe(200);
    expect((await as({ cmd: 'produce', topic: 'T', id: 'm-1' })).status).toBe(200);
    const before = (await as({ cmd: 'query', topic: 'T' })).bodyText();

    const raw = await b.raw();
    const ws = await wsConnect(b.port);
    const failures: string[] = [];
    let attempts = 0;
    const expectRefused = (form: string, cmd: string, a: Answer) => {
      attempts++;
      if (!refused(a)) failures.push(`${cmd} via ${form}: ${a.status} ${a.code ?? ''} ${a.location ?? ''}`);
    };
    const target = { topic: 'T', consume_group: 'g', offset: '0', recver: 'nobody', body: 'x' };

    for (const cmd of CHECKED) {
      const headers = { cmd, ...target };
      expectRefused('cmd header, raw TCP', cmd, fromMessage(await raw.request({ headers })));
      expectRefused(
        'cmd header, plain HTTP',
        cmd,
        await fromFetch(await fetch(`${b.url}/`, { headers, redirect: 'manual' })),
      );
      expectRefused(
        '?cmd=',
        cmd,
        await fromFetch(await fetch(`${b.url}/T/g?cmd=${cmd}&offset=0&body=x`, { redirect: 'manual' })),
      );
      expectRefused(
        '0.8 URL',
        cmd,
        await fromFetch(await fetch(`${b.url}/${cmd}/T/g?offset=0&body=x`, { redirect: 'manual' })),
      );
      expectRefused('WebSocket frame', cmd, fromMessage(await ws.request({ headers })));
      // A frame or a raw TCP message may carry a URL too (zbus.js objects have `url`): both URL forms again.
      for (const [form, url] of [
        ['?cmd=', `/T/g?cmd=${cmd}&offset=0&body=x`],
        ['0.8 URL', `/${cmd}/T/g?offset=0&body=x`],
      ] as const) {
        expectRefused(`${form}, WebSocket frame`, cmd, fromMessage(await ws.request({ url })));
        expectRefused(`${form}, raw TCP`, cmd, fromMessage(await raw.request({ url })));
      }
    }
    // The URL forms that name no command at all: produce by path, RPC by URL, and the 0.8 `/rpc/...`.
    for (const [cmd, form, url] of [
      ['produce', 'path', '/T?body=x'],
      ['produce', 'RPC by URL', '/Svc/calc/plus/1/2'],
      ['produce', 'RPC by URL, default module', '/Svc//plus/1/2'],
      ['rpc', '0.8 /rpc/<topic>/<method>', '/rpc/Svc/plus/1/2?module=calc'],
    ] as const) {
      expectRefused(form, cmd, await fromFetch(await fetch(`${b.url}${url}`, { redirect: 'manual' })));
      expectRefused(
        `${form}, POST`,
        cmd,
        await fromFetch(await fetch(`${b.url}${url}`, { method: 'POST', body: 'x', redirect: 'manual' })),
      );
      expectRefused(`${form}, WebSocket frame`, cmd, fromMessage(await ws.request({ url })));
      expectRefused(`${form}, raw TCP`, cmd, fromMessage(await raw.request({ url })));
    }

    expect(failures).toEqual([]);
    expect(attempts).toBe(CHECKED.length * 9 + 16);
    // Nothing got through: no message stored or consumed, no group moved, nothing removed or emptied.
    const strip = (s: string) => s.replace(/"(lastUpdatedTime|infoVersion)":\d+/g, '');
    expect(strip((await as({ cmd: 'query', topic: 'T' })).bodyText())).toBe(strip(before));
    expect((await as({ cmd: 'query', topic: 'Svc' })).json<{ messageDepth: number }>().messageDepth).toBe(0);
  });

  it('runs the public commands without a token', async () => {
    const b = await startTestBroker({ auth });
    const c = await b.raw();
    const hb = c.send({ headers: { cmd: 'heartbeat' } });
    expect((await c.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
    expect(c.received.find((m) => m.headers.id === hb)).toBeUndefined();
    const login = await fetch(`${b.url}/?cmd=login`);
    expect(login.status).toBe(200);
    expect(await login.text()).toContain('<form');
  });

  it('checks rpc as produce: a token allowed to produce on the topic may call it, others may not', async () => {
    const b = await startTestBroker({
      auth: {
        tokens: [
          ...auth.tokens,
          { token: 'caller', operations: ['produce'], topics: [{ topic: 'Svc' }] },
          { token: 'reader', operations: ['consume', 'query'], topics: [{ topic: 'Svc' }] },
        ],
      },
    });
    const c = await b.raw();
    await c.request({
      headers: { cmd: 'declare', topic: 'Svc', topic_mask: String(Mask.Rpc), token: ADMIN },
    });
    const denied = await c.request({ headers: { cmd: 'rpc', topic: 'Svc', token: 'reader' }, body: '{}' });
    expect([denied.status, denied.bodyText()]).toEqual([403, '403: Command(rpc) Topic(Svc) Forbbiden']);
    // Allowed through auth; nobody serves the topic, so the broker says so (not 403).
    const allowed = await c.request({ headers: { cmd: 'rpc', topic: 'Svc', token: 'caller' }, body: '{}' });
    expect(allowed.headers.error_code).toBe('ZBUS_ERR_NO_RESPONDERS');
  });
});
