// Delayed messages in a real broker process: memory holds their due time and position only (the bytes stay on
// disk until they come due), also after a restart, and they still come due after kill -9.
import fs from 'node:fs';
import { RawClient, type RunningBroker, scaled, startBroker } from '@zbus/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';

const SLOW120 = scaled(120_000);
const SLOW60 = scaled(60_000);

const MiB = 1024 * 1024;

async function connect(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  onTestFinished(() => c.close());
  return c;
}

/** The broker's resident set (Linux /proc), in bytes. */
function rss(b: RunningBroker): number {
  const status = fs.readFileSync(`/proc/${b.process.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function delayedCount(c: RawClient, topic: string): Promise<number> {
  return (await c.request({ headers: { cmd: 'query', topic } })).json<{ delayedCount: number }>()
    .delayedCount;
}

describe('delayed messages in the broker process', () => {
  it(
    '300 x 1 MiB delayed messages keep RSS bounded, also after a kill -9 and restart',
    async () => {
      const b = await startBroker({ fsync: 'never' });
      onTestFinished(() => b.stop().then(() => undefined));
      let c = await connect(b.port);
      await c.request({ headers: { cmd: 'declare', topic: 'Later' } });
      const body = Buffer.alloc(MiB, 'x');
      const at = String(Date.now() + 60 * 60 * 1000);
      const before = rss(b);
      for (let i = 0; i < 300; i++) {
        const r = await c.request({
          headers: { cmd: 'produce', topic: 'Later', deliver_at: at, id: `d${i}` },
          body,
        });
        expect(r.status).toBe(200);
      }
      expect(await delayedCount(c, 'Later')).toBe(300);
      // 300 MiB held; in RAM they took 390 MB on top of the broker's own ~60 MB.
      expect(rss(b) - before).toBeLessThan(120 * MiB);
      c.close();
      await b.kill('SIGKILL');
      await b.restart();
      c = await connect(b.port);
      expect(await delayedCount(c, 'Later')).toBe(300);
      // The journal was read whole at open (656 MB RSS); now only its records' headers are.
      expect(rss(b)).toBeLessThan(150 * MiB);
    },
    SLOW120,
  );

  it(
    'delayed messages come due after a kill -9, once each, in due order',
    async () => {
      const b = await startBroker({ fsync: 'always' });
      onTestFinished(() => b.stop().then(() => undefined));
      let c = await connect(b.port);
      await c.request({ headers: { cmd: 'declare', topic: 'Soon' } });
      const base = Date.now() + 1500;
      for (let i = 0; i < 20; i++) {
        // Due in reverse order of production.
        const at = String(base + (20 - i) * 10);
        await c.request({
          headers: { cmd: 'produce', topic: 'Soon', deliver_at: at, id: `s${i}` },
          body: `m${i}`,
        });
      }
      c.close();
      await b.kill('SIGKILL');
      await b.restart();
      c = await connect(b.port);
      const got: string[] = [];
      while (got.length < 20) {
        const d = await c.request({ headers: { cmd: 'consume', topic: 'Soon', consume_timeout: '10000' } });
        expect(d.headers.consume_timeout).toBeUndefined();
        got.push(d.headers.origin_id!);
      }
      expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `s${19 - i}`));
      expect(Number(got.length)).toBe(20);
      const none = await c.request({ headers: { cmd: 'consume', topic: 'Soon', consume_timeout: '100' } });
      expect(none.headers.consume_timeout).toBe('true');
      expect(await delayedCount(c, 'Soon')).toBe(0);
    },
    SLOW60,
  );
});
