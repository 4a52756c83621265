// Durations past 2^31-1 ms in headers: Node runs such a setTimeout after 1 ms, which made a long consume_timeout
// answer at once and a month-long delay on a memory topic deliver at once (store/clock.ts `Alarm`).
import { describe, expect, it } from 'vitest';
import { declare, startTestBroker } from './helpers.js';

const MONTH = String(30 * 24 * 60 * 60 * 1000);

describe('durations past 2^31 ms', () => {
  it('a consume with a month-long consume_timeout waits for a message instead of timing out at once', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await declare(c, 'T');
    const waiting = c.request({ headers: { cmd: 'consume', topic: 'T', consume_timeout: MONTH } });
    // The ping's reply comes after the consume was queued (one connection, in order).
    await c.request({ headers: { cmd: 'ping' } });
    const producer = await b.raw();
    await producer.request({ headers: { cmd: 'produce', topic: 'T', id: 'm1' }, body: 'x' });
    const d = await waiting;
    expect(d.headers.consume_timeout).toBeUndefined();
    expect(d.headers.origin_id).toBe('m1');
  });

  it('a memory topic holds a message with a month-long delay', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await declare(c, 'M', { topic_mask: '1' });
    const p = await c.request({ headers: { cmd: 'produce', topic: 'M', delay: MONTH }, body: 'later' });
    expect(p.status).toBe(200);
    await c.request({ headers: { cmd: 'produce', topic: 'M' }, body: 'now' });
    expect((await c.request({ headers: { cmd: 'consume', topic: 'M' } })).bodyText()).toBe('now');
    const none = await c.request({ headers: { cmd: 'consume', topic: 'M', consume_timeout: '200' } });
    expect(none.headers.consume_timeout).toBe('true');
  });
});
