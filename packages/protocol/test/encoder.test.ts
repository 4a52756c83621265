import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeHead,
  encodeHeaderLines,
  encodeMessage,
  Header,
  keepAlive,
  Message,
  putAscii,
  putDecimal,
  writeHead,
} from '../src/index.js';
import { bytes, expectZbusError, text } from './helpers.js';

describe('encoder', () => {
  it('writes a request with content-length and connection: Keep-Alive', () => {
    const m = new Message({
      method: 'POST',
      url: '/MyTopic',
      headers: { cmd: 'produce', topic: 'MyTopic' },
      body: 'hello',
    });
    expect(text(encodeMessage(m))).toBe(
      'POST /MyTopic HTTP/1.1\r\ncmd: produce\r\ntopic: MyTopic\r\nconnection: Keep-Alive\r\ncontent-length: 5\r\n\r\nhello',
    );
  });

  it('carries every zbus header through encode and decode unchanged', () => {
    const framing = new Set<string>([
      Header.ContentLength,
      Header.TransferEncoding,
      Header.Encoding,
      Header.Body,
    ]);
    const m = new Message({ method: 'POST', url: '/t' });
    for (const name of Object.values(Header)) if (!framing.has(name)) m.set(name, `v-${name}`);
    const back = decodeMessage(encodeMessage(m));
    expect({ ...back.headers }).toEqual({ ...m.headers });
  });

  it('writes a response with its reason phrase', () => {
    const m = new Message({ status: 404, headers: { id: '1' } });
    expect(encodeHead(m)).toBe(
      'HTTP/1.1 404 Not Found\r\nid: 1\r\nconnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n',
    );
    expect(encodeHead(new Message({ status: 600 }))).toMatch(/^HTTP\/1\.1 600 Error\r\n/);
    expect(encodeHead(new Message({ status: 299 }))).toMatch(/^HTTP\/1\.1 299 Unknown\r\n/);
  });

  it('keeps a connection header the message already has', () => {
    const head = encodeHead(new Message({ status: 200, headers: { connection: 'close' } }));
    expect(head).toContain('connection: close\r\n');
    expect(head).not.toContain('Keep-Alive');
  });

  it('writes an absent body as content-length: 0', () => {
    expect(encodeHead(new Message())).toBe(
      'GET / HTTP/1.1\r\nconnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n',
    );
  });

  it('ignores a stale content-length or transfer-encoding header and writes the real length', () => {
    const m = new Message({
      headers: { 'content-length': '99', 'transfer-encoding': 'chunked' },
      body: 'abc',
    });
    const head = encodeHead(m);
    expect(head).toContain('content-length: 3\r\n');
    expect(head).not.toContain('99');
    expect(head).not.toContain('chunked');
  });

  it('writes the encoding header as the content-type charset, as sent, and drops encoding', () => {
    const m = new Message({ headers: { 'content-type': 'text/html', encoding: 'GBK' } });
    const head = encodeHead(m);
    expect(head).toContain('content-type: text/html; charset=GBK\r\n');
    expect(head).not.toContain('encoding:');
    expect(encodeHead(new Message({ headers: { encoding: 'utf-8' } }))).toContain(
      'content-type: text/plain; charset=utf-8',
    );
  });

  it('round-trips the charset through decode', () => {
    const m = decodeMessage(
      encodeMessage(new Message({ headers: { 'content-type': 'text/plain', encoding: 'latin1' } })),
    );
    expect([m.contentType, m.encoding]).toEqual(['text/plain', 'latin1']);
  });

  it('writes UTF-8 header values and bodies', () => {
    const m = new Message({ headers: { tag: '价格' }, body: 'héllo' });
    const out = encodeMessage(m);
    const back = decodeMessage(out);
    expect(back.tag).toBe('价格');
    expect(back.bodyText()).toBe('héllo');
    expect(text(out)).toContain('content-length: 6\r\n');
  });

  it('cannot be made to inject headers: CR, LF and NUL in values become spaces', () => {
    const m = new Message({ headers: { topic: 'a\r\ncmd: remove', tag: 'x\0y' } });
    const back = decodeMessage(encodeMessage(m));
    expect(back.topic).toBe('a  cmd: remove');
    expect(back.tag).toBe('x y');
    expect(back.cmd).toBeUndefined();
  });

  it('leaves out headers whose names are not HTTP tokens', () => {
    const m = new Message();
    m.headers['bad name'] = 'x';
    m.headers['a\r\nb'] = 'y';
    m.headers.ok = 'z';
    expect(encodeHead(m)).toBe(
      'GET / HTTP/1.1\r\nok: z\r\nconnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n',
    );
  });

  it('percent-encodes spaces and controls in the url', () => {
    expect(encodeHead(new Message({ url: '/a b\r\n' }))).toMatch(/^GET \/a%20b%0D%0A HTTP\/1\.1\r\n/);
    expect(encodeHead(new Message({ url: '' }))).toMatch(/^GET \/ HTTP\/1\.1\r\n/);
  });

  it('rejects a method that is not a token and a status outside 100..999', () => {
    expectZbusError(
      () => encodeHead(new Message({ method: 'GE T' })),
      'ZBUS_ERR_INVALID_ARGUMENT',
      400,
      /method/,
    );
    expectZbusError(
      () => encodeHead(new Message({ status: 1000 })),
      'ZBUS_ERR_INVALID_ARGUMENT',
      400,
      /status/,
    );
  });

  it('writes the HTTP version of a decoded 1.0 message', () => {
    const m = decodeMessage(bytes('GET / HTTP/1.0\r\n\r\n'));
    expect(encodeHead(m)).toMatch(/^GET \/ HTTP\/1\.0\r\n/);
  });

  it('gives each encoded message its own bytes even when pooled', () => {
    const a = encodeMessage(new Message({ body: 'a' }));
    const b = encodeMessage(new Message({ body: 'b' }));
    expect(text(a).endsWith('a')).toBe(true);
    expect(text(b).endsWith('b')).toBe(true);
    const big = encodeMessage(new Message({ body: 'x'.repeat(100_000) }));
    expect(big.length).toBeGreaterThan(100_000);
  });

  it('writes headTail, already encoded header lines and the blank line, between the head and the body', () => {
    const m = new Message({ status: 200, headers: { id: 'c-1' }, body: 'hi' });
    m.headTail = bytes('tag: a.b\r\nname: caf\u00e9\r\n\r\n');
    const head = encodeHead(m);
    expect(head).toBe('HTTP/1.1 200 OK\r\nid: c-1\r\nconnection: Keep-Alive\r\ncontent-length: 2\r\n');
    const d = decodeMessage(encodeMessage(m));
    expect([d.headers.id, d.headers.tag, d.headers.name, d.bodyText()]).toEqual([
      'c-1',
      'a.b',
      'caf\u00e9',
      'hi',
    ]);
    expect(m.clone().headTail).toBe(m.headTail);
  });

  it('writes header lines with names left out, as encodeHead would write the rest', () => {
    const h = { cmd: 'produce', tag: 'a\r\nb', encoding: 'gbk', 'content-length': '9' };
    expect(encodeHeaderLines(h, new Set(['cmd']))).toBe(
      'tag: a  b\r\ncontent-type: text/plain; charset=gbk\r\n',
    );
  });

  it('encodes head and body in one buffer', () => {
    const m = new Message({ body: new Uint8Array([0, 1, 2, 255]) });
    const out = encodeMessage(m);
    expect(Array.from(out.subarray(out.length - 4))).toEqual([0, 1, 2, 255]);
  });
});

describe('writeHead', () => {
  const heads = (): Message[] => {
    const odd = new Message({ headers: { ok: 'z', tag: 'a\r\nb\0c' } });
    odd.headers['bad name'] = 'x';
    odd.headers['content-length'] = '99';
    odd.headers['transfer-encoding'] = 'chunked';
    const tailed = new Message({ status: 200, headers: { id: 'c-1' }, body: 'hi' });
    tailed.headTail = bytes('tag: a.b\r\n\r\n');
    return [
      new Message({
        method: 'POST',
        url: '/MyTopic',
        headers: { cmd: 'produce', topic: 'MyTopic' },
        body: 'hello',
      }),
      new Message({ status: 404, headers: { id: '1' }, body: 'x'.repeat(12345) }),
      new Message({ status: 799 }),
      new Message({ url: '/a b\r\n', headers: { connection: 'close' } }),
      new Message({ url: '' }),
      new Message({ headers: { encoding: 'gbk', 'content-type': 'text/html' } }),
      new Message({ headers: { encoding: 'utf-8' } }),
      decodeMessage(bytes('GET /x HTTP/1.0\r\nid: 7\r\n\r\n')),
      odd,
      tailed,
    ];
  };

  it('writes what encodeHead returns, byte for byte', () => {
    for (const m of heads()) {
      const out = new Uint8Array(1024).fill(0xee);
      const end = writeHead(m, out, 10);
      expect(text(out.subarray(10, end))).toBe(encodeHead(m));
      expect(out[end]).toBe(0xee);
    }
  });

  it('gives -1 when the head does not fit or is not ASCII, and writes nothing past the end', () => {
    const m = new Message({ headers: { cmd: 'produce', topic: 't' }, body: 'x' });
    const n = encodeHead(m).length;
    expect(writeHead(m, new Uint8Array(n), 0)).toBe(n);
    for (let size = 0; size < n; size++) expect(writeHead(m, new Uint8Array(size), 0)).toBe(-1);
    expect(writeHead(m, new Uint8Array(n + 5), 6)).toBe(-1);
    expect(writeHead(new Message({ headers: { tag: '价格' } }), new Uint8Array(1024), 0)).toBe(-1);
    expect(writeHead(new Message({ url: '/é' }), new Uint8Array(1024), 0)).toBe(-1);
  });

  it('throws as encodeHead does for a method that is not a token or a status outside 100..999', () => {
    const out = new Uint8Array(1024);
    expectZbusError(
      () => writeHead(new Message({ method: 'GE T' }), out, 0),
      'ZBUS_ERR_INVALID_ARGUMENT',
      400,
      /method/,
    );
    expectZbusError(
      () => writeHead(new Message({ status: 1000 }), out, 0),
      'ZBUS_ERR_INVALID_ARGUMENT',
      400,
      /status/,
    );
  });
});

describe('putAscii and putDecimal', () => {
  it('write ASCII as writeHead writes a value, CR, LF and NUL as spaces, and say where they end', () => {
    const out = new Uint8Array(8).fill(0x2e);
    expect(putAscii('a\r\nb\0', out, 1)).toBe(6);
    expect(new TextDecoder().decode(out)).toBe('.a  b ..');
    expect(putDecimal(0, out, 0)).toBe(1);
    expect(putDecimal(9, out, 1)).toBe(2);
    expect(putDecimal(10, out, 2)).toBe(4);
    expect(putDecimal(123, out, 4)).toBe(7);
    expect(new TextDecoder().decode(out)).toBe('0910123.');
  });

  it('answer -1 for non-ASCII text, no room, or an offset of -1', () => {
    const out = new Uint8Array(4);
    expect(putAscii('é', out, 0)).toBe(-1);
    expect(putAscii('abcde', out, 0)).toBe(-1);
    expect(putAscii('a', out, -1)).toBe(-1);
    expect(putDecimal(12345, out, 0)).toBe(-1);
    expect(putDecimal(1, out, 4)).toBe(-1);
    expect(putDecimal(1, out, -1)).toBe(-1);
  });
});

describe('keepAlive', () => {
  const on = (v: '1.1' | '1.0', connection?: string): boolean => {
    const m = new Message(connection === undefined ? {} : { headers: { connection } });
    m.httpVersion = v;
    return keepAlive(m);
  };
  it('keeps HTTP/1.1 connections open unless connection: close', () => {
    expect(on('1.1')).toBe(true);
    expect(on('1.1', 'Keep-Alive')).toBe(true);
    expect(on('1.1', 'close')).toBe(false);
    expect(on('1.1', 'Upgrade, Close')).toBe(false);
  });
  it('keeps HTTP/1.0 connections open only with connection: keep-alive', () => {
    expect(on('1.0')).toBe(false);
    expect(on('1.0', 'Keep-Alive')).toBe(true);
    expect(on('1.0', 'close')).toBe(false);
  });
});
