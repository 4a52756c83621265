// The core client bound to the browser's WebSocket, as `@zbus/client` binds it to TCP.

import {
  brokerRpcConnector,
  Broker as CoreBroker,
  MqClient as CoreMqClient,
  type MqClientOptions,
  type TransportFactory,
} from '@zbus/client/core';
import {
  ClientBootstrap as RpcClientBootstrap,
  type RpcProcessor,
  ServiceBootstrap as RpcServiceBootstrap,
} from '@zbus/rpc';
import { watchClient } from './lifecycle.js';
import { type WebSocketTransportOptions, webSocketTransport } from './websocket.js';

/** Client options in the browser: the core options, WebSocket by default. */
export interface BrowserClientOptions
  extends Omit<MqClientOptions, 'transport'>,
    Omit<WebSocketTransportOptions, 'WebSocket'> {
  /** Another transport (tests); WebSocket when absent. */
  transport?: TransportFactory;
}

/**
 * The default address: the page's own host (`location.host`), which is where the broker that served the page
 * listens; `127.0.0.1:15555` outside a page.
 */
export function defaultAddress(): string {
  const l = (globalThis as { location?: { host?: string } }).location;
  return l?.host ? l.host : '127.0.0.1:15555';
}

function withTransport(options: BrowserClientOptions): MqClientOptions {
  const { pingInterval, pingTimeout, highWaterMark, protocols, transport, ...rest } = options;
  const ws: WebSocketTransportOptions = {};
  if (pingInterval !== undefined) ws.pingInterval = pingInterval;
  if (pingTimeout !== undefined) ws.pingTimeout = pingTimeout;
  if (highWaterMark !== undefined) ws.highWaterMark = highWaterMark;
  if (protocols !== undefined) ws.protocols = protocols;
  return { ...rest, transport: transport ?? webSocketTransport(ws) };
}

/**
 * One WebSocket connection to a broker. See the core `MqClient` for the API. Reconnects with backoff after a
 * loss, and at once when the tab becomes visible or the network comes back.
 */
export class MqClient extends CoreMqClient {
  constructor(address: string = defaultAddress(), options: BrowserClientOptions = {}) {
    super(address, withTransport(options));
    watchClient(this);
  }
}

/** A broker reached over WebSocket; every connection it hands out reconnects on page wake-ups too. */
export class Broker extends CoreBroker {
  constructor(address: string = defaultAddress(), options: BrowserClientOptions = {}) {
    super(address, withTransport(options));
  }

  // The core Broker builds core clients; watch each one it hands out (README, "Core hooks").
  override client(topic?: string): CoreMqClient {
    return watchClient(super.client(topic));
  }

  override createClient(
    options: Partial<Omit<MqClientOptions, 'transport'>> = {},
    topic?: string,
  ): CoreMqClient {
    return watchClient(super.createClient(options, topic));
  }
}

/** Connects the `@zbus/rpc` bootstraps over WebSocket. */
export const wsRpcConnector = brokerRpcConnector((address) => new Broker(address));

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
