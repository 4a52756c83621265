// Many topics under a low open-file limit: the store keeps at most half of `ulimit -n` files open (an LRU of
// descriptors), so a broker with thousands of topics (five files each) runs, restarts after kill -9 and serves
// every topic without EMFILE. Bounded form: 300 topics under `ulimit -n 128`; long form (test:chaos): 10,000
// topics under the default 1024 (about 45 s on an idle 2-core machine, too long for every run). No request has
// a deadline: a broker that exits (EMFILE) fails every request in flight at once.
import { describe, expect, it } from 'vitest';
import { CHAOS, chaosBroker, fdCount, LONG, report, Wire } from './helpers.js';

const TOPICS = LONG ? 10_000 : 300;
const LIMIT = LONG ? 1024 : 128;
/** Declares and produces in flight at once (each opens a few files for a moment). */
const WINDOW = 16;

async function inWindow(n: number, f: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

describe('open files', () => {
  it(
    `runs ${TOPICS} topics under ulimit -n ${LIMIT}, also after kill -9 and restart`,
    async () => {
      const b = await chaosBroker({ fsync: 'never', openFileLimit: LIMIT });
      let w = await Wire.open(b.port, 'of');
      await inWindow(TOPICS, async (i) => {
        const d = await w.request({ headers: { cmd: 'declare', topic: `T${i}` } }, 0);
        expect(d.status).toBe(200);
        const p = await w.request(
          { headers: { cmd: 'produce', topic: `T${i}`, id: `m${i}` }, body: `v${i}` },
          0,
        );
        expect(p.status).toBe(200);
      });
      const fdsRunning = fdCount(b.process.pid!);
      expect(fdsRunning).toBeLessThan(LIMIT);
      w.close();
      await b.kill('SIGKILL');
      await b.restart();
      w = await Wire.open(b.port, 'of2');
      const fdsRestarted = fdCount(b.process.pid!);
      expect(fdsRestarted).toBeLessThan(LIMIT);
      // Every topic is there and serves its message (consume reads each one's log: files are reopened in turn).
      await inWindow(TOPICS, async (i) => {
        const c = await w.request({ headers: { cmd: 'consume', topic: `T${i}` } }, 0);
        expect([c.status, c.headers.origin_id, c.bodyText()]).toEqual([200, `m${i}`, `v${i}`]);
      });
      const info = (await w.request({ headers: { cmd: 'server' } }, 0)).json<{
        topicTable: Record<string, unknown>;
      }>();
      expect(Object.keys(info.topicTable)).toHaveLength(TOPICS);
      expect(b.process.exitCode).toBeNull();
      report('open files', {
        seed: CHAOS.seed,
        long: LONG,
        topics: TOPICS,
        limit: LIMIT,
        fdsRunning,
        fdsRestarted,
      });
    },
    30 * 60_000,
  );
});
