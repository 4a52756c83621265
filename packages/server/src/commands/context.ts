// What a command handler gets: the broker's state, the session (never its socket), the request and the
// ticket to answer it with.
import type { Message, ResolvedCommand } from '@zbus/protocol';
import type { Logger } from 'pino';
import type { Auth } from '../auth/auth.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Dispatcher } from '../mq/dispatcher.js';
import type { ResolvedBrokerOptions } from '../options.js';
import type { RpcCalls } from '../rpc/calls.js';
import type { RpcRelay } from '../rpc/relay.js';
import type { ReplyTicket, Session } from '../session.js';
import type { Clock } from '../store/clock.js';
import type { Store, Topic } from '../store/types.js';
import type { TrackerState } from '../tracker/tracker.js';

export interface BrokerState {
  readonly options: ResolvedBrokerOptions;
  readonly store: Store;
  readonly dispatcher: Dispatcher;
  readonly metrics: Metrics;
  /** The time of every message timer (options.clock, else the system clock). */
  readonly clock: Clock;
  readonly log: Logger;
  readonly auth: Auth | undefined;
  readonly rpc: RpcCalls;
  /** RPC to services on other brokers; set with a shared store. */
  readonly relay: RpcRelay | undefined;
  readonly sessions: Map<string, Session>;
  readonly tracker: TrackerState;
  /** `host:port` announced to clients and trackers. */
  readonly announced: string;
  readonly sslEnabled: boolean;
  /** A topic or group appeared, changed or went (tracker reports, monitor). */
  changed(): void;
}

export interface CommandContext {
  readonly state: BrokerState;
  readonly session: Session;
  readonly msg: Message;
  readonly ticket: ReplyTicket;
  readonly resolved: ResolvedCommand;
  /** The topic the request names, when the pipeline looked it up already (a produce): not looked up again. */
  readonly topic: Topic | undefined;
}

/** A handler answers through `ctx.ticket` (or decides to send nothing) and may be async; a throw is replied. */
export type CommandHandler = (ctx: CommandContext) => void | Promise<void>;
