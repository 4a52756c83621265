// A one-time rewrite of the `creator` of stored topics and groups (issue 14 item 2). Versions before it stored the
// declaring token there, a secret that `query`, tracker reports and the monitor then showed. It runs before any
// topic opens, while no file is in use, with a rule the broker gives (keep an address, turn a known token into
// its name, drop anything else); a marker file in the data directory records that it ran, so it runs once: what
// is written later is a name or an address by construction.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './fs-util.js';
import type { StoreLogger } from './types.js';

const MARKER = '.creators-v2';

interface WithCreator {
  creator?: unknown;
  config?: { creator?: unknown };
}

/** Rewrites `file` when its creators change under `rule`; true when it did. */
async function rewrite(file: string, rule: (creator: string) => string): Promise<boolean> {
  let meta: WithCreator;
  try {
    meta = JSON.parse(await fs.promises.readFile(file, 'utf8')) as WithCreator;
  } catch {
    return false; // not ours to fix: the topic's own open reports it
  }
  let changed = false;
  for (const holder of [meta, meta.config]) {
    if (holder === undefined || typeof holder.creator !== 'string') continue;
    const next = rule(holder.creator);
    if (next !== holder.creator) {
      holder.creator = next;
      changed = true;
    }
  }
  if (changed) await writeFileAtomic(file, JSON.stringify(meta), true);
  return changed;
}

/** Applies `rule` to every topic's and group's creator in `dataDir`, once. */
export async function migrateCreators(
  dataDir: string,
  rule: (creator: string) => string,
  log: StoreLogger | undefined,
): Promise<void> {
  const marker = path.join(dataDir, MARKER);
  if (fs.existsSync(marker)) return;
  let rewritten = 0;
  for (const e of await fs.promises.readdir(dataDir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const dir = path.join(dataDir, e.name);
    if (await rewrite(path.join(dir, 'topic.json'), rule)) rewritten++;
    const groups = await fs.promises.readdir(path.join(dir, 'groups')).catch(() => [] as string[]);
    for (const g of groups) {
      if (g.endsWith('.json') && (await rewrite(path.join(dir, 'groups', g), rule))) rewritten++;
    }
  }
  if (rewritten > 0) log?.warn({ files: rewritten }, 'rewrote creators that were not a name or an address');
  await writeFileAtomic(marker, '', true);
}
