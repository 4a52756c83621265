// 0.11 tag filters (zbus-protocol.md §7.4): patterns separated by `;`, any one may match. Pattern and tag are
// split on `.`; `*` matches exactly one segment, `#` matches the rest (including nothing), other segments must be
// equal, and without `#` the segment counts must be equal. A message without a tag matches only an empty filter.

export type TagMatcher = (tag: string | undefined) => boolean;

const matchAll: TagMatcher = () => true;

function matchPattern(pattern: readonly string[], tag: readonly string[]): boolean {
  let i = 0;
  for (; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '#') return true;
    if (i >= tag.length) return false;
    if (p !== '*' && p !== tag[i]) return false;
  }
  return i === tag.length;
}

/** Compile a filter once; the matcher remembers up to 256 recent tags so a hot tag costs one Map lookup. */
export function compileFilter(filter: string | undefined): TagMatcher {
  if (filter === undefined || filter === '') return matchAll;
  const patterns = filter
    .split(';')
    .filter((p) => p !== '')
    .map((p) => p.split('.'));
  if (patterns.length === 0) return matchAll;
  const cache = new Map<string, boolean>();
  return (tag) => {
    if (tag === undefined || tag === '') return false;
    const hit = cache.get(tag);
    if (hit !== undefined) return hit;
    const parts = tag.split('.');
    let ok = false;
    for (const p of patterns) {
      if (matchPattern(p, parts)) {
        ok = true;
        break;
      }
    }
    if (cache.size >= 256) cache.clear();
    cache.set(tag, ok);
    return ok;
  };
}
