// Disk faults: a full disk (a 2 MiB tmpfs data directory) makes publishes fail with 507 ZBUS_ERR_NO_SPACE
// and corrupts nothing, and the broker takes publishes again once space returns; a segment with flipped
// bytes and one with a truncated tail are detected and reported (TopicInfo.corruptRecords, the log) while
// every valid record is still served.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scaled } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { chaosBroker, payloadFor, readAll, report, Wire } from './helpers.js';
import { check, Ledger } from './producer.js';

const SLOW60 = scaled(60_000);

/** Whether this process may mount a tmpfs (root in a container that allows it). */
function tryMount(dir: string, size: string): string | undefined {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `exit ${r.status}`).trim();
}

function umount(dir: string): void {
  if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
}

const probeDir = mkdtempSync(join(tmpdir(), 'zbus-chaos-probe-'));
const mountRefused = tryMount(probeDir, '64k');
if (mountRefused === undefined) umount(probeDir);
rmSync(probeDir, { recursive: true, force: true });

/** Record boundaries of a segment file (u32 length first in every record, see packages/server/src/store/record.ts). */
function recordPositions(file: string): Array<{ pos: number; len: number }> {
  const buf = readFileSync(file);
  const out: Array<{ pos: number; len: number }> = [];
  for (let pos = 0; pos + 36 <= buf.length; ) {
    const len = buf.readUInt32LE(pos);
    if (len < 36 || pos + len > buf.length) break;
    out.push({ pos, len });
    pos += len;
  }
  return out;
}

function flipBytes(file: string, at: number, n: number): void {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(n);
  readSync(fd, b, 0, n, at);
  for (let i = 0; i < n; i++) b[i] = b[i]! ^ 0xa5;
  writeSync(fd, b, 0, n, at);
  closeSync(fd);
}

function segmentFiles(dataDir: string, topic: string): string[] {
  const dir = join(dataDir, topic.toLowerCase());
  return readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort()
    .map((n) => join(dir, n));
}

describe('disk faults', () => {
  it.skipIf(mountRefused !== undefined)(
    `answers 507 ZBUS_ERR_NO_SPACE on a full disk, corrupts nothing and recovers when space returns${
      mountRefused ? ` (skipped: mount -t tmpfs refused: ${mountRefused})` : ''
    }`,
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'zbus-chaos-full-'));
      expect(tryMount(dataDir, '2m')).toBeUndefined();
      onTestFinished(() => {
        umount(dataDir);
        rmSync(dataDir, { recursive: true, force: true });
      });
      const b = await chaosBroker({ dataDir, fsync: 'always' });
      onTestFinished(() => b.kill('SIGKILL'));
      const w = await Wire.connect(b.port);
      await w.request({ headers: { cmd: 'declare', topic: 'Fill' } });
      // Leave about 1 MiB free; the filler is what "space returns" deletes.
      const filler = join(dataDir, 'filler.bin');
      writeFileSync(filler, Buffer.alloc(900 * 1024, 1));

      const ledger = new Ledger();
      const statuses = new Map<string, number>();
      let firstError: { status: number; code: string | undefined; body: string } | undefined;
      let seq = 0;
      const publish = async (n: number) => {
        const batch = Array.from({ length: n }, () => {
          const key = `full-${seq++}`;
          ledger.all.set(key, { key, round: 0, conn: 0, seq, state: 'pending', ackedLive: false });
          return key;
        });
        const replies = await Promise.all(
          batch.map((key) =>
            w.request({ headers: { cmd: 'produce', topic: 'Fill', id: key }, body: payloadFor(key, 2048) }),
          ),
        );
        replies.forEach((r, i) => {
          const p = ledger.all.get(batch[i]!)!;
          const k = `${r.status} ${r.headers.error_code ?? ''}`.trim();
          statuses.set(k, (statuses.get(k) ?? 0) + 1);
          if (r.status === 200) {
            p.state = 'acked';
            p.ackedLive = true;
            p.offset = Number(r.headers.offset);
          } else {
            p.state = 'unknown';
            firstError ??= { status: r.status ?? 0, code: r.headers.error_code, body: r.bodyText() };
          }
        });
        return replies;
      };
      // Publish until the disk is full (bounded: 2 MiB of tmpfs holds well under 2000 such messages).
      for (let i = 0; i < 100 && firstError === undefined; i++) await publish(20);
      expect(firstError, 'the disk never filled up').toBeDefined();
      expect(firstError).toMatchObject({ status: 507, code: 'ZBUS_ERR_NO_SPACE' });
      expect(firstError!.body).toMatch(/^507: .*no space left on device/);
      // Still full: more publishes fail the same way, promptly (some may fit in what the failed batch's
      // truncation gave back; it is acked and checked like the others); reads still work.
      const more = await publish(10);
      expect(more.every((r) => r.status === 507 || r.status === 200)).toBe(true);
      expect(more.filter((r) => r.status === 507).length).toBeGreaterThanOrEqual(1);
      expect((await w.request({ headers: { cmd: 'query', topic: 'Fill' } })).status).toBe(200);
      const ackedWhileFull = [...ledger.all.values()].filter((p) => p.state === 'acked').length;

      // Space returns.
      rmSync(filler);
      const after = await publish(20);
      const recovered = after.filter((r) => r.status === 200).length;
      expect(recovered, `after freeing space: ${JSON.stringify(Object.fromEntries(statuses))}`).toBe(20);

      // Nothing acknowledged is lost or damaged, before or after a crash.
      const live = await readAll(b.port, 'Fill');
      const v1 = check(ledger, live.records, live.missing.length, 2048);
      w.close();
      await b.kill('SIGKILL');
      await b.restart();
      const reread = await readAll(b.port, 'Fill');
      const v2 = check(ledger, reread.records, reread.missing.length, 2048);
      report('disk full (tmpfs 2m)', {
        acked: ackedWhileFull,
        statuses: Object.fromEntries(statuses),
        firstError,
        recoveredAfterFree: recovered,
        liveCheck: v1,
        afterRestart: v2,
        corruptRecords: reread.corruptRecords,
      });
      for (const v of [v1, v2]) {
        expect(v).toMatchObject({ lost: 0, corrupted: 0, holes: 0, duplicated: 0 });
      }
      expect(reread.corruptRecords).toBe(0);
      expect(statSync(dataDir).isDirectory()).toBe(true);
    },
    SLOW60,
  );

  it('detects flipped bytes in sealed and active segments, reports them and serves every valid record', async () => {
    const b = await chaosBroker({ fsync: 'never', config: { segmentBytes: 32 * 1024 } });
    const w = await Wire.connect(b.port);
    await w.request({ headers: { cmd: 'declare', topic: 'Bits' } });
    const N = 400;
    const replies = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        w.request({
          headers: { cmd: 'produce', topic: 'Bits', id: `b${i}` },
          body: payloadFor(`b${i}`, 200),
        }),
      ),
    );
    expect(replies.every((r) => r.status === 200)).toBe(true);
    w.close();
    await b.kill('SIGTERM');

    const segs = segmentFiles(b.dataDir, 'Bits');
    expect(segs.length).toBeGreaterThanOrEqual(3);
    // One record in the middle of the first (sealed) segment, one in the middle of the last (active) one.
    const damaged: number[] = [];
    for (const file of [segs[0]!, segs[segs.length - 1]!]) {
      const recs = recordPositions(file);
      const r = recs[Math.floor(recs.length / 2)]!;
      const base = Number(file.slice(-24, -4));
      damaged.push(base + recs.indexOf(r));
      flipBytes(file, r.pos + r.len - 50, 8); // inside the body: only the CRC can tell
    }
    await b.restart();
    const got = await readAll(b.port, 'Bits');
    expect(got.depth).toBe(N);
    expect(got.missing).toEqual(damaged);
    expect(got.records.every((r) => r.body === payloadFor(r.id, 200))).toBe(true);
    expect(got.corruptRecords).toBe(damaged.length);
    // A group reading from the start skips exactly the damaged records.
    const c = await Wire.open(b.port);
    await c.request({
      headers: { cmd: 'declare', topic: 'Bits', consume_group: 'all', group_start_offset: '0' },
    });
    const seen: number[] = [];
    for (let i = 0; i < N - damaged.length; i++) {
      const d = await c.request({ headers: { cmd: 'consume', topic: 'Bits', consume_group: 'all' } }, 5000);
      seen.push(Number(d.headers.offset));
    }
    expect(seen.filter((o) => damaged.includes(o))).toEqual([]);
    const metrics = await fetch(`http://127.0.0.1:${b.port}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/zbus_topic_corrupt_records\{topic="Bits"\} 2/);
    expect(b.output()).toContain('corrupt record (checksum mismatch)');
    report('disk flipped bytes', {
      records: N,
      segments: segs.length,
      damaged,
      missing: got.missing,
      corruptRecords: got.corruptRecords,
      servedIntact: got.records.length,
    });
  });

  it('cuts a torn tail on restart, says so in the log, and appends after it without a hole', async () => {
    const b = await chaosBroker({ fsync: 'never' });
    const w = await Wire.connect(b.port);
    await w.request({ headers: { cmd: 'declare', topic: 'Torn' } });
    const N = 50;
    for (let i = 0; i < N; i++) {
      const r = await w.request({
        headers: { cmd: 'produce', topic: 'Torn', id: `t${i}` },
        body: payloadFor(`t${i}`, 300),
      });
      expect(r.status).toBe(200);
    }
    w.close();
    await b.kill('SIGKILL');
    const [file] = segmentFiles(b.dataDir, 'Torn');
    const recs = recordPositions(file!);
    expect(recs.length).toBe(N);
    const last = recs[N - 1]!;
    truncateSync(file!, last.pos + Math.floor(last.len / 2)); // half of the last record is gone
    await b.restart();
    expect(b.output()).toContain('truncated a torn record');
    const got = await readAll(b.port, 'Torn');
    expect(got.depth).toBe(N - 1);
    expect(got.missing).toEqual([]);
    expect(got.records.every((r) => r.body === payloadFor(r.id, 300))).toBe(true);
    const w2 = await Wire.open(b.port);
    const r = await w2.request({
      headers: { cmd: 'produce', topic: 'Torn', id: 'after' },
      body: payloadFor('after', 300),
    });
    expect(r.headers.offset).toBe(String(N - 1));
    const again = await readAll(b.port, 'Torn');
    expect(again.records.map((x) => x.id)).toEqual([...recs.slice(0, N - 1).map((_, i) => `t${i}`), 'after']);
    report('disk torn tail', {
      records: N,
      tornCut: 1,
      depthAfter: got.depth,
      corruptRecords: got.corruptRecords,
    });
  });
});
