// Broker throughput with ApacheBench, side by side in one run (issue 5 "Benchmark", decisions.md §5):
//   - a minimal Node `http` server answering "ok" (the baseline)
//   - the broker (src bundled with esbuild, run in its own process) with fsync=interval and fsync=always:
//       produce by URL (`/produce/MyTopic` and `/MyTopic?cmd=produce`), consume after filling, RPC by URL
//       (`/MyRpc/calc/plus/1/2`) with a service process attached (raw TCP, consume_window 64, answers with route)
//   - the data disk's fsync latency, for the fsync=always ceiling (32 in flight / latency)
//   - for fsync=always, the group commit of each case from the broker's /metrics: fdatasyncs, records per fdatasync,
//     mean fdatasync time and mean commit wait
//   - per run: the CPU of the server and of ab, the CPU of everything else on the machine (others' load, and the
//     hypervisor's steal), the server's context switches and CPU migrations
// Usage: node bench/ab.mjs [--docs] [--quick]   (env AB_N, default 200000; AB_C, default 32; AB_REPEAT, default 3;
//   AB_ONLY=interval,always,never; AB_CASES=ping,produce,consume,RPC; AB_OUT=<file.json>; AB_PROFILE=<dir>;
//   AB_REV=<commit> measures the broker as of that commit instead of the working tree; AB_QUIET_S=<s>: how long
//   each run waits for the machine to be quiet, default 10; AB_PIN=1 pins the server and ab to cores of their own)
// --docs rewrites the "## Broker (ab)" section of docs/benchmarks.md with this run's figures.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from '@zbus/testkit';
import { bundleSrc } from './bundle.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '..');
const root = path.resolve(pkg, '../..');
const quick = process.argv.includes('--quick');
const N = Number(process.env.AB_N ?? (quick ? 20_000 : 200_000));
const C = Number(process.env.AB_C ?? 32);
/** Each case runs this many times, alternated with the baseline; the median is reported (the machine is shared). */
const REPEAT = Number(process.env.AB_REPEAT ?? (quick ? 1 : 3));
const INTERVAL_MS = 100;
/** AB_PROFILE=<dir>: the brokers run under `node --cpu-prof` (read with client-node's bench/profile-top.mjs). */
const PROFILE = process.env.AB_PROFILE ?? '';

/**
 * What moved the Node http baseline between 39k and 59k req/s on a "quiet" machine: other work. On 2 cores ab
 * (7-12 us of CPU per request) and the server under test need both cores; with both free they settle on one core
 * each and batch (0.01-0.07 context switches per request, 58-63k req/s), and a process taking half a core is
 * enough to make them wake each other per request (0.5-0.8 switches per request, the baseline more than the broker,
 * which corks its replies per turn) and lose a third. So each run first waits, up to AB_QUIET_S seconds (default
 * 10), until the machine's CPU outside this harness stays under 0.15 cores for half a second, and each run reports
 * the others' CPU during it. AB_PIN=1 pins the server under test (the baseline and every broker alike, helper
 * threads included) to the last core and ab and the RPC service to the first: steadier wake-ups, but measured here
 * it did not help: on a quiet machine the baseline gave 47-59k pinned against 54-63k unpinned (pinned, V8's helper
 * threads share the server's core), and a pinned server cannot move away from other work (4k req/s beside 1.7
 * cores of it).
 */
const PIN = process.env.AB_PIN === '1' && os.cpus().length >= 2 && hasCommand('taskset');
const QUIET_S = Number(process.env.AB_QUIET_S ?? 10);
/** Requests sent to the baseline and to the case before their measured runs. */
const WARMUP = Math.min(N, 10_000);
const SERVER_CPU = String(os.cpus().length - 1);
const CLIENT_CPU = '0';

function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** `cmd args` as a spawn argument list, pinned to `cpu` when pinning. */
function pinned(cpu, cmd, args) {
  return PIN ? ['taskset', ['-c', cpu, cmd, ...args]] : [cmd, args];
}

function ensureAb() {
  if (hasCommand('ab')) return;
  console.error('ab not found: installing apache2-utils');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  execFileSync(
    sudo[0] ?? 'apt-get',
    [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', 'apache2-utils'],
    {
      stdio: 'inherit',
    },
  );
}

/**
 * Bundles the broker's src into a cache dir where pino and ws still resolve: the working tree's, or with
 * AB_REV=<commit> the server and protocol src of that commit (before/after figures from one machine and load).
 */
function bundleBroker() {
  const out = path.join(pkg, 'node_modules/.cache/zbus-ab');
  fs.mkdirSync(out, { recursive: true });
  const rev = process.env.AB_REV;
  if (!rev) return bundleSrc('src/index.ts', path.join(out, 'broker.mjs'), ['pino', 'ws']);
  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--verify', `${rev}^{commit}`], {
    encoding: 'utf8',
  }).trim();
  const src = path.join(out, commit);
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  const tar = execFileSync('git', [
    '-C',
    root,
    'archive',
    commit,
    'packages/server/src',
    'packages/protocol/src',
  ]);
  execFileSync('tar', ['-x', '-C', src], { input: tar });
  const protocol = path.join(src, 'packages/protocol/src/index.ts');
  const entry = path.join(src, 'packages/server/src/index.ts');
  return bundleSrc(entry, path.join(out, `broker-${commit.slice(0, 12)}.mjs`), ['pino', 'ws'], {
    '@zbus/protocol': protocol,
  });
}

/**
 * Starts `node --input-type=module -e code` on `cpu` (when pinning; taskset execs node, so the pid is node's);
 * resolves with the child and the first line it prints.
 */
function startChild(code, cpu, profile = false) {
  const prof = profile && PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : [];
  const [cmd, args] = pinned(cpu, process.execPath, [...prof, '--input-type=module', '-e', code]);
  const child = spawn(cmd, args, {
    cwd: pkg,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s) => {
      out += s;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, line: out.slice(0, nl).trim() });
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

const BASELINE = `
import http from 'node:http';
const s = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }); res.end('ok'); });
s.keepAliveTimeout = 60_000;
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
process.on('SIGTERM', () => process.exit(0));
`;

const brokerCode = (bundle, dataDir, fsync) => `
import { createBroker } from ${JSON.stringify(bundle)};
const b = createBroker({ host: '127.0.0.1', port: 0, dataDir: ${JSON.stringify(dataDir)}, fsync: ${JSON.stringify(fsync)},
  logLevel: 'silent', idleTimeoutMs: 0, memoryTopicCapacity: 100000 });
const { port } = await b.listen();
console.log(port);
process.on('SIGTERM', () => b.close().then(() => process.exit(0)));
`;

// The RPC service: one raw TCP connection speaking zbus with @zbus/protocol. It declares MyRpc (mask 3),
// consumes it with consume_window 64 and answers each request with route (recver = sender, id = origin_id); each
// answer gives the window one credit back.
const serviceCode = (protocolEntry, port) => `
import net from 'node:net';
import { encodeMessage, Message, MessageDecoder } from ${JSON.stringify(protocolEntry)};
const s = net.connect(${port}, '127.0.0.1');
s.setNoDelay(true);
const send = (headers, body) => s.write(encodeMessage(new Message({ headers, body })));
const d = new MessageDecoder((m) => {
  const h = m.headers;
  if (h.id === 'declare') {
    send({ cmd: 'consume', topic: 'MyRpc', id: 'svc', consume_window: '64' });
    // Handled after the consume on this connection: once answered, the service is registered.
    send({ cmd: 'ping', id: 'ready' });
    return;
  }
  if (h.id === 'ready') {
    console.log('ready');
    return;
  }
  if (h.id !== 'svc' || h.origin_id === undefined) return;
  let result = 'null';
  try {
    const req = JSON.parse(m.bodyText());
    if (req.method === 'plus') result = String(Number(req.params[0]) + Number(req.params[1]));
  } catch {}
  // The answer settles the delivery: the broker gives the window's credit back (no ack needed).
  send({ cmd: 'route', topic: 'MyRpc', recver: h.sender, id: h.origin_id, origin_status: '200',
    'content-type': 'application/json' }, result);
});
s.on('data', (c) => d.push(c));
s.on('connect', () => send({ cmd: 'declare', topic: 'MyRpc', topic_mask: '3', id: 'declare' }));
process.on('SIGTERM', () => process.exit(0));
`;

/** The machine's CPU time so far from /proc/stat, in clock ticks: busy (user, system, irq) and steal. */
function machineTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return { busy: user + nice + system + irq + softirq, steal };
}

/** Context switches (voluntary + involuntary) and CPU migrations of every thread of `pid` so far. */
function schedCounts(pid) {
  let switches = 0;
  let migrations = 0;
  let tasks = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {}
  for (const t of tasks) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      for (const m of status.matchAll(/ctxt_switches:\s+(\d+)/g)) switches += Number(m[1]);
      const sched = fs.readFileSync(`/proc/${pid}/task/${t}/sched`, 'utf8');
      migrations += Number(/se\.nr_migrations\s+:\s+(\d+)/.exec(sched)?.[1] ?? 0);
    } catch {} // a thread that ended during the run
  }
  return { switches, migrations };
}

/**
 * CPU seconds so far of `pid`'s main thread (the event loop): the rest of a broker's CPU is libuv's threadpool
 * (fdatasyncs under fsync=always) and V8's helper threads.
 */
function mainThreadSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits until the machine's busy CPU (every process but the idle servers of this harness) stays under 0.15 cores
 * for half a second, for at most QUIET_S seconds; gives the busy cores of the last half second.
 */
function waitQuiet() {
  const until = Date.now() + QUIET_S * 1000;
  for (;;) {
    const a = machineTicks();
    Atomics.wait(sleeper, 0, 0, 500);
    const busy = (machineTicks().busy - a.busy) / 100 / 0.5;
    if (busy < 0.15 || Date.now() >= until) return busy;
  }
}

/**
 * One ab run with what the machine did during it: CPU per request of the given processes (the server under test
 * first) and of ab, everything else's CPU in cores (others: other work on the machine, what the pinning cannot
 * keep off the cores), the hypervisor's steal, the server's context switches per request and CPU migrations.
 */
function measured(url, pids, n = N) {
  const quietBefore = waitQuiet();
  const before = pids.map(cpuSeconds);
  const sched0 = schedCounts(pids[0]);
  const main0 = mainThreadSeconds(pids[0]);
  const m0 = machineTicks();
  const r = abOnce(url, n);
  const m1 = machineTicks();
  const main = mainThreadSeconds(pids[0]) - main0;
  const sched1 = schedCounts(pids[0]);
  const cpu = pids.map((pid, i) => cpuSeconds(pid) - before[i]);
  const hz = 100; // USER_HZ, the unit of /proc/stat and of cpuSeconds' source
  const ours = cpu.reduce((a, b) => a + b, 0) + r.abCpu;
  return {
    ...r,
    cpuUs: cpu.map((s) => (s * 1e6) / n),
    abCpuUs: (r.abCpu * 1e6) / n,
    mainCpuUs: (main * 1e6) / n,
    mainBusy: main / r.seconds,
    others: Math.max(0, (m1.busy - m0.busy) / hz - ours) / r.seconds,
    steal: (m1.steal - m0.steal) / hz / r.seconds,
    switchesPerReq: (sched1.switches - sched0.switches) / n,
    migrations: sched1.migrations - sched0.migrations,
    load: os.loadavg()[0],
    quietBefore,
  };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Runs a case REPEAT times, each run paired with a run of the Node http baseline (alternated: baseline first in
 * even pairs, the case first in odd ones, so that a load that grows or fades during the pairs weighs on both).
 * Reported: the median of each figure over the runs, and the ratio as the median of the pairs' ratios.
 */
function interleaved(baseline, url, pids) {
  const runs = [];
  const bases = [];
  // Unmeasured, for both alike: the first thousands of requests of a fresh process run cold code (JIT).
  abOnce(baseline.url, WARMUP);
  abOnce(url, WARMUP);
  for (let i = 0; i < REPEAT; i++) {
    if (i % 2 === 0) bases.push(measured(baseline.url, [baseline.pid]));
    runs.push(measured(url, pids));
    if (i % 2 === 1) bases.push(measured(baseline.url, [baseline.pid]));
  }
  const ratios = runs.map((r, i) => r.rps / bases[i].rps);
  const med = (rs, f) => median(rs.map(f));
  return {
    ...runs[0],
    rps: med(runs, (r) => r.rps),
    ratio: median(ratios),
    ratios,
    runs,
    bases,
    all: runs.map((r) => Math.round(r.rps)),
    loads: runs.map((r) => r.load),
    cpuUs: pids.map((_, i) => med(runs, (r) => r.cpuUs[i])),
    base: med(bases, (r) => r.rps),
    baseAll: bases.map((r) => Math.round(r.rps)),
    baseCpuUs: med(bases, (r) => r.cpuUs[0]),
    mainCpuUs: med(runs, (r) => r.mainCpuUs),
  };
}

/**
 * `ab` on the client core; its CPU (utime + stime) is read from the shell that waited for it (cutime + cstime of
 * /proc/$$/stat), since ab is gone once it reports.
 */
function abOnce(url, n) {
  const args = ['-k', '-c', String(C), '-n', String(n), url];
  const [cmd, cmdArgs] = pinned(CLIENT_CPU, 'ab', args);
  const script = '"$@"; r=$?; echo "ab-shell-stat: $(cat /proc/$$/stat)"; exit $r';
  const r = spawnSync('sh', ['-c', script, 'sh', cmd, ...cmdArgs], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : Number.NaN;
  };
  const stat = /ab-shell-stat: .*\) (.*)/.exec(out)?.[1].split(' ') ?? [];
  const result = {
    command: `ab ${args.join(' ')}`,
    rps: num(/Requests per second:\s+([\d.]+)/),
    seconds: num(/Time taken for tests:\s+([\d.]+)/),
    abCpu: (Number(stat[13]) + Number(stat[14])) / 100,
    failed: num(/Failed requests:\s+(\d+)/),
    non2xx: Number.isNaN(num(/Non-2xx responses:\s+(\d+)/)) ? 0 : num(/Non-2xx responses:\s+(\d+)/),
    keepAlive: num(/Keep-Alive requests:\s+(\d+)/),
    p50: num(/\n\s+50%\s+(\d+)/),
    p99: num(/\n\s+99%\s+(\d+)/),
  };
  if (Number.isNaN(result.rps)) throw new Error(`ab failed (${r.status}):\n${out.slice(-2000)}`);
  return result;
}

/** Mean latency of write(4 KiB) + fdatasync in `dir`, in ms (what one group-committed round costs). */
function fsyncLatencyMs(dir, rounds = 300) {
  const file = path.join(dir, 'fsync-probe');
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(4096, 1);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) {
    fs.writeSync(fd, buf);
    fs.fdatasyncSync(fd);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / rounds;
  fs.closeSync(fd);
  fs.rmSync(file);
  return ms;
}

async function get(url) {
  const r = await fetch(url);
  return { status: r.status, text: await r.text() };
}

/** The broker's group-commit histograms (fsync=always): sums and counts from /metrics. */
async function commitStats(base) {
  const { text } = await get(`${base}/metrics`);
  const num = (name) => Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  const stats = {};
  for (const m of ['zbus_store_fsync_records', 'zbus_store_fsync_seconds', 'zbus_store_commit_wait_seconds'])
    stats[m] = { sum: num(`${m}_sum`), count: num(`${m}_count`) };
  return stats;
}

/** Records per fdatasync, fdatasync ms and commit wait ms (means) between two commitStats() readings. */
function commitDelta(a, b) {
  const mean = (m) => (b[m].sum - a[m].sum) / (b[m].count - a[m].count);
  return {
    syncs: b.zbus_store_fsync_records.count - a.zbus_store_fsync_records.count,
    recordsPerSync: mean('zbus_store_fsync_records'),
    syncMs: mean('zbus_store_fsync_seconds') * 1000,
    waitMs: mean('zbus_store_commit_wait_seconds') * 1000,
  };
}

async function brokerRun(baseline, bundle, fsync, label, withConsumeAndRpc) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'zbus-ab-data-'));
  const { child, line } = await startChild(brokerCode(bundle, dataDir, fsync), SERVER_CPU, true);
  const base = `http://127.0.0.1:${line}`;
  const broker = [child.pid];
  const rows = [];
  const run = async (name, url, extra = {}) => {
    if (!CASES.some((c) => name.startsWith(c))) return;
    const before = fsync === 'always' ? await commitStats(base) : undefined;
    const row = { label, name, ...extra, ...interleaved(baseline, url, extra.pids ?? broker) };
    if (before) row.commits = commitDelta(before, await commitStats(base));
    rows.push(row);
  };
  try {
    const d = await get(`${base}/declare/MyTopic`);
    if (d.status !== 200) throw new Error(`declare failed: ${d.status} ${d.text}`);
    // Diagnostic: the transport alone (decode, command lookup, ordered reply, write), no store.
    if (withConsumeAndRpc)
      await run('ping /ping (diagnostic: no store)', `${base}/ping`, { diagnostic: true });
    await run('produce /produce/MyTopic', `${base}/produce/MyTopic`);
    await run('produce /MyTopic?cmd=produce', `${base}/MyTopic?cmd=produce`);
    if (withConsumeAndRpc) {
      // The produce runs filled the topic with 2 * N * REPEAT messages; each consume run reads N of them.
      await run('consume /MyTopic?cmd=consume (after filling)', `${base}/MyTopic?cmd=consume`);
      const protocolEntry = path.join(root, 'packages/protocol/dist/index.js');
      const svc = await startChild(serviceCode(protocolEntry, line), CLIENT_CPU);
      try {
        const probe = await get(`${base}/MyRpc/calc/plus/1/2`);
        if (probe.text !== '3') throw new Error(`RPC probe answered ${probe.status} ${probe.text}`);
        await run('RPC by URL /MyRpc/calc/plus/1/2 (service process)', `${base}/MyRpc/calc/plus/1/2`, {
          pids: [child.pid, svc.child.pid],
        });
      } finally {
        await stop(svc.child);
      }
    }
  } finally {
    await stop(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
}

function fmt(n) {
  return Math.round(n).toLocaleString('en-US');
}

/** Which brokers to run: AB_ONLY=interval,always,never (default all three); which cases: AB_CASES. */
const ONLY = (process.env.AB_ONLY ?? 'interval,always,never').split(',');
const CASES = (process.env.AB_CASES ?? 'ping,produce,consume,RPC').split(',');

async function main() {
  ensureAb();
  const bundle = bundleBroker();
  const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'zbus-ab-data-'));
  const fsyncMs = fsyncLatencyMs(probeDir);
  fs.rmSync(probeDir, { recursive: true, force: true });
  const ceiling = C / (fsyncMs / 1000);

  // The baseline server lives through the whole run: every broker case runs right after a baseline run.
  const baselineChild = await startChild(BASELINE, SERVER_CPU);
  const baseline = { url: `http://127.0.0.1:${baselineChild.line}/`, pid: baselineChild.child.pid };
  const rows = [];
  try {
    if (ONLY.includes('interval'))
      rows.push(
        ...(await brokerRun(
          baseline,
          bundle,
          `interval=${INTERVAL_MS}`,
          `fsync=interval=${INTERVAL_MS}`,
          true,
        )),
      );
    if (ONLY.includes('always'))
      rows.push(...(await brokerRun(baseline, bundle, 'always', 'fsync=always', false)));
    // Diagnostic: the same produce without any fsync, to show what the fsync policy costs.
    if (ONLY.includes('never'))
      rows.push(
        ...(await brokerRun(baseline, bundle, 'never', 'fsync=never', false)).map((r) => ({
          ...r,
          diagnostic: true,
        })),
      );
  } finally {
    await stop(baselineChild.child);
  }
  const target = (r) => {
    if (r.diagnostic) return { want: 0, of: r.base, what: 'diagnostic' };
    if (r.label.startsWith('fsync=always'))
      return { want: 0.8, of: Math.min(ceiling, r.base), what: '0.8x min(ceiling, baseline)' };
    if (r.name.startsWith('RPC')) return { want: 0.45, of: r.base, what: '0.45x baseline' };
    return { want: 0.9, of: r.base, what: '0.9x baseline' };
  };
  const us = (v) => v.toFixed(1);
  /** The ratio of each pair (case run / its baseline run, or / min(ceiling, baseline) for fsync=always). */
  const pairRatios = (r) => {
    const t = target(r);
    return r.runs.map(
      (x, i) => x.rps / (t.of === r.base ? r.bases[i].rps : Math.min(ceiling, r.bases[i].rps)),
    );
  };
  const table = [
    '| run | ab target | req/s (median) | each run | baseline req/s (median; each run) | ratio (median of pairs) | each pair | target | met | broker CPU us/req (baseline), median | CPU ratio | failed / non-2xx | p50 / p99 ms |',
    '|---|---|---:|---|---|---:|---|---|---|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const t = target(r);
      const ratios = pairRatios(r);
      const ratio = median(ratios);
      const cpu = `${us(r.cpuUs[0])}${r.cpuUs.length > 1 ? ` + service ${us(r.cpuUs[1])}` : ''} (${us(r.baseCpuUs)})`;
      const of = t.of !== r.base ? ' of bound' : '';
      const met = r.diagnostic ? '' : ratio >= t.want ? 'yes' : 'no';
      const base = `${fmt(r.base)} (${r.baseAll.map(fmt).join(', ')})`;
      const failed = r.runs.reduce((a, x) => a + x.failed, 0);
      const non2xx = r.runs.reduce((a, x) => a + x.non2xx, 0);
      const p = (f) => median(r.runs.map(f));
      const cells = [r.label, r.name, fmt(r.rps), r.all.map(fmt).join(', '), base];
      cells.push(`${ratio.toFixed(2)}${of}`, ratios.map((x) => x.toFixed(2)).join(', '), t.what, met, cpu);
      const cpuRatio = (r.baseCpuUs / r.cpuUs[0]).toFixed(2);
      cells.push(cpuRatio, `${failed} / ${non2xx}`, `${p((x) => x.p50)} / ${p((x) => x.p99)}`);
      return `| ${cells.join(' | ')} |`;
    }),
  ].join('\n');
  const spread = (xs) => {
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    return `${fmt(lo)}-${fmt(hi)} req/s (max/min ${(hi / lo).toFixed(2)})`;
  };
  const allBases = rows.flatMap((r) => r.bases.map((b) => b.rps));
  const baselineSpread = allBases.length
    ? `The Node http baseline over its ${allBases.length} runs: ${spread(allBases)}.`
    : '';
  const cpu = (os.cpus()[0]?.model ?? 'unknown').trim();
  const rev = process.env.AB_REV;
  const summary = [
    `Broker: ${rev ? `the server and protocol src of commit ${rev}` : "the working tree's src"}, bundled with esbuild.`,
    `Machine: ${os.cpus().length} cores (${cpu}), Node ${process.version}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the end (the machine is shared).`,
    `ab: \`ab -k -c ${C} -n ${N}\` (HTTP/1.0 keep-alive GETs, empty body). Each case runs ${REPEAT} time(s), each run paired with a run of the Node http baseline (same ab command; baseline first in even pairs, the case first in odd ones); reported are the medians over the runs, and the ratio is the median of the pairs' ratios. CPU is utime + stime of the process (from /proc) over the run divided by the requests; the CPU ratio is the baseline's CPU per request over the broker's (the service's not counted), the figure load moves least.`,
    `Before a case's runs, ${fmt(WARMUP)} unmeasured requests warm the baseline and the case up (JIT). Before each run the harness waited up to ${QUIET_S} s for the rest of the machine to use under 0.15 cores (the per-run lines below give what it used before and during each run).`,
    PIN
      ? `Pinned (AB_PIN=1, taskset): the server under test, the Node http baseline and the broker alike, runs alone on core ${SERVER_CPU}; ab runs on core ${CLIENT_CPU}, and so does the RPC service (a client of the broker, as ab is).`
      : 'Not pinned: the scheduler places ab, the server and the RPC service on the cores.',
    baselineSpread,
    `fsync latency of the data disk (write 4 KiB + fdatasync, mean of 300): ${fsyncMs.toFixed(3)} ms, so the fsync=always ceiling is ${C} / ${fsyncMs.toFixed(
      3,
    )} ms = ${fmt(ceiling)} req/s; the bound for fsync=always is min(ceiling, baseline).`,
  ].join('\n');
  console.log(`\n${summary}\n\n${table}\n`);
  console.log('Commands:');
  for (const c of new Set(rows.map((r) => r.command.replace(/:\d+\//, ':PORT/')))) console.log(`  ${c}`);
  if (process.env.AB_OUT)
    fs.writeFileSync(process.env.AB_OUT, JSON.stringify({ fsyncMs, ceiling, rows }, null, 2));
  const notes = explain(rows);
  console.log(notes);
  if (process.argv.includes('--docs')) writeDocs(summary, `${table}\n\n${notes}`, rows);
}

/** The reading of this run's figures that the numbers alone give (the profile notes live in docs/benchmarks.md). */
function explain(rows) {
  const lines = [
    'Broker CPU per request (us, median of the runs), against the Node http baseline in the same runs:',
    '',
  ];
  for (const r of rows) {
    const svc = r.cpuUs.length > 1 ? ` + ${r.cpuUs[1].toFixed(1)} in the service` : '';
    const c = r.commits;
    const commits = c
      ? `; ${fmt(c.syncs)} fdatasyncs, ${c.recordsPerSync.toFixed(1)} records each, fdatasync ${c.syncMs.toFixed(3)} ms, commit wait ${c.waitMs.toFixed(3)} ms (means)`
      : '';
    lines.push(
      `- ${r.label} ${r.name.split(' (')[0]}: ${r.cpuUs[0].toFixed(1)}${svc}, main thread ${r.mainCpuUs.toFixed(1)} (baseline ${r.baseCpuUs.toFixed(1)})${commits}`,
    );
  }
  lines.push(
    '',
    'Each run (baseline, then the case, in the order they ran): req/s; CPU us per request of the server (of it, its',
    "main thread, and how busy that thread was: its CPU over the run's wall time) and of ab;",
    "others: every other process's CPU in the half second before the run and during it, in cores (of",
    `${os.cpus().length}), and the hypervisor's steal; the server's context switches per request (all its threads)`,
    'and CPU migrations; load average (1 min) after the run.',
    '',
  );
  const one = (who, x) => {
    const svc = x.cpuUs.length > 1 ? ` + service ${x.cpuUs[1].toFixed(1)}` : '';
    return `${who} ${fmt(x.rps)} req/s, server ${x.cpuUs[0].toFixed(1)} (main thread ${x.mainCpuUs.toFixed(1)}, ${x.mainBusy.toFixed(2)} busy)${svc} / ab ${x.abCpuUs.toFixed(1)} us, others ${x.quietBefore.toFixed(2)} before, ${x.others.toFixed(2)} during + steal ${x.steal.toFixed(2)} cores, ${x.switchesPerReq.toFixed(2)} cs/req, ${fmt(x.migrations)} migrations, load ${x.load.toFixed(1)}`;
  };
  for (const r of rows) {
    lines.push(`- ${r.label} ${r.name.split(' (')[0]}:`);
    r.runs.forEach((x, i) => {
      const pair = [one('baseline', r.bases[i]), one('case', x)];
      if (i % 2 === 1) pair.reverse();
      lines.push(`  ${i + 1}. ${pair.join('; ')}`);
    });
  }
  return lines.join('\n');
}

function writeDocs(summary, table, runs) {
  const file = path.join(root, 'docs/benchmarks.md');
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
  const commands = runs
    .map((r) => r.command.replace(/http:\/\/127\.0\.0\.1:\d+/, 'http://127.0.0.1:PORT'))
    .filter((c, i, a) => a.indexOf(c) === i);
  const section = [
    '## Broker (ab)',
    '',
    'ApacheBench against the broker and, in the same run, against a minimal Node `http` server answering "ok"',
    '(decisions.md §5). Each server runs in its own process; the RPC service is a separate process holding one raw',
    'TCP connection (consume_window 64, answers with `route`). Produce runs declare `MyTopic` first; the consume run',
    `reads ${fmt(N)} messages per run from the ${fmt(2 * N * REPEAT)} the produce runs stored.`,
    '',
    'Command (from `packages/server`; installs `apache2-utils` when `ab` is missing, bundles `src` with esbuild):',
    '',
    '```sh',
    'npx -y pnpm@10.20.0 run bench:ab   # = node bench/ab.mjs --docs (AB_N, AB_C: -n and -c; AB_REPEAT: runs per figure)',
    '```',
    '',
    summary,
    '',
    table,
    '',
    'The `ab` command lines (PORT is the ephemeral port of each server):',
    '',
    '```sh',
    ...commands,
    '```',
    '',
  ].join('\n');
  const start = text.indexOf('## Broker (ab)');
  let next;
  if (start >= 0) {
    const after = text.indexOf('\n## ', start + 3);
    next = `${text.slice(0, start)}${section}${after >= 0 ? `\n${text.slice(after + 1)}` : ''}`;
  } else {
    next = `${text.trimEnd()}\n\n${section}`;
  }
  fs.writeFileSync(file, next);
  console.log(`wrote the "## Broker (ab)" section of ${path.relative(process.cwd(), file)}`);
}

await main();
