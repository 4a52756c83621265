// Bundles a source entry of @zbus/server with esbuild (the tool tsup uses) into one .mjs file, so a child process
// or a benchmark runs the working tree's src without a build. Used by bench/*.mjs and test/store/crash.test.ts.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const esbuild = path.resolve(pkg, '../../node_modules/.bin/esbuild');

/**
 * Writes `outfile` (ESM, platform node) from `entry`, a path relative to packages/server (or absolute).
 * `external` names packages left as imports (they must resolve from where `outfile` lives); `alias` maps a
 * package name to a file (a workspace package's src from elsewhere).
 * @param {string} entry
 * @param {string} outfile
 * @param {string[]} [external]
 * @param {Record<string, string>} [alias]
 * @returns {string} outfile
 */
export function bundleSrc(entry, outfile, external = [], alias = {}) {
  execFileSync(esbuild, [
    path.resolve(pkg, entry),
    ...Object.entries(alias).map(([name, file]) => `--alias:${name}=${file}`),
    '--bundle',
    '--platform=node',
    '--format=esm',
    '--target=node20',
    ...external.map((name) => `--external:${name}`),
    '--log-level=error',
    `--outfile=${outfile}`,
  ]);
  return outfile;
}
