// The stored form (mq/delivery.ts): a delivery is a fresh head plus the stored header lines and body, with no
// decode. These tests hold it to the delivery 0.11 shapes, as the broker built it before by decoding the stored
// request and rewriting it (older-delivery.ts keeps that code as the oracle), and check that records stored by
// that older code, on disk, are still delivered the same.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage, encodeMessage, Message, type MessageInit } from '@zbus/protocol';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { buildDelivery, decodeStored, encodeStored, storedLines } from '../../src/mq/delivery.js';
import { openStore } from '../../src/store/store.js';
import type { Delivery } from '../../src/store/types.js';
import { startTestBroker } from './helpers.js';
import { olderDelivery, olderRecord } from './older-delivery.js';

/** A delivery as a consumer reads it: start line, headers in name order, body. */
function seen(bytes: Uint8Array): { start: string; headers: string[]; body: string } {
  const text = Buffer.from(bytes).toString('utf8');
  const m = decodeMessage(bytes);
  return {
    start: text.slice(0, text.indexOf('\r\n')),
    headers: Object.entries(m.headers)
      .map(([k, v]) => `${k}: ${v}`)
      .sort(),
    body: m.bodyText(),
  };
}

/** Produce requests as the broker holds them when it stores one (id and topic set, remote-addr added). */
const PRODUCED: Array<{ name: string; init: MessageInit; httpVersion?: '1.0' }> = [
  {
    name: 'a zbus client produce',
    init: {
      method: 'GET',
      headers: {
        cmd: 'produce',
        topic: 'T',
        id: 'm-1',
        tag: 'a.b',
        sender: 's-1',
        ack: 'true',
        token: 'secret',
      },
      body: 'payload',
    },
  },
  {
    name: 'produce by URL from ab (HTTP/1.0, keep-alive)',
    httpVersion: '1.0',
    init: {
      method: 'GET',
      url: '/produce/T',
      headers: {
        host: '127.0.0.1:1',
        'user-agent': 'ApacheBench/2.3',
        accept: '*/*',
        cmd: 'produce',
        topic: 'T',
        id: 'u-1',
      },
    },
  },
  {
    name: 'a POST with a charset, a token in the query and in the cookie',
    init: {
      method: 'POST',
      url: '/T/extra?cmd=produce&token=s&x=1',
      headers: {
        cmd: 'produce',
        topic: 'T',
        id: 'p-1',
        x: '1',
        'content-type': 'text/plain; charset=iso-8859-1',
        cookie: 'a=1; token=s; b=2',
        'remote-addr': '127.0.0.1:5',
      },
      body: 'latin',
    },
  },
  {
    name: 'an encoding header, a cookie of only the token, delay and timeout',
    init: {
      method: 'POST',
      url: '/',
      headers: {
        cmd: 'produce',
        topic: 'T',
        id: 'e-1',
        encoding: 'gbk',
        cookie: 'token=s',
        delay: '10',
        timeout: '5',
        deliver_at: '1',
        origin_url: '/kept-as-sent',
      },
      body: new Uint8Array([0xc4, 0xe3]),
    },
  },
  {
    name: 'a forwarded delivery: origin_* headers of its own, non-ASCII values, an empty body',
    init: {
      method: 'PUT',
      url: '/T?cmd=produce&name=caf%C3%A9',
      headers: {
        cmd: 'produce',
        topic: 'T',
        id: 'f-1',
        origin_id: 'earlier',
        origin_method: 'DELETE',
        origin_status: '201',
        name: 'café',
      },
    },
  },
  {
    name: 'a large body and a header value with line breaks and a NUL',
    init: {
      method: 'POST',
      url: '/T',
      headers: { cmd: 'produce', topic: 'T', id: 'b-1', note: 'a\r\nb\0c' },
      body: 'y'.repeat(20_000),
    },
  },
  {
    name: 'a response-form message',
    init: {
      status: 404,
      headers: { cmd: 'produce', topic: 'T', id: 'r-1', origin_method: 'GET' },
      body: 'x',
    },
  },
];

function produced(p: (typeof PRODUCED)[number]): Message {
  const m = new Message(p.init);
  if (p.httpVersion) m.httpVersion = p.httpVersion;
  return m;
}

const record = (data: Uint8Array, id: string, retry: number): Delivery => ({
  offset: 41,
  timestamp: 1_764_000_000_000,
  id,
  tag: undefined,
  data,
  retry,
});

describe('the stored form', () => {
  for (const p of PRODUCED) {
    it(`delivers ${p.name} as the older code did, from either form`, () => {
      const id = p.init.headers!.id!;
      const stored = encodeStored(produced(p), id, 'T');
      const older = olderRecord(produced(p));
      for (const [group, retry] of [
        ['G', 0],
        [undefined, 2],
      ] as const) {
        const want = seen(encodeMessage(olderDelivery(record(older, id, retry), 'c-9', 'T', group)));
        // The older code kept the producer's HTTP version and `connection` header: a delivery is HTTP/1.1 now.
        want.start = 'HTTP/1.1 200 OK';
        want.headers = want.headers
          .filter((h) => !h.startsWith('connection: '))
          .concat()
          .sort();
        const fresh = buildDelivery(record(stored, id, retry), 'c-9', 'T', group);
        expect(fresh.headTail).toBeDefined();
        const got = seen(encodeMessage(fresh));
        got.headers = got.headers.filter((h) => h !== 'connection: Keep-Alive');
        expect(got).toEqual(want);
        // A record the older code stored (on disk since before the stored form) comes out the same.
        const fromOlder = seen(encodeMessage(buildDelivery(record(older, id, retry), 'c-9', 'T', group)));
        fromOlder.headers = fromOlder.headers.filter((h) => h !== 'connection: Keep-Alive');
        expect(fromOlder).toEqual(want);
        // And a broker still running the older code (a shared store mid-upgrade) delivers a new record the same.
        const byOlder = seen(encodeMessage(olderDelivery(record(stored, id, retry), 'c-9', 'T', group)));
        byOlder.start = 'HTTP/1.1 200 OK';
        byOlder.headers = byOlder.headers.filter((h) => !h.startsWith('connection: '));
        expect(byOlder).toEqual(want);
      }
    });
  }

  it('is a whole HTTP message that decodes to the stored request', () => {
    const stored = encodeStored(produced(PRODUCED[2]!), 'p-1', 'T');
    const m = decodeStored(stored);
    expect([m.method, m.url, m.headers.origin_id, m.headers.id, m.bodyText()]).toEqual([
      'POST',
      '/T/extra?cmd=produce&x=1',
      'p-1',
      undefined,
      'latin',
    ]);
    expect(Buffer.from(stored).toString('latin1')).not.toContain('token');
  });

  it('writes a small stored form without measuring its head first, each whole in a shared slab', () => {
    const measured = vi.spyOn(Buffer, 'byteLength');
    const a = encodeStored(produced(PRODUCED[0]!), 'm-1', 'T', true);
    const b = encodeStored(produced(PRODUCED[0]!), 'm-2', 'T', true);
    // One call into C++ per stored form (its head's write) where Buffer.byteLength made two.
    expect(measured).not.toHaveBeenCalled();
    measured.mockRestore();
    expect(b.buffer).toBe(a.buffer);
    expect([decodeStored(a).headers.origin_id, decodeStored(b).headers.origin_id]).toEqual(['m-1', 'm-2']);
    const big = produced(PRODUCED[0]!);
    big.body = new Uint8Array(8000).fill(120);
    const c = encodeStored(big, 'm-3', 'T', true);
    expect(c.buffer).not.toBe(a.buffer);
    expect(decodeStored(c).body.length).toBe(8000);
  });

  it("copies a connection's repeated header lines as bytes, the same bytes as the string form", () => {
    const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
    const kept = storedLines();
    // As a zbus client sends a publish and the broker stamps it.
    const publish = (id: string, topic = 'T', body = 'x') => {
      const m = new Message({ headers: { cmd: 'produce', topic, 'content-type': 'text/plain', id }, body });
      Object.assign(m.headers, { sender: 's-1', host: 'h:1', 'remote-addr': '127.0.0.1:5' });
      return m;
    };
    const strings = vi.spyOn(Buffer.prototype, 'write');
    const first = encodeStored(publish('m-1'), 'm-1', 'T', true, kept);
    const lines = kept.bytes;
    const second = encodeStored(publish('m-2', 'T', 'y'.repeat(120)), 'm-2', 'T', true, kept);
    // The second publish wrote no string at all: its lines are the first one's bytes.
    expect(strings).not.toHaveBeenCalled();
    strings.mockRestore();
    expect(kept.bytes).toBe(lines);
    expect(text(first)).toBe(text(encodeStored(publish('m-1'), 'm-1', 'T', true)));
    expect(text(second)).toBe(text(encodeStored(publish('m-2', 'T', 'y'.repeat(120)), 'm-2', 'T', true)));
    // Another topic, and every other request shape (the one with CR, LF and NUL aside: never decoded), are
    // stored as the string form stores them.
    const other = encodeStored(publish('m-3', 'U'), 'm-3', 'U', true, kept);
    expect(kept.bytes).not.toBe(lines);
    expect(text(other)).toBe(text(encodeStored(publish('m-3', 'U'), 'm-3', 'U', true)));
    for (const p of PRODUCED.filter((q) => !q.name.includes('line breaks'))) {
      const id = p.init.headers!.id!;
      const got = text(encodeStored(produced(p), id, 'T', true, kept));
      expect(got).toBe(text(encodeStored(produced(p), id, 'T', true)));
    }
  });

  it("copies a produce by URL's request line as bytes too, for each URL form", () => {
    const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
    const kept = storedLines();
    // As ab sends a produce by URL (HTTP/1.0, keep-alive) and the broker resolves and stamps it.
    const byUrl = (url: string, id: string) => {
      const m = new Message({
        method: 'GET',
        url,
        headers: { connection: 'Keep-Alive', host: 'h:1', 'user-agent': 'ApacheBench/2.3', accept: '*/*' },
      });
      m.httpVersion = '1.0';
      Object.assign(m.headers, {
        cmd: 'produce',
        topic: 'T',
        sender: 's-1',
        'remote-addr': '127.0.0.1:5',
        id,
      });
      return m;
    };
    for (const url of ['/produce/T', '/T?cmd=produce']) {
      // A URL seen once is stored from the string; the second time in a row, its bytes are kept.
      encodeStored(byUrl(url, 'u-0'), 'u-0', 'T', true, kept);
      const first = encodeStored(byUrl(url, 'u-1'), 'u-1', 'T', true, kept);
      const start = kept.start;
      const strings = vi.spyOn(Buffer.prototype, 'write');
      const second = encodeStored(byUrl(url, 'u-2'), 'u-2', 'T', true, kept);
      // The second produce wrote no string at all: its request line and header lines are the first one's bytes.
      expect(strings).not.toHaveBeenCalled();
      strings.mockRestore();
      expect(kept.start).toBe(start);
      expect(text(first)).toBe(text(encodeStored(byUrl(url, 'u-1'), 'u-1', 'T', true)));
      expect(text(second)).toBe(text(encodeStored(byUrl(url, 'u-2'), 'u-2', 'T', true)));
      expect(decodeStored(second).headers.origin_url).toBe(url);
    }
  });

  it('sends views of the record: the head is the only new bytes', () => {
    const stored = encodeStored(produced(PRODUCED[0]!), 'm-1', 'T');
    const d = buildDelivery(record(stored, 'm-1', 0), 'c-1', 'T', 'G');
    expect(d.body.buffer).toBe(stored.buffer);
    expect(d.headTail!.buffer).toBe(stored.buffer);
    expect(d.headTail!.byteOffset + d.headTail!.length).toBe(d.body.byteOffset);
  });
});

describe('header values taken from a URL', () => {
  it('are stored on one line: a %0D%0A in a query value or a path segment injects no header', async () => {
    const b = await startTestBroker();
    expect((await fetch(`${b.url}/declare/T`)).status).toBe(200);
    const produced = await fetch(
      `${b.url}/T?cmd=produce&x-a=1%0D%0Ainjected:%20yes&tag=t%0Ainjected2:%20yes`,
    );
    expect(produced.status).toBe(200);
    const d = await fetch(`${b.url}/consume/T`);
    expect(d.status).toBe(200);
    expect(d.headers.get('x-a')).toBe('1  injected: yes');
    expect(d.headers.get('tag')).toBe('t injected2: yes');
    expect(d.headers.has('injected')).toBe(false);
    expect(d.headers.has('injected2')).toBe(false);
  });
});

describe('records stored before the stored form', () => {
  it('are delivered with their origin headers after a restart on the same data', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'zbus-stored-form-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startTestBroker({ dataDir });
    const c = await first.raw();
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    await first.broker.close();

    // Two records written as the older broker wrote them, straight into the topic's log.
    const store = await openStore({ dataDir, fsync: 'never' });
    const t = store.topic('T')!;
    const url = new Message({
      method: 'POST',
      url: '/T?cmd=produce&x=1',
      headers: { cmd: 'produce', topic: 'T', id: 'old-1', x: '1', connection: 'close' },
      body: 'from 0.12',
    });
    await t.append({ id: 'old-1', tag: undefined, data: olderRecord(url) });
    const plain = new Message({
      headers: { cmd: 'produce', topic: 'T', id: 'old-2', tag: 'k' },
      body: 'two',
    });
    await t.append({ id: 'old-2', tag: 'k', data: olderRecord(plain) });
    await store.close();

    const b = await startTestBroker({ dataDir });
    const p = await b.raw();
    await p.request({ headers: { cmd: 'produce', topic: 'T', id: 'new-1' }, body: 'three' });
    const got = [];
    for (let i = 0; i < 3; i++) {
      const d = await p.request({ headers: { cmd: 'consume', topic: 'T', id: `c-${i}` } });
      const h = d.headers;
      got.push([
        d.status,
        d.bodyText(),
        h.id,
        h.origin_id,
        h.origin_method,
        h.origin_url,
        h.topic,
        h.offset,
        h.tag,
      ]);
    }
    expect(got).toEqual([
      [200, 'from 0.12', 'c-0', 'old-1', 'POST', '/T?cmd=produce&x=1', 'T', '0', undefined],
      [200, 'two', 'c-1', 'old-2', 'GET', undefined, 'T', '1', 'k'],
      [200, 'three', 'c-2', 'new-1', 'GET', undefined, 'T', '2', undefined],
    ]);
  });
});
