// @zbus/client beside its peers, every system measured the same way in one run (issue 6, "Benchmark";
// targets: shared/docs/decisions.md §5; method: shared/docs/peers.md §4 "Method lessons").
//
//   npx -y pnpm@10.20.0 --filter @zbus/client bench        (= node bench/peers.bench.mjs)
//
// Systems, each started fresh by this script on 127.0.0.1 and a free port, and stopped at the end:
//   zbus  fsync=always      apps/broker/dist/cli.js through @zbus/testkit (ack after the group-committed fsync)
//   zbus  fsync=interval=100  same broker, ack after the write, fsync every 100 ms
//   nats  Debian nats-server -js -sd <tmp> (installed with apt-get when missing), `nats` npm client
//   redis Debian redis-server --appendonly yes --appendfsync everysec --save '', `redis` npm client
// Workloads (100-byte bodies):
//   pub1  pipelined durable publish from one connection, WINDOW publishes in flight (the same depth for every system:
//         WINDOW loops each awaiting its publish; no client's own bound is lower), msgs/s over BENCH_SECONDS
//   pub8  the same from 8 connections, WINDOW in flight on each
//   lat   open-loop publish at BENCH_RATE msg/s for BENCH_LAT_SECONDS (after 1 s of warm-up at the same rate);
//         latency = consume time - *scheduled* send time (no coordinated omission); p50/p90/p99/p99.9/max. The
//         sender (lat-producer.mjs) runs in a worker thread of its own with its own client connection, the
//         consumer in the main thread, both on one monotonic clock, for every system alike: a consumer's burst
//         does not delay the next send. Each latency is split into the harness's own share, the send lag (sent -
//         scheduled), and the transit (received - sent: both clients and the server); the event-loop delay of
//         both threads over the measured interval is reported beside them. The send loop wakes every
//         BENCH_TICK_US microseconds (250) from a thread that sleeps in Atomics.wait (no busy loop);
//         BENCH_TICK_US=0 is a setTimeout(1) loop, which wakes every 1-2 ms (libuv timers count whole
//         milliseconds). No publishing client bounds what is in flight in this open loop (nats.js and node-redis
//         have no such bound; zbus's Producer gets bounds above what a run sends).
//   rpc   request/reply round trips per second, BENCH_CALLERS concurrent callers on one connection; the service
//         (zbus ServiceBootstrap / NATS nc.subscribe responder) runs in a child process on its own connection
// The whole list is repeated BENCH_REPEAT times (default 2; the order of systems is reversed on the second round so
// that neither side always runs first); the table gives the median of the rounds (of two rounds: their mean), each
// round's figure, the 1-minute load average after each case, the CPU share the server (+ RPC service) and this
// process took, that share over the rate as CPU microseconds per message (or call) on each side, and the work done
// per CPU-second of all of them (both comparable when the machine is shared).
// Knobs: BENCH_SECONDS (4) per throughput case, BENCH_LAT_SECONDS (10), BENCH_RATE (10000), BENCH_TICK_US (250), BENCH_WINDOW (1000),
// BENCH_CONSUME_WINDOW (1000; XREAD takes COUNT 1000), BENCH_CALLERS (32), BENCH_ONLY=zbus-always,zbus-interval,
// nats,redis (also zbus-never: fsync=never, a diagnostic), BENCH_WORKLOADS=pub,lat,rpc, BENCH_OUT=<file.json>, BENCH_DEBUG=1 (progress of latency cases),
// BENCH_PROFILE=<dir> (the zbus brokers run under node --cpu-prof; read with bench/profile-top.mjs),
// BENCH_BROKER_NODE_ARGS='--trace-gc ...' (node flags for the zbus brokers; their output follows the bench's),
// BENCH_TIMELINE=1 (latency cases: the worst latency and its parts per 100 ms), BENCH_LAT_WARM (3: seconds of warm-up before a latency case's measured interval),
// BENCH_PIN=1 (publish workloads: every system's server on CPU 0 and this process on CPU 1, see pinned()).
import { execFileSync, fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { BROKER_CLI, cpuSeconds, startBroker } from '@zbus/testkit';
import { consumerOpts, createInbox, connect as natsConnect, StorageType } from 'nats';
import { createClient } from 'redis';
import { Broker, Consumer, MqClient, Producer, RpcInvoker } from '../dist/index.js';
import { LOOP_RESOLUTION_MS, loopDelayMs, monoNow, percentiles } from './lat-producer.mjs';

const env = (name, def) => (process.env[name] === undefined ? def : process.env[name]);
const SECONDS = Number(env('BENCH_SECONDS', '4'));
const LAT_SECONDS = Number(env('BENCH_LAT_SECONDS', '10'));
const WARM_SECONDS = Number(env('BENCH_LAT_WARM', '3'));
const RATE = Number(env('BENCH_RATE', '10000'));
const TICK_US = Number(env('BENCH_TICK_US', '250'));
const WINDOW = Number(env('BENCH_WINDOW', '1000'));
const CONNS = 8;
const CONSUME_WINDOW = Number(env('BENCH_CONSUME_WINDOW', '1000'));
const CALLERS = Number(env('BENCH_CALLERS', '32'));
const REPEAT = Number(env('BENCH_REPEAT', '2'));
const ONLY = env('BENCH_ONLY', 'zbus-always,zbus-interval,nats,redis').split(',');
const PROFILE = env('BENCH_PROFILE', '');
const TIMELINE = env('BENCH_TIMELINE', '') !== '';
const BROKER_NODE_ARGS = env('BENCH_BROKER_NODE_ARGS', '').split(' ').filter(Boolean);
const WORKLOADS = env('BENCH_WORKLOADS', 'pub,lat,rpc').split(',');
const PIN = env('BENCH_PIN', '') !== '' && cpus().length >= 2;
const SIZE = 100;
const PAYLOAD = 'x'.repeat(SIZE);
const SERVICE = new URL('./peers-service.mjs', import.meta.url);
const PRODUCER = new URL('./lat-producer.mjs', import.meta.url);
const enc = new TextEncoder();
const dec = new TextDecoder();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const load1 = () => loadavg()[0];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** `seq|scheduled-ms|xxxx` (lat-producer.mjs's stamp) -> [seq, scheduled]. */
function unstamp(text) {
  const a = text.indexOf('|');
  const b = text.indexOf('|', a + 1);
  return [Number(text.slice(0, a)), Number(text.slice(a + 1, b))];
}

// ---- drivers ------------------------------------------------------------------------------------------------

/**
 * Keeps `window` operations in flight on each of `conns` connections for 0.5 s of warm-up plus SECONDS and
 * counts the completions inside the measured interval.
 */
async function windowed(conns, window, op) {
  const t0 = performance.now();
  const from = t0 + 500;
  const to = from + SECONDS * 1000;
  let done = 0;
  let errors = 0;
  let firstError;
  const loops = [];
  for (let c = 0; c < conns; c++) {
    for (let w = 0; w < window; w++) {
      loops.push(
        (async () => {
          for (;;) {
            const now = performance.now();
            if (now >= to) return;
            try {
              await op(c);
              const t = performance.now();
              if (t >= from && t < to) done++;
            } catch (err) {
              errors++;
              firstError ??= err;
              await sleep(10);
            }
          }
        })(),
      );
    }
  }
  await Promise.all(loops);
  if (errors) console.error(`  ${errors} errors, first: ${firstError?.message ?? firstError}`);
  return { value: done / SECONDS, errors };
}

/**
 * Open loop: message i is due at start + i / RATE. The sending runs in a worker thread of its own
 * (lat-producer.mjs: a ticker every TICK_US, one publishing client of the system in `spec`); the consumer runs in
 * this thread and calls the returned `received(text)`. Latency is measured from the scheduled time on the shared
 * monotonic clock, and split into the send lag (sent - scheduled: the harness's own share) and the transit
 * (received - sent: client, server, client). The event-loop delay of both threads over the measured interval is
 * reported beside them.
 */
function openLoop() {
  const warm = Math.round(WARM_SECONDS * RATE);
  const total = warm + Math.round(LAT_SECONDS * RATE);
  const lat = new Float64Array(total).fill(Number.NaN);
  const transit = new Float64Array(total).fill(Number.NaN);
  const sentAt = new SharedArrayBuffer(total * 8);
  const sent = new Float64Array(sentAt);
  const ackedAt = new SharedArrayBuffer(total * 8);
  const acked = new Float64Array(ackedAt);
  let got = 0;
  let dups = 0;
  let allIn;
  const all = new Promise((r) => {
    allIn = r;
  });
  return {
    received(text) {
      const now = monoNow();
      const [seq, at] = unstamp(text);
      if (!(seq >= 0 && seq < total)) return;
      if (!Number.isNaN(lat[seq])) {
        dups++;
        return;
      }
      lat[seq] = now - at;
      if (sent[seq] !== 0) transit[seq] = now - sent[seq];
      if (++got === total) allIn();
    },
    /** `spec`: { system, address, target } for lat-producer.mjs. */
    async run(spec) {
      const worker = new Worker(PRODUCER, {
        workerData: { ...spec, latProducer: true, total, warm, rate: RATE, tickUs: TICK_US, sentAt, ackedAt },
      });
      // The worker posts, in order: { ready }, { measuring }, { sent, start }, { done, ... }. Both threads' loop
      // delay covers the measured interval only, as the latencies do: the warm-up's cold code (20-66 ms stalls of
      // this thread in zbus's first second, 4-5 ms in Redis's) is no part of the figures it stands beside.
      const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
      const inbox = [];
      let wake = () => {};
      worker.on('message', (m) => {
        if (m.measuring) {
          loopDelay.enable();
          return;
        }
        inbox.push(m);
        wake();
      });
      const failed = new Promise((_, reject) => {
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`producer exited with ${code}`)));
      });
      failed.catch(() => {});
      const next = async () => {
        while (inbox.length === 0) {
          const posted = new Promise((r) => {
            wake = r;
          });
          await Promise.race([posted, failed]);
        }
        return inbox.shift();
      };
      try {
        await next();
        worker.postMessage('go');
        const debug = process.env.BENCH_DEBUG
          ? setInterval(() => console.log(`    received ${got}`), 1000)
          : undefined;
        const { start } = await next();
        await Promise.race([all, sleep(3000)]);
        loopDelay.disable();
        clearInterval(debug);
        const producer = await next();
        const ackTimes = [];
        for (let i = warm; i < total; i++)
          if (acked[i] !== 0 && sent[i] !== 0) ackTimes.push(acked[i] - sent[i]);
        if (TIMELINE) timeline({ start, warm, total, lat, sent, acked });
        // A message not received within 3 s of the last send counts as infinitely late: the percentiles are over
        // every message sent in the measured interval, not only the ones that made it.
        const measured = Array.from(lat.subarray(warm), (x) =>
          Number.isNaN(x) ? Number.POSITIVE_INFINITY : x,
        );
        const ok = percentiles(measured);
        const p90 = measured[Math.min(measured.length - 1, Math.ceil(0.9 * measured.length) - 1)];
        return {
          ...ok,
          p90,
          sendLag: producer.sendLag,
          ack: ackTimes.length > 0 ? percentiles(ackTimes) : undefined,
          transit: percentiles(Array.from(transit.subarray(warm)).filter((x) => !Number.isNaN(x))),
          loopDelay: { producer: producer.loopDelay, consumer: loopDelayMs(loopDelay) },
          received: measured.filter((x) => x !== Number.POSITIVE_INFINITY).length,
          expected: measured.length,
          dups,
          errors: producer.errors,
        };
      } finally {
        await worker.terminate();
      }
    },
  };
}

/**
 * BENCH_TIMELINE=1: per 100 ms of scheduled time, the worst latency and its parts (send lag, sent -> acked, sent
 * -> received), to see when a tail forms and where.
 */
function timeline({ start, warm, total, lat, sent, acked }) {
  const per = RATE / 10;
  for (let from = 0; from < total; from += per) {
    const w = { lat: 0, lag: 0, ack: 0, transit: 0 };
    for (let i = from; i < Math.min(total, from + per); i++) {
      const at = start + (i * 1000) / RATE;
      w.lat = Math.max(w.lat, lat[i]);
      w.lag = Math.max(w.lag, sent[i] - at);
      if (acked[i] !== 0) w.ack = Math.max(w.ack, acked[i] - sent[i]);
      w.transit = Math.max(w.transit, lat[i] - (sent[i] - at));
    }
    const f = (x) => x.toFixed(1).padStart(7);
    console.log(
      `    ${(from / RATE).toFixed(1).padStart(5)} s${from < warm ? ' (warm)' : '       '} max latency ${f(w.lat)}, send lag ${f(w.lag)}, sent->acked ${f(w.ack)}, sent->received ${f(w.transit)} ms`,
    );
  }
}

/** CALLERS callers calling in a loop for 0.5 s of warm-up plus SECONDS; calls/s in the measured interval. */
function callers(call) {
  return windowed(1, CALLERS, call);
}

// ---- systems ------------------------------------------------------------------------------------------------

function childService(kind, address) {
  const child = fork(SERVICE, [kind, address], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${kind} service exited with ${code}`)));
  });
  return {
    ready,
    /** CPU seconds the service used so far. */
    cpu: () => cpuSeconds(child.pid),
    async stop() {
      if (child.exitCode !== null) return;
      child.send('stop');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await new Promise((r) => child.once('exit', r));
      clearTimeout(t);
    },
  };
}

/**
 * BENCH_PIN: runs `fn` with the server (`pid`, every thread) on CPU 0 and this process on CPU 1, then gives both every
 * CPU back. Left to the scheduler, a client and a server that wake each other all the time often end up on one CPU
 * (a wake-up from a socket write puts the woken task beside the waker) and take turns there: msgs/s is then
 * 1 / (server + client CPU per message) instead of 1 / max(the two), and runs of one build land in either mode
 * (docs/benchmarks.md, "The publish figure is two placements"). Pinned, each system is measured in the second.
 */
async function pinned(pid, fn) {
  if (!PIN) return fn();
  const taskset = (cpu, p) => spawnSync('taskset', ['-a', '-p', '-c', cpu, String(p)], { stdio: 'ignore' });
  taskset('0', pid);
  taskset('1', process.pid);
  try {
    return await fn();
  } finally {
    const all = `0-${cpus().length - 1}`;
    taskset(all, pid);
    taskset(all, process.pid);
  }
}

async function connected(n, make) {
  return Promise.all(Array.from({ length: n }, make));
}

function zbus(fsync) {
  const label = fsync === 'always' ? 'fsync=always (ack after fsync)' : `fsync=${fsync} (ack after write)`;
  return {
    name: `zbus ${fsync === 'always' ? 'always' : fsync === 'never' ? 'never' : 'interval'}`,
    policy: label,
    async start() {
      if (PROFILE || BROKER_NODE_ARGS.length > 0) return this.startWithNodeArgs();
      this.server = await startBroker({ fsync });
      this.pid = this.server.process.pid;
      this.address = this.server.address;
    },
    /** The same CLI as startBroker, under `node --cpu-prof` or other flags that NODE_OPTIONS does not allow. */
    async startWithNodeArgs() {
      if (PROFILE) mkdirSync(PROFILE, { recursive: true });
      this.dir = mkdtempSync(join(tmpdir(), 'bench-zbus-'));
      const port = await freePort();
      const args = [...BROKER_NODE_ARGS, BROKER_CLI, 'serve', '--host', '127.0.0.1'];
      if (PROFILE) args.unshift('--cpu-prof', `--cpu-prof-dir=${PROFILE}`);
      args.push('--port', String(port), '--data', this.dir, '--fsync', fsync);
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((resolve, reject) => {
        let out = '';
        const started = (d) => {
          out += d;
          if (!out.includes('listening on')) return;
          proc.stdout.off('data', started).pipe(process.stdout);
          resolve();
        };
        proc.stdout.setEncoding('utf8').on('data', started);
        proc.once('exit', (code) => reject(new Error(`broker exited with ${code}: ${out}`)));
      });
      this.server = {
        process: proc,
        async stop() {
          proc.kill('SIGTERM');
          if (proc.exitCode === null) await new Promise((r) => proc.once('exit', r));
        },
      };
      this.pid = proc.pid;
      this.address = `127.0.0.1:${port}`;
    },
    async stop() {
      await this.server?.stop();
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    },
    async pub(conns, round) {
      const topic = `pub${conns}-${round}`;
      const clients = await connected(conns, async () => {
        const c = new MqClient(this.address, { reconnect: false, timeout: 30_000 });
        await c.connect();
        return c;
      });
      await clients[0].declareTopic(topic);
      // WINDOW in flight per connection for every system (the loops of windowed()); the Producer's own bounds
      // are set so they never bind before it.
      const producers = clients.map(
        (c) => new Producer(c, { maxInFlight: WINDOW, maxInFlightBytes: Number.MAX_SAFE_INTEGER }),
      );
      const first = await producers[0].publish({ topic, body: PAYLOAD });
      const r = await windowed(conns, WINDOW, (i) => producers[i].publish({ topic, body: PAYLOAD }));
      await Promise.all(clients.map((c) => c.close()));
      return { ...r, note: `ack durability=${first.durability}` };
    },
    async lat(round) {
      const topic = `lat-${round}`;
      const loop = openLoop();
      const subBroker = new Broker(this.address, { reconnect: false });
      // Declares the topic and group 'g' before it consumes.
      const consumer = new Consumer(subBroker, {
        topic,
        group: 'g',
        window: CONSUME_WINDOW,
        handler: (m) => loop.received(m.bodyText()),
      });
      await consumer.start();
      await sleep(200);
      const r = await loop.run({ system: 'zbus', address: this.address, target: topic });
      await consumer.close();
      await subBroker.close();
      return { ...r, note: `Consumer window ${CONSUME_WINDOW}, auto ack` };
    },
    async rpc() {
      const service = childService('zbus', this.address);
      await service.ready;
      const client = new MqClient(this.address, { reconnect: false, timeout: 30_000 });
      await client.connect();
      const invoker = new RpcInvoker(client, { topic: 'BenchEcho', module: 'bench' });
      // start() of the service returns once its consume is sent; wait until the broker routes to it.
      const echoed = await waitFor(() => invoker.invoke('echo', PAYLOAD));
      if (echoed !== PAYLOAD) throw new Error('zbus echo mismatch');
      const svc0 = service.cpu();
      const r = await callers(() => invoker.invoke('echo', PAYLOAD));
      const serviceCpu = service.cpu() - svc0;
      await client.close();
      await service.stop();
      return { ...r, serviceCpu, note: 'RpcInvoker -> ServiceBootstrap (window 64, child process), JSON' };
    },
  };
}

function ensureNatsServer() {
  if (spawnSync('nats-server', ['--version']).status === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error('nats-server is missing; run as root or apt-get install nats-server');
  console.log('installing nats-server (apt-get) ...');
  const install = () =>
    spawnSync('apt-get', ['install', '-y', 'nats-server'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status;
  if (install() !== 0) {
    execFileSync('apt-get', ['update'], { stdio: 'inherit' });
    if (install() !== 0) throw new Error('apt-get install nats-server failed');
  }
}

async function waitFor(connect) {
  let last;
  for (let i = 0; i < 100; i++) {
    try {
      return await connect();
    } catch (err) {
      last = err;
      await sleep(100);
    }
  }
  throw last;
}

function nats() {
  return {
    name: 'nats',
    policy:
      'JetStream file storage: PubAck after the write to OS buffers, no fsync per message (2.9 default)',
    async start() {
      ensureNatsServer();
      this.dir = mkdtempSync(join(tmpdir(), 'bench-nats-'));
      const port = await freePort();
      this.proc = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', this.dir], {
        stdio: 'ignore',
      });
      this.pid = this.proc.pid;
      this.address = `127.0.0.1:${port}`;
      this.nc = await waitFor(() => natsConnect({ servers: this.address }));
      this.jsm = await this.nc.jetstreamManager();
    },
    async stop() {
      await this.nc?.close().catch(() => {});
      if (this.proc && this.proc.exitCode === null) {
        this.proc.kill('SIGTERM');
        await new Promise((r) => this.proc.once('exit', r));
      }
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    },
    async pub(conns, round) {
      const stream = `PUB${conns}_${round}`;
      await this.jsm.streams.add({ name: stream, subjects: [`${stream}.*`], storage: StorageType.File });
      const ncs = await connected(conns, () => natsConnect({ servers: this.address }));
      const jss = ncs.map((nc) => nc.jetstream());
      const subject = `${stream}.m`;
      // The same 100-character string every client gets, which each encodes itself.
      await jss[0].publish(subject, PAYLOAD);
      const r = await windowed(conns, WINDOW, (i) => jss[i].publish(subject, PAYLOAD));
      await Promise.all(ncs.map((nc) => nc.close()));
      await this.jsm.streams.delete(stream);
      return { ...r, note: 'js.publish (async, awaiting PubAck)' };
    },
    async latCore(round) {
      const subject = `core.lat.${round}`;
      const subNc = await natsConnect({ servers: this.address });
      const loop = openLoop();
      subNc.subscribe(subject, { callback: (_e, m) => loop.received(dec.decode(m.data)) });
      await subNc.flush();
      const r = await loop.run({ system: 'nats-core', address: this.address, target: subject });
      await subNc.close();
      return { ...r, note: 'core pub/sub (not durable)' };
    },
    async lat(round) {
      const stream = `LAT_${round}`;
      const subject = `${stream}.m`;
      await this.jsm.streams.add({ name: stream, subjects: [`${stream}.*`], storage: StorageType.File });
      const subNc = await natsConnect({ servers: this.address });
      const loop = openLoop();
      const opts = consumerOpts();
      opts.deliverTo(createInbox());
      opts.ackNone();
      opts.deliverNew();
      opts.callback((_e, m) => {
        if (m) loop.received(dec.decode(m.data));
      });
      const sub = await subNc.jetstream().subscribe(subject, opts);
      await subNc.flush();
      const r = await loop.run({ system: 'nats-js', address: this.address, target: subject });
      sub.unsubscribe();
      await subNc.close();
      await this.jsm.streams.delete(stream);
      return { ...r, note: 'js.publish + push consumer (ack none)' };
    },
    async rpc() {
      const service = childService('nats', this.address);
      await service.ready;
      const nc = await natsConnect({ servers: this.address });
      const call = async () => {
        const req = JSON.stringify({ module: 'bench', method: 'echo', params: [PAYLOAD] });
        const reply = await nc.request('bench.rpc', enc.encode(req), { timeout: 30_000 });
        return JSON.parse(dec.decode(reply.data));
      };
      if ((await waitFor(call)) !== PAYLOAD) throw new Error('nats echo mismatch');
      const svc0 = service.cpu();
      const r = await callers(call);
      const serviceCpu = service.cpu() - svc0;
      await nc.close();
      await service.stop();
      return {
        ...r,
        serviceCpu,
        note: 'nc.request -> nc.subscribe responder (child process), JSON both ways',
      };
    },
  };
}

function redis() {
  return {
    name: 'redis',
    policy: 'AOF appendfsync everysec: reply before fsync, up to ~1 s lost on a crash',
    async start() {
      this.dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
      const port = await freePort();
      this.proc = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--appendonly',
          'yes',
          '--appendfsync',
          'everysec',
          '--save',
          '',
          '--dir',
          this.dir,
        ],
        { stdio: 'ignore' },
      );
      this.pid = this.proc.pid;
      this.url = `redis://127.0.0.1:${port}`;
      this.clients = [];
      this.main = await waitFor(() => this.client());
    },
    async client() {
      const c = createClient({ url: this.url, socket: { reconnectStrategy: false } });
      c.on('error', () => {});
      await c.connect();
      this.clients.push(c);
      return c;
    },
    async stop() {
      for (const c of this.clients ?? []) await c.quit().catch(() => {});
      if (this.proc && this.proc.exitCode === null) {
        this.proc.kill('SIGTERM');
        await new Promise((r) => this.proc.once('exit', r));
      }
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    },
    async pub(conns, round) {
      const key = `pub${conns}-${round}`;
      const cs = await connected(conns, () => this.client());
      const r = await windowed(conns, WINDOW, (i) => cs[i].xAdd(key, '*', { v: PAYLOAD }));
      await this.main.del(key);
      return { ...r, note: 'XADD, auto-pipelined by node-redis' };
    },
    async lat(round) {
      const key = `lat-${round}`;
      const reader = await this.client();
      const loop = openLoop();
      let stop = false;
      const reading = (async () => {
        let last = '$';
        while (!stop) {
          const res = await reader.xRead({ key, id: last }, { BLOCK: 100, COUNT: 1000 });
          for (const s of res ?? []) {
            for (const m of s.messages) {
              loop.received(m.message.v);
              last = m.id;
            }
          }
        }
      })();
      await sleep(200);
      const r = await loop.run({ system: 'redis', address: this.url, target: key });
      stop = true;
      await reading;
      await this.main.del(key);
      return { ...r, note: 'XADD -> XREAD BLOCK (COUNT 1000)' };
    },
  };
}

// ---- run ----------------------------------------------------------------------------------------------------

const rows = new Map(); // key -> { system, workload, policy, samples: [{...}] }
function record(sys, workload, unit, sample) {
  const key = `${sys.name}|${workload}`;
  let row = rows.get(key);
  if (!row) {
    row = { system: sys.name, workload, unit, policy: sys.policy, samples: [] };
    rows.set(key, row);
  }
  row.samples.push(sample);
  const v =
    unit === 'ms'
      ? `p50 ${sample.p50?.toFixed(2)} p90 ${sample.p90?.toFixed(2)} p99 ${sample.p99?.toFixed(2)} p99.9 ${sample.p999?.toFixed(2)} max ${sample.max?.toFixed(1)} ms (${sample.received}/${sample.expected}); ${latParts(sample)}`
      : `${Math.round(sample.value).toLocaleString('en-US')} ${unit}`;
  console.log(
    `  ${sys.name.padEnd(13)} ${workload.padEnd(30)} ${v}  [load ${sample.load.toFixed(2)}, server CPU ${sample.serverCpu.toFixed(0)}%, bench CPU ${sample.clientCpu.toFixed(0)}%${sample.serverUs === undefined ? '' : `, ${sample.serverUs.toFixed(1)} / ${sample.clientUs.toFixed(1)} us per message`}]`,
  );
}

/** The parts of a latency sample: send lag, transit, and the event-loop delay of the sending and consuming threads. */
function latParts(s) {
  const f = (x) => `p50 ${x.p50.toFixed(2)} p99 ${x.p99.toFixed(2)} max ${x.max.toFixed(1)}`;
  const l = s.loopDelay;
  const ack = s.ack ? ` (sent->acked ${f(s.ack)})` : '';
  return `send lag ${f(s.sendLag)}; transit ${f(s.transit)}${ack}; loop delay producer ${f(l.producer)}, consumer ${f(l.consumer)}`;
}

async function measure(sys, workload, unit, fn) {
  const s0 = cpuSeconds(sys.pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let sample;
  try {
    sample = await fn();
  } catch (err) {
    console.error(`  ${sys.name} ${workload} failed: ${err?.stack ?? err}`);
    return;
  }
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  sample.load = load1();
  sample.serverCpu = ((cpuSeconds(sys.pid) - s0) / wall) * 100;
  sample.clientCpu = ((c.user + c.system) / 1e6 / wall) * 100;
  // the RPC service process counts with the server side
  if (sample.serviceCpu !== undefined) sample.serverCpu += (sample.serviceCpu / wall) * 100;
  // work done per CPU-second of every process of the test (server, service, bench): comparable across systems
  // when the machine is shared and each process only gets a slice of a core
  if (sample.value !== undefined)
    sample.perCpu = sample.value / ((sample.serverCpu + sample.clientCpu) / 100);
  // CPU per message (or call) at the case's rate: the share of a core each side used, over the messages per
  // second (the achieved rate; for latency cases the offered one). What a shared machine cannot move.
  const rate = sample.value ?? (unit === 'ms' ? RATE : undefined);
  if (rate) {
    sample.serverUs = (sample.serverCpu * 1e4) / rate;
    sample.clientUs = (sample.clientCpu * 1e4) / rate;
  }
  record(sys, workload, unit, sample);
}

const makers = {
  'zbus-always': () => zbus('always'),
  'zbus-interval': () => zbus('interval=100'),
  'zbus-never': () => zbus('never'),
  nats,
  redis,
};

async function runAll() {
  const order = ONLY.filter((n) => makers[n]);
  const started = new Date();
  const loads = [load1()];
  const loadTimer = setInterval(() => loads.push(load1()), 5000);
  console.log(
    `# peers.bench ${started.toISOString()}: ${order.join(', ')} x${REPEAT}; ${SECONDS}s per throughput case, ` +
      `${LAT_SECONDS}s (+${WARM_SECONDS}s warm-up) at ${RATE}/s per latency case, window ${WINDOW}, ` +
      `consume window ${CONSUME_WINDOW}, ${CALLERS} RPC callers${PIN ? ', publish workloads pinned (server CPU 0, bench CPU 1)' : ''}`,
  );
  for (let round = 0; round < REPEAT; round++) {
    const names = round % 2 === 0 ? order : [...order].reverse();
    console.log(`## round ${round + 1}/${REPEAT}`);
    for (const n of names) {
      const sys = makers[n]();
      try {
        await sys.start();
        if (WORKLOADS.includes('pub')) {
          await pinned(sys.pid, async () => {
            await measure(sys, 'publish, 1 connection', 'msg/s', () => sys.pub(1, round));
            await measure(sys, `publish, ${CONNS} connections`, 'msg/s', () => sys.pub(CONNS, round));
          });
        }
        if (WORKLOADS.includes('lat')) {
          if (sys.latCore) await measure(sys, `core pub->sub @${RATE}/s`, 'ms', () => sys.latCore(round));
          await measure(sys, `publish->consume @${RATE}/s`, 'ms', () => sys.lat(round));
        }
        if (sys.rpc && WORKLOADS.includes('rpc')) {
          await measure(sys, `RPC, ${CALLERS} callers`, 'calls/s', () => sys.rpc());
        }
      } catch (err) {
        console.error(`  ${sys.name} failed: ${err?.stack ?? err}`);
      } finally {
        await sys.stop().catch((err) => console.error(`  ${sys.name} stop: ${err?.message ?? err}`));
      }
    }
  }
  clearInterval(loadTimer);
  loads.push(load1());
  const machine = {
    nproc: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
    disk: (() => {
      try {
        return execFileSync('df', ['-h', '--output=source,fstype,size', tmpdir()], { encoding: 'utf8' })
          .trim()
          .split('\n')
          .pop()
          .replace(/\s+/g, ' ');
      } catch {
        return 'unknown';
      }
    })(),
    nats: spawnSync('nats-server', ['--version'], { encoding: 'utf8' }).stdout?.trim(),
    redis: spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
      .stdout?.trim()
      .split(' ')
      .slice(0, 3)
      .join(' '),
  };
  const run = {
    started,
    minutes: (Date.now() - started.getTime()) / 60000,
    loads,
    machine,
    config: { SECONDS, LAT_SECONDS, RATE, TICK_US, WINDOW, CONSUME_WINDOW, CALLERS, REPEAT },
    rows: [...rows.values()],
  };
  if (process.env.BENCH_OUT) {
    const inf = (_k, v) => (v === Number.POSITIVE_INFINITY ? 'Infinity' : v);
    writeFileSync(process.env.BENCH_OUT, JSON.stringify(run, inf, 2));
  }
  return [run];
}

// ---- report -------------------------------------------------------------------------------------------------

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const int = (x) => (Number.isNaN(x) ? 'n/a' : Math.round(x).toLocaleString('en-US'));
const ms = (x) =>
  Number.isNaN(x) ? 'n/a' : x === Number.POSITIVE_INFINITY ? 'lost' : x < 10 ? x.toFixed(2) : x.toFixed(0);

/** One table over every round of every run given (the median of all rounds). */
function report(runs) {
  const merged = new Map();
  for (const run of runs) {
    for (const row of run.rows) {
      const key = `${row.system}|${row.workload}`;
      const m = merged.get(key) ?? { ...row, samples: [] };
      m.samples.push(...row.samples);
      merged.set(key, m);
    }
  }
  const lines = [];
  lines.push(
    '| system | workload | durability (fsync policy) | median of rounds | each round | per CPU-second | server / bench CPU | CPU us per message, server / bench | load avg (1 min) per round |',
  );
  lines.push('|---|---|---|---:|---|---:|---|---|---|');
  for (const row of merged.values()) {
    const durable = row.workload.startsWith('publish');
    const policy = durable ? row.policy : 'n/a (not stored)';
    let result;
    let each;
    if (row.unit === 'ms') {
      const m = (k) => median(row.samples.map((s) => s[k]));
      result = `p50 ${ms(m('p50'))} / p90 ${ms(m('p90'))} / p99 ${ms(m('p99'))} / p99.9 ${ms(m('p999'))} / max ${ms(m('max'))} ms`;
      each = row.samples
        .map((s) => {
          const lost = s.expected - s.received;
          const parts = s.transit
            ? `, send lag p99 ${ms(s.sendLag.p99)}, transit p99 ${ms(s.transit.p99)}`
            : '';
          return `p50 ${ms(s.p50)} p99 ${ms(s.p99)} p99.9 ${ms(s.p999)}${parts}${lost ? ` (${int(lost)} of ${int(s.expected)} not in by +3 s)` : ''}`;
        })
        .join('; ');
    } else {
      result = `${int(median(row.samples.map((s) => s.value)))} ${row.unit}`;
      each = row.samples.map((s) => int(s.value)).join(', ');
    }
    const errs = row.samples.reduce((a, s) => a + (s.errors ?? 0), 0);
    if (errs) each += `; ${int(errs)} errors`;
    const perCpu = row.unit === 'ms' ? '' : int(median(row.samples.map((s) => s.perCpu)));
    const cpu = `${int(median(row.samples.map((s) => s.serverCpu)))}% / ${int(median(row.samples.map((s) => s.clientCpu)))}%`;
    const loads = row.samples.map((s) => s.load.toFixed(1)).join(' / ');
    const us = (k) => median(row.samples.map((s) => s[k])).toFixed(1);
    const perMsg = row.samples[0]?.serverUs === undefined ? 'n/a' : `${us('serverUs')} / ${us('clientUs')}`;
    lines.push(
      `| ${row.system} | ${row.workload} | ${policy} | ${result} | ${each} | ${perCpu} | ${cpu} | ${perMsg} | ${loads} |`,
    );
  }
  const mc = runs[0].machine;
  const loads = runs.flatMap((r) => r.loads);
  console.log(`\n${lines.join('\n')}\n`);
  console.log(
    `machine: ${mc.nproc} cores, ${mc.cpu}, node ${mc.node}, tmp on ${mc.disk}; ${mc.nats}; ${mc.redis}`,
  );
  console.log(
    `${runs.length} run(s), ${runs.map((r) => new Date(r.started).toISOString()).join(', ')}, ${runs.map((r) => r.minutes.toFixed(1)).join(' + ')} min; ` +
      `load average (1 min, every 5 s): median ${median(loads).toFixed(1)}, min ${Math.min(...loads).toFixed(1)}, max ${Math.max(...loads).toFixed(1)}`,
  );
}

// `node bench/peers.bench.mjs --report a.json b.json` merges the BENCH_OUT files of several runs.
const argv = process.argv.slice(2);
if (argv[0] === '--report') {
  const inf = (_k, v) => (v === 'Infinity' ? Number.POSITIVE_INFINITY : v);
  report(argv.slice(1).map((f) => JSON.parse(readFileSync(f, 'utf8'), inf)));
} else {
  report(await runAll());
}
