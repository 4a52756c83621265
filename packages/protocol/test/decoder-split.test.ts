import { describe, expect, it } from 'vitest';
import type { Message } from '../src/index.js';
import { FIXTURES, STREAM } from './fixtures/messages.js';
import { bytes, decodeChunks, expected, splitAt, view } from './helpers.js';

const all = FIXTURES.map(expected);
const stream = bytes(STREAM);

describe('decoder: any split of the stream', () => {
  it('decodes every fixture from one chunk holding the whole stream', () => {
    expect(decodeChunks([stream]).map(view)).toEqual(all);
  });

  it('decodes every fixture when the stream arrives one byte at a time', () => {
    const chunks = Array.from(stream, (_, i) => stream.subarray(i, i + 1));
    expect(decodeChunks(chunks).map(view)).toEqual(all);
  });

  it('decodes every fixture when the stream is split in two at every byte position', () => {
    for (let i = 0; i <= stream.length; i++) {
      const got = decodeChunks(splitAt(stream, [i])).map(view);
      if (JSON.stringify(got) !== JSON.stringify(all)) expect(got, `split at ${i}`).toEqual(all);
    }
  });

  it('decodes every fixture from Node Buffer chunks split in two at every byte position', () => {
    const buf = Buffer.from(STREAM);
    for (let i = 0; i <= buf.length; i += 1) {
      const got = decodeChunks([buf.subarray(0, i), buf.subarray(i)]).map(view);
      if (JSON.stringify(got) !== JSON.stringify(all)) expect(got, `split at ${i}`).toEqual(all);
    }
  });

  it('decodes a produce, a chunked upload and a body-header message split in three at every pair of positions', () => {
    for (const f of [FIXTURES[0], FIXTURES[4], FIXTURES[7]] as typeof FIXTURES) {
      const b = bytes(f.raw);
      const want = [expected(f)];
      for (let i = 0; i <= b.length; i++) {
        for (let j = i; j <= b.length; j++) {
          const got = decodeChunks(splitAt(b, [i, j])).map(view);
          if (JSON.stringify(got) !== JSON.stringify(want)) expect(got, `split at ${i},${j}`).toEqual(want);
        }
      }
    }
  });

  it('decodes hundreds of messages arriving in one chunk', () => {
    const many = bytes(STREAM.repeat(40));
    const msgs = decodeChunks([many]);
    expect(msgs).toHaveLength(40 * FIXTURES.length);
    expect(msgs.slice(-FIXTURES.length).map(view)).toEqual(all);
  });

  it('decodes hundreds of messages arriving in chunks of 7 bytes', () => {
    const many = bytes(STREAM.repeat(20));
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < many.length; i += 7) chunks.push(many.subarray(i, i + 7));
    const msgs = decodeChunks(chunks);
    expect(msgs.map(view)).toEqual(Array.from({ length: 20 }, () => all).flat());
  });

  it('copies a split body once into its own exact-size buffer', () => {
    const b = bytes('POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\n0123456789');
    const [m] = decodeChunks(splitAt(b, [b.length - 6, b.length - 3])) as [Message];
    expect(new TextDecoder().decode(m.body)).toBe('0123456789');
    expect(m.body.byteLength).toBe(10);
    expect(m.body.buffer.byteLength).toBe(10);
  });

  it('stays linear when a 50 KB head arrives one byte at a time', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `h${i}: ${'v'.repeat(240)}`);
    const b = bytes(`GET / HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
    const chunks = Array.from(b, (_, i) => b.subarray(i, i + 1));
    const [m] = decodeChunks(chunks) as [Message];
    expect(Object.keys(m.headers)).toHaveLength(200);
  });
});
