#!/usr/bin/env node
// A Node single executable application (SEA) of the broker: the CommonJS bundle (scripts/bundle.mjs --cjs)
// injected into a copy of the running `node` binary with postject. Node 20 runs only CommonJS in a SEA,
// which is why the CommonJS bundle exists.
//
//   node scripts/sea.mjs [--out dist-bundle/zbus]      -> an executable: ./dist-bundle/zbus serve
//
// Exits non-zero with the reason when a SEA cannot be built here: a Node without SEA support (< 20, or a
// build without the SEA fuse), a platform that needs code signing (macOS and Windows are not handled), or
// postject missing.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle, OUT_DIR } from './bundle.mjs';

/** The fuse postject flips in the Node binary (documented in Node's "Single executable applications"). */
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Thrown when this machine cannot build a SEA; the message says why. */
export class SeaUnsupported extends Error {}

/** Why a SEA cannot be built with this Node, or undefined when it can. */
export function seaUnsupportedReason() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) {
    return `Node ${process.versions.node} has no single executable applications (Node 20 or later)`;
  }
  if (process.platform !== 'linux') {
    return `building on ${process.platform} needs code signing steps this script does not do (Linux only)`;
  }
  if (!readFileSync(process.execPath).includes(FUSE)) {
    return `${process.execPath} has no SEA fuse (${FUSE}): this Node build cannot run an injected application`;
  }
  return undefined;
}

async function loadPostject() {
  try {
    return await import('postject');
  } catch (err) {
    throw new SeaUnsupported(
      `postject is not installed (npm package 'postject', a devDependency of @zbus/broker): ${err.message}`,
    );
  }
}

/**
 * Builds the executable `out` (default dist-bundle/zbus) from a CommonJS bundle written to `outDir`;
 * `monitorDir` as for bundle(). Resolves with its path and size.
 */
export async function buildSea({ outDir = OUT_DIR, out = join(outDir, 'zbus'), monitorDir } = {}) {
  const reason = seaUnsupportedReason();
  if (reason) throw new SeaUnsupported(reason);
  const { inject } = await loadPostject();
  const { outfile: main } = await bundle({ format: 'cjs', outDir, ...(monitorDir ? { monitorDir } : {}) });
  const blob = join(outDir, 'zbus.sea-blob');
  const config = join(outDir, 'sea-config.json');
  writeFileSync(
    config,
    JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }, null, 2),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' });
  rmSync(out, { force: true });
  copyFileSync(process.execPath, out);
  chmodSync(out, 0o755);
  await inject(out, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: FUSE, overwrite: true });
  rmSync(blob, { force: true });
  rmSync(config, { force: true });
  return { out, bytes: statSync(out).size };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const out = i > 0 ? resolve(process.argv[i + 1] ?? '') : undefined;
  try {
    const { out: file, bytes } = await buildSea(out === undefined ? {} : { out });
    console.log(`sea: ${relative(process.cwd(), file)} ${(bytes / 1024 / 1024).toFixed(1)} MiB`);
  } catch (err) {
    if (err instanceof SeaUnsupported) {
      console.error(`sea: cannot build a single executable here: ${err.message}`);
      process.exit(3);
    }
    throw err;
  }
}
