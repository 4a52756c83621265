#!/usr/bin/env node
// The light broker: the whole `zbus` CLI (broker, proxy, client commands) and its dependencies in one file,
// runnable with `node zbus.mjs serve`. The monitor's assets (dist/monitor, when built) are embedded and
// written once to a content-addressed folder under the OS temp dir at start, where `serve` finds them.
//
//   node scripts/bundle.mjs            -> dist-bundle/zbus.mjs (ESM) + THIRD-PARTY-LICENSES.txt
//   node scripts/bundle.mjs --cjs      -> also dist-bundle/zbus.cjs (CommonJS, what Node 20 SEA can run)
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const app = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(app, 'dist-bundle');

/** Every file under `dir` (relative paths with `/`), source maps left out. */
function listFiles(dir, base = dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, base));
    else if (!name.endsWith('.map')) out.push(relative(base, p).split(sep).join('/'));
  }
  return out;
}

/** The module that runs before the CLI: it places the embedded monitor and says where the bundle "is". */
function preludeSource(monitorDir, format) {
  const files = listFiles(monitorDir);
  const assets = Object.fromEntries(
    files.map((f) => [f, readFileSync(join(monitorDir, f)).toString('base64')]),
  );
  const hash = createHash('sha256').update(JSON.stringify(assets)).digest('hex').slice(0, 16);
  // `serve` looks for `monitor/` next to `import.meta.url` (src/serve.ts), which the build defines as
  // globalThis.__ZBUS_BUNDLE_URL: the folder holding the extracted assets, or the bundle file itself.
  return `
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
const ASSETS = ${JSON.stringify(assets)};
// argv[1] is the script (node zbus.mjs) or, in a single executable, the executable itself.
let url = pathToFileURL(resolve(process.argv[1] ?? 'zbus.${format === 'cjs' ? 'cjs' : 'mjs'}')).href;
const names = Object.keys(ASSETS);
if (names.length > 0) {
  const home = join(tmpdir(), 'zbus-monitor-${hash}');
  if (!existsSync(join(home, 'monitor', 'index.html'))) {
    try {
      const tmp = home + '.' + process.pid;
      for (const name of names) {
        const file = join(tmp, 'monitor', name);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, Buffer.from(ASSETS[name], 'base64'));
      }
      try { renameSync(tmp, home); } catch { rmSync(tmp, { recursive: true, force: true }); }
    } catch (err) {
      process.stderr.write('zbus: cannot unpack the monitor into ' + home + ': ' + err.message + '\\n');
    }
  }
  if (existsSync(join(home, 'monitor', 'index.html'))) url = pathToFileURL(join(home, 'zbus.mjs')).href;
}
globalThis.__ZBUS_BUNDLE_URL = url;
`;
}

/** Licence texts of every package that ended up in the bundle (their licences ask for it). */
function licences(metafile) {
  const roots = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const i = input.lastIndexOf('node_modules/');
    if (i < 0) continue;
    const rest = input.slice(i + 'node_modules/'.length).split('/');
    const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    const root = resolve(app, input.slice(0, i + 'node_modules/'.length) + name);
    if (!roots.has(name)) roots.set(name, root);
  }
  const parts = [];
  for (const [name, root] of [...roots].sort(([a], [b]) => a.localeCompare(b))) {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const file = readdirSync(root).find((f) => /^licen[sc]e/i.test(f));
    const text = file
      ? readFileSync(join(root, file), 'utf8').trim()
      : `(${pkg.license ?? 'unknown'} licence; no licence file shipped)`;
    parts.push(`${name}@${pkg.version} (${pkg.license ?? 'unknown'})\n\n${text}\n`);
  }
  return `Third-party packages bundled into zbus.mjs\n\n${parts.join(`\n${'-'.repeat(72)}\n\n`)}`;
}

/**
 * Builds the bundle. `format` 'esm' writes zbus.mjs; 'cjs' writes zbus.cjs (into `outDir`, default
 * dist-bundle/). `monitorDir` holds the monitor assets to embed (default dist/monitor; absent = none).
 * Resolves with the output path, its size and the number of embedded monitor files.
 */
export async function bundle({
  format = 'esm',
  minify = true,
  outDir = OUT_DIR,
  monitorDir = join(app, 'dist', 'monitor'),
} = {}) {
  const { version } = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
  const outfile = join(outDir, format === 'cjs' ? 'zbus.cjs' : 'zbus.mjs');
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    stdin: {
      // Evaluation follows import order: the prelude runs before the CLI's main().
      contents: `import 'zbus:prelude';\nimport 'zbus:cli';\n`,
      resolveDir: app,
      sourcefile: 'zbus-bundle-entry.js',
      loader: 'js',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format,
    outfile,
    minify,
    sourcemap: 'external',
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    // The JetStream store stays out of the single file: `--store nats://` imports it from node_modules.
    external: ['@zbus/store-nats'],
    define: {
      __ZBUS_VERSION__: JSON.stringify(version),
      'import.meta.url': 'globalThis.__ZBUS_BUNDLE_URL',
    },
    // Bundled CommonJS packages (pino, ...) call require() for Node built-ins; ESM output needs one.
    banner:
      format === 'esm'
        ? {
            js: `#!/usr/bin/env node\nimport { createRequire as __zbusCreateRequire } from 'node:module';\nconst require = __zbusCreateRequire(import.meta.url);`,
          }
        : { js: '#!/usr/bin/env node' },
    plugins: [
      {
        name: 'zbus-prelude',
        setup(b) {
          b.onResolve({ filter: /^zbus:prelude$/ }, () => ({ path: 'prelude', namespace: 'zbus' }));
          // ws and msgpackr try optional native add-ons inside try/catch; a stub that throws is "not
          // installed" without asking the disk (a SEA's require() warns about any non-built-in module).
          b.onResolve({ filter: /^(bufferutil|utf-8-validate|msgpackr-extract)$/ }, (a) => ({
            path: a.path,
            namespace: 'zbus-absent',
          }));
          b.onLoad({ filter: /.*/, namespace: 'zbus-absent' }, (a) => ({
            contents: `throw new Error(${JSON.stringify(`${a.path} is not bundled`)});`,
            loader: 'js',
          }));
          // The package says "sideEffects": false (true of its library entry); the CLI's main() is the point.
          b.onResolve({ filter: /^zbus:cli$/ }, () => ({
            path: join(app, 'src', 'cli.ts'),
            sideEffects: true,
          }));
          b.onLoad({ filter: /^prelude$/, namespace: 'zbus' }, () => ({
            contents: preludeSource(monitorDir, format),
            loader: 'js',
            resolveDir: app,
          }));
        },
      },
    ],
  });
  writeFileSync(join(outDir, 'THIRD-PARTY-LICENSES.txt'), licences(result.metafile));
  return { outfile, bytes: statSync(outfile).size, monitorFiles: listFiles(monitorDir).length };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const formats = process.argv.includes('--cjs') ? ['esm', 'cjs'] : ['esm'];
  for (const format of formats) {
    const { outfile, bytes, monitorFiles } = await bundle({ format });
    console.log(
      `bundle: ${relative(process.cwd(), outfile)} ${(bytes / 1024).toFixed(0)} KiB, monitor files embedded: ${monitorFiles}`,
    );
  }
}
