// Group commit under fsync=always, as the broker itself sees it: one broker (this package's `dist`, run
// `turbo run build` first) with fsync=always, `ab -k -c C -n N` against /produce/MyTopic, then the store's
// histograms from /metrics: records per fdatasync, fdatasync time, commit wait.
// Usage: node bench/group-commit.mjs   (env GC_N, default 50000; GC_C, default 32)
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createBroker } from '../dist/index.js';

const N = process.env.GC_N ?? '50000';
const C = process.env.GC_C ?? '32';
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'zbus-group-commit-'));
const broker = createBroker({
  host: '127.0.0.1',
  port: 0,
  dataDir,
  fsync: 'always',
  logLevel: 'silent',
  idleTimeoutMs: 0,
});
try {
  const { port } = await broker.listen();
  const url = `http://127.0.0.1:${port}`;
  const declared = await fetch(`${url}/declare/MyTopic`);
  if (declared.status !== 200) throw new Error(`declare: ${declared.status} ${await declared.text()}`);
  // Asynchronous: the broker runs in this process.
  const { stdout } = await promisify(execFile)('ab', ['-k', '-c', C, '-n', N, `${url}/produce/MyTopic`]);
  const rps = Number(stdout.match(/Requests per second:\s+([\d.]+)/)?.[1]);
  const failed = stdout.match(/Failed requests:\s+(\d+)/)?.[1];
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1]);
  const mean = (name) => value(`${name}_sum`) / value(`${name}_count`);
  console.log(
    `ab -k -c ${C} -n ${N} ${url}/produce/MyTopic; load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `${Math.round(rps)} req/s (failed ${failed}), ${value('zbus_store_fsync_records_count')} fdatasyncs, ` +
      `${mean('zbus_store_fsync_records').toFixed(1)} records per fdatasync, ` +
      `mean fdatasync ${(mean('zbus_store_fsync_seconds') * 1000).toFixed(2)} ms, ` +
      `mean commit wait ${(mean('zbus_store_commit_wait_seconds') * 1000).toFixed(2)} ms`,
  );
} finally {
  await broker.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
