// Each tarball as the registry gets it (`pnpm pack` is what `pnpm publish` and `changeset publish` upload):
// metadata, LICENSE, notices for inlined code, READMEs that work on the registry page, publint and attw.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { KNOWN_UNEXPORTED } from './known-gaps.js';
import { type Manifest, type PackedPackage, ROOT, readJson, workspacePackages } from './workspace.js';

const run = promisify(execFile);
const packs = inject('packs');
const rootManifest = readJson<Manifest & { repository: { url: string } }>(join(ROOT, 'package.json'));
const REPO_URL = rootManifest.repository.url; // git+https://github.com/<owner>/<repo>.git
const REPO_WEB = REPO_URL.replace(/^git\+/, '').replace(/\.git$/, '');
const BIN = join(import.meta.dirname, '../node_modules/.bin');

/**
 * Bundles a package ships that are built elsewhere, with the source map that says what they inline (the broker
 * copies the dashboard's build without its maps).
 */
const COPIED_BUNDLES: Record<string, Record<string, string>> = {
  '@zbus/broker': { 'dist/monitor/monitor.js': 'apps/monitor/dist/monitor.js.map' },
};

/**
 * Dependencies held to one minor release (a tilde range), with why; every other dependency is a caret range.
 * @nats-io 3.4.0 pins @nats-io/nuid 3.0.0, whose engines say Node >= 22: a fresh install on Node 20 would warn
 * EBADENGINE. 3.3.x pins nuid 2.0.3 (Node >= 18), so @zbus/store-nats stays on 3.3 until nuid accepts Node 20.
 */
const MINOR_PINS = new Set([
  '@nats-io/jetstream',
  '@nats-io/kv',
  '@nats-io/nats-core',
  '@nats-io/transport-node',
]);

function files(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name), base) : [relative(base, join(dir, e.name))],
  );
}

/** `npm-name` of every package a source map's sources come from outside this repository. */
function inlinedPackages(mapFile: string): string[] {
  const { sources } = readJson<{ sources: string[] }>(mapFile);
  const names = sources
    .filter((s) => s.includes('node_modules/'))
    .map((s) => {
      const parts = s.slice(s.lastIndexOf('node_modules/') + 'node_modules/'.length).split('/');
      return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
    });
  return [...new Set(names)].sort();
}

/** Top-level declarations of a bundled .d.ts: what it exports (by local name) and everything it declares. */
interface Declarations {
  /** Exported name -> local name, for what the file exports itself. */
  exported: Map<string, string>;
  declared: string[];
  /** './chunk.js' -> the names (as that chunk exports them) this file re-exports from it. */
  reexports: Map<string, string[]>;
  /** Local name -> [./chunk.js, name as that chunk exports it], for what this file imports from a chunk. */
  imports: Map<string, [string, string]>;
}

function declarations(file: string): Declarations {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const exported = new Map<string, string>();
  const declared: string[] = [];
  const reexports = new Map<string, string[]>();
  const imports = new Map<string, [string, string]>();
  for (const s of sf.statements) {
    if (ts.isImportDeclaration(s) && ts.isStringLiteral(s.moduleSpecifier)) {
      const from = s.moduleSpecifier.text;
      const bindings = s.importClause?.namedBindings;
      if (from.startsWith('.') && bindings && ts.isNamedImports(bindings)) {
        for (const e of bindings.elements)
          imports.set(e.name.text, [from, (e.propertyName ?? e.name).getText()]);
      }
      continue;
    }
    if (ts.isExportDeclaration(s) && s.exportClause && ts.isNamedExports(s.exportClause)) {
      const from = s.moduleSpecifier && ts.isStringLiteral(s.moduleSpecifier) ? s.moduleSpecifier.text : '';
      for (const e of s.exportClause.elements) {
        const local = (e.propertyName ?? e.name).getText();
        if (from === '') exported.set(e.name.getText(), local);
        else if (from.startsWith('.')) reexports.set(from, [...(reexports.get(from) ?? []), local]);
      }
      continue;
    }
    const names = ts.isVariableStatement(s)
      ? s.declarationList.declarations.map((d) => d.name.getText())
      : (ts.isInterfaceDeclaration(s) ||
            ts.isTypeAliasDeclaration(s) ||
            ts.isClassDeclaration(s) ||
            ts.isFunctionDeclaration(s) ||
            ts.isEnumDeclaration(s)) &&
          s.name
        ? [s.name.text]
        : [];
    const isExported = ts
      .getModifiers(s as ts.HasModifiers)
      ?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    for (const n of names) {
      declared.push(n);
      if (isExported) exported.set(n, n);
    }
  }
  return { exported, declared, reexports, imports };
}

/**
 * Declarations in a package's .d.ts files that no public entry exports. The bundler keeps only what the entries
 * reach, so each of these is a type some public member uses that users cannot name.
 */
function unexportedTypes(pkgDir: string, manifest: Manifest): string[] {
  const entries = Object.values(manifest.exports ?? {})
    .map((e) => (typeof e === 'string' ? undefined : e.types))
    .filter((t): t is string => t !== undefined);
  const publicNames = new Map<string, Set<string>>(); // file -> local names reachable from an entry
  const publicOf = (f: string) => publicNames.get(f) ?? publicNames.set(f, new Set()).get(f)!;
  for (const entry of new Set(entries)) {
    const file = join(pkgDir, entry);
    const d = declarations(file);
    const chunkOf = (from: string) => join(file, '..', from.replace(/\.js$/, '.d.ts'));
    const fromChunk = (from: string, name: string) => {
      const chunk = chunkOf(from);
      publicOf(chunk).add(declarations(chunk).exported.get(name) ?? name);
    };
    for (const local of d.exported.values()) {
      const imported = d.imports.get(local);
      if (imported) fromChunk(...imported);
      else publicOf(file).add(local);
    }
    for (const [from, names] of d.reexports) for (const n of names) fromChunk(from, n);
  }
  return [...publicNames.keys()].flatMap((file) =>
    declarations(file)
      .declared.filter((n) => !publicOf(file).has(n))
      .map((n) => `${n} (${relative(pkgDir, file)})`),
  );
}

describe.each(packs.map((p) => [p.manifest.name, p] as const))('%s tarball', (_name, pack: PackedPackage) => {
  const dir = join(pack.tarball, '..', pack.manifest.name.replace('/', '+'));
  let manifest: Manifest;
  let contents: string[];

  beforeAll(() => {
    mkdirSync(dir, { recursive: true });
    execFileSync('tar', ['-xzf', pack.tarball, '-C', dir]);
    manifest = readJson<Manifest>(join(dir, 'package/package.json'));
    contents = files(join(dir, 'package'));
  });

  it('carries the MIT LICENSE and a README', () => {
    expect(readFileSync(join(dir, 'package/LICENSE'), 'utf8')).toBe(
      readFileSync(join(ROOT, 'LICENSE'), 'utf8'),
    );
    expect(manifest.license).toBe('MIT');
    expect(contents).toContain('README.md');
  });

  it('names its repository, homepage, bugs, keywords and author', () => {
    expect(manifest.repository).toEqual({ type: 'git', url: REPO_URL, directory: pack.dir });
    expect(manifest.homepage).toBe(`${REPO_WEB}/tree/main/${pack.dir}#readme`);
    expect(manifest.bugs).toEqual({ url: `${REPO_WEB}/issues` });
    expect(manifest.author).toEqual(expect.any(String));
    expect((manifest.keywords as string[]).length).toBeGreaterThan(0);
  });

  it('publishes no scripts, no dev-dependencies and caret ranges for its dependencies', () => {
    expect(manifest.scripts).toBeUndefined();
    expect(manifest.devDependencies).toBeUndefined();
    expect(manifest.publishConfig).toEqual({ access: 'public' });
    for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
      expect(range, dep).toMatch(!MINOR_PINS.has(dep) ? /^\^\d+\.\d+\.\d+$/ : /^~\d+\.\d+\.\d+$/);
    }
  });

  it('links only to absolute URLs in its README, and those into this repository exist', () => {
    const readme = readFileSync(join(dir, 'package/README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
    expect(links.filter((l) => !/^(https:\/\/|#)/.test(l))).toEqual([]);
    const prefix = new RegExp(
      `^${REPO_WEB.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(?:blob|tree)/main/([^#]*)`,
    );
    const missing = links
      .map((l) => prefix.exec(l)?.[1])
      .filter((p): p is string => p !== undefined && !existsSync(join(ROOT, p)));
    expect(missing).toEqual([]);
  });

  it('has third-party notices for exactly what its bundles inline', () => {
    const copied = COPIED_BUNDLES[pack.manifest.name] ?? {};
    const inlined = new Set<string>();
    for (const file of contents.filter((f) => f.endsWith('.js'))) {
      const map = copied[file] ?? join(pack.dir, `${file}.map`);
      expect(existsSync(join(ROOT, map)), `source map of ${file}`).toBe(true);
      for (const name of inlinedPackages(join(ROOT, map))) inlined.add(name);
    }
    const notices = join(dir, 'package/THIRD-PARTY-NOTICES.md');
    const listed = existsSync(notices)
      ? [...readFileSync(notices, 'utf8').matchAll(/^## (\S+) \(/gm)].map((m) => m[1] as string).sort()
      : [];
    expect(listed).toEqual([...inlined].sort());
  });

  it('strips @internal members from its .d.ts files', () => {
    const dts = contents.filter((f) => f.endsWith('.d.ts'));
    expect(dts.filter((f) => readFileSync(join(dir, 'package', f), 'utf8').includes('@internal'))).toEqual(
      [],
    );
  });

  it('exports every type its public members use', () => {
    const names = unexportedTypes(join(dir, 'package'), manifest).map((n) => n.split(' ')[0]);
    expect(names.sort()).toEqual(KNOWN_UNEXPORTED[pack.manifest.name] ?? []);
  });

  it('passes publint with no errors or warnings', async () => {
    const { stdout } = await run(join(BIN, 'publint'), [
      'run',
      pack.tarball,
      '--level',
      'warning',
      '--strict',
    ]);
    expect(stdout).toContain('All good!');
  });

  it('passes arethetypeswrong (ESM-only profile)', async () => {
    const r = await run(join(BIN, 'attw'), ['--profile', 'esm-only', '--format', 'json', pack.tarball], {
      maxBuffer: 64 * 1024 * 1024,
    }).catch((err: { stdout: string; code: number }) => err);
    const problems = Object.values(JSON.parse(r.stdout).problems ?? {})
      .flat()
      .filter((p) => {
        const kind = (p as { resolutionKind?: string }).resolutionKind;
        return kind === undefined || kind === 'node16-esm' || kind === 'bundler';
      });
    expect(problems).toEqual([]);
    expect('code' in r ? r.code : 0).toBe(0);
  });
});

describe('the suite', () => {
  it('depends on every publishable package, so turbo builds them before it packs', () => {
    const own = readJson<Manifest>(join(import.meta.dirname, '../package.json'));
    const publishable = workspacePackages()
      .filter((p) => p.manifest.private !== true)
      .map((p) => p.manifest.name);
    expect(publishable.filter((name) => own.devDependencies?.[name] === undefined)).toEqual([]);
    expect(packs.map((p) => p.manifest.name).sort()).toEqual(publishable.sort());
  });
});
