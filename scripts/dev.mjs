#!/usr/bin/env node
// The two commands a new user runs (`npm run broker`, `npm test`). Each first installs what it needs with
// the pinned pnpm from the npm registry, so a machine with only Node 20 and npm is enough.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager; // pnpm@x.y.z
const env = {
  ...process.env,
  TURBO_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
  TURBO_NO_UPDATE_NOTIFIER: '1',
};

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}
function must(cmd, args) {
  const code = run(cmd, args);
  if (code !== 0) process.exit(code);
}
const pnpm = (...args) => ['npx', ['-y', PNPM, ...args]];

function install() {
  must(...pnpm('install', '--frozen-lockfile', '--prefer-offline', '--reporter=append-only'));
}

const [task, ...rest] = process.argv.slice(2);
if (task === 'broker') {
  install();
  must(...pnpm('exec', 'turbo', 'run', 'build', '--filter=@zbus/broker...', '--output-logs=errors-only'));
  const cli = join(root, 'apps/broker/dist/cli.js');
  if (!existsSync(cli)) {
    console.error('zbus: the broker is not built yet (apps/broker/dist/cli.js is missing)');
    process.exit(1);
  }
  process.exit(run(process.execPath, [cli, 'serve', ...rest]));
} else if (task === 'test') {
  install();
  must(...pnpm('exec', 'turbo', 'run', 'build', '--output-logs=errors-only'));
  must(...pnpm('exec', 'biome', 'check', '.'));
  must(...pnpm('exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only'));
  const results = join(root, 'artifacts/test-results');
  rmSync(results, { recursive: true, force: true });
  mkdirSync(results, { recursive: true });
  const code = run(...pnpm('exec', 'turbo', 'run', 'test', '--concurrency=1', '--continue', ...rest));
  // One closing line over every package, summed from each vitest JSON report.
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const f of readdirSync(results)) {
    const r = JSON.parse(readFileSync(join(results, f), 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(code !== 0 ? code : failed > 0 ? 1 : 0);
} else {
  console.error('usage: node scripts/dev.mjs broker|test [args]');
  process.exit(2);
}
