// Broker CPU of storing a produce and of building a delivery, in one process on one core, with the stored form
// and with the code before it (issue 17). Bundles bench/delivery-cases.ts with esbuild, then times each case:
// 20,000 warm-up calls, then the best of 5 rounds of DELIVERY_N calls (default 200,000).
// Usage: node bench/delivery.mjs
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSrc } from './bundle.mjs';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.DELIVERY_N ?? 200_000);
const file = bundleSrc(
  'bench/delivery-cases.ts',
  path.join(pkg, 'node_modules/.cache/zbus-bench/delivery.mjs'),
);
const { cases } = await import(file);

console.log(
  `Node ${process.version}, ${os.cpus()[0]?.model.trim()}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log('| case | ns per call (best of 5 rounds) |');
console.log('|---|---:|');
for (const [name, run] of cases) {
  for (let i = 0; i < 20_000; i++) run();
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) run();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / N);
  }
  console.log(`| ${name} | ${Math.round(best).toLocaleString('en-US')} |`);
}
