// Copies the monitor's built assets (apps/monitor/dist/*) next to the CLI (dist/monitor/), where
// `zbus serve` looks for them (src/serve.ts monitorDir()). Skips quietly when the monitor is not built.
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const from = join(here, '../../monitor/dist');
const to = join(here, '../dist/monitor');

if (!existsSync(join(from, 'index.html'))) {
  console.log(
    'copy-monitor: apps/monitor/dist/index.html not found; the broker will serve a placeholder at /',
  );
} else {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    if (name.endsWith('.map')) continue; // the broker serves bare file names; maps are for development
    cpSync(join(from, name), join(to, name), { recursive: true });
  }
  console.log(`copy-monitor: ${readdirSync(to).length} files -> dist/monitor/`);
}
