// WebSocket sessions: after the handshake every frame carries one whole HTTP-formatted message, and the
// broker answers with text frames holding HTTP-formatted responses, as 0.11 does (zbus-protocol.md §1.3).

import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { decodeMessage, encodeMessage, type Message, type ZbusError } from '@zbus/protocol';
import { type WebSocket, WebSocketServer } from 'ws';
import { Session, type SessionWire } from '../session.js';
import { ConnectionFlow } from './flow.js';
import type { ConnectionHost } from './host.js';

const EMPTY = Buffer.alloc(0);

type Frame = Buffer | ArrayBuffer | Buffer[];

export class WsConnection implements SessionWire {
  readonly session: Session;
  readonly #ws: WebSocket;
  readonly #socket: Socket;
  readonly #host: ConnectionHost;
  readonly #flow: ConnectionFlow;
  /** Frames ws emitted after reading stopped (it empties its buffer first); taken when reading resumes. */
  readonly #deferred: Frame[] = [];

  constructor(ws: WebSocket, remote: string, host: ConnectionHost) {
    this.#ws = ws;
    this.#host = host;
    // ws keeps the socket it took in `_socket`: its write queue is what backpressure and the idle timer watch.
    const socket = (ws as unknown as { _socket: Socket })._socket;
    this.#socket = socket;
    this.session = new Session(this, remote, 'ws');
    this.#flow = new ConnectionFlow(socket, this.session, host, {
      pause: () => ws.pause(),
      resume: () => this.#resume(),
      kill: () => ws.terminate(),
    });
    ws.on('message', (data: Frame) => this.#onFrame(data));
    ws.on('close', () => {
      this.#flow.closed();
      this.#deferred.length = 0;
      this.session.closedByTransport();
    });
    ws.on('error', () => {});
    // 'drain' comes after a write found the socket's queue full, once it is empty again.
    socket.on('drain', () => {
      this.#flow.relieve();
      this.session.drained();
    });
    // Idle sessions close after idleTimeoutMs as TCP ones do (a heartbeat or any frame keeps them).
    host.idle?.watch(socket, () => {
      host.log.debug({ session: this.session.id }, 'idle timeout');
      ws.terminate();
    });
    host.attach(this.session);
  }

  get writable(): boolean {
    return this.#ws.readyState === 1 && this.#flow.writable;
  }

  get queuedBytes(): number {
    return this.#flow.queuedBytes;
  }

  #onFrame(data: Frame): void {
    // ws.pause() stops the socket, but frames already read still come: they wait here, in order.
    if (this.#flow.paused) this.#deferred.push(data);
    else this.#take(data);
  }

  #take(data: Frame): void {
    const bytes = Array.isArray(data)
      ? Buffer.concat(data)
      : data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : data;
    let msg: Message;
    try {
      msg = decodeMessage(bytes, {
        maxHeaderBytes: this.#host.options.maxHeaderBytes,
        maxHeaderCount: this.#host.options.maxHeaderCount,
        maxBodyBytes: this.#host.options.maxBodyBytes,
      });
    } catch (err) {
      // A bad frame does not desynchronise a WebSocket stream: answer it and carry on.
      this.#host.metrics.protocolError((err as ZbusError).code ?? 'ZBUS_ERR_BAD_MESSAGE');
      this.write(this.#host.errorReply(err as ZbusError));
      return;
    }
    this.#host.handle(this.session, msg);
    this.#flow.check();
  }

  /** The flow lets us read again: first the frames that came after it stopped us, then the socket. */
  #resume(): void {
    while (this.#deferred.length > 0 && !this.#flow.paused) this.#take(this.#deferred.shift()!);
    if (!this.#flow.paused) this.#ws.resume();
  }

  /** Text frames as 0.11 sends them; a body that is not UTF-8 would break a text frame, so it goes binary. */
  write(msg: Message, closeAfter = false): void {
    if (this.#ws.readyState !== 1) return;
    const bytes = encodeMessage(msg);
    this.#cork();
    this.#ws.send(bytes, { binary: !isUtf8(msg.body) });
    if (closeAfter) this.close();
    else this.#flow.check();
  }

  #corked = false;
  /** Frames written in one I/O turn leave in one writev, as on TCP connections (tcp-connection.ts). */
  #cork(): void {
    const socket = this.#socket;
    if (this.#corked || socket.destroyed) return;
    this.#corked = true;
    socket.cork();
    setImmediate(() => {
      this.#corked = false;
      socket.uncork();
    });
  }

  /** A request finished or its reply left: reading may resume (the in-flight cap holds on WebSocket too). */
  requestDone(): void {
    if (this.#flow.paused) this.#flow.relieve();
  }

  close(): void {
    this.#ws.close(1000);
  }
}

/** Builds the handshake request `ws` expects from our decoded message (ws only reads method, url, headers). */
export function createWebSocketUpgrader(host: ConnectionHost): {
  /** `cookieToken`: the token of the handshake's cookie, when the broker lets it count (its own pages). */
  upgrade(socket: Socket, req: Message, head: Uint8Array, cookieToken: string | undefined): void;
  close(): void;
} {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: host.options.maxHeaderBytes + host.options.maxBodyBytes,
    perMessageDeflate: false,
    clientTracking: true,
  });
  return {
    upgrade(socket, req, head, cookieToken) {
      const incoming = {
        method: req.method,
        url: req.url,
        headers: { ...req.headers },
        socket,
      } as unknown as IncomingMessage;
      const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
      // Frames that came in the same read as the handshake are handed to ws's own 'data' listener once it is
      // attached. Passing them as `head` makes ws unshift them onto a socket that is already flowing: they then
      // sit in its buffer until the next read, which a client waiting for its first reply never sends.
      wss.handleUpgrade(incoming, socket, EMPTY, (ws) => {
        const c = new WsConnection(ws, remote, host);
        c.session.cookieToken = cookieToken;
        if (head.length > 0) socket.emit('data', Buffer.from(head.buffer, head.byteOffset, head.length));
      });
      if (socket.isPaused()) socket.resume();
    },
    close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
