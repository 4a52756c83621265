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
import { type TcpTransportOptions, tcpTransport } from './transport/tcp.js';

/** Client options in Node: the core options, TCP by default, TLS on request. */
export type NodeClientOptions = BoundClientOptions<TcpTransportOptions>;

/** Broker options in Node: the client options plus how each client is built, selectors, readyTimeout. */
export type NodeBrokerOptions = BoundBrokerOptions<TcpTransportOptions>;

export const DEFAULT_ADDRESS = '127.0.0.1:15555';

const tcp = bindTransport<TcpTransportOptions>({
  keys: ['tls', 'highWaterMark'],
  transport: (o) => tcpTransport(o),
});

/** One TCP (or TLS) connection to a broker. See the core `MqClient` for the API. */
export class MqClient extends CoreMqClient {
  constructor(address: string = DEFAULT_ADDRESS, options: NodeClientOptions = {}) {
    super(address, tcp.clientOptions(options));
  }
}

/**
 * Brokers reached over TCP (or TLS). `'h1:15555;h2:15555'` lists trackers (any broker is one): the Broker
 * follows their view of the cluster and routes to its servers. See the core `Broker`.
 */
export class Broker extends CoreBroker {
  constructor(address: string = DEFAULT_ADDRESS, options: NodeBrokerOptions = {}) {
    super(address, tcp.brokerOptions(options));
  }
}

/** Connects the `@zbus/rpc` bootstraps over TCP. */
export const tcpRpcConnector = /* @__PURE__ */ brokerRpcConnector((address) => new Broker(address));

/** 0.11 `ServiceBootstrap` over TCP: `new ServiceBootstrap().serviceName('MyRpc').addModule(...).start()`. */
export class ServiceBootstrap extends RpcServiceBootstrap {
  constructor(processor?: RpcProcessor) {
    super(tcpRpcConnector, processor);
  }
}

/** 0.11 `ClientBootstrap` over TCP: `new ClientBootstrap().serviceName('MyRpc').proxy<Api>('math')`. */
export class ClientBootstrap extends RpcClientBootstrap {
  constructor() {
    super(tcpRpcConnector);
  }
}
