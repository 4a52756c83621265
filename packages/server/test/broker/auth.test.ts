// Token ACLs (zbus-protocol.md §11, decisions.md §3): per-topic, per-operation, optionally per-group; the
// token comes from the header, `?token=` or the `token` cookie; 403 with the 0.11 text; info filtered.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { AuthConfig } from '../../src/index.js';
import { startTestBroker, wsConnect } from './helpers.js';

const auth: AuthConfig = {
  tokens: [
    { token: 'admin-secret', name: 'admin', operations: ['admin'], topics: [{ topic: '*' }] },
    { token: 'producer', operations: ['produce', 'declare'], topics: [{ topic: 'Orders' }] },
    { token: 'reader', operations: ['consume', 'query'], topics: [{ topic: 'Orders', groups: ['billing'] }] },
    { token: '', name: 'anonymous', operations: ['query'], topics: [{ topic: 'Public' }] },
  ],
};

/** Every file below `dir`. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

async function setup(dataDir?: string) {
  const b = await startTestBroker(dataDir === undefined ? { auth } : { auth, dataDir });
  const admin = await b.raw();
  for (const topic of ['Orders', 'Public', 'Secret']) {
    const r = await admin.request({ headers: { cmd: 'declare', topic, token: 'admin-secret' } });
    expect(r.status).toBe(200);
  }
  await admin.request({
    headers: { cmd: 'declare', topic: 'Orders', consume_group: 'billing', token: 'admin-secret' },
  });
  return { b, admin };
}

describe('auth', () => {
  it('allows what a token lists and answers anything else 403 with the 0.11 text', async () => {
    const { b } = await setup();
    const c = await b.raw();
    const ok = await c.request({
      headers: { cmd: 'produce', topic: 'Orders', token: 'producer' },
      body: 'o1',
    });
    expect(ok.status).toBe(200);
    const other = await c.request({
      headers: { cmd: 'produce', topic: 'Secret', token: 'producer' },
      body: 'x',
    });
    expect(other.status).toBe(403);
    expect(other.bodyText()).toBe('403: Command(produce) Topic(Secret) Forbbiden');
    expect(other.headers.error_code).toBe('ZBUS_ERR_FORBIDDEN');
    const op = await c.request({ headers: { cmd: 'remove', topic: 'Orders', token: 'producer' } });
    expect([op.status, op.bodyText()]).toEqual([403, '403: Command(remove) Topic(Orders) Forbbiden']);
    const none = await c.request({ headers: { cmd: 'produce', topic: 'Orders' }, body: 'x' });
    expect(none.status).toBe(403);
    const wrong = await c.request({
      headers: { cmd: 'produce', topic: 'Orders', token: 'producerX' },
      body: 'x',
    });
    expect(wrong.status).toBe(403);
    const server = await c.request({ headers: { cmd: 'server', token: 'producer' } });
    expect([server.status, server.bodyText()]).toEqual([403, '403: Command(server) Forbbiden']);
  });

  it('checks the group for consume: a token limited to some groups may consume only those', async () => {
    const { b, admin } = await setup();
    await admin.request({
      headers: { cmd: 'declare', topic: 'Orders', consume_group: 'audit', token: 'admin-secret' },
    });
    await admin.request({
      headers: { cmd: 'produce', topic: 'Orders', token: 'admin-secret', id: 'o-1' },
      body: 'o',
    });
    const c = await b.raw();
    const d = await c.request({
      headers: { cmd: 'consume', topic: 'Orders', consume_group: 'billing', token: 'reader' },
    });
    expect(d.status).toBe(200);
    expect(d.headers.origin_id).toBe('o-1');
    expect(d.headers.token).toBeUndefined(); // never stored, never delivered
    const denied = await c.request({
      headers: { cmd: 'consume', topic: 'Orders', consume_group: 'audit', token: 'reader' },
    });
    expect([denied.status, denied.bodyText()]).toEqual([
      403,
      '403: Command(consume) Topic(Orders) Forbbiden',
    ]);
    // The default group is named as the topic, which this token does not list.
    expect((await c.request({ headers: { cmd: 'consume', topic: 'Orders', token: 'reader' } })).status).toBe(
      403,
    );
  });

  it('filters query results to the topics the token may see', async () => {
    const { b } = await setup();
    const c = await b.raw();
    const topicsOf = async (token?: string) => {
      const headers: Record<string, string> = { cmd: 'query' };
      if (token !== undefined) headers.token = token;
      const r = await c.request({ headers });
      expect(r.status).toBe(200);
      return Object.keys(r.json<{ topicTable: Record<string, unknown> }>().topicTable).sort();
    };
    expect(await topicsOf('admin-secret')).toEqual(['Orders', 'Public', 'Secret']);
    expect(await topicsOf('reader')).toEqual(['Orders']);
    expect(await topicsOf()).toEqual(['Public']); // the '' entry covers requests without a token
    const q = await c.request({ headers: { cmd: 'query', topic: 'Secret', token: 'reader' } });
    expect(q.status).toBe(403);
  });

  it("takes the token from ?token= and from the token cookie of the broker's own pages over plain HTTP", async () => {
    const { b } = await setup();
    const denied = await fetch(`${b.url}/produce/Orders?body=x`);
    expect(denied.status).toBe(403);
    expect(await denied.text()).toBe('403: Command(produce) Topic(Orders) Forbbiden');
    expect((await fetch(`${b.url}/produce/Orders?body=x&token=producer`)).status).toBe(200);
    const cookie = await fetch(`${b.url}/produce/Orders?body=y`, {
      headers: { cookie: 'theme=dark; token=producer', 'sec-fetch-site': 'same-origin' },
    });
    expect(cookie.status).toBe(200);
    // Without a browser's mark the cookie may be an <img> of a page on another port riding it (cross-site.test.ts).
    const unmarked = await fetch(`${b.url}/produce/Orders?body=y`, { headers: { cookie: 'token=producer' } });
    expect(unmarked.status).toBe(403);
    // A header token wins over the query.
    const both = await fetch(`${b.url}/produce/Orders?body=z&token=producer`, { headers: { token: 'nope' } });
    expect(both.status).toBe(403);
  });

  it('takes the token of a WebSocket session from its handshake cookie', async () => {
    const { b } = await setup();
    const withCookie = await wsConnect(b.port, { headers: { cookie: 'token=producer' } });
    const ok = await withCookie.request({ headers: { cmd: 'produce', topic: 'Orders' }, body: 'ws' });
    expect(ok.status).toBe(200);
    const anonymous = await wsConnect(b.port);
    const denied = await anonymous.request({ headers: { cmd: 'produce', topic: 'Orders' }, body: 'ws' });
    expect(denied.status).toBe(403);
  });

  it('never checks the public commands (heartbeat, ping)', async () => {
    const { b } = await setup();
    const c = await b.raw();
    const hb = c.send({ headers: { cmd: 'heartbeat' } });
    expect((await c.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
    expect(c.received.find((m) => m.headers.id === hb)).toBeUndefined();
  });
});

describe('group-scoped ACLs act on their groups only', () => {
  const scoped: AuthConfig = {
    tokens: [
      auth.tokens[0]!,
      {
        token: 'billing-ops',
        operations: ['declare', 'remove', 'empty', 'consume', 'query'],
        topics: [{ topic: 'Orders', groups: ['billing'] }],
      },
      // Allowed on the default group only (named as the topic): still not the whole topic.
      {
        token: 'default-ops',
        operations: ['declare', 'remove', 'empty'],
        topics: [{ topic: 'Orders', groups: ['Orders'] }],
      },
      { token: 'topic-ops', operations: ['declare', 'remove', 'empty'], topics: [{ topic: 'Orders' }] },
    ],
  };

  async function seeded() {
    const b = await startTestBroker({ auth: scoped });
    const c = await b.raw();
    const as = (token: string, headers: Record<string, string>) =>
      c.request({ headers: { ...headers, token } });
    await as('admin-secret', { cmd: 'declare', topic: 'Orders' });
    for (const g of ['billing', 'audit'])
      await as('admin-secret', { cmd: 'declare', topic: 'Orders', consume_group: g });
    for (let i = 0; i < 3; i++) await as('admin-secret', { cmd: 'produce', topic: 'Orders', body: `m${i}` });
    const backlog = async (group: string) =>
      (await as('admin-secret', { cmd: 'query', topic: 'Orders', consume_group: group })).json<{
        messageCount: number;
      }>().messageCount;
    return { b, as, backlog };
  }

  it('refuses topic-wide changes to a token limited to some groups, and lets it change its own group', async () => {
    const { as, backlog } = await seeded();
    const refused = async (token: string, headers: Record<string, string>) => {
      const r = await as(token, headers);
      expect([r.status, r.headers.error_code], JSON.stringify(headers)).toEqual([403, 'ZBUS_ERR_FORBIDDEN']);
    };
    for (const token of ['billing-ops', 'default-ops']) {
      const group = token === 'billing-ops' ? 'billing' : 'Orders';
      await refused(token, { cmd: 'declare', topic: 'Orders', consume_group: group, topic_mask: '1' });
      await refused(token, {
        cmd: 'declare',
        topic: 'Orders',
        consume_group: group,
        topic_retention_ms: '1',
      });
      await refused(token, { cmd: 'declare', topic: 'Orders', group_name_auto: 'true' });
      await refused(token, { cmd: 'empty', topic: 'Orders' });
      await refused(token, { cmd: 'remove', topic: 'Orders' });
    }
    expect(await backlog('audit')).toBe(3);
    expect(await backlog('billing')).toBe(3);
    // Its own group: declared again (same mask), emptied, removed; the other groups keep their messages.
    const again = await as('billing-ops', { cmd: 'declare', topic: 'Orders', consume_group: 'billing' });
    expect(again.status).toBe(200);
    expect(
      (await as('billing-ops', { cmd: 'empty', topic: 'Orders', consume_group: 'billing' })).status,
    ).toBe(200);
    expect(await backlog('billing')).toBe(0);
    expect(await backlog('audit')).toBe(3);
    expect(
      (await as('billing-ops', { cmd: 'remove', topic: 'Orders', consume_group: 'billing' })).status,
    ).toBe(200);
    expect(await backlog('audit')).toBe(3);
    const q = await as('admin-secret', { cmd: 'query', topic: 'Orders' });
    expect(q.json<{ mask: number }>().mask).toBe(0);
  });

  it('lets a token without a group limit change the whole topic', async () => {
    const { as, backlog } = await seeded();
    const mask = await as('topic-ops', { cmd: 'declare', topic: 'Orders', topic_mask: '64' });
    expect(mask.status).toBe(200);
    expect((await as('topic-ops', { cmd: 'empty', topic: 'Orders' })).status).toBe(200);
    expect(await backlog('audit')).toBe(0);
    expect((await as('topic-ops', { cmd: 'remove', topic: 'Orders' })).status).toBe(200);
    const gone = await as('admin-secret', { cmd: 'query', topic: 'Orders' });
    expect(gone.status).toBe(404);
  });

  it('lets a group-scoped token create the topic with its defaults when it declares its group', async () => {
    const b = await startTestBroker({ auth: scoped });
    const c = await b.raw();
    const r = await c.request({
      headers: { cmd: 'declare', topic: 'Orders', consume_group: 'billing', token: 'billing-ops' },
    });
    expect(r.status).toBe(200);
    const withMask = await c.request({
      headers: {
        cmd: 'declare',
        topic: 'Orders',
        consume_group: 'billing',
        topic_mask: '2',
        token: 'billing-ops',
      },
    });
    expect(withMask.status).toBe(403);
  });
});

describe('creator is never a token', () => {
  it('records the token name, or the client address for a token without one, never the secret', async () => {
    const { b } = await setup();
    const c = await b.raw();
    // `producer` has no name: the creator is the client's address. `admin-secret` is named `admin`.
    const byProducer = await c.request({
      headers: { cmd: 'declare', topic: 'Orders', consume_group: 'fresh', token: 'producer' },
    });
    expect(byProducer.status).toBe(200);
    await c.request({ headers: { cmd: 'declare', topic: 'Audit', token: 'admin-secret' } });
    const everything = [
      (await c.request({ headers: { cmd: 'query', topic: 'Orders', token: 'reader' } })).bodyText(),
      (await c.request({ headers: { cmd: 'query', topic: 'Audit', token: 'admin-secret' } })).bodyText(),
      (await c.request({ headers: { cmd: 'server', token: 'admin-secret' } })).bodyText(),
      (await c.request({ headers: { cmd: 'tracker', token: 'admin-secret' } })).bodyText(),
      (
        await c.request({
          headers: { cmd: 'query', topic: 'Orders', consume_group: 'fresh', token: 'reader' },
        })
      ).bodyText(),
    ].join('\n');
    expect(everything).not.toContain('admin-secret');
    expect(everything).not.toContain('"creator":"producer"');
    const orders = JSON.parse(everything.split('\n')[0]!) as {
      creator: string;
      consumeGroupList: Array<{ groupName: string; creator: string }>;
    };
    expect(orders.creator).toBe('admin');
    const fresh = orders.consumeGroupList.find((g) => g.groupName === 'fresh')!;
    expect(fresh.creator).toMatch(/^127\.0\.0\.1:\d+$/);
    // And on disk: topic.json and the group files hold no secret either.
    const files = listFiles(b.dataDir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(f, 'utf8'), f).not.toContain('admin-secret');
  });
});

describe('creators written by earlier versions', () => {
  it('are rewritten once at open: a token becomes its name, an unknown string goes, an address stays', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'zbus-creators-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    {
      const { b } = await setup(dataDir);
      const c = await b.raw();
      await c.request({
        headers: { cmd: 'declare', topic: 'Legacy', consume_group: 'g', token: 'admin-secret' },
      });
      await b.broker.close();
    }
    // What an earlier version wrote: the declaring token as creator, in topic.json (twice) and the group file.
    const topicJson = join(dataDir, 'legacy', 'topic.json');
    const groupJson = listFiles(join(dataDir, 'legacy', 'groups')).find((f) => f.endsWith('.json'))!;
    const ordersJson = join(dataDir, 'orders', 'topic.json');
    const meta = JSON.parse(readFileSync(topicJson, 'utf8'));
    meta.creator = 'admin-secret';
    meta.config.creator = 'admin-secret';
    writeFileSync(topicJson, JSON.stringify(meta));
    const group = JSON.parse(readFileSync(groupJson, 'utf8'));
    group.creator = 'a-token-since-removed';
    writeFileSync(groupJson, JSON.stringify(group));
    const orders = JSON.parse(readFileSync(ordersJson, 'utf8'));
    orders.creator = '10.1.2.3:50000';
    writeFileSync(ordersJson, JSON.stringify(orders));
    rmSync(join(dataDir, '.creators-v2'));

    const b = await startTestBroker({ auth, dataDir });
    const c = await b.raw();
    const q = await c.request({ headers: { cmd: 'query', topic: 'Legacy', token: 'admin-secret' } });
    const info = q.json<{
      creator: string;
      consumeGroupList: Array<{ groupName: string; creator: string }>;
    }>();
    expect(info.creator).toBe('admin');
    expect(info.consumeGroupList.find((g) => g.groupName === 'g')!.creator).toBe('');
    const o = await c.request({ headers: { cmd: 'query', topic: 'Orders', token: 'admin-secret' } });
    expect(o.json<{ creator: string }>().creator).toBe('10.1.2.3:50000');
    for (const f of [topicJson, groupJson]) {
      expect(readFileSync(f, 'utf8')).not.toContain('admin-secret');
      expect(readFileSync(f, 'utf8')).not.toContain('a-token-since-removed');
    }
  });
});

describe('tokens never travel with stored messages', () => {
  it('strips the token from the header, the URL query and the cookie of a stored message', async () => {
    const { b, admin } = await setup();
    await fetch(`${b.url}/Orders?cmd=produce&token=producer&body=by-query`);
    await fetch(`${b.url}/produce/Orders?body=by-cookie`, {
      headers: { cookie: 'theme=dark; token=producer', 'sec-fetch-site': 'same-origin' },
    });
    await fetch(`${b.url}/produce/Orders?body=by-tls-cookie`, {
      headers: { cookie: '__Host-token=producer; theme=dark', 'sec-fetch-site': 'same-origin' },
    });
    await admin.request({
      headers: { cmd: 'produce', topic: 'Orders', token: 'admin-secret' },
      body: 'by-header',
    });
    const c = await b.raw();
    for (const body of ['by-query', 'by-cookie', 'by-tls-cookie', 'by-header']) {
      const d = await c.request({
        headers: { cmd: 'consume', topic: 'Orders', consume_group: 'billing', token: 'reader' },
      });
      expect(d.bodyText()).toBe(body);
      const wire = JSON.stringify(d.headers);
      expect(wire).not.toContain('producer');
      expect(wire).not.toContain('admin-secret');
      if (body.endsWith('cookie')) expect(d.headers.cookie).toBe('theme=dark');
    }
  });
});

describe('monitor login', () => {
  it('redirects / to the login page without a valid token, and logs in with an HttpOnly cookie', async () => {
    const { b } = await setup();
    const home = await fetch(`${b.url}/`, { redirect: 'manual' });
    expect([home.status, home.headers.get('location')]).toEqual([302, '/?cmd=login']);
    const bad = await fetch(`${b.url}/?cmd=login`, {
      method: 'POST',
      body: new URLSearchParams({ token: 'wrong' }),
      redirect: 'manual',
    });
    expect(bad.status).toBe(401);
    const ok = await fetch(`${b.url}/?cmd=login`, {
      method: 'POST',
      body: new URLSearchParams({ token: 'admin-secret' }),
      redirect: 'manual',
    });
    expect(ok.status).toBe(302);
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toContain('token=admin-secret');
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    const page = await fetch(`${b.url}/`, { headers: { cookie: 'token=admin-secret' }, redirect: 'manual' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('opens the monitor to admin tokens only: the login form and the pages refuse other valid tokens', async () => {
    const { b } = await setup();
    const login = await fetch(`${b.url}/?cmd=login`, {
      method: 'POST',
      body: new URLSearchParams({ token: 'producer' }),
      redirect: 'manual',
    });
    expect(login.status).toBe(401);
    expect(login.headers.get('set-cookie')).toBeNull();
    expect(await login.text()).toContain('admin only');
    const page = await fetch(`${b.url}/`, { headers: { cookie: 'token=producer' }, redirect: 'manual' });
    expect([page.status, page.headers.get('location')]).toEqual([302, '/?cmd=login']);
    const asset = await fetch(`${b.url}/monitor.js?cmd=js`, { headers: { cookie: 'token=producer' } });
    expect(asset.status).toBe(403);
  });
});
