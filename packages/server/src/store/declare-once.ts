// Get-or-create for topics (store.ts) and disk groups (topic.ts), where creating means opening files.

/**
 * Returns the entry `key` of `live`, or creates it with `create`. A declare that arrives while the first is still
 * creating waits for it instead of opening the same files a second time; an entry that exists, or that another
 * declare just created, is passed to `update`. `create` adds the entry to `live` itself, in the same step as its
 * last check (topic.ts checks for a close that came while the group was opening): an `await` between the two
 * would let a close run in between and miss the new entry.
 */
export async function declareOnce<T>(
  live: ReadonlyMap<string, T>,
  creating: Map<string, Promise<T>>,
  key: string,
  create: () => Promise<T>,
  update: (existing: T) => void | Promise<void>,
): Promise<T> {
  const existing = live.get(key);
  if (existing !== undefined) {
    await update(existing);
    return existing;
  }
  const inflight = creating.get(key);
  if (inflight !== undefined) {
    const t = await inflight;
    await update(t);
    return t;
  }
  // No await before `creating.set`: a second declare in the same tick must find this one.
  const p = create();
  creating.set(key, p);
  try {
    return await p;
  } finally {
    creating.delete(key);
  }
}
