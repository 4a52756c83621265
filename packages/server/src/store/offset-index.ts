// The sparse offset index of one segment: an entry (offset relative to the segment's base, byte position) for the
// first record and then every INDEX_INTERVAL_BYTES of log. Two typed-array columns, so a 64 MiB segment of small
// records costs about 128 KiB here, not an object per message. On disk `<base>.oix` holds the same pairs as
// little-endian u32s; entries for the active segment are appended unsynced after each batch, so recovery only has
// to scan the log from the last entry that checks out (see segment.ts).

/** Bytes of log between two index entries. */
export const INDEX_INTERVAL_BYTES = 4096;
export const OFFSET_ENTRY_BYTES = 8;

export class OffsetIndex {
  rel = new Uint32Array(64);
  pos = new Uint32Array(64);
  length = 0;
  /** Entries already written to the index file. */
  persisted = 0;

  add(rel: number, pos: number): void {
    if (this.length === this.rel.length) {
      const r = new Uint32Array(this.length * 2);
      r.set(this.rel);
      this.rel = r;
      const p = new Uint32Array(this.length * 2);
      p.set(this.pos);
      this.pos = p;
    }
    this.rel[this.length] = rel;
    this.pos[this.length] = pos;
    this.length++;
  }

  /** Index of the last entry with rel <= `rel`, or -1. O(log n). */
  floor(rel: number): number {
    let lo = 0;
    let hi = this.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rel[mid]! <= rel) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  truncate(n: number): void {
    this.length = Math.min(this.length, n);
    this.persisted = Math.min(this.persisted, this.length);
  }

  /** Entries not yet in the file, encoded. */
  unpersisted(): Buffer | undefined {
    const n = this.length - this.persisted;
    if (n <= 0) return undefined;
    const buf = Buffer.allocUnsafe(n * OFFSET_ENTRY_BYTES);
    for (let i = 0; i < n; i++) {
      buf.writeUInt32LE(this.rel[this.persisted + i]!, i * 8);
      buf.writeUInt32LE(this.pos[this.persisted + i]!, i * 8 + 4);
    }
    return buf;
  }

  /** Load entries from an index file's bytes, keeping only a strictly increasing prefix below `maxPos`. */
  load(buf: Buffer, maxPos: number): void {
    this.length = 0;
    const n = Math.floor(buf.length / OFFSET_ENTRY_BYTES);
    let lastRel = -1;
    let lastPos = -1;
    for (let i = 0; i < n; i++) {
      const rel = buf.readUInt32LE(i * 8);
      const pos = buf.readUInt32LE(i * 8 + 4);
      if (rel <= lastRel || pos <= lastPos || pos >= maxPos) break;
      this.add(rel, pos);
      lastRel = rel;
      lastPos = pos;
    }
    this.persisted = this.length;
  }
}
