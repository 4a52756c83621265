// Broker throughput with ApacheBench, side by side in one run (issue 5 "Benchmark", decisions.md §5):
//   - a minimal Node `http` server answering "ok" (the baseline)
//   - the broker (src bundled with esbuild, run in its own process) with fsync=interval and fsync=always:
//       produce by URL (`/produce/MyTopic` and `/MyTopic?cmd=produce`), consume after filling, RPC by URL
//       (`/MyRpc/calc/plus/1/2`) with a service process attached (raw TCP, consume_window 64, answers with route)
//   - the data disk's fsync latency, for the fsync=always ceiling (32 in flight / latency)
//   - for fsync=always, the group commit of each case from the broker's /metrics: fdatasyncs, records per fdatasync,
//     mean fdatasync time and mean commit wait
// Usage: node bench/ab.mjs [--docs] [--quick]   (env AB_N, default 200000; AB_C, default 32; AB_REPEAT, default 2;
//   AB_ONLY=interval,always,never; AB_CASES=ping,produce,consume,RPC; AB_OUT=<file.json>; AB_PROFILE=<dir>;
//   AB_REV=<commit> measures the broker as of that commit instead of the working tree)
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
/** Each ab run is repeated and the best kept (the machine is shared; a run can lose its time slices). */
const REPEAT = Number(process.env.AB_REPEAT ?? (quick ? 1 : 2));
const INTERVAL_MS = 100;
/** AB_PROFILE=<dir>: the brokers run under `node --cpu-prof` (read with client-node's bench/profile-top.mjs). */
const PROFILE = process.env.AB_PROFILE ?? '';

function ensureAb() {
  if (spawnSync('sh', ['-c', 'command -v ab'], { stdio: 'ignore' }).status === 0) return;
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

/** Starts `node --input-type=module -e code`; resolves with the child and the first line it prints. */
function startChild(code, env = {}, profile = false) {
  const prof = profile && PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : [];
  const child = spawn(process.execPath, [...prof, '--input-type=module', '-e', code], {
    cwd: pkg,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
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

/** One ab run, with the CPU the given processes used during it (us per request) and the load average after it. */
function measured(url, pids, n = N) {
  const before = pids.map(cpuSeconds);
  const r = abOnce(url, n);
  const cpu = pids.map((pid, i) => cpuSeconds(pid) - before[i]);
  return { ...r, cpuUs: cpu.map((s) => (s * 1e6) / n), load: os.loadavg()[0] };
}

/**
 * Runs a case REPEAT times, each run right after a run of the Node http baseline (interleaved, so that both see
 * the same load), and keeps the fastest of each; CPU per request is the lowest of the runs (time slices lost to
 * other processes inflate it less than throughput, but cache and scheduler noise still add).
 */
function interleaved(baseline, url, pids) {
  const runs = [];
  const bases = [];
  for (let i = 0; i < REPEAT; i++) {
    bases.push(measured(baseline.url, [baseline.pid]));
    runs.push(measured(url, pids));
  }
  const best = runs.reduce((a, b) => (b.rps > a.rps ? b : a));
  const base = bases.reduce((a, b) => (b.rps > a.rps ? b : a));
  const minCpu = (rs, i) => Math.min(...rs.map((r) => r.cpuUs[i]));
  return {
    ...best,
    all: runs.map((r) => Math.round(r.rps)),
    loads: runs.map((r) => r.load),
    cpuUs: pids.map((_, i) => minCpu(runs, i)),
    base: base.rps,
    baseAll: bases.map((r) => Math.round(r.rps)),
    baseCpuUs: minCpu(bases, 0),
  };
}

function abOnce(url, n) {
  const args = ['-k', '-c', String(C), '-n', String(n), url];
  const r = spawnSync('ab', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const out = `${r.stdout}\n${r.stderr}`;
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : Number.NaN;
  };
  const result = {
    command: `ab ${args.join(' ')}`,
    rps: num(/Requests per second:\s+([\d.]+)/),
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
  const { child, line } = await startChild(brokerCode(bundle, dataDir, fsync), {}, true);
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
      const svc = await startChild(serviceCode(protocolEntry, line));
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
  const baselineChild = await startChild(BASELINE);
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
  const table = [
    '| run | ab target | req/s (best) | each run | baseline req/s (interleaved runs) | ratio | target | met | broker CPU us/req (baseline) | failed / non-2xx | p50 / p99 ms | load (1 min) per run |',
    '|---|---|---:|---|---|---:|---|---|---:|---:|---:|---|',
    ...rows.map((r) => {
      const t = target(r);
      const ratio = r.rps / t.of;
      const cpu = `${us(r.cpuUs[0])}${r.cpuUs.length > 1 ? ` + service ${us(r.cpuUs[1])}` : ''} (${us(r.baseCpuUs)})`;
      const bound = t.of !== r.base ? ` (${ratio.toFixed(2)} of bound)` : '';
      const met = r.diagnostic ? '' : ratio >= t.want ? 'yes' : 'no';
      const base = `${fmt(r.base)} (${r.baseAll.map(fmt).join(', ')})`;
      const loads = r.loads.map((l) => l.toFixed(1)).join(' / ');
      const cells = [r.label, r.name, fmt(r.rps), r.all.map(fmt).join(', '), base];
      cells.push(`${(r.rps / r.base).toFixed(2)}${bound}`, t.what, met, cpu);
      cells.push(`${r.failed} / ${r.non2xx}`, `${r.p50} / ${r.p99}`, loads);
      return `| ${cells.join(' | ')} |`;
    }),
  ].join('\n');
  const cpu = (os.cpus()[0]?.model ?? 'unknown').trim();
  const rev = process.env.AB_REV;
  const summary = [
    `Broker: ${rev ? `the server and protocol src of commit ${rev}` : "the working tree's src"}, bundled with esbuild.`,
    `Machine: ${os.cpus().length} cores (${cpu}), Node ${process.version}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the end (the machine is shared).`,
    `ab: \`ab -k -c ${C} -n ${N}\` (HTTP/1.0 keep-alive GETs, empty body). Each case runs ${REPEAT} time(s), each run right after a run of the Node http baseline (same ab command), and the best of each is kept; the ratio is case / baseline. CPU is utime + stime of the process (from /proc) over the run divided by the requests, the lowest of the runs.`,
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
    'Broker CPU per request (us, lowest run), against the Node http baseline in the same runs:',
    '',
  ];
  for (const r of rows) {
    const svc = r.cpuUs.length > 1 ? ` + ${r.cpuUs[1].toFixed(1)} in the service` : '';
    const c = r.commits;
    const commits = c
      ? `; ${fmt(c.syncs)} fdatasyncs, ${c.recordsPerSync.toFixed(1)} records each, fdatasync ${c.syncMs.toFixed(3)} ms, commit wait ${c.waitMs.toFixed(3)} ms (means)`
      : '';
    lines.push(
      `- ${r.label} ${r.name.split(' (')[0]}: ${r.cpuUs[0].toFixed(1)}${svc} (baseline ${r.baseCpuUs.toFixed(1)})${commits}`,
    );
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
