// What group commit achieves under fsync=always, for /metrics: how many records each fdatasync covers, how long
// the fdatasync takes, and how long a batch waits from its first append to the fdatasync that releases it.

/** A histogram with fixed upper bounds (Prometheus style: counts per bucket, the sum and the count). */
export class Histogram {
  /** Observations `<= bounds[i]` and `> bounds[i - 1]`; the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

const RECORD_BOUNDS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
const SECOND_BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** Shared by every topic of one store. */
export class CommitStats {
  /** Records made durable by each fdatasync of a log (fsync=always). */
  readonly recordsPerSync = new Histogram(RECORD_BOUNDS);
  /** Seconds each of those fdatasyncs took. */
  readonly syncSeconds = new Histogram(SECOND_BOUNDS);
  /** Seconds from the first append of a commit until the fdatasync covering it returned (its acks go out). */
  readonly waitSeconds = new Histogram(SECOND_BOUNDS);
}
