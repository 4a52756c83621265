// The browser client stands on its own (issue 19): a publish/consume app bundles under 20 KB gzipped, with no
// msgpackr, undici or `node:` module in it, and its types compile with the DOM's lib and no @types/node.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { scaled } from '@zbus/testkit';
import { build } from 'esbuild';
import ts from 'typescript';
import { describe, expect, it, onTestFinished, vi } from 'vitest';

// Bundling and type-checking take up to 2 minutes, past the default test timeout (both scale with the load).
vi.setConfig({ testTimeout: scaled(120_000) });

const root = join(import.meta.dirname, '..');
/** The budget of a publish/consume app, gzip -9 (issue 19). */
const APP_LIMIT = 20 * 1024;
/** The same app over a tracker-aware Broker (routing over several brokers): a guard against growth. */
const BROKER_APP_LIMIT = 23 * 1024;

/** A page publishing to and consuming from the broker that served it. */
const APP = `
import { Consumer, MqClient, Producer } from '@zbus/client-browser';
const client = new MqClient();
await new Producer(client).publish({ topic: 'chat', body: { text: 'hi' } });
await new Consumer(client, { topic: 'chat', handler: (m) => console.log(m.json()) }).start();
`;

const BROKER_APP = APP.replace('MqClient', 'Broker').replace(
  'new MqClient()',
  "new Broker('h1:15555;h2:15555')",
);

async function bundle(source: string) {
  const out = await build({
    stdin: { contents: source, resolveDir: root, loader: 'ts' },
    // What an app's bundler does with the published package: the ESM build, its @zbus/* imports resolved.
    alias: { '@zbus/client-browser': join(root, 'dist/index.js') },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const file = out.outputFiles[0] as { contents: Uint8Array; text: string };
  return {
    code: file.text,
    gzip: gzipSync(file.contents, { level: 9 }).length,
    inputs: Object.keys(out.metafile.inputs),
  };
}

describe('@zbus/client-browser on its own', () => {
  it(`bundles a publish/consume app under ${APP_LIMIT} bytes gzipped`, async () => {
    const app = await bundle(APP);
    expect(app.gzip).toBeLessThan(APP_LIMIT);
    expect(app.inputs.filter((f) => /msgpackr|undici|node_modules\/ws\//.test(f))).toEqual([]);
    expect(app.code).not.toMatch(/["'`]node:|\brequire\(/);
  });

  it(`bundles the same app over a Broker under ${BROKER_APP_LIMIT} bytes gzipped`, async () => {
    const app = await bundle(BROKER_APP);
    expect(app.code).toContain('track_sub');
    expect(app.gzip).toBeLessThan(BROKER_APP_LIMIT);
  });

  it('carries msgpackr only for an app that imports @zbus/rpc/msgpack', async () => {
    const app = await bundle(
      `${APP}\nimport { msgpackCodec } from '@zbus/rpc/msgpack';\nconsole.log(msgpackCodec);`,
    );
    expect(app.inputs.some((f) => f.includes('msgpackr'))).toBe(true);
  });

  it('depends on the core, the protocol and rpc only', () => {
    const deps = (dir: string) =>
      Object.keys(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies ?? {}).sort();
    expect(deps(root)).toEqual(['@zbus/client-core', '@zbus/protocol', '@zbus/rpc']);
    expect(deps(join(root, '../client-core'))).toEqual(['@zbus/protocol', '@zbus/rpc']);
    expect(deps(join(root, '../rpc'))).toEqual(['@zbus/protocol']);
    expect(deps(join(root, '../protocol'))).toEqual([]);
  });

  it('typechecks an app with the DOM lib alone (no @types/node), strict, without skipLibCheck', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zbus-types-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'app.ts');
    writeFileSync(
      file,
      `${APP}
import { ClientBootstrap, type ConsumedMessage, type MqClientOptions } from '@zbus/client-browser';
const other = new MqClient('ws://127.0.0.1:15555', { timeout: 1000 } satisfies Partial<MqClientOptions>);
export const handle = (m: ConsumedMessage): Promise<void> => m.ack();
// proxy() without a type argument: every method exists, results are unknown
const math = new ClientBootstrap().serviceName('MathRpc').proxy('math');
export const sum: unknown = await math.plus(1, 2);
export { client, other };
`,
    );
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
      types: [],
      paths: { '@zbus/client-browser': [join(root, 'dist/index.d.ts')] },
      baseUrl: root,
    });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
  });
});
