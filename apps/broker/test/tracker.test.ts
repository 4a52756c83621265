// Trackers (zbus-protocol.md §9): brokers started with --tracker report to it; track_sub sessions see
// servers join and leave within a bounded time, also when a broker is killed and when it comes back.

import type { Message } from '@zbus/protocol';
import { RawClient, type RunningBroker, scaled, startBroker } from '@zbus/testkit';
import { describe, expect, it, onTestFinished, vi } from 'vitest';

// tracker restarts take up to 30 s: longer than the default test timeout (both scale with the load).
vi.setConfig({ testTimeout: scaled(30_000) });

interface TrackerInfo {
  infoVersion: number;
  serverTable: Record<string, { topicTable: Record<string, unknown> }>;
}

/** Every broker here is a member of one cluster: trackers take reports only with its secret. */
const CLUSTER = { ZBUS_CLUSTER_TOKEN: 'tracker-test-cluster-secret' };

async function start(args: string[] = []): Promise<RunningBroker> {
  const b = await startBroker({ fsync: 'never', args: ['--log-level', 'silent', ...args], env: CLUSTER });
  onTestFinished(() => b.stop().then(() => undefined));
  return b;
}

async function subscribe(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  onTestFinished(() => c.close());
  c.send({ headers: { cmd: 'track_sub' } }); // the reply is the first TrackerInfo (cmd: track_pub)
  return c;
}

/**
 * Waits for a track_pub push whose TrackerInfo satisfies `ok` (pushes come on every change, each within
 * `scaled(timeoutMs)` of the last).
 */
async function until(c: RawClient, ok: (t: TrackerInfo) => boolean, timeoutMs = 8000): Promise<TrackerInfo> {
  for (;;) {
    const m: Message = await c.next((x) => x.headers.cmd === 'track_pub', timeoutMs);
    const t = m.json<TrackerInfo>();
    if (ok(t)) return t;
  }
}

describe('tracker', () => {
  it('lists the servers that report to it, with their topics, and drops one killed with SIGKILL', async () => {
    const tracker = await start();
    const a = await start(['--tracker', tracker.address]);
    const b = await start(['--tracker', tracker.address]);
    const sub = await subscribe(tracker.port);
    const has = (t: TrackerInfo, x: RunningBroker) => x.address in t.serverTable;
    await until(sub, (t) => has(t, tracker) && has(t, a) && has(t, b));

    const client = await RawClient.connect(a.port);
    onTestFinished(() => client.close());
    await client.request({ headers: { cmd: 'declare', topic: 'OnA' } });
    await until(sub, (t) => 'OnA' in (t.serverTable[a.address]?.topicTable ?? {}));

    // Dropped when its connection closes, not after a report interval.
    await b.kill('SIGKILL');
    const after = await until(sub, (t) => !has(t, b));
    expect(has(after, a)).toBe(true);

    await b.restart();
    await until(sub, (t) => has(t, b));
  });

  it('keeps infoVersion growing and the servers reporting across a tracker restart', async () => {
    const tracker = await start();
    const a = await start(['--tracker', tracker.address]);
    let sub = await subscribe(tracker.port);
    const first = await until(sub, (t) => a.address in t.serverTable);
    sub.close();
    await tracker.kill('SIGKILL');
    await tracker.restart();
    sub = await subscribe(tracker.port);
    const again = await until(sub, (t) => a.address in t.serverTable, 15_000);
    expect(again.infoVersion).toBeGreaterThan(first.infoVersion);
  });

  it('answers tracker and server queries with the 0.11 shapes', async () => {
    const tracker = await start();
    const a = await start(['--tracker', tracker.address]);
    const sub = await subscribe(tracker.port);
    await until(sub, (t) => a.address in t.serverTable);
    const info = (await sub.request({ headers: { cmd: 'tracker' } })).json<Record<string, unknown>>();
    expect(Object.keys(info).sort()).toEqual([
      'infoVersion',
      'serverAddress',
      'serverTable',
      'serverVersion',
    ]);
    const server = (await sub.request({ headers: { cmd: 'server' } })).json<Record<string, unknown>>();
    expect(server).toHaveProperty('topicTable');
    expect(server).toHaveProperty('trackerList');
  });
});
