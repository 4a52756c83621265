import {
  ClientBootstrap as RpcClientBootstrap,
  type RpcProcessor,
  ServiceBootstrap as RpcServiceBootstrap,
} from '@zbus/rpc';
import { Broker as CoreBroker } from './core/broker.js';
import { MqClient as CoreMqClient } from './core/client.js';
import type { MqClientOptions } from './core/options.js';
import { brokerRpcConnector } from './core/rpc.js';
import type { TransportFactory } from './core/transport.js';
import { type TcpTransportOptions, tcpTransport } from './transport/tcp.js';

/** Client options in Node: the core options, TCP by default, TLS on request. */
export interface NodeClientOptions extends Omit<MqClientOptions, 'transport'>, TcpTransportOptions {
  /** Another transport (tests, proxies); TCP/TLS when absent. */
  transport?: TransportFactory;
}

/** Broker options in Node: the client options plus how each client is built. */
export interface NodeBrokerOptions extends NodeClientOptions {
  /** Builds each client the broker hands out. @default (address, options) => new MqClient(address, options) */
  clientFactory?: (address: string, options: MqClientOptions) => CoreMqClient;
}

export const DEFAULT_ADDRESS = '127.0.0.1:15555';

function withTransport(options: NodeClientOptions): MqClientOptions {
  const { tls, highWaterMark, transport, ...rest } = options;
  const tcp: TcpTransportOptions = {};
  if (tls !== undefined) tcp.tls = tls;
  if (highWaterMark !== undefined) tcp.highWaterMark = highWaterMark;
  return { ...rest, transport: transport ?? tcpTransport(tcp) };
}

/** One TCP (or TLS) connection to a broker. See the core `MqClient` for the API. */
export class MqClient extends CoreMqClient {
  constructor(address: string = DEFAULT_ADDRESS, options: NodeClientOptions = {}) {
    super(address, withTransport(options));
  }
}

/** A broker reached over TCP (or TLS). `'h1:15555;h2:15555'` lists several servers (the first is used for now). */
export class Broker extends CoreBroker {
  constructor(address: string = DEFAULT_ADDRESS, options: NodeBrokerOptions = {}) {
    super(address, withTransport(options));
  }
}

/** Connects the `@zbus/rpc` bootstraps over TCP. */
export const tcpRpcConnector = brokerRpcConnector((address) => new Broker(address));

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
