import { ZbusError } from '@zbus/protocol';
import { MqClient } from './client.js';
import type { MqClientOptions } from './options.js';

/** Where producers, consumers and admins get their connections. */
export interface ClientSource {
  /** A shared, pipelined client (producers and admin calls share it). */
  client(topic?: string): MqClient;
  /** A new client owned by the caller (consumers take one per connection). */
  createClient(options?: Partial<Omit<MqClientOptions, 'transport'>>, topic?: string): MqClient;
}

/** Options of a {@link Broker}: the client options every connection it makes gets, and how clients are built. */
export interface BrokerOptions extends MqClientOptions {
  /**
   * Builds each client the broker hands out (a subclass, or a hook that watches every client).
   * @default (address, options) => new MqClient(address, options)
   */
  clientFactory?: (address: string, options: MqClientOptions) => MqClient;
}

/** Splits `'h1:15555;h2:15555'` (also `,` and blanks) and drops `tcp://`, as 0.11 clients do. */
export function parseAddresses(address: string): string[] {
  if (typeof address !== 'string')
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'address must be a string');
  const list = address
    .split(/[;,\s]+/)
    .map((a) => a.trim().replace(/^tcp:\/\//i, ''))
    .filter((a) => a.length > 0);
  if (list.length === 0)
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `no address in ${JSON.stringify(address)}`);
  return list;
}

/**
 * The entry point for producers, consumers, admins and RPC: knows the broker's address and hands out
 * connections. This version talks to one address (the first of a `;` list). The tracker-aware form
 * (zbus-protocol.md §9) will keep this interface and choose among servers in `select(topic)`.
 */
export class Broker implements ClientSource {
  readonly addresses: readonly string[];
  readonly options: BrokerOptions;
  readonly #shared = new Map<string, MqClient>();
  readonly #owned = new Set<MqClient>();
  #closed = false;

  constructor(address: string, options: BrokerOptions) {
    this.addresses = Object.freeze(parseAddresses(address));
    this.options = options;
  }

  /** The server a topic's traffic goes to. */
  select(_topic?: string): string {
    return this.addresses[0] as string;
  }

  client(topic?: string): MqClient {
    this.#check();
    const address = this.select(topic);
    let c = this.#shared.get(address);
    if (c === undefined || c.state === 'closed' || c.state === 'closing') {
      c = this.#make(address, this.options);
      this.#shared.set(address, c);
    }
    return c;
  }

  createClient(options: Partial<Omit<MqClientOptions, 'transport'>> = {}, topic?: string): MqClient {
    this.#check();
    const c = this.#make(this.select(topic), { ...this.options, ...options });
    this.#owned.add(c);
    c.on('disconnected', () => {
      if (c.state === 'closed') this.#owned.delete(c);
    });
    return c;
  }

  /** Connects the shared client; rejects if the broker cannot be reached. */
  async ready(): Promise<void> {
    await this.client().connect();
  }

  /** Closes every client this broker handed out. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = [...this.#shared.values(), ...this.#owned];
    this.#shared.clear();
    this.#owned.clear();
    await Promise.all(all.map((c) => c.close()));
  }

  #make(address: string, options: MqClientOptions): MqClient {
    const { clientFactory, ...clientOptions } = options as BrokerOptions;
    return clientFactory ? clientFactory(address, clientOptions) : new MqClient(address, clientOptions);
  }

  #check(): void {
    if (this.#closed) throw new ZbusError('ZBUS_ERR_CLOSED', 'broker is closed');
  }
}
