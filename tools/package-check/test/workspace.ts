// The workspace's publishable packages, found the way pnpm finds them (pnpm-workspace.yaml), so a new package
// is checked without editing this suite.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const PNPM = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).packageManager as string;

export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  files?: string[];
  bin?: Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  publishConfig?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface WorkspacePackage {
  /** Folder relative to the repository root, e.g. `packages/protocol`. */
  dir: string;
  manifest: Manifest;
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** Every package the workspace globs name (`dir/*` or a folder), private ones included. */
export function workspacePackages(): WorkspacePackage[] {
  const yaml = readFileSync(join(ROOT, 'pnpm-workspace.yaml'), 'utf8');
  const globs = [
    ...(/^packages:\n((?:\s+-\s.*\n)+)/m.exec(yaml)?.[1] ?? '').matchAll(/-\s+'?([^'\n]+)'?/g),
  ].map((m) => (m[1] as string).trim());
  const dirs = globs.flatMap((g) =>
    g.endsWith('/*')
      ? readdirSync(join(ROOT, g.slice(0, -2)), { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => `${g.slice(0, -2)}/${e.name}`)
      : [g],
  );
  return dirs
    .filter((d) => existsSync(join(ROOT, d, 'package.json')))
    .map((dir) => ({ dir, manifest: readJson<Manifest>(join(ROOT, dir, 'package.json')) }));
}

export function publishablePackages(): WorkspacePackage[] {
  return workspacePackages().filter((p) => p.manifest.private !== true);
}

export interface PackedPackage extends WorkspacePackage {
  /** Absolute path of the tarball `pnpm pack` wrote: what `pnpm publish` (and `changeset publish`) uploads. */
  tarball: string;
}

/** Packs every publishable package with one recursive `pnpm pack` into a fresh temp folder. */
export function packAll(): { dir: string; packs: PackedPackage[] } {
  const dir = mkdtempSync(join(tmpdir(), 'zbus-packs-'));
  const pkgs = publishablePackages();
  const out = execFileSync(
    'npx',
    [
      '-y',
      PNPM,
      '-r',
      ...pkgs.flatMap((p) => ['--filter', p.manifest.name]),
      'pack',
      '--pack-destination',
      dir,
      '--json',
      '--reporter=silent',
    ],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const results = JSON.parse(out.slice(out.indexOf('['))) as Array<{ name: string; filename: string }>;
  const packs = pkgs.map((p) => {
    const r = results.find((x) => x.name === p.manifest.name);
    if (!r) throw new Error(`pnpm pack did not pack ${p.manifest.name}`);
    return { ...p, tarball: resolve(dir, r.filename) };
  });
  return { dir, packs };
}
