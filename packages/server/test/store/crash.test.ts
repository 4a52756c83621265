// Crash tests with a real child process: the store is bundled once with esbuild (the same tool tsup uses) into a
// temp .mjs; a child appends under fsync=always and prints every resolved append; the parent SIGKILLs it mid-run,
// reopens the directory and checks that every resolved append is present exactly once, in order.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { scaled } from '@zbus/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleSrc } from '../../bench/bundle.mjs';
import { drain, open, recordsEnd, tempDir } from './helpers.js';

const SLOW30 = scaled(30_000);
const SLOW60 = scaled(60_000);

let bundle = '';

beforeAll(async () => {
  const dir = await fs.promises.mkdtemp(path.join((await import('node:os')).tmpdir(), 'zbus-crash-bundle-'));
  bundle = bundleSrc('src/store/store.ts', path.join(dir, 'store.mjs'));
  return () => fs.promises.rm(dir, { recursive: true, force: true });
});

function childSource(bundleUrl: string, segmentBytes = 16 * 1024): string {
  return `import { openStore } from ${JSON.stringify(bundleUrl)};
const [dataDir, round, ackFlag] = process.argv.slice(2);
const store = await openStore({ dataDir, fsync: 'always', segmentBytes: ${segmentBytes} });
const t = await store.declareTopic('crash', { mask: 0 });
const g = ackFlag === 'ack' ? await t.declareGroup('g', { mask: 64, ackTimeoutMs: 600000 }) : undefined;
let n = 0;
async function worker(w) {
  for (;;) {
    const id = 'r' + round + '-w' + w + '-' + n++;
    const r = await t.append({ id, data: Buffer.alloc(50 + (n % 200), w) });
    process.stdout.write(r.offset + ' ' + id + '\\n');
    if (g) {
      const d = await g.next();
      if (d && d.offset % 3 === 0) { await g.ack(d.offset); process.stdout.write('ack ' + d.offset + '\\n'); }
    }
  }
}
for (let w = 0; w < 16; w++) void worker(w);
`;
}

interface ChildResult {
  resolved: Array<{ offset: number; id: string }>;
  acked: number[];
}

async function runAndKill(script: string, dataDir: string, round: number, mode: string, minLines: number) {
  const child = spawn(process.execPath, [script, dataDir, String(round), mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result: ChildResult = { resolved: [], acked: [] };
  let buf = '';
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  await new Promise<void>((resolve, reject) => {
    child.on('exit', () => resolve());
    child.on('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const [a, b] = line.split(' ');
        if (a === 'ack') result.acked.push(Number(b));
        else result.resolved.push({ offset: Number(a), id: b! });
        nl = buf.indexOf('\n');
      }
      if (result.resolved.length >= minLines && !child.killed) child.kill('SIGKILL');
    });
  });
  if (result.resolved.length < minLines) throw new Error(`child ended early: ${stderr}`);
  return result;
}

describe('crash safety (SIGKILL under fsync=always)', () => {
  it(
    'every append that resolved is present exactly once and in order, over 5 kill/reopen rounds',
    async () => {
      const dataDir = await tempDir();
      const script = path.join(dataDir, '..', `${path.basename(dataDir)}-child.mjs`);
      await fs.promises.writeFile(script, childSource(`file://${bundle}`));
      try {
        const all: Array<{ offset: number; id: string }> = [];
        for (let round = 0; round < 5; round++) {
          const r = await runAndKill(script, dataDir, round, 'plain', 300 + round * 50);
          all.push(...r.resolved);
          const store = await open({ dataDir });
          const t = store.topic('crash')!;
          const g = await t.declareGroup(`check${round}`, { start: { offset: 0 } });
          const ids = await drain(g);
          const at = new Map(ids.map((id, i) => [id, i]));
          expect(new Set(ids).size).toBe(ids.length); // exactly once
          for (const { offset, id } of all) {
            expect((await t.read(offset))?.id).toBe(id);
            expect(at.has(id)).toBe(true);
          }
          // Order: resolved appends appear in offset order.
          const sorted = [...all].sort((a, b) => a.offset - b.offset);
          let last = -1;
          for (const { id } of sorted) {
            const i = at.get(id)!;
            expect(i).toBeGreaterThan(last);
            last = i;
          }
          expect(t.info().corruptRecords).toBe(0);
          await t.removeGroup(`check${round}`);
          await store.close();
        }
      } finally {
        await fs.promises.rm(script, { force: true });
      }
    },
    SLOW60,
  );

  it(
    'pending acks survive SIGKILL: nothing acked comes back, nothing delivered is lost',
    async () => {
      const dataDir = await tempDir();
      const script = path.join(dataDir, '..', `${path.basename(dataDir)}-child.mjs`);
      await fs.promises.writeFile(script, childSource(`file://${bundle}`));
      try {
        const r = await runAndKill(script, dataDir, 0, 'ack', 400);
        const store = await open({ dataDir });
        const t = store.topic('crash')!;
        const g = t.group('g')!;
        const position = g.info().position;
        expect(g.info().unacked).toBeGreaterThan(0);
        // Acks are journaled asynchronously: one made in the last moments before the kill may still be pending
        // (at-least-once). But every resolved append that was not acked is either not yet delivered (at or past
        // the position) or still pending, so it will be redelivered.
        const acked = new Set(r.acked);
        let pendingChecked = 0;
        for (const { offset } of r.resolved) {
          if (acked.has(offset) || offset >= position) continue;
          expect(await g.nack(offset)).toBe(true);
          pendingChecked++;
        }
        expect(pendingChecked).toBeGreaterThan(0);
        const again = await g.next();
        expect(again?.retry).toBe(1);
        await store.close();
      } finally {
        await fs.promises.rm(script, { force: true });
      }
    },
    SLOW30,
  );

  it('a delivery handed out just before SIGKILL is counted: it comes back with retry 1', async () => {
    const dataDir = await tempDir();
    const script = path.join(dataDir, '..', `${path.basename(dataDir)}-deliver.mjs`);
    // The child dies in the same turn as the delivery, as a broker killed right after its consume reply would.
    await fs.promises.writeFile(
      script,
      `import { openStore } from ${JSON.stringify(`file://${bundle}`)};
const store = await openStore({ dataDir: process.argv[2], fsync: 'always' });
const t = await store.declareTopic('t', { mask: 0 });
const g = await t.declareGroup('g', { mask: 64, ackTimeoutMs: 1 });
await t.append({ id: 'm0', data: Buffer.from('v') });
const d = await g.next();
if (d?.id === 'm0') process.kill(process.pid, 'SIGKILL');
`,
    );
    try {
      const child = spawn(process.execPath, [script, dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      const signal = await new Promise((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
      expect(signal, stderr).toBe('SIGKILL');
      const store = await open({ dataDir });
      const g = store.topic('t')!.group('g')!;
      expect(g.info().unacked).toBe(1);
      // Its 1 ms ack timeout ran out while the store was down.
      expect(await g.next()).toMatchObject({ id: 'm0', retry: 1 });
      await store.close();
    } finally {
      await fs.promises.rm(script, { force: true });
    }
  });

  it(
    'the zeros written ahead of the records are cut at reopen after a kill; no torn record is reported',
    async () => {
      const dataDir = await tempDir();
      const script = path.join(dataDir, '..', `${path.basename(dataDir)}-child.mjs`);
      await fs.promises.writeFile(script, childSource(`file://${bundle}`, 1024 * 1024));
      try {
        const r = await runAndKill(script, dataDir, 0, 'plain', 500);
        const dir = path.join(dataDir, 'crash');
        const logs = (await fs.promises.readdir(dir)).filter((f) => f.endsWith('.log')).sort();
        const last = path.join(dir, logs.at(-1)!);
        const before = await fs.promises.readFile(last);
        const end = recordsEnd(before);
        expect(before.length).toBeGreaterThan(end);
        expect(before.subarray(end).every((b) => b === 0)).toBe(true);
        const warnings: unknown[] = [];
        const log = {
          warn: (o: object) => warnings.push(o),
          error: (o: object) => warnings.push(o),
          info: () => {},
        };
        const store = await open({ dataDir, log });
        const t = store.topic('crash')!;
        expect(warnings).toEqual([]);
        expect((await fs.promises.stat(last)).size).toBe(end);
        for (const { offset, id } of r.resolved) expect((await t.read(offset))?.id).toBe(id);
        const next = t.info().nextOffset;
        expect(next).toBeGreaterThan(Math.max(...r.resolved.map((x) => x.offset)));
        expect((await t.append({ id: 'after', data: Buffer.from('x') })).offset).toBe(next);
        expect((await t.read(next))?.id).toBe('after');
        expect(t.info().corruptRecords).toBe(0);
        await store.close();
        // A clean close leaves no zeros behind.
        const after = await fs.promises.readFile(last);
        expect(recordsEnd(after)).toBe(after.length);
      } finally {
        await fs.promises.rm(script, { force: true });
      }
    },
    SLOW30,
  );

  it(
    'after a kill, a cut tail and a flipped byte: valid records are served, the corrupt one is reported',
    async () => {
      const dataDir = await tempDir();
      const script = path.join(dataDir, '..', `${path.basename(dataDir)}-child.mjs`);
      await fs.promises.writeFile(script, childSource(`file://${bundle}`));
      try {
        const r = await runAndKill(script, dataDir, 0, 'plain', 400);
        const dir = path.join(dataDir, 'crash');
        const logs = (await fs.promises.readdir(dir)).filter((f) => f.endsWith('.log')).sort();
        const first = path.join(dir, logs[0]!);
        const buf = await fs.promises.readFile(first);
        // Flip a data byte of the 4th record of the first segment.
        let pos = 0;
        for (let i = 0; i < 3; i++) pos += buf.readUInt32LE(pos);
        const victim = buf.readDoubleLE(pos + 8);
        buf[pos + buf.readUInt32LE(pos) - 2]! ^= 0x80;
        await fs.promises.writeFile(first, buf);
        const last = path.join(dir, logs.at(-1)!);
        // Into the last record (past it are the zeros written ahead of the records).
        await fs.promises.truncate(last, recordsEnd(await fs.promises.readFile(last)) - 7);
        const store = await open({ dataDir });
        const t = store.topic('crash')!;
        const end = t.info().nextOffset;
        const g = await t.declareGroup('check', { start: { offset: 0 } });
        const ids = new Set(await drain(g));
        expect(t.info().corruptRecords).toBe(1);
        for (const { offset, id } of r.resolved) {
          if (offset === victim || offset >= end) continue;
          expect(ids.has(id)).toBe(true);
        }
        expect(await t.read(victim)).toBeUndefined();
        await store.close();
      } finally {
        await fs.promises.rm(script, { force: true });
      }
    },
    SLOW30,
  );
});
