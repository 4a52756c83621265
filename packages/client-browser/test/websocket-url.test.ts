// Address forms the WebSocket transport accepts (no browser needed).
import { afterEach, describe, expect, it } from 'vitest';
import { webSocketTransport, webSocketUrl } from '../src/websocket.js';

describe('webSocketUrl', () => {
  afterEach(() => {
    delete (globalThis as { location?: unknown }).location;
  });

  it('keeps ws:// and wss:// URLs and adds the path', () => {
    expect(webSocketUrl('ws://h:1')).toBe('ws://h:1/');
    expect(webSocketUrl('wss://h:1/zbus')).toBe('wss://h:1/zbus');
  });

  it('maps http(s):// and tcp:// to WebSocket URLs', () => {
    expect(webSocketUrl('http://h:1')).toBe('ws://h:1/');
    expect(webSocketUrl('https://h')).toBe('wss://h/');
    expect(webSocketUrl('tcp://h:15555')).toBe('ws://h:15555/');
  });

  it('uses ws:// for a bare host:port, wss:// on an https page', () => {
    expect(webSocketUrl('127.0.0.1:15555')).toBe('ws://127.0.0.1:15555/');
    (globalThis as { location?: unknown }).location = { protocol: 'https:', host: 'mq.example:443' };
    expect(webSocketUrl('mq.example:443')).toBe('wss://mq.example:443/');
  });

  it("defaults to the page's own host", () => {
    (globalThis as { location?: unknown }).location = { protocol: 'http:', host: 'localhost:15555' };
    expect(webSocketUrl('')).toBe('ws://localhost:15555/');
    expect(webSocketUrl('/')).toBe('ws://localhost:15555/');
  });

  it('rejects an empty address outside a page and unknown schemes', () => {
    expect(() => webSocketUrl('')).toThrow(/no address/);
    expect(() => webSocketUrl('ftp://h')).toThrow(/unsupported address scheme/);
  });
});

describe('webSocketTransport options', () => {
  it('rejects negative or non-numeric values, naming the option', () => {
    expect(() => webSocketTransport({ pingInterval: -1 })).toThrow(/pingInterval/);
    expect(() => webSocketTransport({ highWaterMark: Number.NaN })).toThrow(/highWaterMark/);
    expect(() => webSocketTransport({ pingInterval: 10, pingTimeout: 0 })).toThrow(/pingTimeout/);
  });

  it('fails to connect without a WebSocket in the runtime', async () => {
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    delete g.WebSocket;
    try {
      const factory = webSocketTransport();
      await expect(
        factory({ address: 'h:1', connectTimeout: 100, handlers: { data() {}, closed() {} } }),
      ).rejects.toThrow(/no WebSocket/);
    } finally {
      if (saved !== undefined) g.WebSocket = saved;
    }
  });
});
