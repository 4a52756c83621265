// Scale-out figures (issue 18), every system in one run on this machine:
//
//   npx -y pnpm@10.20.0 --filter @zbus/store-nats bench        (= node bench/scale-out.bench.mjs)
//
// A 3-node nats-server cluster on loopback (testkit startNatsCluster), then:
//   pub      pipelined acknowledged publish from one connection, WINDOW in flight, 100-byte bodies, SECONDS each:
//            nats.js straight to a JetStream stream (R3, R1); zbus on the JetStream store (one broker; R3, R1);
//            zbus on its local store (fsync=always, fsync=interval=100)
//   consume  drain COUNT stored messages: nats.js pull consumer (batch WINDOW) vs zbus Consumer (window WINDOW)
//            through one broker (a plain group, then an ack-required one with auto acks), and one group drained
//            through two brokers at once (each message must reach exactly one of them)
//   rpc      request/reply, CALLERS concurrent: nats core request/reply; zbus local (service and caller on one
//            broker); zbus across brokers (service on broker B, caller on broker A, over the relay)
//   failover the longest gap between two acks of pipelined publishes through one zbus broker (R3) when the
//            NATS node leading the stream is killed (kill -9), and when the broker itself is killed and the
//            producer moves to a second broker
// CPU per message: utime+stime of this process, the broker(s) and the three nats-servers over each case.
// Knobs: BENCH_SECONDS (4), BENCH_WINDOW (1000), BENCH_COUNT (20000), BENCH_CALLERS (32), BENCH_OUT=<file.json>,
// BENCH_CASES (pub,consume,rpc,failover: the cases to run).
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Consumer, MqClient, Producer, RpcInvoker, ServiceBootstrap, Broker as ZBroker } from '@zbus/client';
import { cpuSeconds, startBroker, startNatsCluster } from '@zbus/testkit';

const env = (name, def) => process.env[name] ?? def;
const SECONDS = Number(env('BENCH_SECONDS', '4'));
const WINDOW = Number(env('BENCH_WINDOW', '1000'));
const COUNT = Number(env('BENCH_COUNT', '20000'));
const CALLERS = Number(env('BENCH_CALLERS', '32'));
const CASES = new Set(env('BENCH_CASES', 'pub,consume,rpc,failover').split(','));
const PAYLOAD = 'x'.repeat(100);
const PAYLOAD_BYTES = new TextEncoder().encode(PAYLOAD);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** CPU seconds of each named process over `fn`, with `fn`'s result. */
async function measured(pids, fn) {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const self0 = selfCpu();
  const r = await fn();
  const cpu = { bench: selfCpu() - self0 };
  for (const [k, pid] of Object.entries(pids)) cpu[k] = cpuSeconds(pid) - before[k];
  return { ...r, cpu, load1: loadavg()[0] };
}

/** `window` loops calling `op` for SECONDS after 0.5 s of warm-up; ops per second. */
async function windowed(window, op) {
  const from = performance.now() + 500;
  const to = from + SECONDS * 1000;
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (performance.now() < to) {
        try {
          await op();
          const t = performance.now();
          if (t >= from && t < to) done++;
        } catch {
          errors++;
          await sleep(10);
        }
      }
    }),
  );
  return { ops: done, perSecond: Math.round(done / SECONDS), errors };
}

const results = [];
function record(name, r) {
  const perMsgUs = Object.fromEntries(
    Object.entries(r.cpu).map(([k, s]) => [k, r.ops ? Math.round((s / r.ops) * 1e6) : null]),
  );
  const line = {
    name,
    perSecond: r.perSecond,
    ops: r.ops,
    errors: r.errors,
    cpuUsPerMsg: perMsgUs,
    load1: r.load1.toFixed(2),
    note: r.note,
  };
  results.push(line);
  console.log(JSON.stringify(line));
}

const cluster = await startNatsCluster();
const natsPids = Object.fromEntries(cluster.nodes.map((n) => [n.name, n.process.pid]));
const nc = await connect({ servers: cluster.servers });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const brokers = new Map();
/** The broker of `kind`, started on first use: `r3`, `r1` (JetStream, prefix b3/b1), `b3` (a second R3 broker). */
async function broker(kind, options) {
  let b = brokers.get(kind);
  if (b === undefined) {
    b = await startBroker(options ?? { args: storeArgs(kind === 'r1' ? 1 : 3) });
    brokers.set(kind, b);
  }
  return b;
}
const storeArgs = (replicas) => [
  '--store',
  cluster.url,
  '--store-replicas',
  String(replicas),
  '--store-prefix',
  `b${replicas}`,
];
const stopAll = async () => {
  for (const b of brokers.values()) await b.stop().catch(() => {});
  await nc.close().catch(() => {});
  await cluster.stop();
};

try {
  // ------------------------------------------------------------------ pub
  for (const replicas of CASES.has('pub') ? [3, 1] : []) {
    const name = `BENCH_R${replicas}`;
    await jsm.streams.add({ name, subjects: [`bench.r${replicas}`], num_replicas: replicas });
    const r = await measured(natsPids, () =>
      windowed(WINDOW, () => js.publish(`bench.r${replicas}`, PAYLOAD_BYTES)),
    );
    record(`pub nats.js -> JetStream R${replicas}`, { ...r, note: `js.publish, ${WINDOW} in flight` });
    await jsm.streams.delete(name);
  }
  /** Pipelined publish through the broker of `kind`. */
  const zbusPub = async (name, kind, options, pids) => {
    const b = await broker(kind, options);
    const client = new MqClient(b.address, { reconnect: false, timeout: 30_000 });
    await client.connect();
    await client.declareTopic('Pub');
    const producer = new Producer(client, { maxInFlight: WINDOW });
    const first = await producer.publish({ topic: 'Pub', body: PAYLOAD });
    const r = await measured({ broker: b.process.pid, ...pids }, () =>
      windowed(WINDOW, () => producer.publish({ topic: 'Pub', body: PAYLOAD })),
    );
    record(name, { ...r, note: `@zbus/client Producer, ${WINDOW} in flight, durable=${first.durability}` });
    await client.close();
  };
  if (CASES.has('pub')) {
    for (const replicas of [3, 1])
      await zbusPub(`pub zbus on JetStream R${replicas}`, `r${replicas}`, undefined, natsPids);
    for (const fsync of ['always', 'interval=100'])
      await zbusPub(`pub zbus local fsync=${fsync}`, `local-${fsync}`, { fsync }, {});
  }

  // ------------------------------------------------------------------ consume
  if (CASES.has('consume')) {
    await jsm.streams.add({ name: 'BENCH_C', subjects: ['bench.c'], num_replicas: 3 });
    await Promise.all(Array.from({ length: COUNT }, () => js.publish('bench.c', PAYLOAD_BYTES)));
    await jsm.consumers.add('BENCH_C', { durable_name: 'c', ack_policy: AckPolicy.All });
    const c = await js.consumers.get('BENCH_C', 'c');
    const r = await measured(natsPids, async () => {
      const t0 = performance.now();
      let n = 0;
      const msgs = await c.consume({ max_messages: WINDOW });
      for await (const m of msgs) {
        if (++n % 100 === 0 || n === COUNT) m.ack();
        if (n === COUNT) break;
      }
      const s = (performance.now() - t0) / 1000;
      return { ops: n, perSecond: Math.round(n / s), errors: 0 };
    });
    record('consume nats.js <- JetStream R3', {
      ...r,
      note: `consume() max_messages ${WINDOW}, AckAll every 100`,
    });

    /**
     * COUNT messages stored through the first of `via`, then drained by one Consumer per broker of `via` (window
     * WINDOW, auto acks); a message reaching two of them is counted in `duplicates`.
     */
    const zbusDrain = async (name, topic, declare, via) => {
      const client = new MqClient(via[0].address, { reconnect: false, timeout: 30_000 });
      await client.connect();
      await client.declare(topic, declare);
      const producer = new Producer(client, { maxInFlight: WINDOW });
      await Promise.all(Array.from({ length: COUNT }, () => producer.publish({ topic, body: PAYLOAD })));
      const pids = Object.fromEntries(via.map((b, i) => [`broker${i}`, b.process.pid]));
      const seen = new Set();
      let duplicates = 0;
      const zbrokers = via.map((b) => new ZBroker(b.address, { reconnect: false }));
      const r = await measured({ ...pids, ...natsPids }, async () => {
        const t0 = performance.now();
        let done;
        const all = new Promise((resolve) => {
          done = resolve;
        });
        const consumers = zbrokers.map(
          (zb) =>
            new Consumer(zb, {
              topic,
              group: 'g',
              window: WINDOW,
              handler: (m) => {
                if (seen.has(m.offset)) duplicates++;
                seen.add(m.offset);
                if (seen.size === COUNT) done();
              },
            }),
        );
        await Promise.all(consumers.map((x) => x.start()));
        await all;
        const s = (performance.now() - t0) / 1000;
        await Promise.all(consumers.map((x) => x.close()));
        return { ops: COUNT, perSecond: Math.round(COUNT / s), errors: duplicates };
      });
      record(name, { ...r, note: `Consumer window ${WINDOW} per broker, auto acks; errors = duplicates` });
      await Promise.all(zbrokers.map((zb) => zb.close()));
      await client.close();
    };
    const a = await broker('r3');
    await zbusDrain('consume zbus on JetStream R3', 'Drain', { group: 'g' }, [a]);
    await zbusDrain(
      'consume zbus on JetStream R3, ack-required group',
      'DrainAck',
      { group: 'g', mask: 64 },
      [a],
    );
    await zbusDrain(
      'consume zbus on JetStream R3, one group through two brokers',
      'DrainTwo',
      { group: 'g' },
      [a, await broker('b3')],
    );
  }

  // ------------------------------------------------------------------ rpc
  if (CASES.has('rpc')) {
    nc.subscribe('bench.rpc', { callback: (_e, m) => m.respond(m.data) });
    await nc.flush();
    const r = await measured(natsPids, () =>
      windowed(CALLERS, () => nc.request('bench.rpc', PAYLOAD_BYTES, { timeout: 10_000 })),
    );
    record('rpc nats core request/reply', { ...r, note: `${CALLERS} callers, responder in this process` });
  }
  const rpcCase = async (name, serviceAt, callerAt, pids) => {
    const service = await new ServiceBootstrap()
      .serviceName('BenchEcho')
      .serviceAddress(serviceAt)
      .connectionCount(1)
      .window(64)
      .addModule('bench', { echo: (s) => s })
      .start();
    const client = new MqClient(callerAt, { reconnect: false, timeout: 30_000 });
    await client.connect();
    const invoker = new RpcInvoker(client, { topic: 'BenchEcho', module: 'bench' });
    for (let i = 0; ; i++) {
      try {
        if ((await invoker.invoke('echo', PAYLOAD)) === PAYLOAD) break;
      } catch (err) {
        if (i > 200) throw err;
        await sleep(50);
      }
    }
    const r = await measured(pids, () => windowed(CALLERS, () => invoker.invoke('echo', PAYLOAD)));
    record(name, { ...r, note: `${CALLERS} callers, ServiceBootstrap window 64 in this process` });
    await client.close();
    await service.close();
  };
  if (CASES.has('rpc')) {
    const local = await broker('local-always', { fsync: 'always' });
    await rpcCase('rpc zbus local (service and caller on one broker)', local.address, local.address, {
      broker: local.process.pid,
    });
    const [a, b] = [await broker('r3'), await broker('b3')];
    await rpcCase('rpc zbus across brokers (JetStream store, relay over NATS)', b.address, a.address, {
      brokerA: a.process.pid,
      brokerB: b.process.pid,
      ...natsPids,
    });
  }

  // ------------------------------------------------------------------ failover
  if (CASES.has('failover')) {
    const client = new MqClient((await broker('r3')).address, { reconnect: false, timeout: 30_000 });
    await client.connect();
    await client.declareTopic('Failover');
    const producer = new Producer(client, { maxInFlight: 100 });
    const si = await jsm.streams.info('B3_T_failover');
    const leader = cluster.nodes.find((n) => n.name === si.cluster?.leader);
    let last = performance.now();
    let gap = 0;
    let stop = false;
    let errors = 0;
    const loops = Array.from({ length: 100 }, async () => {
      while (!stop) {
        try {
          await producer.publish({ topic: 'Failover', body: PAYLOAD });
          const t = performance.now();
          gap = Math.max(gap, t - last);
          last = t;
        } catch {
          errors++;
        }
      }
    });
    await sleep(1000);
    gap = 0;
    await leader.kill('SIGKILL');
    await sleep(8000);
    stop = true;
    await Promise.all(loops);
    const line = {
      name: `failover: stream leader ${leader.name} killed`,
      longestAckGapMs: Math.round(gap),
      errors,
    };
    results.push(line);
    console.log(JSON.stringify(line));
    await client.close();
    await leader.restart();
  }
  if (CASES.has('failover')) {
    // The producer's broker dies; it moves to the second broker (a client given both, as trackers or a load
    // balancer would): time from the kill to the first ack through the other broker.
    const [a, b] = [await broker('r3'), await broker('b3')];
    let client = new MqClient(a.address, { reconnect: false, timeout: 5_000 });
    await client.connect();
    let producer = new Producer(client, { maxInFlight: 100 });
    await producer.publish({ topic: 'Failover', body: PAYLOAD });
    const killedAt = performance.now();
    await a.kill('SIGKILL');
    let firstAck;
    for (;;) {
      try {
        await producer.publish({ topic: 'Failover', body: PAYLOAD });
        firstAck = performance.now();
        break;
      } catch {
        // Closed, or a publish on the dead connection keeps it trying to reconnect (and this process alive).
        await client.close().catch(() => {});
        client = new MqClient(b.address, { reconnect: false, timeout: 5_000 });
        await client.connect();
        producer = new Producer(client, { maxInFlight: 100 });
      }
    }
    const line = {
      name: 'failover: broker killed, producer moves to the other broker',
      firstAckAfterMs: Math.round(firstAck - killedAt),
    };
    results.push(line);
    console.log(JSON.stringify(line));
    await client.close();
  }
} finally {
  await stopAll();
}

const out = env('BENCH_OUT', '');
const meta = {
  at: new Date().toISOString(),
  cpus: cpus().length,
  model: cpus()[0]?.model,
  node: process.version,
  load1: loadavg()[0],
};
if (out) writeFileSync(out, JSON.stringify({ meta, results }, null, 2));
console.log(JSON.stringify(meta));
