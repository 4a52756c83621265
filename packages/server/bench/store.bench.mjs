// Store benchmark: `pnpm --filter @zbus/server bench` (or `node bench/store.bench.mjs [--quick]`).
// Bundles src/store/store.ts with esbuild into a temp dir, then measures, side by side in one run:
//   - append throughput with fsync=always: 1/8/64 concurrent appenders, 100 B and 4 KiB bodies (msgs/s, fsyncs/s)
//   - the floor: fs write + fdatasync per message
//   - the peer: Redis XADD with appendonly yes + appendfsync always (Debian redis-server, RESP spoken over net)
//   - sequential read throughput, seek by offset and by time
//   - ack mode: next()/nextBatch(16) + ack per delivery (msgs/s, CPU per message)
//   - recovery time (open) of a large topic, and RSS with a large backlog (in a fresh child process)
// Environment: BENCH_SECONDS (per append case, default 3), BENCH_RECOVERY_GB (default 1), BENCH_BACKLOG (10e6).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bundleSrc } from './bundle.mjs';

const quick = process.argv.includes('--quick');
const SECONDS = Number(process.env.BENCH_SECONDS ?? (quick ? 1 : 3));
const RECOVERY_GB = Number(process.env.BENCH_RECOVERY_GB ?? (quick ? 0.1 : 1));
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? (quick ? 1e6 : 10e6));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'zbus-bench-'));

// Count fdatasync calls made by the store (it calls fs.fdatasync on the default export at call time).
let syncs = 0;
const realFdatasync = fs.fdatasync;
fs.fdatasync = (fd, cb) => {
  syncs++;
  return realFdatasync(fd, cb);
};

const bundle = bundleSrc('src/store/store.ts', path.join(work, 'store.mjs'));
const { openStore } = await import(bundle);

const results = [];
const fmt = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
function report(name, fields) {
  results.push({ name, ...fields });
  console.log(
    `${name.padEnd(52)} ${Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`)
      .join('  ')}`,
  );
}

async function timed(concurrency, seconds, op) {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < end) {
        await op(w, n++);
      }
    }),
  );
  return { n, secs: (performance.now() - start) / 1000 };
}

// ------------------------------------------------------------------ append, fsync=always
async function benchAppend() {
  for (const size of [100, 4096]) {
    for (const c of [1, 8, 64]) {
      const dir = fs.mkdtempSync(path.join(work, 'append-'));
      const store = await openStore({ dataDir: dir, fsync: 'always' });
      const t = await store.declareTopic('bench', { mask: 0 });
      const body = Buffer.alloc(size, 120);
      syncs = 0;
      const { n, secs } = await timed(c, SECONDS, (_w, i) => t.append({ id: `m${i}`, data: body }));
      report(`zbus append fsync=always c=${c} ${size}B`, {
        'msgs/s': n / secs,
        'fsyncs/s': syncs / secs,
        'msgs/fsync': n / Math.max(1, syncs),
      });
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

// ------------------------------------------------------------------ floor: write + fdatasync per message
async function benchFloor() {
  for (const size of [100, 4096]) {
    for (const c of [1, 8]) {
      const file = path.join(work, `floor-${size}-${c}.log`);
      const fh = await fs.promises.open(file, 'a');
      const body = Buffer.alloc(size, 120);
      const { n, secs } = await timed(c, SECONDS, async () => {
        await fs.promises.appendFile(fh, body);
        await fh.datasync();
      });
      report(`floor appendFile+fdatasync per msg c=${c} ${size}B`, {
        'msgs/s': n / secs,
        'fsyncs/s': n / secs,
      });
      await fh.close();
      fs.rmSync(file, { force: true });
    }
  }
}

// ------------------------------------------------------------------ Redis XADD, appendfsync always
function ensureRedis() {
  const have = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (have.status === 0) return have.stdout.trim();
  console.log('# installing redis-server (apt-get install -y redis-server)');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  spawnSync(
    sudo[0] ?? 'apt-get',
    [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', 'redis-server'],
    { stdio: 'inherit' },
  );
  const again = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return again.status === 0 ? again.stdout.trim() : undefined;
}

class Resp {
  constructor(sock) {
    this.sock = sock;
    this.waiters = [];
    this.buf = '';
    sock.setNoDelay(true);
    sock.on('data', (d) => {
      this.buf += d.toString('latin1');
      // Replies to XADD are bulk strings ($n\r\n<id>\r\n) or errors; count complete replies.
      for (;;) {
        if (this.buf.length === 0) break;
        if (this.buf[0] === '$') {
          const nl = this.buf.indexOf('\r\n');
          if (nl < 0) break;
          const len = Number(this.buf.slice(1, nl));
          const need = nl + 2 + len + 2;
          if (this.buf.length < need) break;
          this.buf = this.buf.slice(need);
        } else {
          const nl = this.buf.indexOf('\r\n');
          if (nl < 0) break;
          if (this.buf[0] === '-') console.error(this.buf.slice(0, nl));
          this.buf = this.buf.slice(nl + 2);
        }
        this.waiters.shift()?.();
      }
    });
  }
  command(args) {
    let s = `*${args.length}\r\n`;
    const parts = [];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`${s}$${b.length}\r\n`, 'latin1'), b, Buffer.from('\r\n'));
      s = '';
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.sock.write(Buffer.concat(parts));
    });
  }
}

async function benchRedis() {
  const bin = ensureRedis();
  if (!bin) {
    report('redis XADD appendfsync=always', { skipped: 'redis-server not available' });
    return;
  }
  const dir = fs.mkdtempSync(path.join(work, 'redis-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = spawn(
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--daemonize',
      'no',
    ],
    { stdio: 'ignore' },
  );
  try {
    let conns = [];
    for (let i = 0; i < 50; i++) {
      try {
        const s = net.connect(port, '127.0.0.1');
        await new Promise((res, rej) => {
          s.once('connect', res);
          s.once('error', rej);
        });
        s.destroy();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
    console.log(`# ${version}`);
    for (const size of [100, 4096]) {
      for (const c of [1, 8, 64]) {
        conns = await Promise.all(
          Array.from(
            { length: c },
            () =>
              new Promise((res) => {
                const s = net.connect(port, '127.0.0.1', () => res(new Resp(s)));
              }),
          ),
        );
        const body = Buffer.alloc(size, 120);
        const key = `bench-${size}-${c}`;
        const { n, secs } = await timed(c, SECONDS, (w) => conns[w].command(['XADD', key, '*', 'd', body]));
        report(`redis XADD appendfsync=always c=${c} ${size}B`, { 'msgs/s': n / secs });
        for (const r of conns) r.sock.destroy();
      }
    }
  } finally {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ reads, seeks
async function fill(t, count, size, batch = 1000) {
  const body = Buffer.alloc(size, 97);
  let i = 0;
  while (i < count) {
    const ps = [];
    for (let j = 0; j < batch && i < count; j++, i++) ps.push(t.append({ id: `m${i}`, data: body }));
    await Promise.all(ps);
  }
}

async function benchReads() {
  const dir = fs.mkdtempSync(path.join(work, 'read-'));
  const N = quick ? 200_000 : 1_000_000;
  let store = await openStore({ dataDir: dir, fsync: 'never' });
  let t = await store.declareTopic('read', { mask: 0 });
  let s = performance.now();
  await fill(t, N, 100);
  report(`zbus append fsync=never ${N} x 100B (batched)`, { 'msgs/s': N / ((performance.now() - s) / 1000) });
  await store.close();
  store = await openStore({ dataDir: dir, fsync: 'never' });
  t = store.topic('read');
  const g = await t.declareGroup('g', { start: { offset: 0 } });
  s = performance.now();
  let n = 0;
  let bytes = 0;
  for (;;) {
    const d = await g.next();
    if (!d) break;
    n++;
    bytes += d.data.length;
  }
  const secs = (performance.now() - s) / 1000;
  report(`zbus sequential read (group.next) ${n} x 100B`, { 'msgs/s': n / secs, 'MB/s': bytes / secs / 1e6 });
  const K = 5000;
  s = performance.now();
  for (let i = 0; i < K; i++) {
    const o = Math.floor(Math.random() * N);
    const r = await t.read(o);
    if (r?.id !== `m${o}`) throw new Error(`bad read at ${o}`);
  }
  report('zbus seek by offset (topic.read, random)', { 'us/op': ((performance.now() - s) * 1000) / K });
  const first = (await t.read(0)).timestamp;
  const last = (await t.read(N - 1)).timestamp;
  s = performance.now();
  const M = 500;
  for (let i = 0; i < M; i++) {
    const time = first + Math.random() * (last - first);
    await t.declareGroup(`time${i % 10}`, { start: { time } });
  }
  report('zbus seek by time (declareGroup start.time, incl. group file write)', {
    'us/op': ((performance.now() - s) * 1000) / M,
  });
  // The seek itself (internal API, bench only): binary search over segments, then the sparse time index.
  s = performance.now();
  for (let i = 0; i < K; i++) await t.reader.seekTime(first + Math.random() * (last - first));
  report('zbus seek by time (log.seekTime only)', { 'us/op': ((performance.now() - s) * 1000) / K });
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------ ack mode: deliver + ack
// One consumer: next() (or nextBatch(16)) then ack of each delivery, on 100 B records already in the log. Each
// call writes its deliveries' journal entries before it returns (docs/store.md, "Ack journal"). CPU counts every
// thread of the process (the threadpool's writes and fsyncs too).
async function benchAcks() {
  const N = quick ? 20_000 : 100_000;
  for (const fsync of ['never', 'always']) {
    const dir = fs.mkdtempSync(path.join(work, 'acks-'));
    const store = await openStore({ dataDir: dir, fsync });
    const t = await store.declareTopic('acks', { mask: 0 });
    await fill(t, N, 100);
    for (const batch of [1, 16]) {
      const g = await t.declareGroup(`g${batch}`, { mask: 64, ackWindow: 1000, start: { offset: 0 } });
      const cpu = process.cpuUsage();
      const s = performance.now();
      let n = 0;
      while (n < N) {
        const got = batch === 1 ? [await g.next()].filter(Boolean) : await g.nextBatch(batch, 1 << 20);
        if (got.length === 0) break;
        for (const d of got) await g.ack(d.offset);
        n += got.length;
      }
      const secs = (performance.now() - s) / 1000;
      const used = process.cpuUsage(cpu);
      report(`zbus ack mode ${batch === 1 ? 'next()' : 'nextBatch(16)'} + ack, fsync=${fsync}`, {
        'msgs/s': n / secs,
        'CPU us/msg': (used.user + used.system) / n,
      });
    }
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ recovery, RSS (fresh child processes)
function child(code) {
  const file = path.join(work, `child-${Math.random().toString(36).slice(2)}.mjs`);
  fs.writeFileSync(file, `import { openStore } from ${JSON.stringify(`file://${bundle}`)};\n${code}`);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

async function benchRecovery() {
  const dir = fs.mkdtempSync(path.join(work, 'recovery-'));
  const size = 4096;
  const count = Math.round((RECOVERY_GB * 1024 ** 3) / (size + 45));
  const store = await openStore({ dataDir: dir, fsync: 'never' });
  const t = await store.declareTopic('big', { mask: 0 });
  const s = performance.now();
  await fill(t, count, size, 256);
  const wsecs = (performance.now() - s) / 1000;
  report(`zbus append fsync=never ${count} x 4KiB (batched)`, { 'MB/s': (count * size) / wsecs / 1e6 });
  const bytes = t.info().bytes;
  // No clean close: simulate kill -9 (index tail not persisted) by abandoning the store; files are complete.
  const r = child(`
const s = performance.now();
const store = await openStore({ dataDir: ${JSON.stringify(dir)}, fsync: 'never' });
const ms = performance.now() - s;
const info = store.topic('big').info();
console.log(JSON.stringify({ ms, depth: info.messageDepth }));`);
  report(`zbus recovery (open) of ${(bytes / 1024 ** 3).toFixed(2)} GiB, ${r.depth} msgs`, { ms: r.ms });
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

async function benchRss() {
  const dir = fs.mkdtempSync(path.join(work, 'rss-'));
  const store = await openStore({ dataDir: dir, fsync: 'never' });
  const t = await store.declareTopic('backlog', { mask: 0 });
  await t.declareGroup('slow', { start: { offset: 0 } });
  const s = performance.now();
  await fill(t, BACKLOG, 100, 5000);
  const secs = (performance.now() - s) / 1000;
  report(`zbus append fsync=never ${BACKLOG} x 100B (batched)`, { 'msgs/s': BACKLOG / secs });
  const bytes = t.info().bytes;
  await store.close();
  const r = child(`
const store = await openStore({ dataDir: ${JSON.stringify(dir)}, fsync: 'always' });
const t = store.topic('backlog');
const g = t.group('slow');
let n = 0;
for (let i = 0; i < 100000; i++) { if (await g.next()) n++; }
for (let i = 0; i < 1000; i++) await t.read(Math.floor(Math.random() * ${BACKLOG}));
await t.append({ id: 'x', data: Buffer.alloc(100) });
globalThis.gc?.();
const info = g.info();
console.log(JSON.stringify({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, backlog: info.backlog, read: n }));`);
  report(
    `zbus RSS with ${(r.backlog / 1e6).toFixed(1)}M backlog (${(bytes / 1024 ** 3).toFixed(2)} GiB on disk)`,
    {
      'RSS MB': r.rss / 1e6,
      'heap MB': r.heap / 1e6,
    },
  );
  fs.rmSync(dir, { recursive: true, force: true });
}

console.log(
  `# machine: ${os.cpus().length} x ${os.cpus()[0]?.model}, node ${process.version}, ${os.platform()} ${os.release()}`,
);
console.log(
  `# work dir: ${work} (${spawnSync('sh', ['-c', `df -hT ${work} | tail -1`], { encoding: 'utf8' }).stdout.trim()})`,
);
console.log(`# per-case duration ${SECONDS}s`);
try {
  const only = process.env.BENCH_ONLY?.split(',');
  const cases = {
    append: benchAppend,
    floor: benchFloor,
    redis: benchRedis,
    reads: benchReads,
    acks: benchAcks,
    recovery: benchRecovery,
    rss: benchRss,
  };
  for (const [name, fn] of Object.entries(cases)) if (!only || only.includes(name)) await fn();
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify(results, null, 2));
