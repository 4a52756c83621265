#!/usr/bin/env node
// `prepack` of every published package: lays out what the registry gets in `<package>/.publish/`, which
// `publishConfig.directory` points `pnpm pack` and `pnpm publish` (hence `changeset publish`) at.
//
// The staged package.json is the package's own minus what only this repository uses: `scripts` (a user's
// `npm install` must run nothing of ours) and `devDependencies` (private workspace packages such as
// @zbus/testkit are not on the registry). pnpm then turns `workspace:^` into `^<version>` as usual. Next to it:
// the `files` the package lists (THIRD-PARTY-NOTICES.md too, where its bundles inline other people's code), its
// README and the repository's LICENSE. tools/package-check tests the tarballs this gives.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder `publishConfig.directory` names; git-ignored. */
const STAGE_DIR = '.publish';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The manifest the registry gets, from the package's own. */
function publishedManifest(manifest) {
  const { scripts: _scripts, devDependencies: _dev, publishConfig, ...rest } = manifest;
  const { directory: _dir, linkDirectory: _link, ...publish } = publishConfig ?? {};
  const out = { ...rest };
  if (Object.keys(publish).length > 0) out.publishConfig = publish;
  return out;
}

function stage(pkgDir) {
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  if (manifest.publishConfig?.directory !== STAGE_DIR) {
    throw new Error(`${manifest.name}: publishConfig.directory must be "${STAGE_DIR}"`);
  }
  const out = join(pkgDir, STAGE_DIR);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  for (const entry of manifest.files ?? []) {
    const from = join(pkgDir, entry);
    if (!existsSync(from))
      throw new Error(`${manifest.name}: "${entry}" (in files) does not exist; build first`);
    cpSync(from, join(out, entry), { recursive: true });
  }
  for (const [from, to] of [
    [join(pkgDir, 'README.md'), 'README.md'],
    [join(root, 'LICENSE'), 'LICENSE'],
  ]) {
    if (!existsSync(from)) throw new Error(`${manifest.name}: ${from} is missing`);
    cpSync(from, join(out, to));
  }
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(publishedManifest(manifest), null, 2)}\n`);
}

stage(process.cwd());
