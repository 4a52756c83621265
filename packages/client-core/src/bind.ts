// What a transport package (TCP in `@zbus/client`, WebSocket in `@zbus/client-browser`) does to bind the core:
// split its own options off the client options, build its TransportFactory from them, and let the core Broker
// build every client with it. One helper, so the bindings cannot drift apart.

import type { BrokerOptions } from './broker.js';
import { MqClient } from './client.js';
import type { MqClientOptions } from './options.js';
import type { TransportFactory } from './transport.js';

/** Options of a bound client: the core options, the transport's own options, and optionally another transport. */
export type BoundClientOptions<T extends object> = Omit<MqClientOptions, 'transport'> &
  T & {
    /** Another transport (tests, proxies); the binding's own when absent. */
    transport?: TransportFactory;
  };

/** Options of a bound Broker: the bound client options plus the Broker's own. */
export type BoundBrokerOptions<T extends object> = BoundClientOptions<T> &
  Pick<BrokerOptions, 'clientFactory' | 'selectors' | 'readyTimeout'>;

/** How a transport package binds the core. */
export interface TransportBindingSpec<T extends object> {
  /** Option keys that belong to the transport; they are split off before the rest reaches the core. */
  keys: readonly (keyof T)[];
  /** Builds the transport from those options. */
  transport(options: T): TransportFactory;
  /** Called with every client a bound Broker builds (tracker subscriptions included). */
  onClient?(client: MqClient): void;
}

/** Turns binding options into core options. */
export interface TransportBinding<T extends object> {
  clientOptions(options: BoundClientOptions<T>): MqClientOptions;
  brokerOptions(options: BoundBrokerOptions<T>): BrokerOptions;
}

/**
 * Binds the core to a transport:
 *
 * ```ts
 * const tcp = bindTransport<TcpTransportOptions>({ keys: ['tls', 'highWaterMark'], transport: tcpTransport });
 * class MqClient extends CoreMqClient { constructor(a: string, o = {}) { super(a, tcp.clientOptions(o)); } }
 * class Broker extends CoreBroker { constructor(a: string, o = {}) { super(a, tcp.brokerOptions(o)); } }
 * ```
 */
export function bindTransport<T extends object>(spec: TransportBindingSpec<T>): TransportBinding<T> {
  const clientOptions = (options: BoundClientOptions<T>): MqClientOptions => {
    const own: Partial<T> = {};
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options)) {
      if ((spec.keys as readonly PropertyKey[]).includes(k)) {
        if (v !== undefined) (own as Record<string, unknown>)[k] = v;
      } else if (k !== 'transport') rest[k] = v;
    }
    return {
      ...(rest as Omit<MqClientOptions, 'transport'>),
      transport: options.transport ?? spec.transport(own as T),
    };
  };
  return {
    clientOptions,
    brokerOptions(options) {
      const base = clientOptions(options) as BrokerOptions;
      const factory = options.clientFactory;
      const onClient = spec.onClient;
      if (onClient === undefined) return base;
      return {
        ...base,
        clientFactory: (address, o) => {
          const c = factory ? factory(address, o) : new MqClient(address, o);
          onClient(c);
          return c;
        },
      };
    },
  };
}
