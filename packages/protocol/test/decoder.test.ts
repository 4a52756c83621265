import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import { knownSlot, tokenKind } from '../src/decoder.js';
import {
  DEFAULT_LIMITS,
  decodeMessage,
  Header,
  knowHeaderNames,
  LimitError,
  type Message,
  MessageDecoder,
  ProtocolError,
} from '../src/index.js';
import { FIXTURES } from './fixtures/messages.js';
import { bytes, decodeChunks, expected, expectZbusError, text, view } from './helpers.js';

setFlagsFromString('--expose-gc');

const crlf = (lines: string[]): string => lines.join('\r\n');
const decodeOne = (s: string, limits?: Parameters<typeof decodeMessage>[1]): Message =>
  decodeMessage(bytes(s), limits);

describe('decoder: well-formed messages', () => {
  for (const f of FIXTURES) {
    it(`decodes ${f.name}`, () => {
      const msgs = decodeChunks([bytes(f.raw)]);
      expect(msgs).toHaveLength(1);
      expect(view(msgs[0] as Message)).toEqual(expected(f));
    });
    it(`decodes ${f.name} from a Node Buffer chunk`, () => {
      const msgs = decodeChunks([Buffer.from(f.raw)]);
      expect(view(msgs[0] as Message)).toEqual(expected(f));
    });
  }

  it('decides request or response only by the status line', () => {
    expect(decodeOne('GET / HTTP/1.1\r\n\r\n').status).toBeUndefined();
    expect(decodeOne('HTTP/1.1 200 OK\r\n\r\n').status).toBe(200);
  });

  it('keeps the method, the url and the HTTP version', () => {
    const m = decodeOne('DELETE /a/b?c=d HTTP/1.0\r\n\r\n');
    expect([m.method, m.url, m.httpVersion]).toEqual(['DELETE', '/a/b?c=d', '1.0']);
  });

  it('lower-cases header names and trims values', () => {
    const m = decodeOne('GET / HTTP/1.1\r\nConsume_Group:  G1  \r\nX-Empty:\r\n\r\n');
    expect({ ...m.headers }).toEqual({ consume_group: 'G1', 'x-empty': '' });
  });

  it('gives every known header name a slot of its own, and keeps names that share one apart', () => {
    const names = new Set(Object.values(Header));
    expect(new Set([...names].map((n) => knownSlot(n, 0, n.length))).size).toBe(names.size);
    // `tapoc` has the slot of `topic` (length, first, middle and last characters); `Topic` is `topic` in capitals.
    expect(knownSlot('tapoc', 0, 5)).toBe(knownSlot('topic', 0, 5));
    const m = decodeOne('GET / HTTP/1.1\r\ntapoc: 1\r\nTopic: 2\r\nsender: 3\r\nserver: 4\r\n\r\n');
    expect({ ...m.headers }).toEqual({ tapoc: '1', topic: '2', sender: '3', server: '4' });
  });

  it('knows the token characters of RFC 9110 §5.6.2, upper-case letters apart', () => {
    const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz";
    for (let c = 0; c < 256; c++) {
      const ch = String.fromCharCode(c);
      const want = tchar.includes(ch) ? 1 : ch >= 'A' && ch <= 'Z' ? 2 : 0;
      expect([c, tokenKind(ch)]).toEqual([c, want]);
    }
  });

  it("finds a request line's spaces without lastIndexOf (a call into V8's runtime)", () => {
    const last = vi.spyOn(String.prototype, 'lastIndexOf');
    const m = decodeOne('GET /a/b?c=d HTTP/1.1\r\ncmd: produce\r\n\r\n');
    const calls = last.mock.calls.length;
    last.mockRestore();
    expect(calls).toBe(0);
    expect([m.method, m.url, m.httpVersion, m.headers.cmd]).toEqual(['GET', '/a/b?c=d', '1.1', 'produce']);
  });

  it('takes known names sent with capitals (as curl, browsers and ab send them) with no toLowerCase', () => {
    knowHeaderNames(['user-agent', 'accept', 'Not-Lower', 'no space']);
    const lower = vi.spyOn(String.prototype, 'toLowerCase');
    const m = decodeOne(
      'POST / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h\r\nUser-Agent: ab\r\nACCEPT: */*\r\n' +
        'Content-Length: 2\r\nTOPIC: T\r\n\r\nok',
    );
    const calls = lower.mock.calls.length;
    lower.mockRestore();
    expect(calls).toBe(0);
    expect({ ...m.headers }).toEqual({
      connection: 'Keep-Alive',
      host: 'h',
      'user-agent': 'ab',
      accept: '*/*',
      topic: 'T',
    });
    expect(text(m.body)).toBe('ok');
    // Only letters may differ in case: `_` for `-`, or a non-ASCII letter whose lower case is ASCII, is another name.
    expect(decodeOne('GET / HTTP/1.1\r\nContent_Length: 5\r\n\r\n').headers).toEqual({ content_length: '5' });
    expect(() => decodeOne('GET / HTTP/1.1\r\nto\u212Aen: x\r\n\r\n')).toThrow(ProtocolError);
    // A name with a token character above the letters is not taken: `\\` is 32 below `|`, and no token.
    knowHeaderNames(['a|b']);
    expect(() => decodeOne('GET / HTTP/1.1\r\na\\b: 1\r\n\r\n')).toThrow(ProtocolError);
    // A name that is not a lower-case token was not taken, so it cannot let one through.
    expect(() => decodeOne('GET / HTTP/1.1\r\nno space: 1\r\n\r\n')).toThrow(ProtocolError);
  });

  it('keeps the last value of a repeated header', () => {
    const m = decodeOne('GET / HTTP/1.1\r\ntopic: a\r\ntopic: b\r\n\r\n');
    expect(m.topic).toBe('b');
  });

  it('accepts repeated equal content-length headers', () => {
    expect(text(decodeOne('POST / HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok').body)).toBe(
      'ok',
    );
  });

  it('consumes the framing headers content-length and transfer-encoding', () => {
    const m = decodeOne('POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\nok');
    expect(m.headers['content-length']).toBeUndefined();
    const c = decodeOne('POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    expect(c.headers['transfer-encoding']).toBeUndefined();
    expect(text(c.body)).toBe('ok');
  });

  it('maps `Content-Type: t; charset=c` to content-type t and encoding c, keeping other parameters', () => {
    const m = decodeOne(
      'GET / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=xyz; charset="utf-8"\r\n\r\n',
    );
    expect(m.headers['content-type']).toBe('multipart/form-data; boundary=xyz');
    expect(m.encoding).toBe('utf-8');
  });

  it('leaves content-type without a charset as sent and adds no encoding', () => {
    const m = decodeOne('GET / HTTP/1.1\r\ncontent-type: application/json\r\n\r\n');
    expect(m.contentType).toBe('application/json');
    expect(m.encoding).toBeUndefined();
  });

  it('uses the body header only when the body is empty', () => {
    const m = decodeOne('POST / HTTP/1.1\r\nbody: header\r\ncontent-length: 4\r\n\r\nreal');
    expect(text(m.body)).toBe('real');
    expect(m.headers.body).toBe('header');
  });

  it('treats `__proto__` and `constructor` as plain headers', () => {
    const m = decodeOne('GET / HTTP/1.1\r\n__proto__: x\r\nconstructor: y\r\n\r\n');
    expect(m.headers.__proto__).toBe('x');
    expect(m.get('constructor')).toBe('y');
    expect(Object.keys(m.headers)).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('skips empty lines before a start line', () => {
    const msgs = decodeChunks([bytes('\r\n\r\nGET / HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n')]);
    expect(msgs.map((m) => m.url)).toEqual(['/', '/b']);
  });

  it('takes an empty body for a message without content-length', () => {
    expect(decodeOne('HTTP/1.1 200 OK\r\nid: 1\r\n\r\n').body.length).toBe(0);
  });

  it('returns the body as a view of the chunk when the message is whole', () => {
    const chunk = bytes('POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc');
    const [m] = decodeChunks([chunk]);
    expect(m?.body.buffer).toBe(chunk.buffer);
  });

  it('reads chunk sizes in upper and lower case hex with extensions', () => {
    const m = decodeOne(
      crlf([
        'POST / HTTP/1.1',
        'transfer-encoding: chunked',
        '',
        'A;name=value',
        '0123456789',
        'a',
        'abcdefghij',
        '0',
        '',
        '',
      ]),
    );
    expect(text(m.body)).toBe('0123456789abcdefghij');
  });

  it('accepts transfer-encoding `identity, chunked`', () => {
    const m = decodeOne('POST / HTTP/1.1\r\ntransfer-encoding: identity, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n');
    expect(text(m.body)).toBe('x');
  });

  it('decodes a response with status 600', () => {
    expect(decodeOne('HTTP/1.1 600 Error\r\n\r\n').status).toBe(600);
  });

  it('exposes the default limits', () => {
    expect(DEFAULT_LIMITS).toEqual({
      maxHeaderBytes: 65536,
      maxHeaderCount: 256,
      maxBodyBytes: 16 * 1024 * 1024,
      maxUrlBytes: 8192,
    });
  });
});

describe('decoder: a head waiting for its body (Expect: 100-continue)', () => {
  it('names the message whose head is decoded until the first byte of its body arrives', () => {
    const d = new MessageDecoder(() => {});
    expect(d.awaitingBody).toBeUndefined();
    d.push(bytes('POST /a HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 3\r\n\r\n'));
    expect(d.awaitingBody?.headers.expect).toBe('100-continue');
    d.push(bytes('a'));
    expect(d.awaitingBody).toBeUndefined();
    d.push(bytes('bc'));
    expect(d.awaitingBody).toBeUndefined();
  });

  it('names a chunked message until its first size line arrives', () => {
    const d = new MessageDecoder(() => {});
    d.push(bytes('POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n'));
    expect(d.awaitingBody?.url).toBe('/a');
    d.push(bytes('3'));
    expect(d.awaitingBody).toBeUndefined();
  });

  it('names none for a message without a body, or with its body in the same chunk', () => {
    const d = new MessageDecoder(() => {});
    d.push(bytes('GET /a HTTP/1.1\r\nexpect: 100-continue\r\n\r\n'));
    expect(d.awaitingBody).toBeUndefined();
    d.push(bytes('POST /a HTTP/1.1\r\ncontent-length: 1\r\n\r\nx'));
    expect(d.awaitingBody).toBeUndefined();
  });
});

describe('decoder: stopping after a message (WebSocket upgrade)', () => {
  it('stops right after the message when onMessage returns false and keeps the rest', () => {
    const seen: string[] = [];
    const d = new MessageDecoder((m) => {
      seen.push(m.url);
      return m.headers.upgrade === undefined;
    });
    d.push(bytes('GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nupgrade: websocket\r\n\r\n\x81\x05hello'));
    expect(seen).toEqual(['/a', '/']);
    expect(text(d.remaining())).toBe('\x81\x05hello');
    expect(d.bufferedBytes).toBe(bytes('\x81\x05hello').length);
    expectZbusError(() => d.push(bytes('x')), 'ZBUS_ERR_CLOSED', 503);
  });

  it('has nothing remaining when the stop falls on a chunk end', () => {
    const d = new MessageDecoder(() => false);
    d.push(bytes('GET / HTTP/1.1\r\n\r\n'));
    expect(d.remaining().length).toBe(0);
  });
});

describe('decoder: malformed input', () => {
  const cases: [string, string, RegExp][] = [
    ['a start line without a version', 'GET /\r\n\r\n', /bad request line/],
    ['a space inside the version', 'GET / HTTP/1 1\r\n\r\n', /bad request line/],
    ['a space after the version', 'GET / HTTP/1.1 \r\n\r\n', /bad request line/],
    ['a version one character short', 'GET / HTTP/1.\r\n\r\n', /bad request line/],
    ['a start line with two spaces', 'GET  / HTTP/1.1\r\n\r\n', /whitespace in request target/],
    ['an unsupported HTTP version', 'GET / HTTP/2.0\r\n\r\n', /unsupported http version/],
    ['a method that is not a token', 'G(T / HTTP/1.1\r\n\r\n', /bad method/],
    ['a bad status line', 'HTTP/1.1 2x0 OK\r\n\r\n', /bad status line/],
    ['a status below 100', 'HTTP/1.1 099 Low\r\n\r\n', /bad status code/],
    ['a header line without a colon', 'GET / HTTP/1.1\r\ntopic\r\n\r\n', /without colon/],
    ['a space before the colon', 'GET / HTTP/1.1\r\ntopic : x\r\n\r\n', /bad header name/],
    ['an empty header name', 'GET / HTTP/1.1\r\n: x\r\n\r\n', /empty header name/],
    ['obsolete line folding', 'GET / HTTP/1.1\r\ntopic: a\r\n  b\r\n\r\n', /obsolete line folding/],
    ['a NUL byte in the head', 'GET / HTTP/1.1\r\ntopic: a\0b\r\n\r\n', /NUL byte/],
    ['a bare CR in a header line', 'GET / HTTP/1.1\r\ntopic: a\rb\r\n\r\n', /bare CR in header block/],
    ['a bare CR in the request target', 'GET /a\rb HTTP/1.1\r\n\r\n', /bare CR in start line/],
    [
      'a bare CR in a header line of a head with bare LF line ends',
      'GET / HTTP/1.1\nx: 1\ny: 2\ntopic: a\rb\nz: 3\n\n',
      /bare CR in header block/,
    ],
    ['a negative content-length', 'POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n', /bad content-length/],
    ['a non-digit content-length', 'POST / HTTP/1.1\r\ncontent-length: 1e3\r\n\r\n', /bad content-length/],
    ['an empty content-length', 'POST / HTTP/1.1\r\ncontent-length:\r\n\r\n', /empty content-length/],
    [
      'conflicting content-lengths',
      'POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab',
      /conflicting/,
    ],
    [
      'both content-length and chunked',
      'POST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n',
      /both content-length and transfer-encoding/,
    ],
    [
      'an unknown transfer-encoding',
      'POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n',
      /unsupported transfer-encoding/,
    ],
    [
      'chunked twice',
      'POST / HTTP/1.1\r\ntransfer-encoding: chunked, chunked\r\n\r\n',
      /chunked applied twice/,
    ],
    ['a bad chunk size', 'POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', /bad chunk size/],
    [
      'chunk data without CRLF',
      'POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n1\r\nxy',
      /not followed by CRLF/,
    ],
    ['whitespace in the request target', 'GET /a\tb HTTP/1.1\r\n\r\n', /whitespace in request target/],
  ];
  for (const [what, raw, message] of cases) {
    it(`rejects ${what} with ZBUS_ERR_BAD_MESSAGE (400)`, () => {
      const err = expectZbusError(() => decodeChunks([bytes(raw)]), 'ZBUS_ERR_BAD_MESSAGE', 400, message);
      expect(err).toBeInstanceOf(ProtocolError);
    });
  }

  it('stays errored and throws the same error on every later push', () => {
    const d = new MessageDecoder(() => {});
    const first = expectZbusError(() => d.push(bytes('BAD\r\n\r\n')), 'ZBUS_ERR_BAD_MESSAGE', 400);
    let again: unknown;
    try {
      d.push(bytes('GET / HTTP/1.1\r\n\r\n'));
    } catch (e) {
      again = e;
    }
    expect(again).toBe(first);
  });

  it('lets an error thrown by onMessage through unchanged', () => {
    const boom = new Error('boom');
    const d = new MessageDecoder(() => {
      throw boom;
    });
    expect(() => d.push(bytes('GET / HTTP/1.1\r\n\r\n'))).toThrow(boom);
  });

  it('rejects an incomplete message given to decodeMessage', () => {
    expectZbusError(() => decodeOne('GET / HTTP/1.1\r\n'), 'ZBUS_ERR_BAD_MESSAGE', 400, /incomplete/);
    expectZbusError(
      () => decodeOne('POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nab'),
      'ZBUS_ERR_BAD_MESSAGE',
      400,
      /incomplete/,
    );
  });

  it('decodes the next frame normally after decodeMessage rejected one', () => {
    expectZbusError(
      () => decodeOne('GET / HTTP/1.1\r\ncontent-length: x\r\n\r\n'),
      'ZBUS_ERR_BAD_MESSAGE',
      400,
    );
    expectZbusError(() => decodeOne('GET / HTTP/1.1\r\n'), 'ZBUS_ERR_BAD_MESSAGE', 400, /incomplete/);
    expect(decodeOne('POST /a HTTP/1.1\r\ncontent-length: 2\r\n\r\nok').bodyText()).toBe('ok');
    expect(decodeOne('GET /b HTTP/1.1\r\n\r\n').url).toBe('/b');
  });

  it('applies the limits given to decodeMessage', () => {
    expectZbusError(
      () => decodeOne('POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello', { maxBodyBytes: 4 }),
      'ZBUS_ERR_BODY_TOO_LARGE',
      413,
    );
    expect(decodeOne('POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello').bodyText()).toBe('hello');
  });

  it('rejects bytes after the message in decodeMessage but ignores trailing CRLF', () => {
    expectZbusError(
      () => decodeOne('GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n'),
      'ZBUS_ERR_BAD_MESSAGE',
      400,
    );
    expect(decodeOne('GET / HTTP/1.1\r\n\r\n\r\n').url).toBe('/');
  });
});

describe('decoder: limits', () => {
  it('replies 431 when the header block exceeds maxHeaderBytes', () => {
    const err = expectZbusError(
      () => decodeChunks([bytes(`GET / HTTP/1.1\r\nx: ${'a'.repeat(200)}\r\n\r\n`)], { maxHeaderBytes: 100 }),
      'ZBUS_ERR_HEADERS_TOO_LARGE',
      431,
      /^header block exceeds 100 bytes \(maxHeaderBytes\)$/,
    );
    expect(err).toBeInstanceOf(LimitError);
  });

  it('replies 431 before the head ends when the bytes so far exceed maxHeaderBytes', () => {
    const d = new MessageDecoder(() => {}, { maxHeaderBytes: 100 });
    d.push(bytes('GET / HTTP/1.1\r\n'));
    expectZbusError(() => d.push(bytes(`x: ${'a'.repeat(100)}`)), 'ZBUS_ERR_HEADERS_TOO_LARGE', 431);
  });

  it('replies 431 when the header count exceeds maxHeaderCount', () => {
    const lines = Array.from({ length: 5 }, (_, i) => `h${i}: v`);
    expect(
      decodeChunks([bytes(crlf(['GET / HTTP/1.1', ...lines.slice(0, 4), '', '']))], { maxHeaderCount: 4 }),
    ).toHaveLength(1);
    expectZbusError(
      () => decodeChunks([bytes(crlf(['GET / HTTP/1.1', ...lines, '', '']))], { maxHeaderCount: 4 }),
      'ZBUS_ERR_HEADERS_TOO_LARGE',
      431,
      /^header count exceeds 4 \(maxHeaderCount\)$/,
    );
  });

  it('replies 413 when content-length exceeds maxBodyBytes, before reading the body', () => {
    const d = new MessageDecoder(() => {}, { maxBodyBytes: 10 });
    const err = expectZbusError(
      () => d.push(bytes('POST / HTTP/1.1\r\ncontent-length: 11\r\n\r\n')),
      'ZBUS_ERR_BODY_TOO_LARGE',
      413,
      /^content-length exceeds 10 bytes \(maxBodyBytes\)$/,
    );
    expect(err).toBeInstanceOf(LimitError);
    expect(d.bufferedBytes).toBe(0);
  });

  it('replies 413 for a huge content-length without overflowing', () => {
    expectZbusError(
      () => decodeOne(`POST / HTTP/1.1\r\ncontent-length: ${'9'.repeat(40)}\r\n\r\n`),
      'ZBUS_ERR_BODY_TOO_LARGE',
      413,
    );
  });

  it('replies 413 when chunks add up past maxBodyBytes', () => {
    expectZbusError(
      () =>
        decodeOne('POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n', {
          maxBodyBytes: 10,
        }),
      'ZBUS_ERR_BODY_TOO_LARGE',
      413,
      /maxBodyBytes/,
    );
  });

  it('copies chunked data out of the reads it came in, so an unfinished body keeps no read alive', () => {
    const gc = runInNewContext('gc') as () => void;
    const d = new MessageDecoder(() => {});
    d.push(bytes('POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n'));
    gc();
    const before = process.memoryUsage().arrayBuffers;
    // 64 reads of 1 MiB (as a socket hands them over), each carrying one 1-byte chunk; the body never ends.
    for (let i = 0; i < 64; i++) {
      const read = new Uint8Array(1024 * 1024);
      read.set(bytes('1\r\nz\r\n'), read.length - 6);
      d.push(read.subarray(read.length - 6));
    }
    gc();
    const held = process.memoryUsage().arrayBuffers - before;
    expect(d.bufferedBytes).toBe(64);
    expect(held).toBeLessThan(4 * 1024 * 1024);
    d.push(bytes('0\r\n\r\n'));
  });

  it('hands over a chunked body trimmed to its size, not a view of a read', () => {
    const read = bytes(
      `POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n${'1;pad=xxxxxxxx\r\nz\r\n'.repeat(50)}0\r\n\r\n`,
    );
    const [m] = decodeChunks([read]);
    expect(text(m!.body)).toBe('z'.repeat(50));
    expect(m!.body.buffer).not.toBe(read.buffer);
    expect(m!.body.buffer.byteLength).toBe(50);
  });

  it('replies 431 when chunk framing and extensions outweigh the data by more than maxHeaderBytes', () => {
    const d = new MessageDecoder(() => {}, { maxHeaderBytes: 1024, maxBodyBytes: 65536 });
    d.push(bytes('POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n'));
    const padded = bytes(`1;${'e'.repeat(100)}\r\nz\r\n`);
    let err: unknown;
    let sent = 0;
    try {
      for (; sent < 1000; sent++) d.push(padded);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LimitError);
    expect((err as LimitError).code).toBe('ZBUS_ERR_HEADERS_TOO_LARGE');
    expect((err as LimitError).message).toMatch(/by more than 1024 bytes \(maxHeaderBytes\)$/);
    // Cut off after about 1 KiB of framing, long before the body limit.
    expect(sent).toBeLessThan(12);
    // Ordinary chunking (framing much smaller than the data) is never refused, however many chunks.
    const ok = decodeChunks(
      [
        bytes('POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n'),
        ...Array(2000).fill(bytes('8\r\nabcdefgh\r\n')),
        bytes('0\r\nx-t: 1\r\n\r\n'),
      ],
      { maxHeaderBytes: 1024, maxBodyBytes: 65536 },
    );
    expect(ok[0]!.body.length).toBe(16000);
  });

  it('replies 414 when the url exceeds maxUrlBytes', () => {
    expectZbusError(
      () => decodeOne(`GET /${'a'.repeat(100)} HTTP/1.1\r\n\r\n`, { maxUrlBytes: 100 }),
      'ZBUS_ERR_URL_TOO_LONG',
      414,
      /^url exceeds 100 bytes \(maxUrlBytes\)$/,
    );
    expect(decodeOne(`GET /${'a'.repeat(99)} HTTP/1.1\r\n\r\n`, { maxUrlBytes: 100 }).url).toHaveLength(100);
  });

  it('replies 414 for an unterminated start line longer than maxUrlBytes', () => {
    const d = new MessageDecoder(() => {}, { maxUrlBytes: 100 });
    expectZbusError(() => d.push(bytes(`GET /${'a'.repeat(200)}`)), 'ZBUS_ERR_URL_TOO_LONG', 414);
  });

  it('rejects limits that are not positive integers, naming the option', () => {
    expectZbusError(
      () => new MessageDecoder(() => {}, { maxBodyBytes: -1 }),
      'ZBUS_ERR_INVALID_ARGUMENT',
      400,
      /maxBodyBytes/,
    );
  });
});
