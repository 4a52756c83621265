// The WebSocket transport against a fake WebSocket (no browser): framing, the liveness ping, backpressure,
// and page wake-ups cutting a reconnect backoff short.
import { decodeMessage, encodeMessage, Message } from '@zbus/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MqClient, wakeUp } from '../src/index.js';
import { webSocketTransport } from '../src/websocket.js';

class FakeWebSocket {
  static all: FakeWebSocket[] = [];
  static refuse = false;
  static hang = false;
  readyState = 0;
  binaryType = 'blob';
  bufferedAmount = 0;
  sent: Message[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; wasClean: boolean }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeWebSocket.all.push(this);
    queueMicrotask(() => {
      if (FakeWebSocket.hang) return;
      if (FakeWebSocket.refuse) {
        this.readyState = 3;
        this.onerror?.();
        return;
      }
      this.readyState = 1;
      this.onopen?.();
    });
  }
  send(data: Uint8Array): void {
    this.sent.push(decodeMessage(data.slice()));
  }
  close(): void {
    this.readyState = 3;
  }
  /** The broker answers: a text frame, as zbus does. */
  reply(msg: Message): void {
    this.onmessage?.({ data: new TextDecoder().decode(encodeMessage(msg)) });
  }
  drop(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1006, wasClean: false });
  }
}

const WS = FakeWebSocket as unknown as typeof WebSocket;

function handlers() {
  const got: Uint8Array[] = [];
  const ends: (Error | undefined)[] = [];
  let drains = 0;
  return {
    got,
    ends,
    get drains() {
      return drains;
    },
    h: {
      data: (c: Uint8Array) => got.push(c),
      closed: (e?: Error) => ends.push(e),
      drain: () => drains++,
    },
  };
}

beforeEach(() => {
  FakeWebSocket.all = [];
  FakeWebSocket.refuse = false;
  FakeWebSocket.hang = false;
});
afterEach(() => {
  vi.useRealTimers();
});

describe('webSocketTransport', () => {
  it('opens ws://host:port/ with binaryType arraybuffer, sends binary frames, delivers text frames as bytes', async () => {
    const rec = handlers();
    const t = await webSocketTransport({ WebSocket: WS })({
      address: '127.0.0.1:1',
      connectTimeout: 1000,
      handlers: rec.h,
    });
    const ws = FakeWebSocket.all[0]!;
    expect(ws.url).toBe('ws://127.0.0.1:1/');
    expect(ws.binaryType).toBe('arraybuffer');
    expect(t.send(new Message({ headers: { cmd: 'query', id: 'q1' } }))).toBe(true);
    expect(ws.sent[0]!.headers.cmd).toBe('query');
    ws.reply(new Message({ status: 200, headers: { id: 'q1' }, body: 'héllo' }));
    const back = decodeMessage(rec.got[0]!);
    expect(back.bodyText()).toBe('héllo');
    ws.onmessage?.({ data: new Uint8Array([1, 2]).buffer });
    expect([...rec.got[1]!]).toEqual([1, 2]);
    t.close();
    expect(rec.ends).toEqual([undefined]);
  });

  it('rejects when the socket fails to open or opens too slowly (connectTimeout)', async () => {
    FakeWebSocket.refuse = true;
    const f = webSocketTransport({ WebSocket: WS });
    await expect(f({ address: 'h:1', connectTimeout: 1000, handlers: handlers().h })).rejects.toThrow(
      /failed to open/,
    );
    FakeWebSocket.refuse = false;
    FakeWebSocket.hang = true;
    vi.useFakeTimers();
    const p = f({ address: 'h:1', connectTimeout: 50, handlers: handlers().h });
    const check = expect(p).rejects.toThrow(/did not open within 50 ms \(connectTimeout\)/);
    await vi.advanceTimersByTimeAsync(60);
    await check;
  });

  it('pings when nothing arrives, swallows the answer, and closes a socket that stays silent', async () => {
    vi.useFakeTimers();
    const rec = handlers();
    const p = webSocketTransport({ WebSocket: WS, pingInterval: 1000, pingTimeout: 500 })({
      address: 'h:1',
      connectTimeout: 1000,
      handlers: rec.h,
    });
    await vi.advanceTimersByTimeAsync(0);
    await p;
    const ws = FakeWebSocket.all[0]!;
    await vi.advanceTimersByTimeAsync(1000);
    const ping = ws.sent.at(-1)!;
    expect(ping.headers.cmd).toBe('ping');
    ws.reply(new Message({ status: 200, headers: { id: ping.headers.id ?? '' }, body: 'OK' }));
    expect(rec.got).toHaveLength(0); // the answer to our own ping is not the client's business
    expect(rec.ends).toHaveLength(0);
    // Now the broker goes silent: the next ping gets no answer.
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.sent.filter((m) => m.headers.cmd === 'ping')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(rec.ends).toHaveLength(1);
    expect(rec.ends[0]?.message).toMatch(/pingTimeout/);
  });

  it('reports backpressure over highWaterMark and drains when bufferedAmount falls', async () => {
    vi.useFakeTimers();
    const rec = handlers();
    const p = webSocketTransport({ WebSocket: WS, highWaterMark: 100, pingInterval: 0 })({
      address: 'h:1',
      connectTimeout: 1000,
      handlers: rec.h,
    });
    await vi.advanceTimersByTimeAsync(0);
    const t = await p;
    const ws = FakeWebSocket.all[0]!;
    ws.bufferedAmount = 500;
    expect(t.send(new Message({ headers: { cmd: 'produce', topic: 't' } }))).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(rec.drains).toBe(0);
    ws.bufferedAmount = 0;
    await vi.advanceTimersByTimeAsync(25);
    expect(rec.drains).toBe(1);
  });

  it('reports an unclean close as an error, once', async () => {
    const rec = handlers();
    await webSocketTransport({ WebSocket: WS })({ address: 'h:1', connectTimeout: 1000, handlers: rec.h });
    const ws = FakeWebSocket.all[0]!;
    ws.drop();
    ws.drop();
    expect(rec.ends).toHaveLength(1);
    expect(rec.ends[0]?.message).toMatch(/1006/);
  });
});

describe('page wake-ups', () => {
  it('make a reconnecting client retry at once instead of waiting out its backoff', async () => {
    const client = new MqClient('h:1', {
      transport: webSocketTransport({ WebSocket: WS, pingInterval: 0 }),
      reconnectDelay: 60_000,
      reconnectMaxDelay: 60_000,
      heartbeatInterval: 0,
    });
    client.on('error', () => {});
    await client.connect();
    FakeWebSocket.all[0]!.drop();
    expect(client.state).toBe('reconnecting');
    const reconnected = new Promise<void>((resolve) => client.on('connected', () => resolve()));
    wakeUp();
    await reconnected;
    expect(client.state).toBe('open');
    expect(FakeWebSocket.all).toHaveLength(2);
    await client.close();
  });
});
