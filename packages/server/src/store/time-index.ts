// The sparse time index of one segment: (timestamp, offset relative to base) at the same points as the offset
// index. Timestamps are kept non-decreasing per topic (an append never gets a time before the previous one), so
// a binary search finds the last entry before a time and a short forward scan finds the first record at or after
// it. On disk `<base>.tix` holds f64 time + u32 rel pairs.

export const TIME_ENTRY_BYTES = 12;

export class TimeIndex {
  time = new Float64Array(64);
  rel = new Uint32Array(64);
  length = 0;
  persisted = 0;

  add(time: number, rel: number): void {
    if (this.length === this.time.length) {
      const t = new Float64Array(this.length * 2);
      t.set(this.time);
      this.time = t;
      const r = new Uint32Array(this.length * 2);
      r.set(this.rel);
      this.rel = r;
    }
    this.time[this.length] = time;
    this.rel[this.length] = rel;
    this.length++;
  }

  /** Index of the last entry with time < `time`, or -1. O(log n). */
  lastBefore(time: number): number {
    let lo = 0;
    let hi = this.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.time[mid]! < time) {
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

  unpersisted(): Buffer | undefined {
    const n = this.length - this.persisted;
    if (n <= 0) return undefined;
    const buf = Buffer.allocUnsafe(n * TIME_ENTRY_BYTES);
    for (let i = 0; i < n; i++) {
      buf.writeDoubleLE(this.time[this.persisted + i]!, i * 12);
      buf.writeUInt32LE(this.rel[this.persisted + i]!, i * 12 + 8);
    }
    return buf;
  }

  /** Load up to `maxEntries` entries, keeping a prefix with non-decreasing times and increasing offsets. */
  load(buf: Buffer, maxEntries: number): void {
    this.length = 0;
    const n = Math.min(Math.floor(buf.length / TIME_ENTRY_BYTES), maxEntries);
    let lastTime = Number.NEGATIVE_INFINITY;
    let lastRel = -1;
    for (let i = 0; i < n; i++) {
      const t = buf.readDoubleLE(i * 12);
      const rel = buf.readUInt32LE(i * 12 + 8);
      if (!(t >= lastTime) || rel <= lastRel) break;
      this.add(t, rel);
      lastTime = t;
      lastRel = rel;
    }
    this.persisted = this.length;
  }
}
