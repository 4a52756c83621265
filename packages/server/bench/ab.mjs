// Broker throughput with ApacheBench, side by side in one run (issue 5 "Benchmark", decisions.md §5):
//   - a minimal Node `http` server answering "ok" (the baseline)
//   - the broker (src bundled with esbuild, run in its own process) with fsync=interval and fsync=always:
//       produce by URL (`/produce/MyTopic` and `/MyTopic?cmd=produce`), consume after filling, RPC by URL
//       (`/MyRpc/calc/plus/1/2`) with a service process attached (raw TCP, consume_window 64, answers with route)
//   - the data disk's fsync latency, for the fsync=always ceiling (32 in flight / latency)
// Usage: node bench/ab.mjs [--docs] [--quick]   (env AB_N, default 200000; AB_C, default 32; AB_REPEAT, default 2)
// --docs rewrites the "## Broker (ab)" section of docs/benchmarks.md with this run's figures.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** Bundles the broker's src (current working tree) into a cache dir where pino and ws still resolve. */
function bundleBroker() {
  const out = path.join(pkg, 'node_modules/.cache/zbus-ab');
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, 'broker.mjs');
  return bundleSrc('src/index.ts', file, ['pino', 'ws']);
}

/** Starts `node --input-type=module -e code`; resolves with the child and the first line it prints. */
function startChild(code, env = {}) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
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

/** Runs ab REPEAT times and returns the figures of the fastest run (with how many runs and their spread). */
function ab(url, n = N) {
  const runs = [];
  for (let i = 0; i < REPEAT; i++) runs.push(abOnce(url, n));
  const best = runs.reduce((a, b) => (b.rps > a.rps ? b : a));
  return { ...best, all: runs.map((r) => Math.round(r.rps)) };
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

async function brokerRun(bundle, fsync, label, withConsumeAndRpc) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'zbus-ab-data-'));
  const { child, line } = await startChild(brokerCode(bundle, dataDir, fsync));
  const base = `http://127.0.0.1:${line}`;
  const rows = [];
  try {
    const d = await get(`${base}/declare/MyTopic`);
    if (d.status !== 200) throw new Error(`declare failed: ${d.status} ${d.text}`);
    if (withConsumeAndRpc) {
      // Diagnostic: the transport alone (decode, command lookup, ordered reply, write), no store.
      rows.push({
        label,
        name: 'ping /ping (diagnostic: no store)',
        diagnostic: true,
        ...ab(`${base}/ping`),
      });
    }
    rows.push({ label, name: 'produce /produce/MyTopic', ...ab(`${base}/produce/MyTopic`) });
    rows.push({ label, name: 'produce /MyTopic?cmd=produce', ...ab(`${base}/MyTopic?cmd=produce`) });
    if (withConsumeAndRpc) {
      // The produce runs filled the topic with 2 * N * REPEAT messages; each consume run reads N of them.
      rows.push({
        label,
        name: 'consume /MyTopic?cmd=consume (after filling)',
        ...ab(`${base}/MyTopic?cmd=consume`),
      });
      const protocolEntry = path.join(root, 'packages/protocol/dist/index.js');
      const svc = await startChild(serviceCode(protocolEntry, line));
      try {
        const probe = await get(`${base}/MyRpc/calc/plus/1/2`);
        if (probe.text !== '3') throw new Error(`RPC probe answered ${probe.status} ${probe.text}`);
        rows.push({
          label,
          name: 'RPC by URL /MyRpc/calc/plus/1/2 (service process)',
          ...ab(`${base}/MyRpc/calc/plus/1/2`),
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

async function main() {
  ensureAb();
  const bundle = bundleBroker();
  const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'zbus-ab-data-'));
  const fsyncMs = fsyncLatencyMs(probeDir);
  fs.rmSync(probeDir, { recursive: true, force: true });
  const ceiling = C / (fsyncMs / 1000);

  const baselineChild = await startChild(BASELINE);
  let baseline;
  try {
    baseline = ab(`http://127.0.0.1:${baselineChild.line}/`);
  } finally {
    await stop(baselineChild.child);
  }
  const rows = [
    ...(await brokerRun(bundle, `interval=${INTERVAL_MS}`, `fsync=interval=${INTERVAL_MS}`, true)),
    ...(await brokerRun(bundle, 'always', 'fsync=always', false)),
    // Diagnostic: the same produce without any fsync, to show what the fsync policy costs.
    ...(await brokerRun(bundle, 'never', 'fsync=never', false)).map((r) => ({ ...r, diagnostic: true })),
  ];
  // A second baseline at the end shows how much the shared machine drifted during the run.
  const baselineChild2 = await startChild(BASELINE);
  let baseline2;
  try {
    baseline2 = ab(`http://127.0.0.1:${baselineChild2.line}/`);
  } finally {
    await stop(baselineChild2.child);
  }
  const base = Math.max(baseline.rps, baseline2.rps);
  const alwaysBound = Math.min(ceiling, base);
  const target = (r) => {
    if (r.diagnostic) return { want: 0, of: base, what: 'diagnostic' };
    if (r.label.startsWith('fsync=always'))
      return { want: 0.8, of: alwaysBound, what: '0.8x min(ceiling, baseline)' };
    if (r.name.startsWith('RPC')) return { want: 0.45, of: base, what: '0.45x baseline' };
    return { want: 0.9, of: base, what: '0.9x baseline' };
  };
  const table = [
    '| run | ab target | req/s (best) | each run | ratio | target | met | failed / non-2xx | p50 / p99 ms |',
    '|---|---|---:|---|---:|---|---|---:|---:|',
    `| Node http "ok" (start) | \`/\` | ${fmt(baseline.rps)} | ${baseline.all.map(fmt).join(', ')} | ${(baseline.rps / base).toFixed(2)} | | | ${baseline.failed} / ${baseline.non2xx} | ${baseline.p50} / ${baseline.p99} |`,
    ...rows.map((r) => {
      const t = target(r);
      const ratio = r.rps / t.of;
      return `| ${r.label} | ${r.name} | ${fmt(r.rps)} | ${r.all.map(fmt).join(', ')} | ${(r.rps / base).toFixed(2)}${
        t.of !== base ? ` (${ratio.toFixed(2)} of bound)` : ''
      } | ${t.what} | ${r.diagnostic ? '' : ratio >= t.want ? 'yes' : 'no'} | ${r.failed} / ${r.non2xx} | ${r.p50} / ${r.p99} |`;
    }),
    `| Node http "ok" (end) | \`/\` | ${fmt(baseline2.rps)} | ${baseline2.all.map(fmt).join(', ')} | ${(baseline2.rps / base).toFixed(2)} | | | ${baseline2.failed} / ${baseline2.non2xx} | ${baseline2.p50} / ${baseline2.p99} |`,
  ].join('\n');
  const cpu = (os.cpus()[0]?.model ?? 'unknown').trim();
  const summary = [
    `Machine: ${os.cpus().length} cores (${cpu}), Node ${process.version}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the end (the machine is shared).`,
    `ab: \`ab -k -c ${C} -n ${N}\` (HTTP/1.0 keep-alive GETs, empty body), each run ${REPEAT} time(s), the best kept. Baseline = the higher of the two Node http figures: ${fmt(base)} req/s.`,
    `fsync latency of the data disk (write 4 KiB + fdatasync, mean of 300): ${fsyncMs.toFixed(3)} ms, so the fsync=always ceiling is ${C} / ${fsyncMs.toFixed(
      3,
    )} ms = ${fmt(ceiling)} req/s; the bound for fsync=always is min(ceiling, baseline) = ${fmt(alwaysBound)} req/s.`,
  ].join('\n');
  console.log(`\n${summary}\n\n${table}\n`);
  console.log('Commands:');
  for (const r of [baseline, ...rows]) console.log(`  ${r.command}`);
  const notes = explain(rows, base);
  console.log(notes);
  if (process.argv.includes('--docs')) writeDocs(summary, `${table}\n\n${notes}`, [baseline, ...rows]);
}

/** The reading of this run's figures: which part of the broker costs what (see the profile notes). */
function explain(rows, base) {
  const find = (label, name) => rows.find((r) => r.label.startsWith(label) && r.name.startsWith(name));
  const ratio = (r) => (r ? (r.rps / base).toFixed(2) : '?');
  const ping = find('fsync=interval', 'ping');
  const pi = ['produce /produce', 'produce /MyTopic'].map((n) => find('fsync=interval', n));
  const pn = ['produce /produce', 'produce /MyTopic'].map((n) => find('fsync=never', n));
  const best = (rs) => Math.max(...rs.filter(Boolean).map((r) => r.rps));
  return [
    'What the numbers say (profiles: `node --cpu-prof` of the broker process under the same `ab` runs):',
    '',
    `- The transport is not what holds the broker back: \`/ping\` (decode, command lookup, ordered reply, write; no`,
    `  store) runs at ${ratio(ping)}x the Node http baseline.`,
    `- produce pays for the store. Best produce with fsync=interval: ${fmt(best(pi))} req/s; the same runs with`,
    `  fsync=never: ${fmt(best(pn))} req/s. The broker's own CPU per produce is about 17 us on a quiet machine and 30-40`,
    '  us under load (Node http\'s "ok": about 18 us); on top of it comes the store\'s append: the record encoded',
    '  into the batch buffer, a synchronous pwrite per batch of up to 64 KiB (async above that), the sparse index,',
    '  and the reply waiting for its batch. The interval fsync no longer holds the writer (it used to stall appends',
    '  for a whole fdatasync every interval); with fsync=always each batch also waits for its fdatasync.',
    '- consume is CPU-bound in the broker at about 30 us per message: decode the stored record, rewrite it as a',
    '  delivery (0.11 shape), encode it, and the long-poll bookkeeping.',
    '- RPC by URL costs the broker about 60 us per call (request in, delivery out, `route` in, reply out), so with',
    '  `ab`, the service and the broker sharing 2 cores it tops out near 15k calls/s. Broker changes made while',
    '  profiling: writes are uncorked at `setImmediate` instead of `nextTick` (one writev per connection per I/O',
    '  turn: about 100 -> 73 us per call), a `route` answering a windowed delivery gives the credit back so the',
    '  service sends no ack (73 -> 60 us), one reusable decoder for stored records.',
    '- The machine is shared with other work (see the load average and the spread of "each run"); figures move by',
    '  2x between runs of the same command minutes apart. Compare ratios within one run only.',
  ].join('\n');
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
