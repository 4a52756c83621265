// Where producers, consumers and admins get their connections: a tracker-aware `Broker`, or one `MqClient`.

import type { MqClient } from './client.js';
import type { MqClientOptions } from './options.js';
import type { ServerSelectors } from './route-table.js';

/** The kinds of traffic a multi-server source routes. */
export type RouteKind = keyof ServerSelectors;

/**
 * Where producers, consumers and admins get their connections. `client` and `createClient` are all a
 * single-server source needs; a multi-server source (the tracker-aware `Broker`) also implements the
 * optional members, and producers, consumers and admins then spread over its servers.
 */
export interface ClientSource {
  /** A shared, pipelined client (producers and admin calls share it). */
  client(topic?: string): MqClient;
  /** A new client owned by the caller (consumers take one per connection). */
  createClient(options?: Partial<Omit<MqClientOptions, 'transport'>>, topic?: string): MqClient;
  /** Resolves once the servers are known (the first TrackerInfo, or tracking gave up). */
  tracked?(): Promise<void>;
  /** The servers (addresses to connect to) for `kind` of traffic on `topic`, best first. */
  route?(kind: RouteKind, topic?: string): string[];
  /** Every server currently known (addresses to connect to). */
  knownServers?(): string[];
  /** The shared client of one server. */
  clientAt?(server: string): MqClient;
  /** A new client to one server, owned by the caller. */
  createClientAt?(server: string, options?: Partial<Omit<MqClientOptions, 'transport'>>): MqClient;
  /** Calls `listener` whenever the servers or their topics change; returns a function that stops it. */
  onRoutesChanged?(listener: () => void): () => void;
}

/**
 * `source` as a {@link ClientSource}: an `MqClient` is a single-server source that hands itself out as the shared
 * client and makes new connections to its server for consumers.
 */
export function sourceOf(source: ClientSource | MqClient): ClientSource {
  if (typeof (source as ClientSource).client === 'function') return source as ClientSource;
  const client = source as MqClient;
  return { client: () => client, createClient: (options) => client.createClient(options) };
}
