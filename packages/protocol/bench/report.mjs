// Prints the vitest bench JSON (see package.json "bench") as messages per second: each task handles BATCH messages
// per iteration. On a shared machine the best and median iterations are the steady figures (time slices lost to
// other processes land in the mean); the mean is what tinybench reports.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const BATCH = 1000;
const file = process.argv[2];
const data = JSON.parse(readFileSync(file, 'utf8'));
const cpu = cpus()[0]?.model ?? 'unknown';
console.log(`\nnode ${process.version}, ${cpus().length} cores, ${cpu}\n`);
console.log('| group | task | msgs/s (best iteration) | msgs/s (median iteration) | msgs/s (mean) | ±% |');
console.log('|---|---|---:|---:|---:|---:|');
for (const f of data.files) {
  for (const g of f.groups) {
    const group = g.fullName.replace(/^.*?> /, '');
    for (const b of g.benchmarks) {
      const fmt = (n) => Math.round(n).toLocaleString('en-US');
      const best = fmt((BATCH * 1000) / b.min);
      const median = fmt((BATCH * 1000) / b.median);
      console.log(
        `| ${group} | ${b.name} | ${best} | ${median} | ${fmt(b.hz * BATCH)} | ${b.rme.toFixed(1)} |`,
      );
    }
  }
}
