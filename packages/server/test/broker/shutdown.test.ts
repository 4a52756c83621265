// Graceful shutdown (issue 5 "Transport", decisions.md §3): stop accepting, answer in-flight requests, flush
// the store, close; a restart on the same data keeps topics, groups and unacked messages.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, startBroker } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { declare, startTestBroker, untilConsumers } from './helpers.js';

/**
 * Consumes from group `g` of `T` until each of `ids` came, and returns the `retry` each came with first. An unacked
 * delivery comes back once its ack timeout passes, so on a slow run one may come twice (at least once): bounded.
 */
async function firstDeliveries(c: RawClient, ids: string[]): Promise<Record<string, string>> {
  const first: Record<string, string> = {};
  for (let i = 0; i < 4 * ids.length && Object.keys(first).length < ids.length; i++) {
    const m = await c.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    first[m.headers.origin_id!] ??= m.headers.retry ?? '0';
  }
  return first;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'zbus-shutdown-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('graceful close', () => {
  it('answers every request it read, stores exactly what it acknowledged, and flushes it', async () => {
    const dataDir = tempDir();
    const b = await startTestBroker({ dataDir, fsync: 'always' });
    const c = await b.raw();
    await declare(c, 'T');
    const ids: string[] = [];
    for (let i = 0; i < 200; i++)
      ids.push(c.send({ headers: { cmd: 'produce', topic: 'T', id: `p${i}` }, body: 'x' }));
    await c.next((m) => m.headers.id === 'p0');
    const closing = b.broker.close();
    const replies = await Promise.all(
      ids.slice(1).map((id) => c.next((m) => m.headers.id === id, 3000).catch(() => undefined)),
    );
    await closing;
    const answered = replies.filter((r) => r !== undefined);
    // Everything read before the close was answered: 200 when stored, 503 when it came during shutdown.
    for (const r of answered) expect([200, 503]).toContain(r!.status);
    for (const r of answered.filter((r) => r!.status === 503)) {
      expect(r!.headers.error_code).toBe('ZBUS_ERR_CLOSED');
      expect(r!.bodyText()).toBe('503: the broker is shutting down');
    }
    const stored = 1 + answered.filter((r) => r!.status === 200).length;
    // Restart on the same data: exactly the acknowledged messages are there.
    const again = await startTestBroker({ dataDir, fsync: 'always' });
    const q = await (await again.raw()).request({ headers: { cmd: 'query', topic: 'T' } });
    expect(q.json<{ messageDepth: number }>().messageDepth).toBe(stored);
  });

  it('refuses new connections once closing has begun', async () => {
    const b = await startTestBroker();
    const closing = b.broker.close();
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = connect(b.port, '127.0.0.1');
      s.once('error', (e) => resolve(e));
      s.once('data', () => resolve(undefined));
      s.once('connect', () => s.write('GET /ping HTTP/1.1\r\n\r\n'));
    });
    expect((err as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNREFUSED');
    await closing;
  });

  it('answers a waiting long-poll consume with 503 instead of dropping it', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await declare(c, 'T');
    const waiting = c.request({ headers: { cmd: 'consume', topic: 'T' } });
    await c.request({ headers: { cmd: 'ping' } });
    await b.broker.close();
    const r = await waiting;
    expect(r.status).toBe(503);
    expect(r.headers.error_code).toBe('ZBUS_ERR_CLOSED');
  });
  it('answers RPC calls still waiting for their service with 503', async () => {
    const b = await startTestBroker();
    const svc = await b.raw();
    await declare(svc, 'Mute', { topic_mask: '3' });
    svc.send({ headers: { cmd: 'consume', topic: 'Mute', id: 'svc' } });
    const admin = await b.raw();
    await untilConsumers(admin, 'Mute', 'Mute', 1);
    const byUrl = fetch(`${b.url}/Mute/m/f/1`);
    const caller = await b.raw();
    const byRoute = caller.request({ headers: { cmd: 'produce', topic: 'Mute', id: 'call' }, body: '{}' });
    await svc.next((m) => m.headers.id === 'svc');
    await b.broker.close();
    const r = await byUrl;
    expect([r.status, await r.text()]).toEqual([503, '503: the broker is shutting down']);
    const t = await byRoute;
    expect([t.status, t.headers.error_code]).toEqual([503, 'ZBUS_ERR_CLOSED']);
  });
});

describe('restart', () => {
  it('keeps topics, groups, positions and unacked messages', async () => {
    const dataDir = tempDir();
    const first = await startTestBroker({ dataDir, fsync: 'always' });
    const c = await first.raw();
    await declare(c, 'T');
    await declare(c, 'T', {
      consume_group: 'g',
      group_mask: '64',
      group_ack_timeout: '100',
      group_filter: 'a.#',
    });
    for (let i = 0; i < 3; i++) {
      await c.request({ headers: { cmd: 'produce', topic: 'T', id: `m${i}`, tag: 'a.b' }, body: `m${i}` });
    }
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    expect(d.headers.origin_id).toBe('m0'); // delivered, never acked
    await first.broker.close();

    const second = await startTestBroker({ dataDir, fsync: 'always' });
    const c2 = await second.raw();
    const g = (await c2.request({ headers: { cmd: 'query', topic: 'T', consume_group: 'g' } })).json<{
      filter: string;
      mask: number;
      unackedCount: number;
    }>();
    expect(g).toMatchObject({ filter: 'a.#', mask: 64, unackedCount: 1 });
    expect(await firstDeliveries(c2, ['m0', 'm1', 'm2'])).toEqual({ m0: '1', m1: '0', m2: '0' });
  });

  it('keeps a nack reason: a dead letter made after the restart carries it as dlq_error', async () => {
    const dataDir = tempDir();
    const first = await startTestBroker({ dataDir });
    const c = await first.raw();
    await declare(c, 'T', { consume_group: 'g', group_mask: '64', group_max_deliver: '2' });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'poison' }, body: 'bad' });
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    const nack = { cmd: 'nack', topic: 'T', consume_group: 'g', offset: d.headers.offset! };
    expect((await c.request({ headers: { ...nack, reason: 'parser: bad input' } })).status).toBe(200);
    await first.broker.close();

    const second = await startTestBroker({ dataDir });
    const c2 = await second.raw();
    const again = await c2.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    expect([again.headers.origin_id, again.headers.retry]).toEqual(['poison', '1']);
    await declare(c2, 'T.dlq');
    const dead = (await second.raw()).request({ headers: { cmd: 'consume', topic: 'T.dlq' } });
    // The last delivery is given back without a reason: the dead letter carries the one from before the restart.
    expect((await c2.request({ headers: nack })).status).toBe(200);
    expect((await dead).headers).toMatchObject({
      origin_id: 'poison',
      dlq_deliveries: '2',
      dlq_error: 'parser: bad input',
    });
  });
});

describe('the zbus serve process', () => {
  it('keeps acknowledged messages, groups and unacked deliveries across a SIGKILL and restart', async () => {
    const broker = await startBroker({ fsync: 'always' });
    onTestFinished(async () => {
      await broker.stop();
    });
    const c = await RawClient.connect(broker.port);
    await declare(c, 'T');
    await declare(c, 'T', { consume_group: 'g', group_mask: '64', group_ack_timeout: '100' });
    for (let i = 0; i < 3; i++) {
      expect(
        (await c.request({ headers: { cmd: 'produce', topic: 'T', id: `m${i}` }, body: `m${i}` })).status,
      ).toBe(200);
    }
    const d = await c.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    expect(d.headers.origin_id).toBe('m0');
    c.close();
    await broker.kill('SIGKILL');
    await broker.restart();
    const c2 = await RawClient.connect(broker.port);
    onTestFinished(() => c2.close());
    // The unacked m0 comes back (at least once), counted (see the next test).
    expect(await firstDeliveries(c2, ['m0', 'm1', 'm2'])).toEqual({ m0: '1', m1: '0', m2: '0' });
  });

  // The store writes a group's delivery record (J_DELIVER) before it hands the delivery out, so a SIGKILL right
  // after the consume reply cannot lose the count.
  it('counts a delivery made just before a SIGKILL: the redelivery after restart has retry 1', async () => {
    const broker = await startBroker({ fsync: 'always' });
    onTestFinished(async () => {
      await broker.stop();
    });
    const c = await RawClient.connect(broker.port);
    await declare(c, 'T', { consume_group: 'g', group_mask: '64', group_ack_timeout: '100' });
    await c.request({ headers: { cmd: 'produce', topic: 'T', id: 'm0' }, body: 'm0' });
    await c.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    await broker.kill('SIGKILL');
    await broker.restart();
    const c2 = await RawClient.connect(broker.port);
    onTestFinished(() => c2.close());
    const m = await c2.request({ headers: { cmd: 'consume', topic: 'T', consume_group: 'g' } });
    expect([m.headers.origin_id, m.headers.retry]).toEqual(['m0', '1']);
  });

  it('exits 0 on SIGTERM after saying where it listened', async () => {
    const broker = await startBroker({ fsync: 'always' });
    expect(broker.output()).toContain(`listening on 127.0.0.1:${broker.port}`);
    const r = await fetch(`http://${broker.address}/healthz`);
    expect(r.status).toBe(200);
    expect(await broker.stop()).toBe(0);
  });
});
