// An outbound zbus connection from the broker to another broker (reporting to a tracker, or a tracker
// watching a server). Reconnects with exponential backoff and jitter unless told not to.
import { connect, type Socket } from 'node:net';
import { encodeMessage, type Message, MessageDecoder } from '@zbus/protocol';
import type { Logger } from 'pino';

export interface LinkOptions {
  /** `host:port` */
  address: string;
  log: Logger;
  /** Reconnect after a loss (reporters do, watchers do not). */
  reconnect: boolean;
  onConnect(link: Link): void;
  onMessage?(msg: Message): void;
  /** The connection went away (and will not come back when `reconnect` is false). */
  onClose?(): void;
}

const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 10_000;

export function parseAddress(address: string): { host: string; port: number } {
  const stripped = address.replace(/^\[SSL\]/, '').replace(/^tcp:\/\//, '');
  const i = stripped.lastIndexOf(':');
  return { host: stripped.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(stripped.slice(i + 1)) };
}

export class Link {
  #socket: Socket | undefined;
  #closed = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  connected = false;

  constructor(readonly o: LinkOptions) {
    this.#open();
  }

  #open(): void {
    if (this.#closed) return;
    const { host, port } = parseAddress(this.o.address);
    const socket = connect({ host, port });
    this.#socket = socket;
    const decoder = new MessageDecoder((m) => this.o.onMessage?.(m));
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.#attempt = 0;
      this.connected = true;
      this.o.onConnect(this);
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        this.o.log.warn({ err, address: this.o.address }, 'bad message from peer broker');
        socket.destroy();
      }
    });
    socket.on('error', (err) =>
      this.o.log.debug({ err, address: this.o.address }, 'peer broker connection error'),
    );
    socket.on('close', () => {
      this.connected = false;
      this.#socket = undefined;
      if (this.#closed) return;
      if (!this.o.reconnect) {
        this.#closed = true;
        this.o.onClose?.();
        return;
      }
      this.o.onClose?.();
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt++);
      this.#timer = setTimeout(() => this.#open(), delay / 2 + Math.random() * (delay / 2));
      this.#timer.unref();
    });
  }

  send(msg: Message): void {
    if (this.connected && this.#socket) this.#socket.write(encodeMessage(msg));
  }

  /** Flushes what was sent, then closes. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    const socket = this.#socket;
    if (!socket) return;
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}
