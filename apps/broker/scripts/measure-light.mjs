#!/usr/bin/env node
// Measures the light-broker figures recorded in docs/benchmarks.md ("## Light broker"): start-up to
// listening (median of N runs), idle RSS, bundle size raw and gzipped, and what `npm install @zbus/broker`
// brings (from `pnpm pack` tarballs in a temp dir, as test/pack.test.ts does). Prints Markdown.
//
//   node scripts/measure-light.mjs [--runs 10] [--no-install]
// Build first: `npx tsup && node scripts/bundle.mjs` (and `node scripts/sea.mjs` to include the SEA).
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os, { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const app = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(app, '../..');
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const RUNS = Number(arg('--runs', '10'));
const work = mkdtempSync(join(tmpdir(), 'zbus-measure-'));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

/** CPU time (user + system) the process has used so far, ms (from /proc/<pid>/stat, 100 ticks/s). */
function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Spawns the broker, resolves when it prints its listening line: wall ms from spawn, CPU ms, the child. */
function startOnce(cmd, args, dataDir) {
  const t0 = performance.now();
  const child = spawn(
    cmd,
    [...args, 'serve', '--host', '127.0.0.1', '--port', '0', '--data', dataDir, '--fsync', 'never'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((ok, fail) => {
    let out = '';
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`not listening in 15 s: ${out}`));
    }, 15_000);
    child.stdout.setEncoding('utf8').on('data', (s) => {
      out += s;
      if (/listening on /.test(out)) {
        clearTimeout(t);
        ok({ ms: performance.now() - t0, cpu: cpuMs(child.pid), child });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s) => {
      out += s;
    });
  });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

/** Runs the subjects in turn, N rounds, so that load from elsewhere hits them alike. */
async function measureStarts(subjects) {
  const r = subjects.map(([label]) => ({ label, times: [], cpu: [], rss: [] }));
  for (let i = 0; i < RUNS; i++) {
    for (const [k, [, cmd, args]] of subjects.entries()) {
      const { ms, cpu, child } = await startOnce(cmd, args, join(work, `data-${k}-${i}`));
      r[k].times.push(ms);
      r[k].cpu.push(cpu);
      if (i < 3) {
        await new Promise((ok) => setTimeout(ok, 2_000)); // idle: let start-up garbage settle
        r[k].rss.push(rssMiB(child.pid));
      }
      await stop(child);
    }
  }
  return r.map((x) => ({
    label: x.label,
    startMs: median(x.times),
    minMs: Math.min(...x.times),
    maxMs: Math.max(...x.times),
    cpuMs: median(x.cpu),
    rssMiB: median(x.rss),
  }));
}

function pnpmPack(pkg, dest) {
  execFileSync('npx', ['-y', 'pnpm@10.20.0', 'pack', '--pack-destination', dest], {
    cwd: join(root, pkg),
    stdio: 'pipe',
  });
}

function duBytes(dir) {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

function installFigures() {
  const packs = join(work, 'packs');
  mkdirSync(packs, { recursive: true });
  // @zbus/broker and the workspace packages it depends on (they are not on the registry yet).
  for (const pkg of [
    'packages/protocol',
    'packages/server',
    'packages/rpc',
    'packages/client-core',
    'packages/client-node',
    'apps/broker',
  ]) {
    pnpmPack(pkg, packs);
  }
  const dir = join(work, 'install');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"name":"measure","private":true}');
  const tarballs = readdirSync(packs).map((f) => join(packs, f));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], {
    cwd: dir,
    stdio: 'pipe',
  });
  const list = execFileSync('npm', ['ls', '--all', '--parseable'], { cwd: dir, encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('node_modules'));
  const names = list.map((l) => l.slice(l.lastIndexOf('node_modules/') + 13));
  const external = names.filter((n) => !n.startsWith('@zbus/'));
  const brokerTgz = tarballs.find((t) => /zbus-broker-/.test(t));
  const biggest = readdirSync(join(dir, 'node_modules'))
    .flatMap((n) =>
      n.startsWith('@') ? readdirSync(join(dir, 'node_modules', n)).map((m) => `${n}/${m}`) : [n],
    )
    .filter((n) => !n.startsWith('.'))
    .map((n) => [n, duBytes(join(dir, 'node_modules', n))])
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6);
  return {
    nodeModulesBytes: duBytes(join(dir, 'node_modules')),
    packages: names.length,
    external: external.length,
    externalNames: external.sort(),
    brokerTarball: statSync(brokerTgz).size,
    biggest,
  };
}

const mib = (b) => `${(b / 1024 / 1024).toFixed(2)} MiB`;
const kib = (b) => `${(b / 1024).toFixed(0)} KiB`;

try {
  const bundleFile = join(app, 'dist-bundle', 'zbus.mjs');
  if (!existsSync(bundleFile)) throw new Error('build the bundle first: node scripts/bundle.mjs');
  const raw = readFileSync(bundleFile);
  const lines = [];
  lines.push(
    `Measured ${new Date().toISOString().slice(0, 16)}Z, Node ${process.versions.node}, ${RUNS} runs each.`,
    '',
  );
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  lines.push(
    '| artefact | start-up to listening: wall, median (min–max) | CPU to listening, median | idle RSS (median of 3) |',
    '|---|---|---|---|',
  );
  // The floor: a bare Node process that only opens a listening socket and says so.
  const floor = `require('net').createServer().listen(0,'127.0.0.1',function(){console.log('listening on 127.0.0.1:'+this.address().port)})`;
  const subjects = [
    ['floor: bare `node` opening a socket', process.execPath, ['-e', floor]],
    ['bundle `node dist-bundle/zbus.mjs`', process.execPath, [bundleFile]],
    ['unbundled `node dist/cli.js`', process.execPath, [join(app, 'dist', 'cli.js')]],
  ];
  const sea = join(app, 'dist-bundle', 'zbus');
  if (existsSync(sea)) subjects.push(['SEA `dist-bundle/zbus`', sea, []]);
  for (const r of await measureStarts(subjects)) {
    lines.push(
      `| ${r.label} | ${r.startMs.toFixed(0)} ms (${r.minMs.toFixed(0)}–${r.maxMs.toFixed(0)}) | ${r.cpuMs.toFixed(0)} ms | ${r.rssMiB.toFixed(1)} MiB |`,
    );
  }
  const after = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  lines.push(
    '',
    `Load average before / after the start-up runs: ${load} / ${after} (${os.cpus().length} cores).`,
    '',
  );
  lines.push(
    `Bundle \`dist-bundle/zbus.mjs\`: ${kib(raw.length)} raw, ${kib(gzipSync(raw, { level: 9 }).length)} gzipped (level 9).` +
      (existsSync(sea)
        ? ` SEA executable: ${mib(statSync(sea).size)} (the node binary plus the bundle).`
        : ''),
  );
  if (!process.argv.includes('--no-install')) {
    const f = installFigures();
    lines.push(
      '',
      `\`npm install @zbus/broker\` (packed tarballs): node_modules ${mib(f.nodeModulesBytes)}, ${f.packages} packages ` +
        `(${f.packages - f.external} @zbus/*, ${f.external} from the registry); the @zbus/broker tarball is ${kib(f.brokerTarball)}.`,
      `Registry packages: ${f.externalNames.join(', ')}.`,
      `Largest in node_modules: ${f.biggest.map(([n, b]) => `${n} ${mib(b)}`).join(', ')}.`,
    );
  }
  console.log(lines.join('\n'));
} finally {
  rmSync(work, { recursive: true, force: true });
}
