// Produce dedupe by message id within a time window. A Map keeps insertion order, which is time order, so
// expired ids are pruned from the front a few at a time on each lookup. At open the window is rebuilt from the
// log's tail (seek by time) and from the messages still held for later delivery.
import { Cursor, type LogReader } from './log-reader.js';
import { ownString } from './names.js';
import { recordId, recordTimestamp } from './record.js';
import type { AppendResult, Durability } from './types.js';

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
    this.map.set(ownString(id), e);
  }

  clear(): void {
    this.map.clear();
  }

  /** Remember an append being written (offset already assigned); forget it if the write fails. */
  track(id: string, offset: number, now: number, p: Promise<AppendResult>): void {
    const entry: DedupeEntry = {
      offset,
      timestamp: now,
      expires: now + this.windowMs,
      deliverAt: undefined,
      pending: p,
    };
    this.set(id, entry);
    p.then(
      (r) => {
        entry.pending = undefined;
        entry.offset = r.offset;
        entry.timestamp = r.timestamp;
      },
      () => this.map.get(id) === entry && this.map.delete(id),
    );
  }

  /** Remember a message held until `deliverAt` (its offset is not known yet). */
  hold(id: string, now: number, deliverAt: number): void {
    this.set(id, { offset: -1, timestamp: now, expires: now + this.windowMs, deliverAt, pending: undefined });
  }
}

/** The reply to an append whose id is `hit`'s: the first append's result, marked duplicate. */
export async function duplicateResult(hit: DedupeEntry, durability: Durability): Promise<AppendResult> {
  if (hit.pending !== undefined) return { ...(await hit.pending), duplicate: true };
  const r: AppendResult = { offset: hit.offset, timestamp: hit.timestamp, durability, duplicate: true };
  if (hit.deliverAt !== undefined) r.deliverAt = hit.deliverAt;
  return r;
}

/** The dedupe window as it was: ids stored within `windowMs` before `now`, and the ids held for later. */
export async function rebuildDedupe(
  windowMs: number,
  reader: LogReader,
  now: number,
  held: Iterable<{ id: string; deliverAt: number }>,
): Promise<Dedupe> {
  const d = new Dedupe(windowMs);
  const c = new Cursor(256 * 1024);
  await reader.position(c, await reader.seekTime(now - windowMs));
  while (await reader.peek(c)) {
    const ts = recordTimestamp(c.win.buf, c.p);
    d.set(recordId(c.win.buf, c.p), {
      offset: c.recOffset,
      timestamp: ts,
      expires: ts + windowMs,
      deliverAt: undefined,
      pending: undefined,
    });
    reader.advance(c);
  }
  for (const m of held) {
    d.set(m.id, {
      offset: -1,
      timestamp: m.deliverAt,
      expires: now + windowMs,
      deliverAt: m.deliverAt,
      pending: undefined,
    });
  }
  return d;
}
