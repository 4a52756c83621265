// When to replace a Map that churns (a set per request, a delete per answer) by a copy of itself.
//
// Once such a Map's hash table is in the old generation, V8 allocates every table it later grows or shrinks into
// there too, and each dead table keeps the entries it held reachable for scavenges until a mark-compact: every
// entry is promoted. A new Map starts young; under load its tables are replaced long before they would survive two
// scavenges. (Where the keys are offsets, `OffsetMap` avoids the Map instead.)

/** Removals between two renewals, at least: a copy then costs at most one set per removal. */
const RENEW_EVERY = 1024;

/** Counts removals from a family of churning Maps (one count bounds them all) and says when one is due for a copy. */
export class Renewal {
  #removed = 0;

  /** An entry was removed and its Map holds `size` more: true when the Map is due (empty, or enough removals). */
  due(size: number): boolean {
    if (size !== 0 && ++this.#removed < Math.max(RENEW_EVERY, size)) return false;
    this.#removed = 0;
    return true;
  }
}
