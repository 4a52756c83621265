import type { Message } from '@zbus/protocol';

/**
 * What a transport reports to the client that owns it. A transport never interprets bytes: the client decodes
 * them with `MessageDecoder`, whatever framing the transport has (a TCP byte stream, or WebSocket frames that
 * each hold one whole message; both decode the same way).
 */
export interface TransportHandlers {
  /** Bytes arrived. */
  data(chunk: Uint8Array): void;
  /**
   * The connection ended (`error` when it failed rather than closed); called once, and at the latest from a `send`
   * that finds it closed (so that a caller retrying at once, in microtasks, sees it closed).
   */
  closed(error?: Error): void;
  /** The transport's outbound buffer drained after `send` returned false. */
  drain?(): void;
}

/** One open connection (style.md §2: the client logic is written against this, never against a socket). */
export interface Transport {
  /**
   * Writes one message. Returns false when the outbound buffer is over its bound; the message is still queued
   * and `drain` follows. Throws only if the transport is closed.
   */
  send(msg: Message): boolean;
  /** Closes the connection; `closed` follows. Idempotent. */
  close(): void;
}

/** What a factory is asked to connect to. */
export interface TransportConnectOptions {
  /** `host:port` (a `tcp://`, `ws://` or `wss://` prefix is the factory's business). */
  address: string;
  /** Milliseconds before a connection attempt fails. */
  connectTimeout: number;
  handlers: TransportHandlers;
}

/** Opens one connection; rejects if it cannot be established. Called again for every reconnect. */
export type TransportFactory = (options: TransportConnectOptions) => Promise<Transport>;
