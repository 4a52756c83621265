// A map from message offsets to values for state that turns over once per message (a windowed pull's unsettled
// deliveries), kept in arrays that are reused instead of a `Map`.
//
// Why not a Map: a V8 Map that is added to and deleted from all the time rehashes every few dozen entries, and the
// table it leaves behind keeps pointing at the new one and at its old entries. The Map lives in old space, so the
// next scavenge treats each new table (and what the old ones still reference) as reachable and promotes it, to
// die in old space at the next mark-compact. At 10k msg/s one unsettled Map per consumer made the broker promote
// about 100 bytes per message.

/** Open addressing with linear probing, keyed by the offset's low bits (consecutive offsets never collide). */
export class OffsetMap<V extends {}> {
  #keys = new Float64Array(16);
  #values: Array<V | undefined> = new Array<V | undefined>(16).fill(undefined);
  #mask = 15;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #slot(offset: number): number {
    const mask = this.#mask;
    const keys = this.#keys;
    const values = this.#values;
    // `>>> 0` is the offset modulo 2^32, for offsets past 2^32 too.
    let i = (offset >>> 0) & mask;
    while (values[i] !== undefined && keys[i] !== offset) i = (i + 1) & mask;
    return i;
  }

  get(offset: number): V | undefined {
    return this.#values[this.#slot(offset)];
  }

  has(offset: number): boolean {
    return this.#values[this.#slot(offset)] !== undefined;
  }

  set(offset: number, value: V): void {
    let i = this.#slot(offset);
    if (this.#values[i] === undefined) {
      // At most half full, so probes stay short; the arrays only grow (a pull's window bounds them).
      if (2 * (this.#size + 1) > this.#values.length) {
        this.#grow();
        i = this.#slot(offset);
      }
      this.#size++;
      this.#keys[i] = offset;
    }
    this.#values[i] = value;
  }

  delete(offset: number): boolean {
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = this.#slot(offset);
    if (values[i] === undefined) return false;
    this.#size--;
    // Backward-shift deletion: move later entries of the probe run into the hole, so no tombstones build up.
    for (let j = (i + 1) & mask; values[j] !== undefined; j = (j + 1) & mask) {
      const home = (keys[j]! >>> 0) & mask;
      // The entry at j may fill the hole at i when its home is not cyclically within (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        keys[i] = keys[j]!;
        values[i] = values[j];
        i = j;
      }
    }
    values[i] = undefined;
    return true;
  }

  /** Calls `f` for each entry, in no particular order; `f` must not change the map. */
  forEach(f: (value: V, offset: number) => void): void {
    const values = this.#values;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== undefined) f(v, this.#keys[i]!);
    }
  }

  #grow(): void {
    const keys = this.#keys;
    const values = this.#values;
    const n = values.length * 2;
    this.#keys = new Float64Array(n);
    this.#values = new Array<V | undefined>(n).fill(undefined);
    this.#mask = n - 1;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === undefined) continue;
      const j = this.#slot(keys[i]!);
      this.#keys[j] = keys[i]!;
      this.#values[j] = v;
    }
  }
}
