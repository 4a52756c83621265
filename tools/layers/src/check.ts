// Checks every workspace package's src/ against the layering rules (rules.ts): package layers, browser-safe
// packages, the layers inside a package's src/, forbidden imports, and import cycles between files. Imports are
// read with TypeScript's own pre-processor (static, dynamic, type-only, re-exports and `/// <reference>`s), and
// Node globals with a walk over each browser file's syntax tree. Nothing is compiled or run.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix, relative } from 'node:path';
import ts from 'typescript';
import type { LayerRules, PackageRule } from './rules.js';

export type ViolationKind = 'no-layer' | 'layer' | 'browser' | 'forbidden' | 'folder-layer' | 'cycle';

export interface Violation {
  kind: ViolationKind;
  /** Path from the checked root, with `/`. */
  file: string;
  /** 1-based; 0 when the violation is about a whole file or package. */
  line: number;
  message: string;
}

/** Globals that exist in Node and not in browsers. */
const NODE_GLOBALS = new Set([
  'Buffer',
  'process',
  'global',
  'require',
  'module',
  'exports',
  '__dirname',
  '__filename',
  'setImmediate',
  'clearImmediate',
]);
/** Names through which code reaches globals as properties (`globalThis.process`). */
const GLOBAL_OBJECTS = new Set(['globalThis', 'window', 'self', 'global']);
const SOURCE = /\.(ts|tsx|mts|js|mjs)$/;
const BUILTINS = new Set(builtinModules);

interface Pkg {
  name: string;
  /** The package's folder, relative to the root. */
  dir: string;
  rule: PackageRule | undefined;
}

interface Import {
  specifier: string;
  line: number;
  /** For a relative import: the imported file, relative to the package's src/ (undefined when not found there). */
  target?: string;
}

interface SourceFile {
  /** Relative to the package's src/. */
  path: string;
  syntax: ts.SourceFile;
  imports: Import[];
  typeReferences: { name: string; line: number }[];
}

export function checkLayers(root: string, rules: LayerRules): Violation[] {
  const pkgs = workspacePackages(root, rules);
  const byName = new Map(pkgs.map((p) => [p.name, p]));
  const out: Violation[] = [];
  for (const pkg of pkgs) {
    const src = join(root, pkg.dir, 'src');
    if (!existsSync(src)) continue;
    const rule = pkg.rule;
    if (rule === undefined) {
      out.push({
        kind: 'no-layer',
        file: pkg.dir,
        line: 0,
        message: `${pkg.name} has no layer: give it one in tools/layers/src/rules.ts and DEVELOPERS.md`,
      });
      continue;
    }
    const files = readSources(src);
    const at = (f: SourceFile, line = 0) => ({ file: posix.join(pkg.dir, 'src', f.path), line });
    for (const f of files.values()) {
      for (const v of fileViolations(pkg, rule, f, byName, rules)) out.push({ ...v, ...at(f, v.line) });
    }
    for (const v of cycleViolations(pkg, rule, files)) {
      const f = v.file === undefined ? undefined : files.get(v.file);
      out.push({ ...v, ...(f ? at(f) : { file: posix.join(pkg.dir, 'src'), line: 0 }) });
    }
  }
  return out;
}

type Found = Omit<Violation, 'file'> & { file?: string };

/** What one file breaks: its folder layer, forbidden imports, package layers, and browser rules. */
function* fileViolations(
  pkg: Pkg,
  rule: PackageRule,
  f: SourceFile,
  byName: Map<string, Pkg>,
  rules: LayerRules,
): Generator<Found> {
  const own = folderLayer(rule, f.path);
  if (own < 0) {
    yield {
      kind: 'folder-layer',
      line: 0,
      message: `${f.path} is in none of ${pkg.name}'s folder layers (tools/layers/src/rules.ts)`,
    };
  }
  for (const imp of f.imports) {
    const line = imp.line;
    if (imp.target !== undefined) {
      const theirs = folderLayer(rule, imp.target);
      if (own >= 0 && theirs > own) {
        yield {
          kind: 'folder-layer',
          line,
          message: `${f.path} imports ${imp.target}, a higher layer of ${pkg.name} (${layerNames(rule, own, theirs)})`,
        };
      }
    }
    for (const why of forbiddenFor(rule, f.path, imp)) {
      yield { kind: 'forbidden', line, message: `imports ${imp.specifier}: ${why}` };
    }
    if (imp.target !== undefined || isRelative(imp.specifier)) continue;
    const name = packageName(imp.specifier);
    const other = byName.get(name);
    if (other !== undefined && other !== pkg && other.rule !== undefined && other.rule.layer >= rule.layer) {
      yield {
        kind: 'layer',
        line,
        message: `${pkg.name} (layer ${rule.layer}) imports ${name} (layer ${other.rule.layer}): a package imports only lower layers`,
      };
    }
    const why = rule.browser ? nodeOnly(imp.specifier, name, other, rules) : undefined;
    if (why !== undefined) {
      yield {
        kind: 'browser',
        line,
        message: `imports ${imp.specifier}, ${why}: ${pkg.name} runs in browsers`,
      };
    }
  }
  if (!rule.browser) return;
  for (const t of f.typeReferences) {
    if (t.name === 'node') {
      yield {
        kind: 'browser',
        line: t.line,
        message: `references Node's types: ${pkg.name} runs in browsers`,
      };
    }
  }
  for (const g of nodeGlobals(f)) {
    yield {
      kind: 'browser',
      line: g.line,
      message: `uses the Node global ${g.name}: ${pkg.name} runs in browsers`,
    };
  }
}

/**
 * The package's import cycles (file: the first file of the loop), less the ones its rule lists; and each listed
 * one that is gone (no file: it is about the package).
 */
function* cycleViolations(pkg: Pkg, rule: PackageRule, files: Map<string, SourceFile>): Generator<Found> {
  const listed = new Set(rule.cycles ?? []);
  for (const { files: members, path } of cycles(files)) {
    const allowed = rule.cycles?.find((c) => members.every((m) => c.files.includes(m)));
    if (allowed !== undefined) {
      listed.delete(allowed);
      continue;
    }
    yield {
      kind: 'cycle',
      file: path[0],
      line: 0,
      message: `import cycle in ${pkg.name}: ${[...path, path[0]].join(' -> ')}`,
    };
  }
  for (const stale of listed) {
    yield {
      kind: 'cycle',
      line: 0,
      message: `${pkg.name} no longer has the cycle among ${stale.files.join(', ')}: delete it from tools/layers/src/rules.ts`,
    };
  }
}

/** The index of the folder layer `path` (relative to src/) is in: 0 without folder layers, -1 in none. */
function folderLayer(rule: PackageRule, path: string): number {
  if (rule.folders === undefined) return 0;
  return rule.folders.findIndex((globs) => globs.some((g) => globMatch(g, path)));
}

/** One line per violation, `file:line  message`, for test failures and people. */
export function formatViolations(violations: Violation[]): string {
  return violations.map((v) => `${v.file}${v.line > 0 ? `:${v.line}` : ''}  ${v.message}`).join('\n');
}

/** The folders of the packages that pnpm-workspace.yaml lists (`dir/*` or `dir`), relative to the root. */
export function workspaceDirs(root: string): string[] {
  const yaml = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8');
  const block = /^packages:\s*\n((?:[ \t]+-.*\n?)+)/m.exec(yaml)?.[1] ?? '';
  const globs = [...block.matchAll(/-\s*['"]?([^'"\s#]+)/g)].map((m) => m[1] as string);
  const dirs: string[] = [];
  for (const g of globs) {
    if (g.endsWith('/*')) {
      const parent = g.slice(0, -2);
      if (!existsSync(join(root, parent))) continue;
      for (const d of readdirSync(join(root, parent)).sort()) dirs.push(`${parent}/${d}`);
    } else dirs.push(g);
  }
  return dirs;
}

/** The packages that pnpm-workspace.yaml lists, by their package.json name. */
function workspacePackages(root: string, rules: LayerRules): Pkg[] {
  const pkgs: Pkg[] = [];
  for (const dir of workspaceDirs(root)) {
    const manifest = join(root, dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name ?? dir;
    pkgs.push({ name, dir, rule: rules.packages[name] });
  }
  return pkgs;
}

function readSources(src: string): Map<string, SourceFile> {
  const files = new Map<string, SourceFile>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir).sort()) {
      const full = join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (SOURCE.test(entry)) {
        const path = relative(src, full).split('\\').join('/');
        const text = readFileSync(full, 'utf8');
        const info = ts.preProcessFile(text, true, true);
        const syntax = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
        const lineOf = (pos: number) => syntax.getLineAndCharacterOfPosition(pos).line + 1;
        files.set(path, {
          path,
          syntax,
          imports: info.importedFiles.map((r) => ({
            specifier: r.fileName,
            line: lineOf(r.pos),
            target: isRelative(r.fileName) ? resolveRelative(src, path, r.fileName) : undefined,
          })),
          typeReferences: info.typeReferenceDirectives.map((r) => ({
            name: r.fileName,
            line: lineOf(r.pos),
          })),
        });
      }
    }
  };
  walk(src);
  return files;
}

function isRelative(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../');
}

/** `./x.js` from `a/b.ts` → `a/x.ts` when that file exists under src/ (ESM imports name the emitted `.js`). */
function resolveRelative(src: string, from: string, specifier: string): string | undefined {
  const base = posix.normalize(posix.join(posix.dirname(from), specifier));
  if (base.startsWith('../')) return undefined;
  const stem = base.replace(/\.(js|mjs|jsx)$/, '');
  for (const candidate of [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${stem}/index.ts`]) {
    const full = join(src, candidate);
    if (existsSync(full) && statSync(full).isFile()) return candidate;
  }
  return undefined;
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`; `node:fs` stays. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

function nodeOnly(
  specifier: string,
  name: string,
  workspace: Pkg | undefined,
  rules: LayerRules,
): string | undefined {
  if (specifier.startsWith('node:') || BUILTINS.has(name)) return 'a Node built-in';
  if (workspace !== undefined) return workspace.rule?.browser ? undefined : 'a Node-only package';
  return rules.browserSafe.includes(name) ? undefined : 'a package not listed as browser-safe';
}

function* forbiddenFor(rule: PackageRule | undefined, file: string, imp: Import): Generator<string> {
  for (const f of rule?.forbid ?? []) {
    if (!globMatch(f.files, file)) continue;
    const hit =
      imp.target !== undefined
        ? f.imports.some((g) => globMatch(g, imp.target as string))
        : f.imports.some((s) => s === imp.specifier || s === packageName(imp.specifier));
    if (hit) yield f.why;
  }
}

function layerNames(rule: PackageRule, own: number, theirs: number): string {
  const name = (i: number) => (rule.folders?.[i] ?? []).join(', ');
  return `${name(own)} sit below ${name(theirs)}`;
}

/** `*` matches within a path segment, `**` across segments. */
export function globMatch(glob: string, path: string): boolean {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`).test(path);
}

/** Node globals a file reads without declaring them (as a value, a type, or `globalThis.X`). */
function nodeGlobals(f: SourceFile): { name: string; line: number }[] {
  const sf = f.syntax;
  const declared = new Set<string>();
  const used: ts.Identifier[] = [];
  const visit = (node: ts.Node): void => {
    const decl = node as ts.NamedDeclaration;
    if (ts.isIdentifier(node)) {
      if (NODE_GLOBALS.has(node.text) && isReference(node)) used.push(node);
    } else if (
      decl.name !== undefined &&
      ts.isIdentifier(decl.name) &&
      (ts.isVariableDeclaration(node) ||
        ts.isParameter(node) ||
        ts.isBindingElement(node) ||
        ts.isFunctionDeclaration(node) ||
        ts.isClassDeclaration(node) ||
        ts.isInterfaceDeclaration(node) ||
        ts.isTypeAliasDeclaration(node) ||
        ts.isEnumDeclaration(node) ||
        ts.isImportSpecifier(node) ||
        ts.isNamespaceImport(node) ||
        ts.isImportClause(node) ||
        ts.isTypeParameterDeclaration(node))
    ) {
      declared.add(decl.name.text);
    } else if (
      ts.isPropertyAccessExpression(node) &&
      ts.isIdentifier(node.expression) &&
      GLOBAL_OBJECTS.has(node.expression.text) &&
      ts.isIdentifier(node.name) &&
      NODE_GLOBALS.has(node.name.text)
    ) {
      used.push(node.name);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return used
    .filter((id) => !declared.has(id.text) || isGlobalProperty(id))
    .map((id) => ({ name: id.text, line: sf.getLineAndCharacterOfPosition(id.getStart(sf)).line + 1 }));
}

function isGlobalProperty(id: ts.Identifier): boolean {
  const p = id.parent;
  return ts.isPropertyAccessExpression(p) && p.name === id;
}

/** Whether an identifier names something in scope, rather than a property, a label or a declaration. */
function isReference(id: ts.Identifier): boolean {
  const p = id.parent;
  if (ts.isPropertyAccessExpression(p)) return p.expression === id;
  if (ts.isShorthandPropertyAssignment(p)) return true; // `{ process }` reads the variable
  if (ts.isQualifiedName(p)) return p.left === id;
  if (
    ts.isPropertyAssignment(p) ||
    ts.isPropertyDeclaration(p) ||
    ts.isPropertySignature(p) ||
    ts.isMethodDeclaration(p) ||
    ts.isMethodSignature(p) ||
    ts.isGetAccessorDeclaration(p) ||
    ts.isSetAccessorDeclaration(p) ||
    ts.isEnumMember(p)
  ) {
    return p.name !== id;
  }
  if (ts.isBindingElement(p)) return p.propertyName !== id && p.name !== id;
  if (ts.isImportSpecifier(p) || ts.isExportSpecifier(p)) return false;
  if (ts.isLabeledStatement(p) || ts.isBreakOrContinueStatement(p)) return false;
  const decl = p as ts.NamedDeclaration;
  return decl.name !== id;
}

/** The import cycles among a package's files: each strongly connected component, and one loop through it. */
function cycles(files: Map<string, SourceFile>): { files: string[]; path: string[] }[] {
  const edges = new Map<string, string[]>();
  for (const f of files.values()) {
    edges.set(f.path, [...new Set(f.imports.flatMap((i) => (i.target === undefined ? [] : [i.target])))]);
  }
  // Tarjan's strongly connected components, iterative so a deep chain cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: { files: string[]; path: string[] }[] = [];
  let next = 0;
  for (const start of edges.keys()) {
    if (index.has(start)) continue;
    const work: [string, number][] = [[start, 0]];
    while (work.length > 0) {
      const top = work[work.length - 1] as [string, number];
      const [v, i] = top;
      if (i === 0) {
        index.set(v, next);
        low.set(v, next);
        next++;
        stack.push(v);
        onStack.add(v);
      }
      const out = edges.get(v) ?? [];
      if (i < out.length) {
        top[1] = i + 1;
        const w = out[i] as string;
        if (!index.has(w)) work.push([w, 0]);
        else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined)
        low.set(parent[0], Math.min(low.get(parent[0]) as number, low.get(v) as number));
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop() as string;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        const selfLoop = (edges.get(v) ?? []).includes(v);
        if (component.length > 1 || selfLoop) {
          found.push({ files: component.sort(), path: pathThrough(component, edges) });
        }
      }
    }
  }
  return found;
}

/** One cycle through a strongly connected component, for the message (the shortest loop back to its first file). */
function pathThrough(component: string[], edges: Map<string, string[]>): string[] {
  const inside = new Set(component);
  const start = [...component].sort()[0] as string;
  const from = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift() as string;
    for (const w of edges.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(from.get(path[0] as string) as string);
        return path;
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}
