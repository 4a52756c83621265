import net from 'node:net';
import { Message, type ZbusError } from '@zbus/protocol';
import { describe, expect, it } from 'vitest';
import { parseHostPort, tcpTransport } from '../src/index.js';

describe('parseHostPort', () => {
  it('reads host:port forms', () => {
    expect(parseHostPort('127.0.0.1:15555')).toEqual({ host: '127.0.0.1', port: 15555, tls: false });
    expect(parseHostPort('tcp://example.com')).toEqual({ host: 'example.com', port: 15555, tls: false });
    expect(parseHostPort('tls://[::1]:1234')).toEqual({ host: '::1', port: 1234, tls: true });
    expect(() => parseHostPort('h:99999')).toThrow(/bad address/);
  });
});

describe('tcpTransport', () => {
  it('reports the connection closed at once when send finds it closed before its close event', async () => {
    // A peer that half-closes right after accepting (as a killed broker's kernel does) and keeps reading.
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('data', () => {});
      s.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    let closedReports = 0;
    const transport = await tcpTransport()({
      address: `127.0.0.1:${port}`,
      connectTimeout: 10_000,
      handlers: { data: () => {}, closed: () => closedReports++ },
    });
    try {
      // Send until the peer's FIN is in; then the throw must come with `closed` reported already: a caller
      // retrying in microtasks would never let the socket's 'close' event in (the HA test's publish loop spun so).
      const ping = new Message({ headers: { cmd: 'ping' } });
      let failure: { error: unknown; reportsAtThrow: number } | undefined;
      for (let i = 0; i < 10_000 && failure === undefined; i++) {
        try {
          transport.send(ping);
          await new Promise((resolve) => setImmediate(resolve));
        } catch (error) {
          failure = { error, reportsAtThrow: closedReports };
        }
      }
      expect((failure?.error as ZbusError | undefined)?.code).toBe('ZBUS_ERR_CONNECTION_CLOSED');
      expect(failure?.reportsAtThrow).toBe(1);
      // Once: a second send throws without reporting it again.
      expect(() => transport.send(ping)).toThrow(/closed/);
      expect(closedReports).toBe(1);
    } finally {
      transport.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
