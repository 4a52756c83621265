// Scale-out under faults (issue 18): two brokers on a 3-node JetStream cluster (R3) take acknowledged
// pipelined load; each round kill -9s one NATS node, then one broker, then restarts both. Publishes the
// producers never saw acknowledged are sent again (at-least-once), then everything is read back: nothing
// acknowledged may be lost or corrupted, and only unacknowledged publishes may be duplicated. Delayed messages
// published in every round must all come due, and RPC calls keep being answered through the surviving broker.
// The default run is short (CHAOS.rounds, 3); `pnpm test:chaos` runs 50 rounds.
import { type NatsCluster, natsServerMissing, type RunningBroker, startNatsCluster } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CHAOS, chaosBroker, prng, readAll, report, sleep, Wire } from './helpers.js';
import { check, Ledger, resendUnknown, startProducers } from './producer.js';

const missing = natsServerMissing();
if (missing) console.warn(`JetStream chaos skipped: ${missing}`);

const TOPIC = 'NatsChaos';
const DELAYED = 'NatsChaosLater';
const SERVICE = 'NatsChaosRpc';
const WINDOW = 32;

/** A service consuming the RPC topic on one broker: answers `n` with `n+1`, until closed. */
async function service(port: number): Promise<Wire> {
  const w = await Wire.connect(port, 'svc-');
  const loop = async () => {
    while (!w.closed) {
      const req = await w.request({ headers: { cmd: 'consume', topic: SERVICE } }, 0).catch(() => undefined);
      if (!req || req.status !== 200) {
        if (!w.closed) await sleep(50);
        continue;
      }
      w.send({
        headers: { cmd: 'route', topic: SERVICE, recver: req.headers.sender!, id: req.headers.origin_id! },
        body: String(Number(req.bodyText()) + 1),
      });
    }
  };
  void loop();
  return w;
}

/** One call through `port`; the answer's body, or the status when it is not 200. */
async function call(port: number, n: number): Promise<string> {
  const w = await Wire.connect(port, 'call-');
  try {
    const r = await w.request(
      { headers: { cmd: 'produce', topic: SERVICE, ack: 'false' }, body: String(n) },
      15_000,
    );
    return r.status === 200 ? r.bodyText() : `status ${r.status}`;
  } finally {
    w.close();
  }
}

describe.skipIf(missing !== undefined)(
  'chaos: JetStream store under kill -9 of NATS nodes and brokers',
  () => {
    it(
      'loses and corrupts nothing acknowledged; delays come due; RPC carries on',
      async () => {
        const rnd = prng(CHAOS.seed);
        const cluster: NatsCluster = await startNatsCluster();
        onTestFinished(() => cluster.stop());
        const store = ['--store', cluster.url];
        const brokers: RunningBroker[] = [
          await chaosBroker({ args: store }),
          await chaosBroker({ args: store }),
        ];
        const [a, b] = brokers as [RunningBroker, RunningBroker];
        const admin = await Wire.connect(a.port);
        const declares: Array<Record<string, string>> = [
          { cmd: 'declare', topic: TOPIC },
          { cmd: 'declare', topic: DELAYED, consume_group: 'due', group_start_offset: '0' },
          { cmd: 'declare', topic: SERVICE, topic_mask: '3' },
        ];
        for (const headers of declares) {
          const r = await admin.request({ headers }, 30_000);
          expect(r.status, r.bodyText()).toBe(200);
        }
        admin.close();
        const services = [await service(a.port), await service(b.port)];
        onTestFinished(() => {
          for (const s of services) s.close();
        });

        const ledger = new Ledger();
        const delayed = new Set<string>();
        const perRound: Array<Record<string, unknown>> = [];
        let rpcDuringKill = 0;
        for (let round = 0; round < CHAOS.rounds; round++) {
          // Delayed messages, acknowledged before any kill of this round.
          const w = await Wire.connect(a.port, `d${round}-`);
          for (let i = 0; i < 10; i++) {
            const id = `d${round}-${i}`;
            const r = await w.request(
              {
                headers: { cmd: 'produce', topic: DELAYED, id, delay: String(300 + rnd.int(2000)) },
                body: id,
              },
              30_000,
            );
            if (r.status === 200) delayed.add(id);
          }
          w.close();

          const before = ledger.all.size;
          const onA = await startProducers(
            a.port,
            TOPIC,
            ledger,
            round * 2,
            CHAOS.producers / 2 || 1,
            WINDOW,
          );
          const onB = await startProducers(
            b.port,
            TOPIC,
            ledger,
            round * 2 + 1,
            CHAOS.producers / 2 || 1,
            WINDOW,
          );
          await sleep(50 + rnd.int(Math.max(1, CHAOS.killWithinMs - 50)));
          const node = cluster.nodes[round % cluster.nodes.length]!;
          await node.kill('SIGKILL');
          await sleep(50 + rnd.int(Math.max(1, CHAOS.killWithinMs - 50)));
          await b.kill('SIGKILL');
          // Through the surviving broker, RPC goes on (its own service answers).
          if ((await call(a.port, round)) === String(round + 1)) rpcDuringKill++;
          onA.stop();
          onB.stop();
          await Promise.all([onA.done, onB.done]);
          const unacked = ledger.unknown().length;
          await node.restart();
          await b.restart();
          services[1]!.close();
          services[1] = await service(b.port);
          await resendUnknown(a.port, TOPIC, ledger);
          perRound.push({ round, node: node.name, sent: ledger.all.size - before, unacked });
        }

        // Read everything back through the broker that was killed in every round.
        const all = await readAll(b.port, TOPIC);
        const v = check(ledger, all.records, all.missing.length);

        // Every acknowledged delayed message comes due (consumed through either broker's group).
        const due = new Set<string>();
        const reader = await Wire.connect(b.port, 'due-');
        for (let i = 0; due.size < delayed.size && i < delayed.size * 5; i++) {
          const r = await reader.request(
            { headers: { cmd: 'consume', topic: DELAYED, consume_group: 'due', consume_timeout: '10000' } },
            30_000,
          );
          if (r.status === 200 && r.headers.origin_id) due.add(r.headers.origin_id);
        }
        reader.close();

        // RPC through each broker after the rounds.
        const answers = [await call(a.port, 41), await call(b.port, 41)];

        report('nats chaos', {
          rounds: CHAOS.rounds,
          published: ledger.all.size,
          ...v,
          delayedAcked: delayed.size,
          delayedCameDue: [...delayed].filter((id) => due.has(id)).length,
          rpcDuringKill,
          rpcAfter: answers,
          producerErrors: Object.fromEntries(ledger.errors),
          perRound,
        });
        expect(v.lost, 'acknowledged but missing').toBe(0);
        expect(v.corrupted, 'corrupted').toBe(0);
        expect(v.holes, 'unreadable offsets').toBe(0);
        expect(v.duplicatedAcked, 'duplicates of acknowledged publishes').toBe(0);
        expect(
          [...delayed].filter((id) => !due.has(id)),
          'delayed messages that never came due',
        ).toEqual([]);
        expect(rpcDuringKill).toBe(CHAOS.rounds);
        expect(answers).toEqual(['42', '42']);
      },
      120_000 + CHAOS.rounds * 30_000,
    );
  },
);
