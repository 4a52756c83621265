// A produce's ack is written as bytes into the head slab: the same bytes as its string (checkedText).
import { describe, expect, it } from 'vitest';
import { type AckHead, type CheckedReply, checkedText, writeAck } from '../../src/checked-reply.js';
import { storedAck } from '../../src/commands/reply.js';

function ack(topic = 'orders', durable = 'interval'): CheckedReply {
  const r = storedAck(1_764_000_000_000, topic);
  r.headers.durable = durable;
  r.headers.offset = '12345';
  r.headers.id = 'e720ab03-af6d-a824-5643-0123456789ab';
  return r;
}

const kept: { head: AckHead | undefined } = { head: undefined };

function written(reply: CheckedReply, room = 4096): string | undefined {
  const out = Buffer.alloc(room + 8);
  const end = writeAck(reply, kept, out.subarray(0, room + 8), 8);
  return end < 0 ? undefined : out.toString('latin1', 8, end);
}

describe('writeAck', () => {
  it("writes what checkedText makes, from bytes kept for the ack's topic and durability", () => {
    expect(written(ack())).toBe(checkedText(ack()));
    const head = kept.head;
    expect(written(ack())).toBe(checkedText(ack()));
    expect(kept.head).toBe(head);
    const headOnly = ack();
    headOnly.body = new Uint8Array(0); // a HEAD request's reply
    for (const r of [ack('other'), ack('other', 'fsync'), headOnly]) expect(written(r)).toBe(checkedText(r));
    expect(kept.head).not.toBe(head);
  });

  it('leaves to the string any other reply, a value that is not ASCII, or no room', () => {
    const duplicate = ack();
    duplicate.headers.duplicate = 'true';
    const closing = ack();
    closing.headers.connection = 'close';
    const wide = ack();
    wide.headers.id = 'id-é';
    const created = ack();
    created.status = 201;
    const length = checkedText(ack()).length;
    for (const r of [duplicate, closing, wide, created]) expect(written(r)).toBeUndefined();
    expect(written(ack(), length - 1)).toBeUndefined();
    // room for 16 more digits of content-length is asked for
    expect(written(ack(), length + 16)).toBe(checkedText(ack()));
  });
});

describe('storedAck', () => {
  it('gives the acks of one millisecond the same body bytes, and a later one its own time', () => {
    const t = 1_764_000_000_123;
    const a = storedAck(t, 'a');
    const b = storedAck(t, 'b');
    expect(b.body).toBe(a.body);
    expect(new TextDecoder().decode(a.body)).toBe(String(t));
    const c = storedAck(t + 1, 'a');
    expect(new TextDecoder().decode(c.body)).toBe(String(t + 1));
    expect(checkedText(c).endsWith(`content-length: 13\r\n\r\n${t + 1}`)).toBe(true);
    expect(new TextDecoder().decode(a.body)).toBe(String(t));
  });
});
