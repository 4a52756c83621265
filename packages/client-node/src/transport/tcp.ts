import { connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import type { Transport, TransportFactory, TransportHandlers } from '@zbus/client-core';
import {
  encodeHead,
  encodeHeaderLine,
  type Message,
  putAscii,
  putDecimal,
  writeHead,
  ZbusError,
} from '@zbus/protocol';
import { isLastId } from '../ids.js';

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
/** Bodies up to this size are copied into the batch with their head; larger ones are written as they are. */
const SMALL_BODY = 8 * 1024;
/** Size of the buffers messages are encoded into, back to back, until the end of the tick. */
const BATCH_BYTES = 64 * 1024;

/**
 * On a connection whose consumes all have a window of at least LAZY_ACK_WINDOW, automatic acks wait up to
 * ACK_DELAY_MS, LAZY_ACKS at most, to leave together: one write and one wake-up of the broker per few acks instead
 * of one per read of deliveries. So few held acks leave such a window, and an ack-required group's ack window
 * (default 100), far from dry.
 */
const LAZY_ACK_WINDOW = 64;
const LAZY_ACKS = 8;
const ACK_DELAY_MS = 1;

/** The header names of the ack a Consumer sends per delivered message, in the order it sets them. */
const ACK_KEYS = ['cmd', 'topic', 'consume_group', 'offset', 'ack', 'id'];
const ACK_MIDDLE = Buffer.from('\r\nack: false\r\nid: ', 'latin1');
const ACK_END = Buffer.from('\r\nconnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n', 'latin1');

/** The header names of a publish the Producer builds (string or bytes body, no options), in the order it sets them. */
const PRODUCE_KEYS = ['cmd', 'topic', 'content-type', 'id'];
const PRODUCE_MIDDLE = Buffer.from('\r\nconnection: Keep-Alive\r\ncontent-length: ', 'latin1');

/**
 * The bytes of a request of ACK_KEYS or PRODUCE_KEYS up to its fourth header's value (start line, `cmd`, and the two
 * headers after it), kept for the last pair of their values: an ack's topic and group, a publish's topic and content
 * type. The rest of the request is its own values and fixed framing.
 */
interface KeptHead {
  readonly second: string;
  readonly third: string;
  readonly bytes: Buffer;
}

/** `kept` when it was made for `second` and `third`, else the bytes of a `cmd` request of `keys` for them. */
function keptHead(
  kept: KeptHead | undefined,
  cmd: string,
  keys: readonly string[],
  second: string,
  third: string,
): KeptHead {
  if (kept !== undefined && kept.second === second && kept.third === third) return kept;
  const text = `GET / HTTP/1.1\r\ncmd: ${cmd}\r\n${encodeHeaderLine(keys[1]!, second)}${encodeHeaderLine(keys[2]!, third)}${keys[3]}: `;
  return { second, third, bytes: Buffer.from(text, 'utf8') };
}

/**
 * Whether `msg` is a request as the core client builds it: `GET / HTTP/1.1`, its own head, and exactly the headers
 * `keys` in that order (so that bytes kept for its first headers are the ones writeHead would write).
 */
function coreShaped(msg: Message, keys: readonly string[]): boolean {
  if (msg.headTail !== undefined || msg.status !== undefined) return false;
  if (msg.method !== 'GET' || msg.url !== '/' || msg.httpVersion !== '1.1') return false;
  let i = 0;
  for (const k in msg.headers) if (k !== keys[i++]) return false;
  return i === keys.length;
}

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
 * Node TCP (and TLS) transport. Messages sent in the same tick are encoded back to back into one buffer and
 * handed to the socket once at the end of the tick (one stream write and one syscall, not one stream write per
 * message), so pipelined publishes batch on the wire without waiting for each other.
 */
class TcpTransport implements Transport {
  readonly #socket: Socket;
  readonly #handlers: TransportHandlers;
  readonly #highWaterMark: number;
  /** The batch buffer: [#start, #end) is encoded and not yet written; bytes before #start belong to the socket. */
  #buf: Buffer = Buffer.allocUnsafeSlow(BATCH_BYTES);
  #start = 0;
  #end = 0;
  #scheduled = false;
  /** `send` returned false: `drain` is owed, from the socket's drain or from the end-of-tick write. */
  #owesDrain = false;
  #error: Error | undefined;
  /** `closed` was reported (once: from the socket's 'close', or earlier from a `send` that found it closed). */
  #reported = false;
  readonly #endOfTick = () => this.#writeBatch();
  #ackHead: KeptHead | undefined;
  #produceHead: KeptHead | undefined;
  /** The smallest consume_window of the consumes sent on this connection (0: none yet). */
  #window = 0;
  /** Automatic acks in the batch that wait for #ackTimer rather than for the end of the tick. */
  #lazyAcks = 0;
  #ackTimer: NodeJS.Timeout | undefined;
  readonly #ackDue = () => {
    if (!this.#scheduled) this.#writeBatch();
  };

  constructor(socket: Socket, handlers: TransportHandlers, highWaterMark: number) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#highWaterMark = highWaterMark;
    socket.on('data', (chunk: Buffer) => handlers.data(chunk));
    socket.on('error', (err) => {
      this.#error = err;
    });
    socket.on('close', () => this.#reportClosed());
    socket.on('drain', () => this.#drained());
  }

  send(msg: Message): boolean {
    const s = this.#socket;
    if (s.destroyed || !s.writable) {
      // Closed before its 'close' event came (the peer's FIN is in; 'close' follows a turn later). Reported now:
      // a caller that retries at once, in microtasks, never lets that event in and would spin on this throw.
      this.#reportClosed();
      throw new ZbusError('ZBUS_ERR_CONNECTION_CLOSED', 'connection is closed');
    }
    const tail = msg.headTail;
    const body = msg.body;
    const small = body.length <= SMALL_BODY;
    const rest = (tail === undefined ? 0 : tail.length) + (small ? body.length : 0);
    // The head goes straight into the batch; a head that does not fit in what is left, or is not ASCII, goes
    // through encodeHead's string into a new batch buffer.
    const cmd = msg.headers.cmd;
    let at = -1;
    let lazy = false;
    if (cmd === 'produce') at = this.#writeProduce(msg);
    else if (cmd === 'ack') {
      at = this.#writeAck(msg);
      lazy = at >= 0 && this.#window >= LAZY_ACK_WINDOW;
    } else if (cmd === 'consume') {
      const w = Number(msg.headers.consume_window) || 1;
      this.#window = this.#window === 0 ? w : Math.min(this.#window, w);
    }
    if (at < 0) at = writeHead(msg, this.#buf, this.#end);
    if (at < 0 || at + rest > this.#buf.length) {
      const head = encodeHead(msg);
      // At most 3 bytes per UTF-16 unit of the head.
      const need = head.length * 3 + rest;
      this.#handOver();
      this.#buf = Buffer.allocUnsafeSlow(Math.max(BATCH_BYTES, need));
      this.#start = 0;
      this.#end = 0;
      at = this.#buf.write(head, 0);
    }
    const buf = this.#buf;
    if (tail !== undefined) {
      buf.set(tail, at);
      at += tail.length;
    }
    if (small) {
      if (body.length !== 0) buf.set(body, at);
      this.#end = at + body.length;
    } else {
      // A large body is written as it is rather than copied behind its head.
      this.#end = at;
      this.#handOver();
      s.write(body);
    }
    if (!this.#scheduled && !(lazy && this.#deferAck())) {
      this.#scheduled = true;
      process.nextTick(this.#endOfTick);
    }
    if (s.writableLength + (this.#end - this.#start) < this.#highWaterMark) return true;
    this.#owesDrain = true;
    return false;
  }

  /**
   * A Consumer's automatic ack (one per delivered message), written into the batch as writeHead would write it,
   * but with its start line, `cmd`, topic and group copied from bytes encoded once per topic and group: writeHead
   * checks and copies every character of every name and value. Returns where it ends, or -1 for any other message
   * (another header, another order, a body) or no room, which then takes writeHead's path.
   */
  #writeAck(msg: Message): number {
    const h = msg.headers;
    if (h.ack !== 'false' || msg.body.length !== 0 || !coreShaped(msg, ACK_KEYS)) return -1;
    const topic = h.topic as string;
    const group = h.consume_group as string;
    const offset = h.offset as string;
    const id = h.id as string;
    const head = keptHead(this.#ackHead, 'ack', ACK_KEYS, topic, group);
    this.#ackHead = head;
    const buf = this.#buf;
    let at = this.#end;
    if (at + head.bytes.length + offset.length + id.length + ACK_MIDDLE.length + ACK_END.length > buf.length)
      return -1;
    buf.set(head.bytes, at);
    at = putAscii(offset, buf, at + head.bytes.length);
    if (at < 0) return -1;
    buf.set(ACK_MIDDLE, at);
    at = putAscii(id, buf, at + ACK_MIDDLE.length);
    if (at < 0) return -1;
    buf.set(ACK_END, at);
    return at + ACK_END.length;
  }

  /**
   * A publish as the Producer builds it (headers `cmd`, `topic`, `content-type`, `id` in that order, nothing else),
   * written into the batch as writeHead would write it, with its start line, `cmd`, topic and content type copied
   * from bytes encoded once per topic and content type: writeHead's loop over every character of the head was a
   * tenth of a pipelined publish's CPU in the client. Returns where the head ends, or -1 for any other message or
   * no room, which then takes writeHead's path.
   */
  #writeProduce(msg: Message): number {
    const h = msg.headers;
    if (!coreShaped(msg, PRODUCE_KEYS)) return -1;
    const topic = h.topic as string;
    const contentType = h['content-type'] as string;
    const id = h.id as string;
    const head = keptHead(this.#produceHead, 'produce', PRODUCE_KEYS, topic, contentType);
    this.#produceHead = head;
    const buf = this.#buf;
    let at = this.#end;
    // 16: the body length's digits and the blank line, with room to spare
    if (at + head.bytes.length + id.length + PRODUCE_MIDDLE.length + 16 > buf.length) return -1;
    buf.set(head.bytes, at);
    at += head.bytes.length;
    at = isLastId(id) ? at + buf.write(id, at, 'latin1') : putAscii(id, buf, at);
    if (at < 0) return -1;
    buf.set(PRODUCE_MIDDLE, at);
    at = putDecimal(msg.body.length, buf, at + PRODUCE_MIDDLE.length);
    if (at < 0) return -1;
    buf[at] = 13;
    buf[at + 1] = 10;
    buf[at + 2] = 13;
    buf[at + 3] = 10;
    return at + 4;
  }

  /**
   * An automatic ack was written into a batch that has no write due: whether it may wait for #ackTimer (false
   * once LAZY_ACKS wait, then they leave at the end of the tick as any message does).
   */
  #deferAck(): boolean {
    if (++this.#lazyAcks > LAZY_ACKS) return false;
    if (this.#lazyAcks === 1) {
      if (this.#ackTimer === undefined) this.#ackTimer = setTimeout(this.#ackDue, ACK_DELAY_MS);
      else this.#ackTimer.refresh();
    }
    return true;
  }

  /** Gives the encoded bytes of the batch to the socket; returns whether it takes more without waiting. */
  #handOver(): boolean {
    this.#lazyAcks = 0;
    if (this.#end === this.#start) return true;
    const chunk = this.#buf.subarray(this.#start, this.#end);
    this.#start = this.#end;
    return this.#socket.write(chunk);
  }

  #writeBatch(): void {
    this.#scheduled = false;
    const s = this.#socket;
    if (s.destroyed) return;
    // A socket that took the batch below its own mark sends no 'drain'; one that is under ours owes none.
    if (this.#handOver() && this.#owesDrain && s.writableLength < this.#highWaterMark) this.#drained();
  }

  #reportClosed(): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#handlers.closed(this.#error);
  }

  #drained(): void {
    if (!this.#owesDrain) return;
    this.#owesDrain = false;
    this.#handlers.drain?.();
  }

  close(): void {
    clearTimeout(this.#ackTimer);
    if (this.#socket.destroyed) return;
    this.#handOver();
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
