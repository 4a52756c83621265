// What a transport needs from the broker: limits, logging, and where to hand decoded messages.
import type { Socket } from 'node:net';
import type { Message, ZbusError } from '@zbus/protocol';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import type { ResolvedBrokerOptions } from '../options.js';
import type { Session } from '../session.js';
import type { IdleWatch } from './idle.js';

export interface ConnectionHost {
  readonly options: ResolvedBrokerOptions;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Closes connections silent for idleTimeoutMs; undefined when that is 0. */
  readonly idle: IdleWatch | undefined;
  /** A new session is connected. */
  attach(session: Session): void;
  /** A decoded request (or a client's response message) from a session. */
  handle(session: Session, msg: Message): void;
  /** An `Upgrade: websocket` request: the socket now belongs to the WebSocket layer. */
  upgrade(socket: Socket, req: Message, head: Uint8Array, previous: Session): void;
  /** The reply for an error that happened outside any command (malformed bytes, limits). */
  errorReply(err: ZbusError): Message;
}
