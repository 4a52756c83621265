// A pipelined producer and the crash checker. Producers on several connections publish sequence-numbered
// messages, keeping `window` in flight each, as fast as acks come back; every publish is tracked as acked
// (with its offset), or unknown (the connection died first, or the broker answered an error). The checker
// compares what the producers were told with what the broker serves afterwards.
import { ConnectionClosed, payloadFor, queryAnswered, type StoredCopy, Wire } from './helpers.js';

export interface Publish {
  key: string;
  round: number;
  conn: number;
  seq: number;
  /** acked: a 200 came back; unknown: no answer (or an error) before the connection died. */
  state: 'pending' | 'acked' | 'unknown';
  /** Acked in the round it was first sent (not by a resend after restart). */
  ackedLive: boolean;
  offset?: number;
  durable?: string;
}

export class Ledger {
  readonly all = new Map<string, Publish>();
  readonly errors = new Map<string, number>();

  unknown(): Publish[] {
    return [...this.all.values()].filter((p) => p.state !== 'acked');
  }

  noteError(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }
}

/** Runs `connections` producers until `stop()` is called or their connections die. */
export async function startProducers(
  port: number,
  topic: string,
  ledger: Ledger,
  round: number,
  connections: number,
  window: number,
): Promise<{ stop(): void; done: Promise<void> }> {
  let stopped = false;
  const wires = await Promise.all(
    Array.from({ length: connections }, (_, c) => Wire.connect(port, `r${round}c${c}-`)),
  );
  const runs = wires.map(
    (w, c) =>
      new Promise<void>((resolve) => {
        let seq = 0;
        let inFlight = 0;
        const finish = () => {
          if (inFlight === 0 && (stopped || w.closed)) resolve();
        };
        const pump = () => {
          while (!stopped && !w.closed && inFlight < window) {
            const key = `r${round}c${c}s${seq}`;
            const p: Publish = { key, round, conn: c, seq: seq++, state: 'pending', ackedLive: false };
            ledger.all.set(key, p);
            inFlight++;
            w.request({ headers: { cmd: 'produce', topic, id: key }, body: payloadFor(key) }, 0).then(
              (r) => {
                inFlight--;
                if (r.status === 200) {
                  p.state = 'acked';
                  p.ackedLive = true;
                  p.offset = Number(r.headers.offset);
                  p.durable = r.headers.durable;
                } else {
                  p.state = 'unknown';
                  ledger.noteError(`${r.status} ${r.headers.error_code ?? ''}`.trim());
                }
                pump();
                finish();
              },
              (err: unknown) => {
                inFlight--;
                p.state = 'unknown';
                if (!(err instanceof ConnectionClosed)) ledger.noteError(String(err));
                finish();
              },
            );
          }
          finish();
        };
        w.socket.on('close', finish);
        pump();
      }),
  );
  return {
    stop() {
      stopped = true;
    },
    done: Promise.all(runs).then(() => {
      for (const w of wires) w.close();
    }),
  };
}

/** How often one unknown publish is sent again while the store answers "not confirmed". */
const RESEND_ATTEMPTS = 5;

/** After a restart: publish every unacknowledged message again (same id and body), as an at-least-once client does. */
export async function resendUnknown(port: number, topic: string, ledger: Ledger): Promise<number> {
  const todo = ledger.unknown();
  if (todo.length === 0) return 0;
  const w = await Wire.connect(port, 'resend-');
  try {
    const BATCH = 1000;
    for (let i = 0; i < todo.length; i += BATCH) {
      await Promise.all(
        todo.slice(i, i + BATCH).map(async (p) => {
          // A 500/503 says the store could not confirm in time (a loaded machine, a NATS leader moving): the
          // outcome is unknown again, and the id dedupes a second copy, so ask again a bounded number of times,
          // each once the store answers a query again: "no stream leader" comes back at once, and on a loaded
          // machine the election outlasts any number of immediate resends.
          for (let attempt = 1; ; attempt++) {
            if (attempt > 1) await queryAnswered(w, topic);
            const r = await w.request(
              { headers: { cmd: 'produce', topic, id: p.key }, body: payloadFor(p.key) },
              30_000,
            );
            if (r.status === 200) {
              p.state = 'acked';
              p.offset = Number(r.headers.offset);
              return;
            }
            if ((r.status !== 500 && r.status !== 503) || attempt === RESEND_ATTEMPTS) {
              throw new Error(`resend of ${p.key} answered ${r.status} ${r.bodyText()} (attempt ${attempt})`);
            }
          }
        }),
      );
    }
  } finally {
    w.close();
  }
  return todo.length;
}

export interface Verdict {
  /** Acknowledged publishes that are not stored. */
  lost: number;
  /** Extra copies of a key (only possible for publishes that were resent after a crash). */
  duplicated: number;
  /** Records whose body does not match their key, or whose key nobody published. */
  corrupted: number;
  /** Offsets below messageDepth that are not served. */
  holes: number;
  /** Live-acked publishes of one connection stored in a different order than sent. */
  outOfOrder: number;
  /** Duplicates whose key was acked live (a broker bug: the resend was never needed). */
  duplicatedAcked: number;
  stored: number;
}

/** Compares the ledger with every record read back. */
export function check(ledger: Ledger, records: StoredCopy[], holes: number, bodySize = 64): Verdict {
  const seen = new Map<string, number[]>();
  let corrupted = 0;
  for (const r of records) {
    const p = ledger.all.get(r.id);
    if (!p || r.body !== payloadFor(r.id, bodySize)) {
      corrupted++;
      continue;
    }
    const list = seen.get(r.id);
    if (list) list.push(r.offset);
    else seen.set(r.id, [r.offset]);
  }
  let lost = 0;
  let duplicated = 0;
  let duplicatedAcked = 0;
  for (const p of ledger.all.values()) {
    const copies = seen.get(p.key)?.length ?? 0;
    if (p.state === 'acked' && copies === 0) lost++;
    if (copies > 1) {
      duplicated += copies - 1;
      if (p.ackedLive) duplicatedAcked += copies - 1;
    }
  }
  // Order: per (round, connection), live-acked publishes by sequence number must have rising offsets.
  const lanes = new Map<string, Publish[]>();
  for (const p of ledger.all.values()) {
    if (!p.ackedLive) continue;
    const k = `${p.round}/${p.conn}`;
    const lane = lanes.get(k);
    if (lane) lane.push(p);
    else lanes.set(k, [p]);
  }
  let outOfOrder = 0;
  for (const lane of lanes.values()) {
    lane.sort((a, b) => a.seq - b.seq);
    let prev = -1;
    for (const p of lane) {
      const first = seen.get(p.key)?.[0] ?? -1;
      if (first < prev) outOfOrder++;
      prev = Math.max(prev, first);
    }
  }
  return { lost, duplicated, corrupted, holes, outOfOrder, duplicatedAcked, stored: records.length };
}
