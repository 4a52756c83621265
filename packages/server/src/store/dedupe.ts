// Produce dedupe by message id within a time window. A Map keeps insertion order, which is time order, so
// expired ids are pruned from the front a few at a time on each lookup.
import type { AppendResult } from './types.js';

export interface DedupeEntry {
  offset: number;
  timestamp: number;
  expires: number;
  deliverAt: number | undefined;
  /** Set while the first append with this id is still being written. */
  pending: Promise<AppendResult> | undefined;
}

export class Dedupe {
  readonly map = new Map<string, DedupeEntry>();

  constructor(public windowMs: number) {}

  get(id: string, now: number): DedupeEntry | undefined {
    let n = 0;
    for (const [k, e] of this.map) {
      if (e.expires > now || ++n > 64) break;
      this.map.delete(k);
    }
    const e = this.map.get(id);
    return e !== undefined && e.expires > now ? e : undefined;
  }

  set(id: string, e: DedupeEntry): void {
    this.map.delete(id);
    this.map.set(id, e);
  }

  clear(): void {
    this.map.clear();
  }
}
