#!/usr/bin/env node
// Runs the original zbus 0.11 clients' own examples, unmodified apart from the broker address, against two fresh
// zbus-ts brokers, and reports every error they print or exit with. Opt-in: the originals are not part of this
// repository (DEVELOPERS.md, "The original 0.11 clients"); `npm test` has the wire-level tests instead
// (packages/server/test/broker/compat.test.ts).
//
//   ZBUS_JS_DIR=/work/ext/zbus-js ZBUS_PYTHON_DIR=/work/ext/zbus-python node scripts/compat-originals.mjs
//
// ZBUS_JS_DIR       a checkout of zbus.js with its examples (rushmore/zbus-js at its 0.11 commit, 129125b)
// ZBUS_JS_LIBS      more zbus.js files to run the same examples with, ':'-separated (zbus 0.11.5's
//                   src/main/resources/zbus.js)
// ZBUS_PYTHON_DIR   a checkout of zbus-python (rushmore/zbus-python at its 0.11 commit, af38e69)
// ZBUS_PYTHON       the interpreter (default python3; that client needs Python <= 3.8, see DEVELOPERS.md)
// COMPAT_SECONDS    how long to run (default 120)
// COMPAT_HEARTBEAT_MS  zbus.js heartbeat interval, set through its MqClient.heartbeatInterval (default 2000)
// COMPAT_BROWSER    0 to leave out the browser (zbus.js over WebSocket in headless Chromium)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
const seconds = Number(env.COMPAT_SECONDS ?? 120);
const heartbeatMs = Number(env.COMPAT_HEARTBEAT_MS ?? 2000);
const python = env.ZBUS_PYTHON ?? 'python3';
const jsDir = env.ZBUS_JS_DIR;
const pyDir = env.ZBUS_PYTHON_DIR;
const jsLibs = (env.ZBUS_JS_LIBS ?? '').split(':').filter(Boolean);
if (!jsDir && !pyDir) {
  console.error(
    'usage: ZBUS_JS_DIR=<zbus-js checkout> ZBUS_PYTHON_DIR=<zbus-python checkout> node scripts/compat-originals.mjs',
  );
  process.exit(2);
}
const testkit = join(root, 'packages/testkit/dist/index.js');
if (!existsSync(testkit) || !existsSync(join(root, 'apps/broker/dist/cli.js'))) {
  console.error('build first: npx -y pnpm@10.20.0 exec turbo run build');
  process.exit(2);
}
const { startBroker, launchChromium, chromiumMissing } = await import(testkit);

const logs = join(root, 'artifacts/compat-originals');
rmSync(logs, { recursive: true, force: true });
mkdirSync(logs, { recursive: true });

// Each example: where it is, whether it runs for the whole time (`long`) or is run again and again (`repeat`),
// and what its output must show (`expect`) or must not show (`never`) for the run to count.
const RECEIVED = /hello from js|hello world|published from javascript/i;
const JS_EXAMPLES = [
  { file: 'mq/Consumer.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/broadcast/Consumer1.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/broadcast/Consumer2.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/broadcast/Consumer3.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/multicast/ConsumerM11.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/multicast/ConsumerM12.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/multicast/ConsumerM21.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/multicast/ConsumerM22.js', kind: 'long', expect: RECEIVED },
  // Filters Stock.A.*: no example produces such a tag, so nothing may arrive.
  { file: 'mq/msgfilter/Consumer1.js', kind: 'long', never: RECEIVED },
  { file: 'mq/msgfilter/Consumer2.js', kind: 'long', never: RECEIVED },
  { file: 'mq/ProduceForever.js', kind: 'long', expect: /status: 200/ },
  { file: 'rpc/RpcProcessor.js', kind: 'long' },
  { file: 'mq/Producer.js', kind: 'repeat', expect: /status: 200/ },
  { file: 'rpc/RpcInvoker.js', kind: 'repeat', expect: /^3$/m },
  { file: 'internal/Broker.js', kind: 'long', expect: /serverTable/ }, // never closes its Broker
  { file: 'internal/MqClient2.js', kind: 'long', expect: /connected/ },
  { file: 'internal/MqClient.js', kind: 'repeat', expect: RECEIVED },
];
const PY_EXAMPLES = [
  { file: 'mq/ConsumerExample.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/broadcast/Consumer1.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/broadcast/Consumer2.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/broadcast/Consumer3.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/multicast/ConsumerM11.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/multicast/ConsumerM12.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/multicast/ConsumerM21.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/multicast/ConsumerM22.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/msgfilter/ConsumerFilter1.py', kind: 'long', never: /'body'/ },
  { file: 'mq/msgfilter/ConsumerFilter2.py', kind: 'long', never: /'body'/ },
  { file: 'rpc/RpcProcessorExample.py', kind: 'long' },
  { file: 'internal/MqClientSubscriberExample.py', kind: 'long', expect: /serverTable/ },
  { file: 'internal/ConsumeThreadExample.py', kind: 'long', expect: /'body'/ },
  { file: 'mq/ProducerExample.py', kind: 'repeat', expect: /'status': 200/ },
  // Hangs now and then when its Broker adds one server twice at once (see joinedTwice; a client defect).
  { file: 'rpc/RpcInvokerExample.py', kind: 'repeat', expect: /^23$/m, known: /joined twice/ },
  // Closes its Broker right after add_tracker: when that tracker's connection is not open yet, MqClient.close()
  // fails on its None socket and the process hangs on its reader thread (a client defect, on any broker).
  {
    file: 'internal/BrokerExample.py',
    kind: 'repeat',
    known: /AttributeError: 'NoneType' object has no attribute 'close'/,
  },
  { file: 'internal/MqAdminExample.py', kind: 'repeat', expect: /topicName/ },
  { file: 'internal/MqClientAdminExample.py', kind: 'repeat', expect: /topicName/ },
  { file: 'internal/MqClientExample.py', kind: 'repeat', expect: /'status': 200/ },
];
// In a page: the same scripts, loaded after zbus.js as the examples' own .htm pages do.
const BROWSER_EXAMPLES = [
  { file: 'mq/Consumer.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/broadcast/Consumer1.js', kind: 'long', expect: RECEIVED },
  { file: 'mq/msgfilter/Consumer1.js', kind: 'long', never: RECEIVED },
  { file: 'rpc/RpcProcessor.js', kind: 'long' },
  { file: 'mq/Producer.js', kind: 'repeat' },
  { file: 'rpc/RpcInvoker.js', kind: 'repeat', expect: /^log 3$/m },
];
/** Lines that are errors in either client's output (zbus.js logger, Python logging, tracebacks, crashes). */
const ERROR_LINE = /\[ERROR\]|\[WARN\]| - ERROR - | - WARNING - |Traceback|Error:|Exception|Unhandled/;

let brokers = [];
const work = mkdtempSync(join(tmpdir(), 'zbus-originals-'));

/** A copy of a checkout whose examples point at our brokers: the only change made to them. */
function prepare(from, to, lib) {
  cpSync(from, to, { recursive: true, filter: (p) => basename(p) !== '.git' });
  if (lib) cpSync(lib, join(to, 'zbus.js'));
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(js|py)$/.test(name)) {
        const text = readFileSync(p, 'utf8');
        const moved = text
          .replaceAll('localhost:15555', brokers[0].address)
          .replaceAll('localhost:15556', brokers[1].address);
        if (moved !== text) writeFileSync(p, moved);
      }
    }
  };
  walk(join(to, 'examples'));
  return to;
}

// zbus.js reads MqClient.heartbeatInterval when a connection opens (60 s by default); each client gets the short
// interval before it connects. Used by the Node launcher and the browser harness page.
const HEARTBEAT_PATCH = (name) =>
  `{const c=${name}.prototype.connect;${name}.prototype.connect=function(...a){this.heartbeatInterval=${heartbeatMs};return c.apply(this,a)}}`;
writeFileSync(
  join(work, 'launch.cjs'),
  `const path=require('path');const [lib,example]=process.argv.slice(2);const z=require(path.resolve(lib));\n${HEARTBEAT_PATCH('z.MqClient')}\nrequire(path.resolve(example));\n`,
);

// The phase being run: its end and its examples.
let deadline = 0;
let jobs = [];

/**
 * A server that zbus-python's Broker logged as joined twice in one run. Its tracker threads add a server once per
 * tracker that lists it, with no lock between them: when two add the same one at once, the first pool is dropped
 * unclosed, and a client made in it keeps the process alive with its heartbeat timer (a client defect).
 */
function joinedTwice(out) {
  const seen = new Set();
  for (const [, server] of out.matchAll(/ - (\S+) joined$/gm)) {
    if (seen.has(server)) return server;
    seen.add(server);
  }
  return undefined;
}

/** One example, run as a process (`long`: for the whole time; `repeat`: again and again, each run must end well). */
function processJob(label, cwd, command, args, spec) {
  const job = { label, spec, runs: 0, failures: [], output: '', child: undefined };
  const log = createWriteStream(join(logs, `${label.replace(/[^\w.-]+/g, '_')}.log`));
  const startRun = () => {
    if (Date.now() >= deadline) return;
    job.runs++;
    let out = '';
    // PYTHONFAULTHANDLER: a Python run stopped for hanging (SIGABRT) prints where each of its threads was.
    const child = spawn(command, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONFAULTHANDLER: '1' },
    });
    job.child = child;
    const take = (b) => {
      const s = b.toString();
      out += s;
      job.output += s;
      log.write(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    // A run that never ends is a failure of its own (a Python client may take 60 s to notice its own close).
    const limit = spec.kind === 'repeat' ? setTimeout(() => child.kill('SIGABRT'), 120_000) : undefined;
    child.on('exit', (code, signal) => {
      clearTimeout(limit);
      if (job.stopping) return;
      const errors = out.split('\n').filter((l) => ERROR_LINE.test(l));
      if (spec.kind === 'long')
        job.failures.push(`exited early (${code ?? signal}) ${errors.slice(0, 3).join(' | ')}`);
      else if (code !== 0 || errors.length > 0) {
        const twice = signal === 'SIGABRT' ? joinedTwice(out) : undefined;
        const why = twice ? `hung after ${twice} joined twice` : errors.slice(0, 3).join(' | ');
        job.failures.push(`run ${job.runs}: exit ${code ?? signal} ${why}`);
      }
      setTimeout(startRun, 1000);
    });
  };
  job.start = startRun;
  job.stop = () => {
    job.stopping = true;
    job.child?.kill('SIGTERM');
    log.end();
  };
  jobs.push(job);
  return job;
}

const MIME = { '.js': 'text/javascript; charset=utf-8', '.html': 'text/html; charset=utf-8' };

// The pages come from a server of their own, as the examples' .htm files would: another origin than the brokers',
// which therefore start with --allow-origin for it (zbus-ts refuses other origins' WebSockets by default). The
// harness page stands in for an example's .htm page: zbus.js, the heartbeat setting, then the example's script.
let pagesDir = '';
const pages = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/favicon.ico') {
    res.writeHead(204).end();
    return;
  }
  if (url.pathname === '/harness') {
    const example = url.searchParams.get('example');
    res.writeHead(200, { 'content-type': MIME['.html'] });
    res.end(
      `<!DOCTYPE html><meta charset="utf-8"><script src="/zbus.js"></script><script>${HEARTBEAT_PATCH('MqClient')}</script><script src="/examples/${example}"></script>`,
    );
    return;
  }
  const file = join(pagesDir, decodeURIComponent(url.pathname));
  if (!file.startsWith(pagesDir) || !existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
  res.end(readFileSync(file));
});
await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));
const pagesOrigin = `http://127.0.0.1:${pages.address().port}`;

async function browserJobs(dir, tag, lib) {
  const missing = chromiumMissing();
  if (missing) {
    console.log(`browser: left out (${missing})`);
    return undefined;
  }
  pagesDir = dir;
  const base = pagesOrigin;
  const chromium = await launchChromium();
  const context = await chromium.newContext();
  for (const original of BROWSER_EXAMPLES) {
    const spec = withLib(original, lib);
    const job = { label: `${tag} in Chromium ${spec.file}`, spec, runs: 0, failures: [], output: '' };
    const log = createWriteStream(join(logs, `${job.label.replace(/[^\w.-]+/g, '_')}.log`));
    const page = await context.newPage();
    page.on('console', async (m) => {
      // Objects (a delivered message) are read back as JSON: the text of a console message only names them.
      const parts = await Promise.all(
        m.args().map((a) =>
          a.jsonValue().then(
            (v) => (typeof v === 'string' ? v : JSON.stringify(v)),
            () => m.text(),
          ),
        ),
      );
      const line = `${m.type()} ${parts.join(' ')}\n`;
      job.output += line;
      log.write(line);
      if (m.type() === 'error' || ERROR_LINE.test(line))
        job.failures.push(`run ${job.runs}: ${line.slice(0, 200)}`);
    });
    page.on('pageerror', (e) => job.failures.push(`run ${job.runs}: uncaught ${e.message}`));
    job.start = async () => {
      try {
        while (Date.now() < deadline && !job.stopping) {
          job.runs++;
          await page.goto(`${base}/harness?example=${spec.file}`);
          if (spec.kind === 'long') return;
          await page.waitForTimeout(5000); // a one-shot example, run again on a fresh page load
        }
      } catch (err) {
        if (!job.stopping) job.failures.push(`run ${job.runs}: ${err.message}`);
      }
    };
    job.stop = () => {
      job.stopping = true;
      log.end();
    };
    jobs.push(job);
  }
  return {
    close: () => chromium.close(),
  };
}

function freePort() {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Fresh brokers, the phase's examples (consumers and services first, one at a time), then the report. */
async function runPhase(name, addJobs) {
  // Two brokers that track each other, as 0.11's two-server examples run (conf/zbus1.xml, zbus2.xml): each
  // one's TrackerInfo lists both, and a client's Broker is ready once it is connected to both.
  // Trackers take reports only from cluster members: both brokers share one secret.
  const ports = await Promise.all([freePort(), freePort()]);
  const clusterToken = randomBytes(24).toString('base64url');
  brokers = await Promise.all(
    ports.map((port, i) =>
      startBroker({
        port,
        args: ['--tracker', `127.0.0.1:${ports[1 - i]}`, '--allow-origin', pagesOrigin],
        env: { ZBUS_CLUSTER_TOKEN: clusterToken },
      }),
    ),
  );
  console.log(`${name}: brokers ${brokers.map((b) => b.address).join(' and ')}, ${seconds} s`);
  jobs = [];
  deadline = Date.now() + (seconds + 60) * 1000; // no run starts after the phase's end (set below)
  const browser = await addJobs(join(work, name.replace(/\W+/g, '_')));
  const long = jobs.filter((j) => j.spec.kind === 'long');
  for (const j of long) {
    void j.start();
    await new Promise((r) => setTimeout(r, 500)); // 2 cores: do not start 30 clients in the same second
  }
  await new Promise((r) => setTimeout(r, 10_000));
  deadline = Date.now() + seconds * 1000;
  for (const j of jobs.filter((j) => j.spec.kind === 'repeat')) {
    void j.start();
    await new Promise((r) => setTimeout(r, 500));
  }
  await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())));
  // Let the last repeat runs finish (bounded), then stop everything.
  const until = Date.now() + 130_000;
  const running = (j) =>
    j.spec.kind === 'repeat' && j.child && j.child.exitCode === null && j.child.signalCode === null;
  while (Date.now() < until && jobs.some(running)) await new Promise((r) => setTimeout(r, 500));
  for (const j of jobs) j.stop();
  await browser?.close();
  for (const b of brokers) await b.stop();
  let failed = 0;
  for (const j of jobs) {
    // A long-running example can print an error and carry on (a thread died, a reply was refused).
    if (j.spec.kind === 'long' && j.child) {
      const errors = j.output.split('\n').filter((l) => ERROR_LINE.test(l));
      if (errors.length > 0)
        j.failures.push(`printed ${errors.length} error lines: ${errors.slice(0, 3).join(' | ')}`);
    }
    const known = j.failures.filter((f) => j.spec.known?.test(f));
    const problems = j.failures.filter((f) => !known.includes(f));
    if (j.spec.expect && !j.spec.expect.test(j.output)) problems.push(`never printed ${j.spec.expect}`);
    if (j.spec.never?.test(j.output)) problems.push(`printed ${j.spec.never}, which it must not`);
    if (problems.length > 0) failed++;
    const runs = j.spec.kind === 'repeat' ? `${j.runs} runs` : 'ran throughout';
    console.log(`${problems.length === 0 ? 'ok  ' : 'FAIL'} ${j.label} (${runs})`);
    for (const p of problems.slice(0, 5)) console.log(`       ${p}`);
    if (known.length > 0)
      console.log(`       (${known.length} runs hit a known client defect: ${j.spec.known})`);
    if (problems.length > 5) console.log(`       ... ${problems.length - 5} more`);
  }
  console.log(`${name}: ${jobs.length - failed} examples ok, ${failed} with errors`);
  return failed;
}

/**
 * The msgfilter examples name their group `consumeGroup`; 0.11.5's zbus.js also sends its own `consume_group` (the
 * topic) after it, and the last header wins, on 0.11 as here: with that zbus.js they read the default group,
 * filter-less. Only the older zbus.js the examples came with keeps them to their filtered group.
 */
function withLib(spec, lib) {
  return lib && spec.never ? { ...spec, never: undefined } : spec;
}

function jsJobs(dir, tag, lib) {
  for (const original of JS_EXAMPLES) {
    const spec = withLib(original, lib);
    const example = join(dir, 'examples', spec.file);
    const args = [join(work, 'launch.cjs'), join(dir, 'zbus.js'), example];
    processJob(`${tag} ${spec.file}`, dirname(example), process.execPath, args, spec);
  }
}

// zbus.js of the zbus-js checkout and zbus-python answer RPC with {result, error} (0.9); zbus 0.11.5's zbus.js
// answers with the bare result and status 600: services of both kinds on MyRpc would answer each other's callers
// in the wrong form, so each family gets a phase (and brokers) of its own.
let failed = 0;
failed += await runPhase('zbus.js and zbus-python', async (dir) => {
  if (jsDir) jsJobs(prepare(jsDir, join(dir, 'js')), 'zbus.js');
  if (pyDir) {
    const py = prepare(pyDir, join(dir, 'python'));
    for (const spec of PY_EXAMPLES) {
      const example = join(py, 'examples', spec.file);
      processJob(`python ${spec.file}`, dirname(example), python, ['-u', basename(example)], spec);
    }
  }
  return jsDir && env.COMPAT_BROWSER !== '0' ? browserJobs(join(dir, 'js'), 'zbus.js') : undefined;
});
for (const [i, lib] of jsDir ? jsLibs.entries() : []) {
  failed += await runPhase(`zbus.js #${i + 1} (${lib})`, async (dir) => {
    const js = prepare(jsDir, join(dir, 'js'), lib);
    jsJobs(js, `zbus.js#${i + 1}`, lib);
    return env.COMPAT_BROWSER !== '0' ? browserJobs(js, `zbus.js#${i + 1}`, lib) : undefined;
  });
}
rmSync(work, { recursive: true, force: true });
pages.close();
console.log(
  `${failed === 0 ? 'all examples ok' : `${failed} examples with errors`}; logs in ${relative(process.cwd(), logs)}/`,
);
process.exit(failed === 0 ? 0 : 1);
