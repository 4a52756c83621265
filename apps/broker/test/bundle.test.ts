// The light broker: the single-file bundle (scripts/bundle.mjs) and the Node single executable
// (scripts/sea.mjs) start, serve the embedded monitor and do a produce/consume round trip.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, scaled } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
// @ts-expect-error: plain ESM build scripts without type declarations
import { bundle } from '../scripts/bundle.mjs';
// @ts-expect-error: plain ESM build scripts without type declarations
import { buildSea, seaUnsupportedReason } from '../scripts/sea.mjs';

const SLOW120 = scaled(120_000);

const work = mkdtempSync(join(tmpdir(), 'zbus-bundle-test-'));
const monitor = join(work, 'monitor-src');
const MONITOR_HTML = '<!doctype html><title>embedded monitor (bundle test)</title>';

/** Starts `cmd args...` and resolves with the port it prints once listening. */
/** `serve` on 127.0.0.1, an ephemeral port and a data dir of its own under the test's work dir. */
function serveArgs(data: string): string[] {
  return ['serve', '--host', '127.0.0.1', '--port', '0', '--data', join(work, data), '--fsync', 'never'];
}

async function started(cmd: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not listening in time:\n${out}`)), scaled(15_000));
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`exited with ${code}:\n${out}`));
    });
  });
  return { child, port };
}

/** Declare, produce and consume over TCP, then produce and consume over plain HTTP. */
async function roundTrip(port: number): Promise<void> {
  const c = await RawClient.connect(port);
  onTestFinished(() => c.close());
  expect((await c.request({ headers: { cmd: 'declare', topic: 'Light' } })).status).toBe(200);
  const p = await c.request({ headers: { cmd: 'produce', topic: 'Light' }, body: 'light as a feather' });
  expect(p.status).toBe(200);
  const d = await c.request({ headers: { cmd: 'consume', topic: 'Light' } });
  expect(d.bodyText()).toBe('light as a feather');
  const base = `http://127.0.0.1:${port}`;
  expect((await fetch(`${base}/Light`, { method: 'POST', body: 'over http' })).status).toBe(200);
  const r = await fetch(`${base}/Light?cmd=consume`);
  expect(await r.text()).toBe('over http');
  const home = await fetch(`${base}/`);
  expect(await home.text()).toBe(MONITOR_HTML);
}

beforeAll(() => {
  mkdirSync(monitor, { recursive: true });
  writeFileSync(join(monitor, 'index.html'), MONITOR_HTML);
  writeFileSync(join(monitor, 'app.js'), 'console.log("monitor")');
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('single-file bundle', () => {
  let file: string;

  beforeAll(async () => {
    const out = await bundle({ outDir: join(work, 'esm'), monitorDir: monitor });
    file = out.outfile;
    expect(out.monitorFiles).toBe(2);
  }, scaled(60_000));

  it('is one file that runs with node: produce/consume round trip and the embedded monitor', async () => {
    expect(statSync(file).size).toBeGreaterThan(100_000);
    const { port } = await started(process.execPath, [file, ...serveArgs('data-esm')]);
    await roundTrip(port);
    const js = await fetch(`http://127.0.0.1:${port}/app.js?cmd=js`);
    expect(await js.text()).toBe('console.log("monitor")');
  });

  it('carries the proxy too: zbus proxy from the bundle forwards to a target', async () => {
    const target = createServer((req, res) => res.end(`target saw ${req.url}`));
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    onTestFinished(() => new Promise<void>((r) => target.close(() => r())));
    const { port } = await started(process.execPath, [file, ...serveArgs('data-proxy')]);
    const proxy = spawn(
      process.execPath,
      [
        file,
        'proxy',
        '--broker',
        `127.0.0.1:${port}`,
        '--entry',
        'Svc',
        '--target',
        `http://127.0.0.1:${(target.address() as AddressInfo).port}`,
        '--connections',
        '1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    onTestFinished(async () => {
      proxy.kill('SIGTERM');
      if (proxy.exitCode === null) await once(proxy, 'exit');
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`proxy not ready:\n${out}`)), scaled(15_000));
      proxy.stdout!.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        if (out.includes(' ready ')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const res = await fetch(`http://127.0.0.1:${port}/Svc/hello?a=1`);
    expect(await res.text()).toBe('target saw /hello?a=1');
  });
});

const unsupported: string | undefined = seaUnsupportedReason();

describe('single executable application (SEA)', () => {
  it.skipIf(unsupported !== undefined)(
    `builds and runs as one executable${unsupported ? ` (skipped: ${unsupported})` : ''}`,
    async () => {
      const outDir = join(work, 'sea');
      const { out } = await buildSea({ outDir, monitorDir: monitor });
      const version = spawnSync(out, ['--version'], { encoding: 'utf8' });
      expect(version.status).toBe(0);
      expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
      const { port } = await started(out, serveArgs('data-sea'));
      await roundTrip(port);
    },
    SLOW120,
  );
});
