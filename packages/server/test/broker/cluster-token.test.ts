// The cluster secret (decisions.md §6, issue 14 item 6): a tracker takes `track_pub` only from brokers started
// with its cluster token. Without it, any client could claim topics for an address of its choosing (every
// `Broker` client would send its producers there) and make the tracker dial any address; and the connections a
// tracker opens are bounded (trackerMaxServers).
import { createServer, type Server, type Socket } from 'node:net';
import type { RawClient } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createBroker } from '../../src/index.js';
import { startTestBroker, type TestBroker } from './helpers.js';

const SECRET = 'cluster-secret-0123456789';

/** A TCP listener standing for an address a report names; it counts the connections the tracker opens to it. */
async function target(): Promise<{ address: string; dials: Socket[]; dialled: Promise<void> }> {
  const dials: Socket[] = [];
  let first: () => void = () => {};
  const dialled = new Promise<void>((resolve) => {
    first = resolve;
  });
  const server: Server = createServer((s) => {
    dials.push(s);
    s.on('error', () => {});
    first();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    for (const s of dials) s.destroy();
    server.close();
  });
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, dials, dialled };
}

function report(c: RawClient, address: string, clusterToken?: string) {
  const headers: Record<string, string> = { cmd: 'track_pub' };
  if (clusterToken !== undefined) headers.cluster_token = clusterToken;
  return c.request({
    headers,
    body: JSON.stringify({
      serverInfo: { serverAddress: { address, sslEnabled: false }, topicTable: {} },
      live: true,
    }),
  });
}

async function tracked(b: TestBroker): Promise<string[]> {
  const c = await b.raw();
  const info = (await c.request({ headers: { cmd: 'tracker' } })).json<{
    serverTable: Record<string, unknown>;
  }>();
  return Object.keys(info.serverTable).sort();
}

describe('cluster token', () => {
  it('refuses server reports on a broker without one, and dials nothing', async () => {
    const b = await startTestBroker();
    const evil = await target();
    const c = await b.raw();
    const r = await report(c, evil.address);
    expect([r.status, r.headers.error_code]).toEqual([403, 'ZBUS_ERR_FORBIDDEN']);
    expect(r.bodyText()).toContain('--cluster-token');
    expect(await tracked(b)).toEqual([b.broker.announced]);
    expect(evil.dials).toEqual([]);
  });

  it('takes reports only with the right token, and dials only what members report', async () => {
    const b = await startTestBroker({ clusterToken: SECRET });
    const [evil, member] = [await target(), await target()];
    const c = await b.raw();
    for (const token of [undefined, 'not-the-secret', `${SECRET}x`]) {
      const r = await report(c, evil.address, token);
      expect([r.status, r.headers.error_code], String(token)).toEqual([403, 'ZBUS_ERR_FORBIDDEN']);
    }
    const ok = await report(c, member.address, SECRET);
    expect(ok.status).toBe(200);
    await member.dialled; // the tracker watches the member's address
    expect(await tracked(b)).toEqual([b.broker.announced, member.address].sort());
    expect(evil.dials).toEqual([]);
  });

  it('bounds the servers it tracks, and so the connections it opens', async () => {
    const b = await startTestBroker({ clusterToken: SECRET, trackerMaxServers: 2 });
    const targets = [await target(), await target(), await target()];
    const c = await b.raw();
    expect((await report(c, targets[0]!.address, SECRET)).status).toBe(200);
    expect((await report(c, targets[1]!.address, SECRET)).status).toBe(200);
    const full = await report(c, targets[2]!.address, SECRET);
    expect([full.status, full.headers.error_code]).toEqual([429, 'ZBUS_ERR_LIMIT']);
    expect(full.bodyText()).toContain('trackerMaxServers');
    // A server already in the table still reports.
    expect((await report(c, targets[0]!.address, SECRET)).status).toBe(200);
    await Promise.all([targets[0]!.dialled, targets[1]!.dialled]);
    expect(targets[2]!.dials).toEqual([]);
  });

  it('is sent by brokers that report, so members join and others do not', async () => {
    const tracker = await startTestBroker({ clusterToken: SECRET });
    const sub = await tracker.raw();
    sub.send({ headers: { cmd: 'track_sub', id: 'sub' } });
    const member = await startTestBroker({ clusterToken: SECRET, trackers: [`127.0.0.1:${tracker.port}`] });
    await sub.next(
      (m) =>
        m.headers.cmd === 'track_pub' &&
        member.broker.announced in m.json<{ serverTable: object }>().serverTable,
    );
    const stranger = await startTestBroker({
      clusterToken: 'another-cluster-secret',
      trackers: [`127.0.0.1:${tracker.port}`],
    });
    // The stranger's report is refused (counted as a 403 on the tracker), and it never joins the table.
    const metrics = async () => await (await fetch(`${tracker.url}/metrics`)).text();
    let m = await metrics();
    for (let i = 0; i < 500 && !/zbus_errors_total\{code="ZBUS_ERR_FORBIDDEN"\} [1-9]/.test(m); i++)
      m = await metrics();
    expect(m).toMatch(/zbus_errors_total\{code="ZBUS_ERR_FORBIDDEN"\} [1-9]/);
    expect(await tracked(tracker)).not.toContain(stranger.broker.announced);
  });

  it('is required with trackers, and must be hard to guess', () => {
    expect(() => createBroker({ trackers: ['127.0.0.1:1'] })).toThrow(/trackers need clusterToken/);
    expect(() => createBroker({ clusterToken: 'short' })).toThrow(/at least 16 characters/);
    expect(() => createBroker({ trackers: ['127.0.0.1:1'], clusterToken: SECRET })).not.toThrow();
  });
});
