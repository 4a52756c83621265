// A fresh app, as a user makes one: npm installs the packed tarballs (third-party dependencies from the npm
// registry), TypeScript checks code using every entry point under --strict, and the installed broker and client
// talk to each other.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { scaled } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { KNOWN_BAD_ENGINES } from './known-gaps.js';
import { ROOT } from './workspace.js';

const run = promisify(execFile);
/**
 * The environment of a user's shell: without the `npm_*` variables of the package manager running this suite
 * (pnpm passes its own config, which npm warns it does not know).
 */
const USER_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
const packs = inject('packs');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

let app: string;
let install: { stdout: string; stderr: string };

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), 'zbus-fresh-app-'));
  writeFileSync(join(app, 'package.json'), '{ "name": "fresh-app", "private": true, "type": "module" }\n');
  install = await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', ...packs.map((p) => p.tarball)],
    { cwd: app, env: { ...USER_ENV, npm_config_loglevel: 'warn' } },
  );
}, scaled(300_000));

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

/** Every import specifier the packages export (`@zbus/client`, `@zbus/rpc/msgpack`, ...), package.json aside. */
function specifiers(filter: (name: string) => boolean = () => true): string[] {
  return packs
    .filter((p) => filter(p.manifest.name))
    .flatMap((p) =>
      Object.keys(p.manifest.exports ?? { '.': '' })
        .filter((sub) => sub !== './package.json')
        .map((sub) => (sub === '.' ? p.manifest.name : `${p.manifest.name}/${sub.slice(2)}`)),
    );
}

/** Type-checks `code` in the app with `compilerOptions`, library .d.ts files included (no skipLibCheck). */
async function typecheck(
  name: string,
  code: string,
  compilerOptions: Record<string, unknown>,
): Promise<string> {
  const dir = join(app, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.ts'), code);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        target: 'es2022',
        ...compilerOptions,
      },
      files: ['main.ts'],
    }),
  );
  const r = await run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')]).catch(
    (err: { stdout: string; stderr: string }) => err,
  );
  return `${r.stdout}${r.stderr}`;
}

describe.concurrent('a fresh app', () => {
  it('installs every tarball with npm without a warning', () => {
    const lines = `${install.stdout}${install.stderr}`.split('\n').filter((l) => /warn/i.test(l));
    const badEngines = lines.flatMap(
      (l) => /^npm warn EBADENGINE\s+package: '(.+)@[^@]+'/.exec(l)?.[1] ?? [],
    );
    expect(lines.filter((l) => !l.startsWith('npm warn EBADENGINE'))).toEqual([]);
    expect(badEngines.sort()).toEqual(KNOWN_BAD_ENGINES);
  });

  it('type-checks under --strict with module nodenext, importing every entry point', async () => {
    const all = specifiers();
    const code = [
      ...all.map((s, i) => `import * as m${i} from '${s}';`),
      `import { MqClient, Producer } from '@zbus/client';`,
      `import { createBroker } from '@zbus/server';`,
      `const broker = createBroker({ port: 0, dataDir: 'data' });`,
      `const client = new MqClient('127.0.0.1:15555');`,
      `const r = await new Producer(client).publish({ topic: 't', body: { n: 1 } });`,
      `console.log(r.offset, broker.announced, ${all.map((_, i) => `m${i}`).join(', ')});`,
      '',
    ].join('\n');
    const out = await typecheck('node-app', code, {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules/@types')],
    });
    expect(out).toBe('');
  });

  it('type-checks the browser client with a browser lib alone (no @types/node)', async () => {
    const code = [
      `import { Broker, Consumer, Producer } from '@zbus/client-browser';`,
      `import * as bundled from '@zbus/client-browser/zbus.browser.js';`,
      `const broker = new Broker();`,
      `await new Producer(broker).publish({ topic: 'chat', body: { text: 'hi' } });`,
      `const consumer = new Consumer(broker, { topic: 'chat', handler: (m) => console.log(m.body) });`,
      `await consumer.start();`,
      `console.log(new bundled.MqClient());`,
      '',
    ].join('\n');
    const out = await typecheck('browser-app', code, {
      module: 'esnext',
      moduleResolution: 'bundler',
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      types: [],
    });
    expect(out).toBe('');
  });

  it('runs the installed broker with npx @zbus/broker and talks to it with the installed client', async () => {
    const child = spawn(
      'npx',
      ['@zbus/broker', '--port', '0', '--host', '127.0.0.1', '--data', join(app, 'data'), '--fsync', 'never'],
      // Its own process group: npx runs the broker in a child of its own and does not pass SIGTERM on to it.
      { cwd: app, env: USER_ENV, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    onTestFinished(() => stop(child));
    const port = await listening(child);
    writeFileSync(
      join(app, 'round-trip.mjs'),
      [
        `import { MqClient, Producer } from '@zbus/client';`,
        `const client = new MqClient('127.0.0.1:${port}');`,
        `await client.declare('Packed');`,
        `await new Producer(client).publish({ topic: 'Packed', body: 'from a tarball' });`,
        `const msg = await client.consume('Packed');`,
        `console.log(msg?.bodyText());`,
        `await client.close();`,
        '',
      ].join('\n'),
    );
    const { stdout } = await run(process.execPath, ['round-trip.mjs'], { cwd: app });
    expect(stdout).toBe('from a tarball\n');
  });
});

function listening(child: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (s: string) => {
      out += s;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.stderr?.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => reject(new Error(`the broker exited ${code}: ${out}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid!, 'SIGTERM'); // the whole group: npx and the broker it started
  await exited;
}
