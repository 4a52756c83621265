// Consumers killed mid-handler in ack mode: every message is processed at least once, the `retry` header
// counts deliveries, and poison messages (which crash their consumer every time) end in `<topic>.dlq` after
// `group_max_deliver` deliveries, with the reason in headers.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scaled, waitFor } from '@zbus/testkit';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { CHAOS, chaosBroker, prng, report, sleep, Wire } from './helpers.js';

// killing consumers takes up to 2 minutes: longer than the default test timeout (both scale with the load).
vi.setConfig({ testTimeout: scaled(120_000) });

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'ack-worker.mjs');

interface Worker {
  child: ChildProcess;
  exited: boolean;
}

describe('ack-mode consumers killed mid-handler', () => {
  it('redelivers with retry = deliveries - 1 and dead-letters after group_max_deliver', async () => {
    const b = await chaosBroker({ fsync: 'never' });
    const w = await Wire.open(b.port);
    await w.request({
      headers: {
        cmd: 'declare',
        topic: 'Jobs',
        consume_group: 'g',
        group_mask: '64',
        group_ack_timeout: '150',
        group_max_deliver: '3',
      },
    });
    await w.request({ headers: { cmd: 'produce', topic: 'Jobs', id: 'job-1' }, body: 'payload' });
    const retries: string[] = [];
    for (let i = 0; i < 3; i++) {
      // A fresh connection each time; it dies with the delivery unacked (a consumer killed mid-handler).
      const c = await Wire.connect(b.port);
      const d = await c.request({ headers: { cmd: 'consume', topic: 'Jobs', consume_group: 'g' } }, 5000);
      expect(d.headers.origin_id).toBe('job-1');
      retries.push(d.headers.retry ?? 'absent');
      c.close();
    }
    expect(retries).toEqual(['absent', '1', '2']);
    // The third delivery runs out: the message moves to Jobs.dlq with why and from where.
    const dead = await waitFor(async () => {
      const r = await w.request({ headers: { cmd: 'consume', topic: 'Jobs.dlq', offset: '0' } });
      return r.status === 200 ? r : undefined;
    }, 'the message in Jobs.dlq');
    expect(dead.bodyText()).toBe('payload');
    expect(dead.headers.origin_id).toBe('job-1');
    expect(dead.headers.dlq_topic).toBe('Jobs');
    expect(dead.headers.dlq_group).toBe('g');
    expect(dead.headers.dlq_deliveries).toBe('3');
    expect(dead.headers.dlq_reason).toBeTruthy();
    const g = (await w.request({ headers: { cmd: 'query', topic: 'Jobs', consume_group: 'g' } })).json<{
      unackedCount: number;
      deadLetterCount: number;
    }>();
    expect(g).toMatchObject({ unackedCount: 0, deadLetterCount: 1 });
  });

  it(`processes ${CHAOS.ackMessages} messages at least once while consumer processes are SIGKILLed`, async () => {
    const rnd = prng(CHAOS.seed + 7);
    const MAX_DELIVER = 4;
    const b = await chaosBroker({ fsync: 'never' });
    const admin = await Wire.open(b.port);
    await admin.request({
      headers: {
        cmd: 'declare',
        topic: 'Work',
        consume_group: 'workers',
        group_mask: '64',
        group_ack_timeout: '800',
        group_max_deliver: String(MAX_DELIVER),
      },
    });
    const total = CHAOS.ackMessages;
    const poison = new Set<string>();
    const ids: string[] = [];
    for (let i = 0; i < total; i++) {
      const id = `m${i}`;
      ids.push(id);
      const isPoison = i % 100 === 37; // ~1 %
      if (isPoison) poison.add(id);
      admin.send({
        headers: {
          cmd: 'produce',
          topic: 'Work',
          id,
          ack: 'false',
          ...(isPoison ? { tag: 'poison' } : {}),
        },
        body: `body-${id}`,
      });
    }
    await waitFor(
      async () =>
        (await admin.request({ headers: { cmd: 'query', topic: 'Work' } })).json<{ messageDepth: number }>()
          .messageDepth === total,
      'every message stored',
    );

    const deliveries = new Map<string, number[]>();
    const acked = new Set<string>();
    /** Handled and its ack sent (the worker may have died before the ack's answer came back). */
    const handled = new Set<string>();
    const workers = new Set<Worker>();
    let spawned = 0;
    let killed = 0;
    let crashedByPoison = 0;
    const spawnWorker = () => {
      const child = spawn(
        process.execPath,
        [WORKER, String(b.port), 'Work', 'workers', '1', '15', String(CHAOS.seed + spawned)],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      spawned++;
      const wk: Worker = { child, exited: false };
      workers.add(wk);
      let buf = '';
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        buf += s;
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const [kind, key, retry] = buf.slice(0, nl).split(' ');
          buf = buf.slice(nl + 1);
          nl = buf.indexOf('\n');
          if (kind === 'D') {
            const list = deliveries.get(key!) ?? [];
            list.push(Number(retry));
            deliveries.set(key!, list);
          } else if (kind === 'S') handled.add(key!);
          else if (kind === 'A') acked.add(key!);
        }
      });
      child.once('exit', (code) => {
        wk.exited = true;
        workers.delete(wk);
        if (code === 3) crashedByPoison++;
      });
      onTestFinished(() => {
        if (!wk.exited) child.kill('SIGKILL');
      });
    };
    for (let i = 0; i < 3; i++) spawnWorker();

    const normal = ids.filter((id) => !poison.has(id));
    const deadline = Date.now() + scaled(CHAOS.ackMessages > 1000 ? 600_000 : 40_000);
    const maxKills = Math.max(4, Math.round(total / 60));
    let dlqSeen = 0;
    while (Date.now() < deadline) {
      const doneNormal = normal.every((id) => handled.has(id));
      if (doneNormal && dlqSeen >= poison.size) break;
      await sleep(40 + rnd.int(160));
      // Kill a random live worker mid-handler now and then; keep three running.
      if (killed < maxKills && workers.size > 0 && rnd.next() < 0.5) {
        const victim = rnd.pick([...workers]);
        victim.child.kill('SIGKILL');
        killed++;
      }
      while (workers.size < 3) spawnWorker();
      if (doneNormal) {
        const info = (
          await admin.request({ headers: { cmd: 'query', topic: 'Work', consume_group: 'workers' } })
        ).json<{ deadLetterCount: number }>();
        dlqSeen = info.deadLetterCount;
      }
    }
    for (const wk of workers) wk.child.kill('SIGKILL');

    // Every normal message processed (handled, ack sent) at least once.
    const notAcked = normal.filter((id) => !handled.has(id));
    // Redelivery counts: per message, the observed retry values rise, the k-th observed delivery has
    // retry >= k (deliveries whose consumer died before reading them are not observed), and never reach
    // max_deliver.
    let badRetry = 0;
    let redelivered = 0;
    let maxRetry = 0;
    for (const [, list] of deliveries) {
      if (list.length > 1) redelivered++;
      list.forEach((r, k) => {
        if (r < k || (k > 0 && r <= list[k - 1]!) || r >= MAX_DELIVER) badRetry++;
        if (r > maxRetry) maxRetry = r;
      });
    }
    // Poison: delivered at most max_deliver times each, then in Work.dlq.
    const dlqDepth = (await admin.request({ headers: { cmd: 'query', topic: 'Work.dlq' } })).json<{
      messageDepth: number;
    }>().messageDepth;
    const dlqIds: string[] = [];
    const dlqDeliveries: string[] = [];
    for (let o = 0; o < dlqDepth; o++) {
      const r = await admin.request({ headers: { cmd: 'consume', topic: 'Work.dlq', offset: String(o) } });
      dlqIds.push(r.headers.origin_id!);
      dlqDeliveries.push(r.headers.dlq_deliveries!);
    }
    const normalInDlq = dlqIds.filter((id) => !poison.has(id));
    const group = (
      await admin.request({ headers: { cmd: 'query', topic: 'Work', consume_group: 'workers' } })
    ).json<{ unackedCount: number; deadLetterCount: number }>();
    report('ack consumers killed', {
      messages: total,
      poison: poison.size,
      workersSpawned: spawned,
      workersKilled: killed,
      workersCrashedByPoison: crashedByPoison,
      deliveriesObserved: [...deliveries.values()].reduce((n, l) => n + l.length, 0),
      redeliveredMessages: redelivered,
      maxRetrySeen: maxRetry,
      badRetryHeaders: badRetry,
      notHandled: notAcked.length,
      ackAnswered: acked.size,
      dlq: dlqIds.length,
      normalInDlq: normalInDlq.length,
      unackedAtEnd: group.unackedCount,
    });
    expect(badRetry).toBe(0);
    // A normal message may only reach the DLQ if every one of its deliveries was cut short by a kill.
    for (const id of normalInDlq) expect(deliveries.get(id)?.length ?? 0).toBeLessThanOrEqual(MAX_DELIVER);
    expect(notAcked.filter((id) => !normalInDlq.includes(id))).toEqual([]);
    expect(dlqIds.filter((id) => poison.has(id)).sort()).toEqual([...poison].sort());
    expect(new Set(dlqDeliveries)).toEqual(new Set([String(MAX_DELIVER)]));
    for (const id of poison) expect(deliveries.get(id)!.length).toBeLessThanOrEqual(MAX_DELIVER);
    expect(group.deadLetterCount).toBe(dlqIds.length);
  });
});
