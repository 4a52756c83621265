// TLS on the same port (decisions.md §3): a connection whose first byte is 0x16 is a TLS ClientHello; anything
// else is plain HTTP/1.1. The certificate is self-signed, generated with openssl (testkit).
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { encodeMessage, Message, MessageDecoder } from '@zbus/protocol';
import { scaled, selfSignedCert } from '@zbus/testkit';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { hasCommand, startTestBroker, WsClient, wsConnect } from './helpers.js';

const haveOpenssl = hasCommand('openssl');
let cert = '';
let key = '';

beforeAll(() => {
  if (haveOpenssl) ({ cert, key } = selfSignedCert());
});

/** One zbus request over a TLS connection that trusts the test certificate. */
function tlsRequest(port: number, init: ConstructorParameters<typeof Message>[0]): Promise<Message> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', ca: cert, servername: 'localhost' }, () => {
      s.write(encodeMessage(new Message(init)));
    });
    onTestFinished(() => {
      s.destroy();
    });
    const d = new MessageDecoder((m) => {
      resolve(m);
      s.end();
    });
    s.on('data', (chunk: Buffer) => d.push(chunk));
    s.once('error', reject);
    s.setTimeout(scaled(5000), () => reject(new Error('no TLS reply in time')));
  });
}

describe.skipIf(!haveOpenssl)('TLS on the same port (openssl generates the certificate)', () => {
  it('serves zbus over TLS and plain TCP on one port, and announces sslEnabled', async () => {
    const b = await startTestBroker({ tls: { cert, key } });
    const r = await tlsRequest(b.port, { headers: { cmd: 'declare', topic: 'T', id: 'd1' } });
    expect(r.status).toBe(200);
    expect(r.headers.id).toBe('d1');
    const p = await tlsRequest(b.port, { headers: { cmd: 'produce', topic: 'T', id: 'p1' }, body: 'secret' });
    expect(p.status).toBe(200);
    const plain = await b.raw();
    const c = await plain.request({ headers: { cmd: 'consume', topic: 'T' } });
    expect(c.bodyText()).toBe('secret');
    const info = await plain.request({ headers: { cmd: 'server' } });
    expect(info.json<{ serverAddress: { sslEnabled: boolean } }>().serverAddress.sslEnabled).toBe(true);
  });

  it('answers cmd=ssl with its own certificate, and 404 for a server whose certificate it does not hold', async () => {
    const b = await startTestBroker({ tls: { cert, key } });
    const c = await b.raw();
    const own = await c.request({ headers: { cmd: 'ssl' } });
    expect(own.status).toBe(200);
    expect(own.bodyText()).toBe(cert);
    const other = await c.request({ headers: { cmd: 'ssl', server: '10.9.9.9:15555' } });
    expect(other.status).toBe(404);
  });

  it('answers HTTPS requests', async () => {
    const b = await startTestBroker({ tls: { cert, key } });
    const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: b.port,
          path: '/healthz',
          ca: cert,
          servername: 'localhost',
          agent: false,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (s: string) => {
            text += s;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.once('error', reject);
      req.end();
    });
    expect(body).toEqual({ status: 200, text: 'ok\n' });
  });

  it('upgrades a wss:// connection', async () => {
    const b = await startTestBroker({ tls: { cert, key } });
    const ws = await WsClient.connect(`wss://127.0.0.1:${b.port}/`, { ca: cert });
    onTestFinished(() => ws.close());
    expect((await ws.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
    // ws:// on the same port still works.
    const plain = await wsConnect(b.port);
    expect((await plain.request({ headers: { cmd: 'ping' } })).bodyText()).toBe('OK');
  });
});
