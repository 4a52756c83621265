// Per-topic retention on the wire: the `topic_retention_*` declare headers, their ranges, the limits in TopicInfo,
// and the store deleting whole segments once a limit is passed, on a real broker with small segments.
import { ManualClock, type RawClient, waitFor } from '@zbus/testkit';
import { describe, expect, it } from 'vitest';
import { startTestBroker } from './helpers.js';

/** Small segments, so that a few hundred bytes of messages roll several of them. */
const SEGMENT_BYTES = 1024;
const BODY = 'x'.repeat(200);

async function topicInfo(c: RawClient, topic: string) {
  return (await c.request({ headers: { cmd: 'query', topic } })).json<{
    firstOffset: number;
    nextOffset: number;
    bytes: number;
    retention?: Record<string, number>;
  }>();
}

async function produce(c: RawClient, topic: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await c.request({ headers: { cmd: 'produce', topic }, body: BODY });
    expect(r.status).toBe(200);
  }
}

describe('retention on the wire', () => {
  it('keeps at least topic_retention_messages messages, dropping whole older segments', async () => {
    const b = await startTestBroker({ segmentBytes: SEGMENT_BYTES });
    const c = await b.raw();
    const d = await c.request({ headers: { cmd: 'declare', topic: 'Count', topic_retention_messages: '5' } });
    expect(d.status).toBe(200);
    expect(d.json<{ retention: unknown }>().retention).toEqual({ messages: 5 });
    await produce(c, 'Count', 40);
    const info = await topicInfo(c, 'Count');
    expect(info.nextOffset).toBe(40);
    expect(info.firstOffset).toBeGreaterThan(0);
    expect(info.nextOffset - info.firstOffset).toBeGreaterThanOrEqual(5);
    // What retention dropped is gone for readers too: the oldest offset answers with the first kept message.
    // Retention runs after a roll, beside the appends (no event to wait on): the last roll's may move the first
    // kept offset on between these requests, never back.
    const first = await c.request({ headers: { cmd: 'consume', topic: 'Count' } });
    const after = await topicInfo(c, 'Count');
    expect(Number(first.headers.offset)).toBeGreaterThanOrEqual(info.firstOffset);
    expect(Number(first.headers.offset)).toBeLessThanOrEqual(after.firstOffset);
  });

  it('keeps the topic near topic_retention_bytes on disk', async () => {
    const b = await startTestBroker({ segmentBytes: SEGMENT_BYTES });
    const c = await b.raw();
    await c.request({
      headers: { cmd: 'declare', topic: 'Size', topic_retention_bytes: String(3 * SEGMENT_BYTES) },
    });
    await produce(c, 'Size', 60);
    // At most the limit plus the segment that is still being written. Retention runs after a roll, beside the
    // appends that follow it (no event to wait on): the last roll's may still be under way.
    await waitFor(
      async () => (await topicInfo(c, 'Size')).bytes <= 4 * SEGMENT_BYTES + BODY.length * 2,
      'retention to drop the segments past the limit',
    );
    const info = await topicInfo(c, 'Size');
    expect(info.retention).toEqual({ bytes: 3 * SEGMENT_BYTES });
    expect(info.firstOffset).toBeGreaterThan(0);
    // At least the limit is kept.
    expect(info.bytes).toBeGreaterThanOrEqual(3 * SEGMENT_BYTES - SEGMENT_BYTES);
  });

  it('drops segments older than topic_retention_ms, set by a re-declare of a full topic', async () => {
    const clock = new ManualClock();
    const b = await startTestBroker({ segmentBytes: SEGMENT_BYTES, clock });
    const c = await b.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'Age' } });
    await produce(c, 'Age', 30);
    expect((await topicInfo(c, 'Age')).firstOffset).toBe(0);
    // The age check comes at most every 100 ms (and at least that far apart): move the clock to it.
    const checked = clock.armed(clock.now() + 100);
    const r = await c.request({ headers: { cmd: 'declare', topic: 'Age', topic_retention_ms: '1' } });
    expect(r.json<{ retention: unknown }>().retention).toEqual({ ms: 1 });
    await checked;
    clock.advance(100);
    // Deleting the segments is file work with no event to wait on.
    await waitFor(async () => (await topicInfo(c, 'Age')).firstOffset > 0, 'the age limit to drop a segment');
    // The segment being written is never dropped.
    expect((await topicInfo(c, 'Age')).nextOffset).toBe(30);
  });

  it('lifts a limit with 0, keeps the others, and answers 400 to a value out of range', async () => {
    const b = await startTestBroker();
    const c = await b.raw();
    await c.request({
      headers: {
        cmd: 'declare',
        topic: 'Lift',
        topic_retention_bytes: '1048576',
        topic_retention_ms: '604800000',
        topic_retention_messages: '1000',
      },
    });
    expect((await topicInfo(c, 'Lift')).retention).toEqual({ bytes: 1048576, ms: 604800000, messages: 1000 });
    await c.request({ headers: { cmd: 'declare', topic: 'Lift', topic_retention_ms: '0' } });
    expect((await topicInfo(c, 'Lift')).retention).toEqual({ bytes: 1048576, messages: 1000 });
    await c.request({
      headers: { cmd: 'declare', topic: 'Lift', topic_retention_bytes: '0', topic_retention_messages: '0' },
    });
    expect((await topicInfo(c, 'Lift')).retention).toBeUndefined();

    for (const [header, value] of [
      ['topic_retention_bytes', '-1'],
      ['topic_retention_ms', '1.5'],
      ['topic_retention_messages', 'lots'],
      ['topic_retention_bytes', '9007199254740993'],
    ] as const) {
      const r = await c.request({ headers: { cmd: 'declare', topic: 'Lift', [header]: value } });
      expect(r.status, `${header}: ${value}`).toBe(400);
      expect(r.headers.error_code).toBe('ZBUS_ERR_BAD_REQUEST');
      expect(r.bodyText()).toContain(header);
    }
    // A refused declare changed nothing.
    expect((await topicInfo(c, 'Lift')).retention).toBeUndefined();
  });
});
