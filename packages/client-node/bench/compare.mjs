// Side-by-side benchmark, all in one run (issue 6 "Benchmark"): zbus-ts vs NATS (JetStream, core request/reply)
// vs Redis (XADD, AOF everysec), each started fresh on a loopback port, driven from Node clients.
//
//   node bench/compare.mjs [--seconds 3] [--only zbus,nats,redis] [--fsync always]
//
// Needs: the packages built (pnpm build), Debian `nats-server` and `redis-server` on PATH.
// Workloads: durable pipelined publish from 1 and 8 connections; publish-to-consume latency at 10k msg/s
// (p50/p99); RPC round trips per second with 32 concurrent callers. Payload: 100 bytes.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startBroker } from '@zbus/testkit';
import { AckPolicy, DeliverPolicy, connect as natsConnect, StorageType } from 'nats';
import { createClient as redisClient } from 'redis';
import { Broker, Consumer, MqClient, Producer, RpcInvoker } from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const SECONDS = Number(opt('seconds', '3'));
const ONLY = new Set(opt('only', 'zbus,nats,redis').split(','));
const FSYNC = opt('fsync', 'always');
const RATE = 10_000;
const PAYLOAD = 'x'.repeat(100);
const PAYLOAD_BYTES = new TextEncoder().encode(PAYLOAD);
const INFLIGHT = 256; // publishes outstanding per connection

const results = [];
const record = (system, workload, value, unit, note = '') => {
  results.push({ system, workload, value, unit, note });
  console.log(`${system.padEnd(6)} ${workload.padEnd(34)} ${String(value).padStart(10)} ${unit} ${note}`);
};

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `conns` loops of `INFLIGHT` workers calling `op(connIndex)` until the deadline; returns ops/s. */
async function pipelined(conns, op) {
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  const workers = [];
  for (let c = 0; c < conns; c++) {
    for (let w = 0; w < INFLIGHT; w++) {
      workers.push(
        (async () => {
          while (performance.now() < end) {
            await op(c);
            done++;
          }
        })(),
      );
    }
  }
  await Promise.all(workers);
  return Math.round(done / ((performance.now() - start) / 1000));
}

/** 32 callers in a loop until the deadline; returns calls/s. */
async function callers(n, call) {
  let done = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (performance.now() < end) {
        await call();
        done++;
      }
    }),
  );
  return Math.round(done / ((performance.now() - start) / 1000));
}

/** Publishes at RATE msg/s for SECONDS with the send time in the body; `received(ms)` collects latencies. */
async function atRate(send) {
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let sent = 0;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - start) / 1000) * RATE);
    while (sent < due) {
      send(`${performance.now()}|${PAYLOAD}`);
      sent++;
    }
    await sleep(1);
  }
  return sent;
}

function percentiles(lat) {
  const s = Float64Array.from(lat).sort();
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
  return { p50: at(0.5).toFixed(2), p99: at(0.99).toFixed(2), n: s.length };
}

const sentAt = (text) => Number(text.slice(0, text.indexOf('|')));

// ---- zbus-ts ------------------------------------------------------------------------------------------------

async function benchZbus() {
  const server = await startBroker({ fsync: FSYNC });
  try {
    const broker = new Broker(server.address);
    const admin = broker.client();
    await admin.declareTopic('bench1');
    await admin.declareTopic('bench8');

    const one = new Producer(broker, { maxInFlight: 100_000 });
    record(
      'zbus',
      'publish, 1 connection, durable',
      await pipelined(1, () => one.publish({ topic: 'bench1', body: PAYLOAD })),
      'msg/s',
      `fsync=${FSYNC}`,
    );

    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = new MqClient(server.address);
        await c.connect();
        return c;
      }),
    );
    const eight = clients.map((c) => new Producer(c, { maxInFlight: 100_000 }));
    record(
      'zbus',
      'publish, 8 connections, durable',
      await pipelined(8, (i) => eight[i].publish({ topic: 'bench8', body: PAYLOAD })),
      'msg/s',
      `fsync=${FSYNC}`,
    );
    await Promise.all(clients.map((c) => c.close()));

    await admin.declare('lat', { group: 'g' });
    const lat = [];
    const consumer = new Consumer(broker, {
      topic: 'lat',
      group: 'g',
      window: 256,
      handler: (m) => {
        lat.push(performance.now() - sentAt(m.bodyText()));
      },
    });
    await consumer.start();
    const pub = new Producer(broker, { maxInFlight: 100_000 });
    const sent = await atRate((body) => void pub.publish({ topic: 'lat', body }).catch(() => {}));
    for (let i = 0; i < 50 && lat.length < sent; i++) await sleep(100);
    await consumer.close();
    const p = percentiles(lat);
    record(
      'zbus',
      `publish->consume latency @${RATE}/s`,
      `${p.p50} / ${p.p99}`,
      'ms p50/p99',
      `${p.n}/${sent} received`,
    );

    const child = fork(new URL('./rpc-service.mjs', import.meta.url), ['zbus', server.address], {
      stdio: 'inherit',
    });
    await new Promise((r) => child.once('message', r));
    const rpc = new RpcInvoker(admin, { topic: 'BenchRpc', module: 'math' });
    await rpc.invoke('plus', 1, 2);
    record(
      'zbus',
      'RPC, 32 concurrent callers',
      await callers(32, () => rpc.invoke('plus', 1, 2)),
      'calls/s',
      'service in its own process',
    );
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
    await broker.close();
  } finally {
    await server.stop();
  }
}

// ---- NATS ---------------------------------------------------------------------------------------------------

async function benchNats() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-nats-'));
  const proc = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], {
    stdio: 'ignore',
  });
  const address = `127.0.0.1:${port}`;
  try {
    let nc;
    for (let i = 0; i < 50 && !nc; i++) {
      nc = await natsConnect({ servers: address }).catch(() => undefined);
      if (!nc) await sleep(100);
    }
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'BENCH', subjects: ['bench.>'], storage: StorageType.File });
    const js = nc.jetstream();
    record(
      'nats',
      'JetStream publish, 1 connection',
      await pipelined(1, () => js.publish('bench.one', PAYLOAD_BYTES)),
      'msg/s',
      'file storage, async publish',
    );

    const conns = await Promise.all(Array.from({ length: 8 }, () => natsConnect({ servers: address })));
    const jss = conns.map((c) => c.jetstream());
    record(
      'nats',
      'JetStream publish, 8 connections',
      await pipelined(8, (i) => jss[i].publish('bench.eight', PAYLOAD_BYTES)),
      'msg/s',
      'file storage, async publish',
    );
    await Promise.all(conns.map((c) => c.close()));

    await jsm.consumers.add('BENCH', {
      durable_name: 'lat',
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.New,
      filter_subject: 'bench.lat',
    });
    const cons = await js.consumers.get('BENCH', 'lat');
    const messages = await cons.consume({ max_messages: 1000 });
    const lat = [];
    const dec = new TextDecoder();
    const reading = (async () => {
      for await (const m of messages) lat.push(performance.now() - sentAt(dec.decode(m.data)));
    })();
    const enc = new TextEncoder();
    const sent = await atRate((body) => void js.publish('bench.lat', enc.encode(body)).catch(() => {}));
    for (let i = 0; i < 50 && lat.length < sent; i++) await sleep(100);
    messages.stop();
    await reading.catch(() => {});
    const p = percentiles(lat);
    record(
      'nats',
      `JetStream publish->consume @${RATE}/s`,
      `${p.p50} / ${p.p99}`,
      'ms p50/p99',
      `${p.n}/${sent} received`,
    );

    const child = fork(new URL('./rpc-service.mjs', import.meta.url), ['nats', address], {
      stdio: 'inherit',
    });
    await new Promise((r) => child.once('message', r));
    const req = enc.encode(JSON.stringify({ method: 'plus', params: [1, 2] }));
    record(
      'nats',
      'core request/reply, 32 callers',
      await callers(32, () => nc.request('bench.rpc', req, { timeout: 5000 })),
      'calls/s',
      'responder in its own process',
    );
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
    await nc.close();
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- Redis --------------------------------------------------------------------------------------------------

async function benchRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  try {
    let client;
    for (let i = 0; i < 50 && !client; i++) {
      const c = redisClient({ url });
      c.on('error', () => {});
      client = await c.connect().catch(() => undefined);
      if (!client) await sleep(100);
    }
    record(
      'redis',
      'XADD, 1 connection',
      await pipelined(1, () => client.xAdd('bench1', '*', { v: PAYLOAD })),
      'ops/s',
      'AOF everysec, auto-pipelined',
    );
    const conns = await Promise.all(Array.from({ length: 8 }, () => redisClient({ url }).connect()));
    record(
      'redis',
      'XADD, 8 connections',
      await pipelined(8, (i) => conns[i].xAdd('bench8', '*', { v: PAYLOAD })),
      'ops/s',
      'AOF everysec, auto-pipelined',
    );
    await Promise.all(conns.map((c) => c.quit()));

    const reader = await redisClient({ url }).connect();
    const lat = [];
    let stop = false;
    let last = '$';
    const reading = (async () => {
      while (!stop) {
        const res = await reader.xRead({ key: 'lat', id: last }, { BLOCK: 200, COUNT: 1000 });
        if (!res) continue;
        for (const s of res) {
          for (const m of s.messages) {
            lat.push(performance.now() - sentAt(m.message.v));
            last = m.id;
          }
        }
      }
    })();
    await sleep(50);
    const sent = await atRate((body) => void client.xAdd('lat', '*', { v: body }).catch(() => {}));
    for (let i = 0; i < 50 && lat.length < sent; i++) await sleep(100);
    stop = true;
    await reading;
    const p = percentiles(lat);
    record(
      'redis',
      `XADD->XREAD latency @${RATE}/s`,
      `${p.p50} / ${p.p99}`,
      'ms p50/p99',
      `${p.n}/${sent} received`,
    );
    await reader.quit();
    await client.quit();
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `# ${new Date().toISOString()} ${SECONDS}s per workload, payload ${PAYLOAD.length} B, node ${process.version}`,
);
if (ONLY.has('zbus')) await benchZbus();
if (ONLY.has('nats')) await benchNats();
if (ONLY.has('redis')) await benchRedis();
console.log(JSON.stringify(results));
