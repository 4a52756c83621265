// Prints the vitest bench JSON (see package.json "bench") as messages per second: each task handles BATCH messages.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const BATCH = 1000;
const file = process.argv[2];
const data = JSON.parse(readFileSync(file, 'utf8'));
const cpu = cpus()[0]?.model ?? 'unknown';
console.log(`\nnode ${process.version}, ${cpus().length} cores, ${cpu}\n`);
console.log('| group | task | msgs/s | ±% |');
console.log('|---|---|---:|---:|');
for (const f of data.files) {
  for (const g of f.groups) {
    const group = g.fullName.replace(/^.*?> /, '');
    for (const b of g.benchmarks) {
      const rate = Math.round(b.hz * BATCH).toLocaleString('en-US');
      console.log(`| ${group} | ${b.name} | ${rate} | ${b.rme.toFixed(1)} |`);
    }
  }
}
