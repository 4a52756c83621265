// Every numeric request header is checked against its range in one place (commands/header-ranges.ts): this test
// walks that table, so a header added to it is tested at once, and a scan of the handlers makes sure none parses
// a number on its own.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NUMERIC_HEADERS, type NumericHeader } from '../../src/commands/header-ranges.js';
import { declare, startTestBroker } from './helpers.js';

/** What a command needs besides the header under test to reach the point where it reads it. */
const BASE: Record<string, Record<string, string>> = {
  consume: { cmd: 'consume', topic: 'T', consume_timeout: '1' },
  ack: { cmd: 'ack', topic: 'T', offset: '0' },
  nack: { cmd: 'nack', topic: 'T', offset: '0' },
  touch: { cmd: 'touch', topic: 'T', offset: '0' },
  produce: { cmd: 'produce', topic: 'T' },
  route: { cmd: 'route', recver: 'nobody' },
  declare: { cmd: 'declare', topic: 'T', consume_group: 'g' },
};

function outOfRange(name: NumericHeader): string[] {
  const { min, max } = NUMERIC_HEADERS[name];
  const bad = ['-1', 'NaN', '1e3', '0x10', '1.5', '5x', '+5', '--5', '99999999999999999999', String(max + 1)];
  if (min > 0) bad.push(String(min - 1));
  if (name === 'consume_timeout') bad.splice(bad.indexOf('-1'), 1, '-5'); // base sets 1
  return bad;
}

describe('numeric headers', () => {
  it('answers 400 naming the header to every value that is not an integer within its range', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await declare(c, 'T');
    for (const name of Object.keys(NUMERIC_HEADERS) as NumericHeader[]) {
      const { min, commands } = NUMERIC_HEADERS[name];
      for (const command of commands) {
        const base = BASE[command];
        expect(base, `no base request for ${command}`).toBeDefined();
        for (const value of outOfRange(name)) {
          const r = await c.request({ headers: { ...base, [name]: value } });
          expect([r.status, r.headers.error_code], `${command} ${name}: ${JSON.stringify(value)}`).toEqual([
            400,
            'ZBUS_ERR_BAD_REQUEST',
          ]);
          expect(r.bodyText()).toContain(`${name} must be an integer from ${min} to `);
        }
        // The lowest value in range is never refused for its range. (A valid route is answered by silence, and
        // consume_timeout 0 means waiting for a message without end.)
        if (command === 'route' || name === 'consume_timeout') continue;
        const ok = await c.request({ headers: { ...base, [name]: String(min) } });
        expect(ok.bodyText(), `${command} ${name}: ${min}`).not.toContain(`${name} must be`);
      }
    }
  });

  it('keeps a topic on disk when topic_mask is -1 (it used to turn it into a memory RPC topic)', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    const r = await c.request({ headers: { cmd: 'declare', topic: 'D', topic_mask: '-1' } });
    expect(r.status).toBe(400);
    expect((await c.request({ headers: { cmd: 'query', topic: 'D' } })).status).toBe(404);
    await declare(c, 'D');
    const again = await c.request({ headers: { cmd: 'declare', topic: 'D', topic_mask: '255' } });
    expect(again.status).toBe(400);
    const info = (await c.request({ headers: { cmd: 'query', topic: 'D' } })).json<{ mask: number }>();
    expect(info.mask).toBe(0);
  });

  it('answers 400, not 500, to a huge topic_max_backlog on a memory topic', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    for (const backlog of ['99999999999', '1000001']) {
      const r = await c.request({
        headers: { cmd: 'declare', topic: 'M', topic_mask: '1', topic_max_backlog: backlog },
      });
      expect([r.status, r.headers.error_code]).toEqual([400, 'ZBUS_ERR_BAD_REQUEST']);
      expect(r.bodyText()).toContain(
        'topic_max_backlog of a memory topic must be an integer from 0 to 1000000',
      );
    }
    const ok = await c.request({
      headers: { cmd: 'declare', topic: 'M', topic_mask: '1', topic_max_backlog: '1000000' },
    });
    expect(ok.status).toBe(200);
  });

  it('refuses a deliver_at more than 365 days ahead, and a delay as long', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await declare(c, 'T');
    const year = 365 * 86_400_000;
    const far = await c.request({
      headers: { cmd: 'produce', topic: 'T', deliver_at: String(Date.now() + year + 60_000) },
    });
    expect(far.status).toBe(400);
    expect(far.bodyText()).toContain('deliver_at must be at most');
    const delay = await c.request({ headers: { cmd: 'produce', topic: 'T', delay: String(year + 1) } });
    expect(delay.status).toBe(400);
    const month = await c.request({
      headers: { cmd: 'produce', topic: 'T', delay: String(30 * 86_400_000) },
    });
    expect(month.status).toBe(200);
  });

  it('are parsed by no handler on its own', () => {
    const dir = join(import.meta.dirname, '../../src/commands');
    for (const file of readdirSync(dir)) {
      if (file === 'lookup.ts' || file === 'header-ranges.ts') continue;
      const src = readFileSync(join(dir, file), 'utf8');
      expect(src, file).not.toMatch(
        /\bNumber\(|parseInt\(|parseFloat\(|\bmsg\.(offset|originStatus|retry|timestamp)\b/,
      );
    }
  });
});
