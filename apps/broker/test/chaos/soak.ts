// The soak (`pnpm --filter @zbus/broker test:soak`, ZBUS_SOAK_MINUTES=30 for the full one): a steady load of
// durable produce, ack-mode consume and RPC request/reply against one broker for N minutes, sampling the
// broker's RSS and open file descriptors, throughput and latency percentiles every few seconds. It fails when
// a message is lost, RSS keeps growing past warm-up, or file descriptors leak. Not part of `test`.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chaosBroker, fdCount, report, rssKiB, sleep, Wire } from './helpers.js';

const MINUTES = Number(process.env.ZBUS_SOAK_MINUTES ?? 1);
const PRODUCE_PER_SEC = Number(process.env.ZBUS_SOAK_RATE ?? 500);
const RPC_PER_SEC = Number(process.env.ZBUS_SOAK_RPC_RATE ?? 100);
const SAMPLE_MS = MINUTES >= 10 ? 30_000 : 5000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 100) / 100;
  return { n: s.length, p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? 0) };
}

const now = () => performance.now();

describe('soak', () => {
  it(
    `keeps throughput, RSS and file descriptors steady for ${MINUTES} min of produce + consume + RPC`,
    async () => {
      const b = await chaosBroker({ fsync: 'always' });
      const pid = b.process.pid!;
      const admin = await Wire.open(b.port, 'admin');
      await admin.request({
        headers: {
          cmd: 'declare',
          topic: 'Soak',
          consume_group: 'workers',
          group_mask: '64',
          group_ack_timeout: '30000',
        },
      });
      await admin.request({ headers: { cmd: 'declare', topic: 'SoakRpc', topic_mask: '3' } });

      // Consumer: window 100, acks each message; latency = delivery time - send time carried in the body.
      const consumer = await Wire.open(b.port, 'c');
      const e2e: number[] = [];
      const seen = new Set<number>();
      let consumed = 0;
      consumer.stream('pull', (m) => {
        if (m.headers.origin_id === undefined) return;
        const [seq, sent] = m.bodyText().split(' ').map(Number) as [number, number];
        e2e.push(now() - sent);
        if (!seen.has(seq)) {
          seen.add(seq);
          consumed++;
        }
        consumer.send({
          headers: {
            cmd: 'ack',
            topic: 'Soak',
            consume_group: 'workers',
            offset: m.headers.offset!,
            ack: 'false',
          },
        });
      });
      consumer.send({
        headers: {
          id: 'pull',
          cmd: 'consume',
          topic: 'Soak',
          consume_group: 'workers',
          consume_window: '100',
        },
      });

      // RPC service: consumes the RPC topic one request at a time and routes the answer back to the caller.
      const service = await Wire.open(b.port, 's');
      let pulls = 0;
      const pullRpc = () => {
        const id = `rpc-pull-${++pulls}`;
        service.stream(id, (m) => {
          if (m.headers.origin_id === undefined) return;
          service.send({
            headers: {
              cmd: 'route',
              recver: m.headers.sender!,
              id: m.headers.origin_id,
              origin_status: '200',
              ack: 'false',
            },
            body: `echo ${m.bodyText()}`,
          });
          pullRpc();
        });
        service.send({ headers: { id, cmd: 'consume', topic: 'SoakRpc' } });
      };
      pullRpc();
      await sleep(200);

      const producer = await Wire.open(b.port, 'p');
      const caller = await Wire.open(b.port, 'r');
      const ackLat: number[] = [];
      const rpcLat: number[] = [];
      let produced = 0;
      let produceErrors = 0;
      let rpcOk = 0;
      let rpcErrors = 0;
      let rpcSent = 0;
      let closedEarly: string | undefined;
      const samples: Array<Record<string, unknown>> = [];
      const t0 = Date.now();
      const end = t0 + MINUTES * 60_000;
      let lastSample = t0;
      let lastProduced = 0;
      let lastConsumed = 0;
      let lastRpc = 0;
      let seq = 0;
      const tick = 20; // ms
      while (Date.now() < end) {
        const due = Math.floor(((Date.now() - t0) / 1000) * PRODUCE_PER_SEC);
        while (seq < due) {
          const mySeq = seq++;
          const sent = now();
          producer
            .request({ headers: { cmd: 'produce', topic: 'Soak' }, body: `${mySeq} ${sent}` }, 30_000)
            .then(
              (r) => {
                if (r.status === 200) {
                  produced++;
                  ackLat.push(now() - sent);
                } else produceErrors++;
              },
              () => {
                produceErrors++;
              },
            );
        }
        const rpcDue = Math.floor(((Date.now() - t0) / 1000) * RPC_PER_SEC);
        // Paced by calls sent (not by outcomes: a closed connection fails calls asynchronously, and counting
        // outcomes here would spin).
        while (rpcSent < rpcDue) {
          rpcSent++;
          const sent = now();
          caller.request({ headers: { cmd: 'produce', topic: 'SoakRpc' }, body: 'ping' }, 10_000).then(
            (r) => {
              if (r.status === 200 && r.bodyText() === 'echo ping') {
                rpcOk++;
                rpcLat.push(now() - sent);
              } else rpcErrors++;
            },
            () => {
              rpcErrors++;
            },
          );
        }
        const dead = [producer, caller, consumer, service].filter((w) => w.closed);
        if (dead.length > 0) {
          closedEarly = `${dead.length} connection(s) closed at ${Math.round((Date.now() - t0) / 1000)} s`;
          break;
        }
        if (Date.now() - lastSample >= SAMPLE_MS) {
          const secs = (Date.now() - lastSample) / 1000;
          samples.push({
            atS: Math.round((Date.now() - t0) / 1000),
            rssKiB: rssKiB(pid),
            fds: fdCount(pid),
            producePerS: Math.round((produced - lastProduced) / secs),
            consumePerS: Math.round((consumed - lastConsumed) / secs),
            rpcPerS: Math.round((rpcOk - lastRpc) / secs),
            ackMs: summary(ackLat.splice(0)),
            e2eMs: summary(e2e.splice(0)),
            rpcMs: summary(rpcLat.splice(0)),
          });
          lastSample = Date.now();
          lastProduced = produced;
          lastConsumed = consumed;
          lastRpc = rpcOk;
        }
        await sleep(tick);
      }
      // Drain: everything produced is consumed.
      const drainEnd = Date.now() + 30_000;
      while ((producer.inFlight > 0 || consumed < produced) && Date.now() < drainEnd) await sleep(50);
      const harness = {
        unmatched: [producer, caller, consumer, service].map((w) => w.unmatched.length),
        heapMiB: Math.round(process.memoryUsage().heapUsed / 1048576),
      };
      const rss = samples.map((s) => s.rssKiB as number);
      const fds = samples.map((s) => s.fds as number);
      const warm = Math.max(1, Math.floor(samples.length / 4));
      const rssAfterWarmup = rss.slice(warm);
      const result = {
        minutes: MINUTES,
        targetProducePerS: PRODUCE_PER_SEC,
        targetRpcPerS: RPC_PER_SEC,
        produced,
        consumed,
        produceErrors,
        rpcOk,
        rpcErrors,
        rssKiB: {
          first: rss[0],
          afterWarmupMin: Math.min(...rssAfterWarmup),
          last: rss[rss.length - 1],
          max: Math.max(...rss),
        },
        fds: { first: fds[0], last: fds[fds.length - 1], max: Math.max(...fds) },
        harness,
        closedEarly,
        brokerLog: closedEarly ? b.output().slice(-2000) : undefined,
        samples,
      };
      report('soak', result);
      expect(closedEarly).toBeUndefined();
      expect(produceErrors).toBe(0);
      expect(consumed).toBe(produced);
      expect(rpcErrors).toBe(0);
      // Steady: RSS after warm-up grows by less than 50 % and file descriptors by at most a few beyond the
      // three the store keeps open for each new 64 MiB segment (log, offset index, time index).
      expect(rss[rss.length - 1]!).toBeLessThan(Math.min(...rssAfterWarmup) * 1.5);
      const segments = readdirSync(join(b.dataDir, 'soak')).filter((f) => f.endsWith('.log')).length;
      expect(fds[fds.length - 1]! - fds[0]!).toBeLessThanOrEqual(4 + 3 * (segments - 1));
    },
    (MINUTES * 60 + 120) * 1000,
  );
});
