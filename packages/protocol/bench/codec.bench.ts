/**
 * Protocol codec benchmark (issue 3): decode and encode of a typical ~200-byte produce request with six headers,
 * beside Node's built-in HTTP parser (llhttp, the one `node:http` uses) on the same bytes, in the same run.
 * Every task handles BATCH messages per iteration, so msgs/s = hz × BATCH (bench/report.mjs prints that).
 *
 *   pnpm --filter @zbus/protocol bench
 */
import { createRequire } from 'node:module';
import { bench, describe } from 'vitest';
import { decodeMessage, encodeHead, encodeMessage, type Message, MessageDecoder } from '../src/index.js';

export const BATCH = 1000;
const PER_CHUNK = 100;

const body = 'x'.repeat(40);
const RAW = [
  'POST /MyTopic HTTP/1.1',
  'cmd: produce',
  'topic: MyTopic',
  'id: 7c1e0b2a-5d9f-4c1e-9b1a-2f6d8e0c4a11',
  'tag: Stock.HK.0700',
  'content-type: text/plain',
  `content-length: ${body.length}`,
  '',
  body,
].join('\r\n');
const one = Buffer.from(RAW); // what a socket hands over
const oneU8 = new Uint8Array(one); // what a browser WebSocket hands over
const stream = Buffer.concat(Array.from({ length: PER_CHUNK }, () => one));
const msg: Message = decodeMessage(one);

// results land here so no work is optimized away
const out = { messages: 0, sink: 0 };
const decoder = new MessageDecoder(() => {
  out.messages++;
});

// Node's own parser, as node:http drives it (lib/_http_common.js).
const require = createRequire(import.meta.url);
type Parser = {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(b: Uint8Array): number | Error;
  [k: number]: unknown;
};
const { HTTPParser } = require('node:_http_common') as {
  HTTPParser: {
    new (): Parser;
    REQUEST: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
  };
};
const parser = new HTTPParser();
parser.initialize(HTTPParser.REQUEST, {}, 0, 0);
parser[HTTPParser.kOnHeadersComplete] = () => 0;
parser[HTTPParser.kOnBody] = () => {};
parser[HTTPParser.kOnMessageComplete] = () => {
  out.messages++;
};

const opts = { time: 1500, warmupTime: 300 };

describe(`decode ${one.length}-byte produce, 1 message per chunk (x${BATCH})`, () => {
  bench(
    'zbus MessageDecoder.push (Buffer chunk)',
    () => {
      for (let i = 0; i < BATCH; i++) decoder.push(one);
    },
    opts,
  );
  bench(
    'zbus MessageDecoder.push (Uint8Array chunk, browser path)',
    () => {
      for (let i = 0; i < BATCH; i++) decoder.push(oneU8);
    },
    opts,
  );
  bench(
    'zbus decodeMessage (one whole buffer, WebSocket frame)',
    () => {
      for (let i = 0; i < BATCH; i++) decodeMessage(one);
    },
    opts,
  );
  bench(
    'node llhttp HTTPParser.execute',
    () => {
      for (let i = 0; i < BATCH; i++) parser.execute(one);
    },
    opts,
  );
});

describe(`decode ${PER_CHUNK} pipelined messages per chunk (x${BATCH})`, () => {
  bench(
    'zbus MessageDecoder.push',
    () => {
      for (let i = 0; i < BATCH / PER_CHUNK; i++) decoder.push(stream);
    },
    opts,
  );
  bench(
    'node llhttp HTTPParser.execute',
    () => {
      for (let i = 0; i < BATCH / PER_CHUNK; i++) parser.execute(stream);
    },
    opts,
  );
});

// A head with many headers and bare LF line ends (RFC 9112 §2.2 lets a recipient accept them): the bare-CR check
// must not rescan the rest of the head for every line.
const LF_HEADERS = 200;
const lfOnly = Buffer.from(
  [
    'POST /MyTopic HTTP/1.1',
    ...Array.from({ length: LF_HEADERS }, (_, i) => `x-header-${i}: value ${i}`),
    'content-length: 0',
    '',
    '',
  ].join('\n'),
);
const lfDecoder = new MessageDecoder(
  () => {
    out.messages++;
  },
  { maxHeaderCount: LF_HEADERS + 1 },
);

describe(`decode a ${LF_HEADERS}-header head with bare LF line ends (x${BATCH})`, () => {
  bench(
    'zbus MessageDecoder.push',
    () => {
      for (let i = 0; i < BATCH; i++) lfDecoder.push(lfOnly);
    },
    opts,
  );
});

// A chunked upload (curl reading stdin, fetch with a stream body): 16 chunks of 256 bytes, copied out of the read.
const CHUNKS = 16;
const chunked = Buffer.from(
  `POST /MyTopic HTTP/1.1\r\ncmd: produce\r\ntopic: MyTopic\r\ntransfer-encoding: chunked\r\n\r\n${`100\r\n${'c'.repeat(256)}\r\n`.repeat(CHUNKS)}0\r\n\r\n`,
);

describe(`decode a ${CHUNKS * 256}-byte chunked body in ${CHUNKS} chunks (x${BATCH})`, () => {
  bench(
    'zbus MessageDecoder.push',
    () => {
      for (let i = 0; i < BATCH; i++) decoder.push(chunked);
    },
    opts,
  );
  bench(
    'node llhttp HTTPParser.execute',
    () => {
      for (let i = 0; i < BATCH; i++) parser.execute(chunked);
    },
    opts,
  );
});

describe(`encode the same produce (x${BATCH})`, () => {
  bench(
    'zbus encodeMessage (head + body in one buffer)',
    () => {
      for (let i = 0; i < BATCH; i++) encodeMessage(msg);
    },
    opts,
  );
  bench(
    'zbus encodeHead (string only)',
    () => {
      for (let i = 0; i < BATCH; i++) encodeHead(msg);
    },
    opts,
  );
});

// The tricks the codec relies on, each beside the simple version (style.md §5).
const NullProtoBag = function NullProtoBag() {} as unknown as new () => Record<string, string>;
NullProtoBag.prototype = Object.create(null);
const NAMES = ['cmd', 'topic', 'id', 'tag', 'content-type', 'x-extra'];

describe(`tricks (x${BATCH})`, () => {
  bench(
    'header bag: Object.create(null) + 6 headers',
    () => {
      for (let i = 0; i < BATCH; i++) {
        const h = Object.create(null) as Record<string, string>;
        for (const n of NAMES) h[n] = 'v';
        out.sink += Object.keys(h).length;
      }
    },
    opts,
  );
  bench(
    'header bag: constructor with a null-prototype prototype + 6 headers',
    () => {
      for (let i = 0; i < BATCH; i++) {
        const h = new NullProtoBag();
        for (const n of NAMES) h[n] = 'v';
        out.sink += Object.keys(h).length;
      }
    },
    opts,
  );
  bench(
    'output buffer: new Uint8Array(244)',
    () => {
      for (let i = 0; i < BATCH; i++) out.sink += new Uint8Array(244).length;
    },
    opts,
  );
  let slab = new Uint8Array(65536);
  let off = 0;
  bench(
    'output buffer: subarray of a 64 KiB slab',
    () => {
      for (let i = 0; i < BATCH; i++) {
        if (off + 244 > slab.length) {
          slab = new Uint8Array(65536);
          off = 0;
        }
        out.sink += slab.subarray(off, off + 244).length;
        off += 248;
      }
    },
    opts,
  );
});
