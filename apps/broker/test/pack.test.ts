// `npx @zbus/broker` from packed tarballs: what a user gets from the registry, not the workspace.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RawClient } from '@zbus/testkit';
import { expect, it, onTestFinished } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const PNPM = 'pnpm@10.20.0';

it('starts a working broker with npx @zbus/broker from the packed tarballs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zbus-pack-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const packs = join(dir, 'packs');
  // @zbus/broker and what it depends on from the workspace (its CLI commands use @zbus/client).
  for (const pkg of [
    'packages/protocol',
    'packages/rpc',
    'packages/client-core',
    'packages/client-node',
    'packages/server',
    'apps/broker',
  ]) {
    execFileSync('npx', ['-y', PNPM, 'pack', '--pack-destination', packs], {
      cwd: join(root, pkg),
      stdio: 'pipe',
    });
  }
  const app = join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), '{"name":"app","private":true}');
  const tarballs = readdirSync(packs).map((f) => join(packs, f));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], {
    cwd: app,
    stdio: 'pipe',
  });

  const child = spawn(
    'npx',
    ['@zbus/broker', '--port', '0', '--host', '127.0.0.1', '--data', join(dir, 'data')],
    {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) ok(Number(m[1]));
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.once('exit', (code) => fail(new Error(`exited ${code}: ${out}`)));
  });
  const c = await RawClient.connect(port);
  onTestFinished(() => c.close());
  await c.request({ headers: { cmd: 'declare', topic: 'Packed' } });
  await c.request({ headers: { cmd: 'produce', topic: 'Packed' }, body: 'from a tarball' });
  const d = await c.request({ headers: { cmd: 'consume', topic: 'Packed' } });
  expect(d.bodyText()).toBe('from a tarball');
}, 180_000);
