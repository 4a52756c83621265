// Process pauses: a broker stopped with SIGSTOP must not make its clients hang forever. Requests with a
// timeout fail cleanly while it is stopped; after SIGCONT every connection either gets its answers or is
// closed (never left waiting), new clients are served, and what was acknowledged is stored.
import { encodeMessage, Message } from '@zbus/protocol';
import { scaled } from '@zbus/testkit';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { WebSocket } from 'ws';
import { chaosBroker, payloadFor, readAll, report, sleep, Wire } from './helpers.js';

// a stopped broker takes up to a minute: longer than the default test timeout (both scale with the load).
vi.setConfig({ testTimeout: scaled(60_000) });

describe('SIGSTOP / SIGCONT', () => {
  it('times clients out cleanly while the broker is stopped, and recovers after SIGCONT', async () => {
    const IDLE = 1000;
    const b = await chaosBroker({ fsync: 'always', config: { idleTimeoutMs: IDLE } });
    const admin = await Wire.open(b.port);
    await admin.request({ headers: { cmd: 'declare', topic: 'P' } });
    const acked = new Set<string>();
    const produce = async (w: Wire, key: string, timeoutMs: number) => {
      const r = await w.request(
        { headers: { cmd: 'produce', topic: 'P', id: key }, body: payloadFor(key) },
        timeoutMs,
      );
      if (r.status === 200) acked.add(key);
      return r;
    };
    for (let i = 0; i < 20; i++) await produce(admin, `before${i}`, 5000);

    // Two clients with work in flight when the broker stops: one with a short request timeout, one that
    // waits for whatever comes (an answer or a close).
    const impatient = await Wire.open(b.port, 'imp');
    const patient = await Wire.open(b.port, 'pat');
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}/`);
    onTestFinished(() => ws.terminate());
    await new Promise((r) => ws.once('open', r));
    b.process.kill('SIGSTOP');
    // A WebSocket client sends a request while the broker is stopped: answered after SIGCONT, or closed.
    const wsOutcome = new Promise<string>((resolve) => {
      ws.on('message', (d: Buffer) => {
        if (d.toString('latin1').includes('\r\nid: ws-during-pause\r\n')) resolve('answered');
      });
      ws.once('close', () => resolve('closed'));
    });
    ws.send(encodeMessage(new Message({ headers: { cmd: 'query', topic: 'P', id: 'ws-during-pause' } })));
    const t0 = Date.now();
    const imp = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => produce(impatient, `imp${i}`, 500)),
    );
    const impMs = Date.now() - t0;
    const pat = Promise.allSettled(Array.from({ length: 10 }, (_, i) => produce(patient, `pat${i}`, 0)));
    // A client connecting to the stopped broker: the kernel accepts, nothing answers; it gives up on time.
    const late = await Wire.connect(b.port, 'late').catch((e: unknown) => e as Error);
    const lateResult =
      late instanceof Wire
        ? await late.request({ headers: { cmd: 'server' } }, 500).then(
            () => 'answered',
            (e: unknown) => String(e),
          )
        : `connect failed: ${String(late)}`;
    await sleep(IDLE + 500); // stopped for longer than the idle timeout
    b.process.kill('SIGCONT');
    const t1 = Date.now();
    // The patient client is never left hanging: answers or a closed connection within a few seconds.
    const patResults = await Promise.race([
      pat,
      sleep(scaled(10_000)).then(() => {
        throw new Error('a client was left hanging after SIGCONT');
      }),
    ]);
    const patMs = Date.now() - t1;
    const wsResult = await Promise.race([wsOutcome, sleep(scaled(10_000)).then(() => 'hanging')]);
    // New clients are served at once.
    const fresh = await Wire.open(b.port, 'fresh');
    for (let i = 0; i < 20; i++) expect((await produce(fresh, `after${i}`, 5000)).status).toBe(200);
    const got = await readAll(b.port, 'P');
    const stored = new Set(got.records.map((r) => r.id));
    const lost = [...acked].filter((k) => !stored.has(k));
    const summary = {
      stoppedMs: Date.now() - t0,
      idleTimeoutMs: IDLE,
      impatientTimedOut: imp.filter((r) => r.status === 'rejected').length,
      impatientGaveUpAfterMs: impMs,
      lateClient: lateResult,
      patientAnswered: patResults.filter((r) => r.status === 'fulfilled').length,
      patientClosed: patResults.filter((r) => r.status === 'rejected').length,
      patientSettledAfterContMs: patMs,
      websocketClient: wsResult,
      acked: acked.size,
      lost: lost.length,
      corrupted: got.records.filter((r) => r.body !== payloadFor(r.id)).length,
    };
    report('sigstop sigcont', summary);
    expect(summary.impatientTimedOut).toBe(10);
    expect(lateResult).toMatch(/no reply|connect failed|closed/);
    // Bytes that arrived while it was stopped are read before the idle timer may close the connection.
    expect(summary.patientAnswered).toBe(10);
    expect(wsResult).toBe('answered');
    expect(lost).toEqual([]);
    expect(summary.corrupted).toBe(0);
    expect(got.missing).toEqual([]);
  });
});
