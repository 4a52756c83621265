import { connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import type { Transport, TransportFactory, TransportHandlers } from '@zbus/client-core';
import { encodeHead, encodeMessage, type Message, ZbusError } from '@zbus/protocol';

/** Options of the Node TCP transport. */
export interface TcpTransportOptions {
  /**
   * TLS: `true` for defaults, or `tls.connect` options (ca, cert, key, servername, rejectUnauthorized, ...).
   * An address starting with `tls://` or `ssl://` turns TLS on too.
   * @default false
   */
  tls?: boolean | ConnectionOptions;
  /**
   * `send` returns false once this many bytes wait in the socket's buffer.
   * @default 4194304 (4 MiB)
   */
  highWaterMark?: number;
}

export const DEFAULT_PORT = 15555;
/** Bodies up to this size are copied into one buffer with their head. */
const SMALL_BODY = 8 * 1024;

/** `host:port`, `[v6]:port`, `host` (port 15555), with an optional `tcp://`, `tls://` or `ssl://` prefix. */
export function parseHostPort(address: string): { host: string; port: number; tls: boolean } {
  let a = address.trim();
  let tls = false;
  const scheme = /^([a-z]+):\/\//i.exec(a);
  if (scheme) {
    const s = (scheme[1] as string).toLowerCase();
    if (s === 'tls' || s === 'ssl') tls = true;
    else if (s !== 'tcp')
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `unsupported scheme in ${address}`);
    a = a.slice(scheme[0].length);
  }
  a = a.replace(/\/+$/, '');
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(a);
  if (v6) {
    host = v6[1] as string;
    portText = v6[2];
  } else {
    const i = a.lastIndexOf(':');
    if (i === -1) host = a;
    else {
      host = a.slice(0, i);
      portText = a.slice(i + 1);
    }
  }
  const port = portText === undefined ? DEFAULT_PORT : Number(portText);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ZbusError(
      'ZBUS_ERR_INVALID_ARGUMENT',
      `bad address ${JSON.stringify(address)} (expected host:port)`,
    );
  }
  return { host, port, tls };
}

/**
 * Node TCP (and TLS) transport. Writes made in the same tick are corked together and go out in one syscall,
 * so pipelined publishes batch on the wire without waiting for each other.
 */
class TcpTransport implements Transport {
  readonly #socket: Socket;
  readonly #highWaterMark: number;
  #corked = false;
  #error: Error | undefined;
  readonly #uncork = () => {
    this.#corked = false;
    this.#socket.uncork();
  };

  constructor(socket: Socket, handlers: TransportHandlers, highWaterMark: number) {
    this.#socket = socket;
    this.#highWaterMark = highWaterMark;
    socket.on('data', (chunk: Buffer) => handlers.data(chunk));
    socket.on('error', (err) => {
      this.#error = err;
    });
    socket.on('close', () => handlers.closed(this.#error));
    socket.on('drain', () => handlers.drain?.());
  }

  send(msg: Message): boolean {
    const s = this.#socket;
    if (s.destroyed || !s.writable) {
      throw new ZbusError('ZBUS_ERR_CONNECTION_CLOSED', 'connection is closed');
    }
    if (!this.#corked) {
      this.#corked = true;
      s.cork();
      process.nextTick(this.#uncork);
    }
    if (msg.body.length <= SMALL_BODY) {
      // One buffer (from the protocol's slab) is one stream write instead of two.
      s.write(encodeMessage(msg));
    } else {
      // A large body is written as it is rather than copied behind its head.
      s.write(encodeHead(msg), 'utf8');
      s.write(msg.body);
    }
    return s.writableLength < this.#highWaterMark;
  }

  close(): void {
    if (this.#socket.destroyed) return;
    this.#socket.end();
    // A peer that never closes its side must not keep us: destroy shortly after.
    setTimeout(() => this.#socket.destroy(), 1_000).unref();
  }
}

/** A transport factory for `MqClient` over TCP, or TLS when asked. */
export function tcpTransport(options: TcpTransportOptions = {}): TransportFactory {
  const highWaterMark = options.highWaterMark ?? 4 * 1024 * 1024;
  return ({ address, connectTimeout, handlers }) =>
    new Promise<Transport>((resolve, reject) => {
      let target: { host: string; port: number; tls: boolean };
      try {
        target = parseHostPort(address);
      } catch (err) {
        reject(err);
        return;
      }
      const useTls = target.tls || options.tls === true || typeof options.tls === 'object';
      const socket: Socket = useTls
        ? tlsConnect({
            host: target.host,
            port: target.port,
            servername: /^[\d.]+$|:/.test(target.host) ? undefined : target.host,
            ...(typeof options.tls === 'object' ? options.tls : {}),
          })
        : netConnect({ host: target.host, port: target.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy(new Error(`connect to ${address} timed out after ${connectTimeout} ms`));
      }, connectTimeout);
      const onError = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once('error', onError);
      socket.once(useTls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new TcpTransport(socket, handlers, highWaterMark));
      });
    });
}
