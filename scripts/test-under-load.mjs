#!/usr/bin/env node
// Runs the whole `npm test` N times while CPU-burning processes keep the cores busy, as on a shared machine or a
// laptop doing other work: a test that waits on the wall clock instead of an event fails here first. Reports
// pass/fail per run, every failed test, and the slowest tests; keeps each run's vitest reports under
// artifacts/test-under-load/run-<n>/.
//
//   node scripts/test-under-load.mjs [--runs 3] [--burners 2] [--slowest 15] [-- <args for npm test>]
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const { values, positionals } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    burners: { type: 'string', default: '2' },
    slowest: { type: 'string', default: '15' },
  },
  allowPositionals: true,
});
const runs = positiveInt('runs', values.runs);
const burnerCount = Number(values.burners);
const slowestCount = positiveInt('slowest', values.slowest);
if (!Number.isInteger(burnerCount) || burnerCount < 0)
  usage(`--burners must be 0 or more, got ${values.burners}`);

function positiveInt(name, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive integer, got ${v}`);
  return n;
}
function usage(message) {
  console.error(`test-under-load: ${message}`);
  console.error(
    'usage: node scripts/test-under-load.mjs [--runs 3] [--burners 2] [--slowest 15] [-- npm test args]',
  );
  process.exit(2);
}

// Each burner is a busy loop in its own process, so it takes a whole core from the scheduler's point of view.
const burners = [];
function startBurners() {
  for (let i = 0; i < burnerCount; i++) {
    burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  }
}
function stopBurners() {
  for (const b of burners.splice(0)) b.kill('SIGKILL');
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopBurners();
    process.exit(130);
  });
}

function npmTest() {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'scripts/dev.mjs'), 'test', ...positionals], {
      cwd: root,
      stdio: 'inherit',
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Every test of the run from the vitest JSON reports: package, file, name, status, duration. */
function readResults(dir) {
  const tests = [];
  if (!existsSync(dir)) return tests;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    const report = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    for (const file of report.testResults ?? []) {
      for (const t of file.assertionResults ?? []) {
        tests.push({
          pkg: f.replace(/\.json$/, ''),
          file: relative(root, file.name),
          name: t.fullName,
          status: t.status,
          duration: t.duration ?? 0,
          failure: (t.failureMessages ?? []).join('\n').split('\n')[0],
        });
      }
    }
  }
  return tests;
}

const results = join(root, 'artifacts/test-results');
const keep = join(root, 'artifacts/test-under-load');
rmSync(keep, { recursive: true, force: true });
const summary = [];
const slowest = new Map(); // test key -> slowest duration over the runs
startBurners();
console.log(`test-under-load: ${runs} run(s) of npm test with ${burnerCount} CPU burner(s) running`);
try {
  for (let run = 1; run <= runs; run++) {
    console.log(`\n===== run ${run}/${runs} =====\n`);
    const started = Date.now();
    const code = await npmTest();
    const seconds = Math.round((Date.now() - started) / 1000);
    const tests = readResults(results);
    if (existsSync(results)) cpSync(results, join(keep, `run-${run}`), { recursive: true });
    const failed = tests.filter((t) => t.status === 'failed');
    summary.push({ run, code, seconds, tests: tests.length, failed });
    for (const t of tests) {
      const key = `${t.file} > ${t.name}`;
      const prev = slowest.get(key);
      if (prev === undefined || t.duration > prev.duration) slowest.set(key, { ...t, key });
    }
  }
} finally {
  stopBurners();
}

console.log(`\n===== test-under-load: ${runs} run(s), ${burnerCount} CPU burner(s) =====`);
for (const s of summary) {
  const verdict = s.code === 0 ? 'passed' : `FAILED (exit ${s.code})`;
  console.log(`run ${s.run}: ${verdict}, ${s.tests} tests, ${s.failed.length} failed, ${s.seconds} s`);
  for (const t of s.failed) console.log(`  ✗ ${t.file} > ${t.name}\n    ${t.failure}`);
}
console.log(`\nslowest tests (the slowest of ${runs} run(s)):`);
for (const t of [...slowest.values()].sort((a, b) => b.duration - a.duration).slice(0, slowestCount)) {
  console.log(`${(t.duration / 1000).toFixed(1).padStart(7)} s  ${t.key}`);
}
console.log(`\nreports: ${relative(root, keep)}/run-<n>/`);
process.exit(summary.every((s) => s.code === 0) ? 0 : 1);
