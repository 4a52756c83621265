// The core client bound to the browser's WebSocket, as `@zbus/client` binds it to TCP.

import {
  type BoundBrokerOptions,
  type BoundClientOptions,
  bindTransport,
  brokerRpcConnector,
  Broker as CoreBroker,
  MqClient as CoreMqClient,
} from '@zbus/client-core';
import {
  ClientBootstrap as RpcClientBootstrap,
  type RpcProcessor,
  ServiceBootstrap as RpcServiceBootstrap,
} from '@zbus/rpc';
import { watchClient } from './lifecycle.js';
import { type WebSocketTransportOptions, webSocketTransport } from './websocket.js';

/** The WebSocket transport's own options (the constructor comes from the page). */
export type BrowserTransportOptions = Omit<WebSocketTransportOptions, 'WebSocket'>;

/** Client options in the browser: the core options, WebSocket by default. */
export type BrowserClientOptions = BoundClientOptions<BrowserTransportOptions>;

/** Broker options in the browser: the client options plus how each client is built, selectors, readyTimeout. */
export type BrowserBrokerOptions = BoundBrokerOptions<BrowserTransportOptions>;

/**
 * The default address: the page's own host (`location.host`), which is where the broker that served the page
 * listens; `127.0.0.1:15555` outside a page.
 */
export function defaultAddress(): string {
  const l = (globalThis as { location?: { host?: string } }).location;
  return l?.host ? l.host : '127.0.0.1:15555';
}

// Every client a Broker builds (tracker subscriptions included) reconnects on page wake-ups too.
const ws = bindTransport<BrowserTransportOptions>({
  keys: ['pingInterval', 'pingTimeout', 'highWaterMark', 'protocols'],
  transport: (o) => webSocketTransport(o),
  onClient: watchClient,
});

/**
 * One WebSocket connection to a broker. See the core `MqClient` for the API. Reconnects with backoff after a
 * loss, and at once when the tab becomes visible or the network comes back.
 */
export class MqClient extends CoreMqClient {
  constructor(address: string = defaultAddress(), options: BrowserClientOptions = {}) {
    super(address, ws.clientOptions(options));
    watchClient(this);
  }

  /** A new connection to the same broker (a consumer's own), which reconnects on page wake-ups too. */
  override createClient(options: Parameters<CoreMqClient['createClient']>[0] = {}): CoreMqClient {
    return watchClient(super.createClient(options));
  }
}

/**
 * Brokers reached over WebSocket. `'h1:15555;h2:15555'` lists trackers (any broker is one): the Broker follows
 * their view of the cluster and routes to its servers; every connection it makes reconnects on page wake-ups.
 */
export class Broker extends CoreBroker {
  constructor(address: string = defaultAddress(), options: BrowserBrokerOptions = {}) {
    super(address, ws.brokerOptions(options));
  }
}

/** Connects the `@zbus/rpc` bootstraps over WebSocket. */
export const wsRpcConnector = /* @__PURE__ */ brokerRpcConnector((address) => new Broker(address));

/** 0.11 `ServiceBootstrap` over WebSocket: a page can serve RPC methods too. */
export class ServiceBootstrap extends RpcServiceBootstrap {
  constructor(processor?: RpcProcessor) {
    super(wsRpcConnector, processor);
  }
}

/** 0.11 `ClientBootstrap` over WebSocket: `new ClientBootstrap().serviceName('MyRpc').proxy<Api>('math')`. */
export class ClientBootstrap extends RpcClientBootstrap {
  constructor() {
    super(wsRpcConnector);
  }
}
