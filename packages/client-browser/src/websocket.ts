// The browser transport: one WebSocket, each frame one whole HTTP-formatted message (zbus-protocol.md §1.3,
// §4.4). The broker answers with text frames (binary when a body is not UTF-8); both reach the client's
// decoder as bytes, so the core never knows it is not on a TCP stream.
//
// Browsers cannot send WebSocket pings, and a socket that died while a laptop slept or the network changed
// may look open for minutes. So the transport checks liveness itself: when nothing has arrived for
// `pingInterval` ms it sends `cmd: ping` (answered by zbus-ts with 200; a 0.11 broker answers 400, which is
// just as good: any frame proves the socket is alive) and closes the connection when nothing at all arrives
// within `pingTimeout`. The core client then reconnects and resubscribes.

import type { Transport, TransportConnectOptions, TransportFactory } from '@zbus/client-core';
import { encodeMessage, Message, ZbusError } from '@zbus/protocol';
import { onWake } from './lifecycle.js';

/** Options of {@link webSocketTransport}. */
export interface WebSocketTransportOptions {
  /**
   * Milliseconds without any inbound frame before the transport sends a `ping`. `0` turns the check off.
   * @default 20000
   */
  pingInterval?: number;
  /**
   * Milliseconds a `ping` may wait for any inbound frame before the socket is taken for dead and closed.
   * @default 10000
   */
  pingTimeout?: number;
  /**
   * `bufferedAmount` (bytes) above which `send` returns false; `drain` follows when it falls below.
   * @default 4194304 (4 MiB)
   */
  highWaterMark?: number;
  /** WebSocket subprotocols to offer. */
  protocols?: string | string[];
  /** A WebSocket constructor (tests, or runtimes that have one elsewhere). @default globalThis.WebSocket */
  WebSocket?: typeof WebSocket;
}

export const TRANSPORT_DEFAULTS = {
  pingInterval: 20_000,
  pingTimeout: 10_000,
  highWaterMark: 4 * 1024 * 1024,
} as const satisfies Required<
  Pick<WebSocketTransportOptions, 'pingInterval' | 'pingTimeout' | 'highWaterMark'>
>;

function invalid(message: string): ZbusError {
  return new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', message);
}

function pageLocation(): { protocol: string; host: string } | undefined {
  const l = (globalThis as { location?: { protocol?: string; host?: string } }).location;
  return l?.host ? { protocol: l.protocol ?? 'http:', host: l.host } : undefined;
}

/**
 * The WebSocket URL for an address: `ws://` and `wss://` URLs are kept; `http(s)://` become `ws(s)://`; a bare
 * `host:port` gets `wss://` on an https page and `ws://` otherwise; an empty address (or `'/'`) is the page's
 * own host. The path defaults to `/`.
 */
export function webSocketUrl(address: string): string {
  const here = pageLocation();
  let a = address.trim();
  if (a === '' || a === '/') {
    if (here === undefined) throw invalid('no address given and no page location to default to');
    a = here.host;
  }
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(a);
  if (m) {
    const scheme = m[1]!.toLowerCase();
    const rest = a.slice(m[0].length);
    const path = rest.includes('/') ? '' : '/';
    if (scheme === 'ws' || scheme === 'wss') return `${scheme}://${rest}${path}`;
    if (scheme === 'http') return `ws://${rest}${path}`;
    if (scheme === 'https') return `wss://${rest}${path}`;
    if (scheme === 'tcp') a = rest;
    else throw invalid(`unsupported address scheme ${JSON.stringify(scheme)} in ${JSON.stringify(address)}`);
  }
  const secure = here?.protocol === 'https:';
  return `${secure ? 'wss' : 'ws'}://${a}${a.includes('/') ? '' : '/'}`;
}

const encoder = new TextEncoder();
let pingSeq = 0;
const pingPrefix = `zbus-ping-${Math.random().toString(36).slice(2, 8)}-`;

/** Live transports, so that a wake-up (tab visible again, network back) can check them at once. */
const live = new Set<WsTransport>();
onWake(() => {
  for (const t of live) t.probe();
});

class WsTransport implements Transport {
  readonly #ws: WebSocket;
  readonly #o: TransportConnectOptions;
  readonly #opts: Required<Pick<WebSocketTransportOptions, 'pingInterval' | 'pingTimeout' | 'highWaterMark'>>;
  #closed = false;
  #lastIn = Date.now();
  #pingId: string | undefined;
  #pingTimer: ReturnType<typeof setTimeout> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #drainTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    ws: WebSocket,
    o: TransportConnectOptions,
    opts: Required<Pick<WebSocketTransportOptions, 'pingInterval' | 'pingTimeout' | 'highWaterMark'>>,
  ) {
    this.#ws = ws;
    this.#o = o;
    this.#opts = opts;
    ws.onmessage = (ev: MessageEvent) => this.#onFrame(ev.data);
    ws.onclose = (ev: CloseEvent) =>
      this.#end(ev.wasClean ? undefined : new Error(`websocket closed (code ${ev.code})`));
    ws.onerror = () => this.#end(new Error('websocket error'));
    live.add(this);
    this.#armPing();
  }

  #onFrame(data: unknown): void {
    if (this.#closed) return;
    this.#lastIn = Date.now();
    if (this.#deadline !== undefined) {
      clearTimeout(this.#deadline);
      this.#deadline = undefined;
    }
    let bytes: Uint8Array;
    if (typeof data === 'string') {
      // The answer to our own ping: swallow it, so the client sees no message nobody asked for.
      const id = this.#pingId;
      if (id !== undefined && data.length < 512 && data.includes(`\nid: ${id}\r`)) {
        this.#pingId = undefined;
        return;
      }
      bytes = encoder.encode(data);
    } else if (data instanceof ArrayBuffer) {
      bytes = new Uint8Array(data);
    } else {
      return; // binaryType is 'arraybuffer': a Blob cannot arrive
    }
    this.#o.handlers.data(bytes);
  }

  /** Schedules the next liveness check `pingInterval` ms after the last inbound frame. */
  #armPing(): void {
    const every = this.#opts.pingInterval;
    if (every <= 0 || this.#closed) return;
    if (this.#pingTimer !== undefined) clearTimeout(this.#pingTimer);
    const wait = Math.max(0, this.#lastIn + every - Date.now());
    this.#pingTimer = setTimeout(() => {
      this.#pingTimer = undefined;
      if (this.#closed) return;
      if (Date.now() - this.#lastIn >= every) this.probe();
      this.#armPing();
    }, wait);
  }

  /** Sends a ping now and closes the socket if nothing arrives within `pingTimeout`. */
  probe(): void {
    if (this.#closed || this.#deadline !== undefined || this.#opts.pingInterval <= 0) return;
    const id = `${pingPrefix}${++pingSeq}`;
    this.#pingId = id;
    try {
      this.#ws.send(encodeMessage(new Message({ headers: { cmd: 'ping', id } })));
    } catch {
      this.#end(new Error('websocket send failed'));
      return;
    }
    const timeout = this.#opts.pingTimeout;
    this.#deadline = setTimeout(() => {
      this.#deadline = undefined;
      this.#end(new Error(`no frame from the broker within ${timeout} ms of a ping (pingTimeout)`));
    }, timeout);
  }

  send(msg: Message): boolean {
    if (this.#closed || this.#ws.readyState !== 1) {
      // Closing before its close event came: ended now, or a caller retrying at once (in microtasks) would spin.
      this.#end(undefined);
      throw new ZbusError('ZBUS_ERR_CONNECTION_CLOSED', 'websocket is closed');
    }
    // Binary frames: the broker reads either kind, and bytes survive any body (text frames must be UTF-8).
    this.#ws.send(encodeMessage(msg));
    if (this.#ws.bufferedAmount < this.#opts.highWaterMark) return true;
    this.#watchDrain();
    return false;
  }

  /** Browsers have no drain event: poll `bufferedAmount` while over the mark. */
  #watchDrain(): void {
    if (this.#drainTimer !== undefined) return;
    this.#drainTimer = setInterval(() => {
      if (this.#closed || this.#ws.bufferedAmount < this.#opts.highWaterMark) {
        clearInterval(this.#drainTimer);
        this.#drainTimer = undefined;
        if (!this.#closed) this.#o.handlers.drain?.();
      }
    }, 20);
  }

  close(): void {
    this.#end(undefined);
  }

  /**
   * Reports the end once, at once: a socket on a dead network can take minutes to fire `close`, and the client
   * should be reconnecting by then.
   */
  #end(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    if (this.#pingTimer !== undefined) clearTimeout(this.#pingTimer);
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    if (this.#drainTimer !== undefined) clearInterval(this.#drainTimer);
    const ws = this.#ws;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close();
    } catch {
      // already closing
    }
    this.#o.handlers.closed(error);
  }
}

/**
 * A {@link TransportFactory} over the browser's WebSocket: give it to `MqClient` (the browser classes of this
 * package use it already). The address is `host:port`, a `ws://`/`wss://`/`http(s)://` URL, or empty for the
 * page's own host.
 */
export function webSocketTransport(options: WebSocketTransportOptions = {}): TransportFactory {
  const opts = {
    pingInterval: options.pingInterval ?? TRANSPORT_DEFAULTS.pingInterval,
    pingTimeout: options.pingTimeout ?? TRANSPORT_DEFAULTS.pingTimeout,
    highWaterMark: options.highWaterMark ?? TRANSPORT_DEFAULTS.highWaterMark,
  };
  for (const [k, v] of Object.entries(opts)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw invalid(`${k} must be a non-negative number, got ${String(v)}`);
    }
  }
  if (opts.pingInterval > 0 && opts.pingTimeout <= 0) {
    throw invalid('pingTimeout must be > 0 when pingInterval is set');
  }
  return (o: TransportConnectOptions): Promise<Transport> => {
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (Ctor === undefined) return Promise.reject(invalid('no WebSocket in this runtime'));
    let url: string;
    try {
      url = webSocketUrl(o.address);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Transport>((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = options.protocols === undefined ? new Ctor(url) : new Ctor(url, options.protocols);
      } catch (err) {
        reject(err);
        return;
      }
      ws.binaryType = 'arraybuffer';
      const fail = (reason: string) => {
        clearTimeout(timer);
        ws.onopen = null;
        ws.onerror = null;
        ws.onclose = null;
        try {
          ws.close();
        } catch {
          // never opened
        }
        reject(new Error(reason));
      };
      const timer = setTimeout(
        () => fail(`websocket ${url} did not open within ${o.connectTimeout} ms (connectTimeout)`),
        o.connectTimeout,
      );
      ws.onopen = () => {
        clearTimeout(timer);
        ws.onopen = null;
        resolve(new WsTransport(ws, o, opts));
      };
      ws.onerror = () => fail(`websocket ${url} failed to open`);
      ws.onclose = (ev: CloseEvent) => fail(`websocket ${url} closed while opening (code ${ev.code})`);
    });
  };
}
