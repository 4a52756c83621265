// Process figures for benchmarks (Linux /proc).
import { readFileSync } from 'node:fs';

/** utime + stime of a process in seconds, or NaN when it cannot be read. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
