import { Mask, type Message, ZbusError } from '@zbus/protocol';
import type { BodyCodec, CodecOption } from './codec.js';
import {
  type InvokeOptions,
  type MessageInvoker,
  RpcInvoker,
  type RpcProxy,
  type UntypedModule,
} from './invoker.js';
import { checkTimeout } from './options.js';
import { type AddModuleOptions, RpcProcessor } from './processor.js';

/** What a service needs from the broker side: consume its topic over N connections and route replies. */
export interface RpcServeOptions {
  /** The service name (RPC topic). */
  topic: string;
  /** Topic mask to declare the topic with. */
  mask: number;
  token?: string;
  /** How many connections consume the topic. */
  connectionCount: number;
  /** Requests handled at once per connection (the consume window). */
  window?: number;
  /** Turns a delivered request (id, url, method restored) into the reply routed back to its caller. */
  process(req: Message): Promise<Message>;
}

/** A running service. */
export interface RpcService {
  /** Stops taking requests, finishes the ones being handled, closes the connections. */
  close(): Promise<void>;
}

/** A caller-side connection. */
export interface RpcConnection extends MessageInvoker {
  close(): Promise<void>;
}

/** Binds the bootstraps to a transport (TCP in `@zbus/client`, WebSocket in `@zbus/client-browser`). */
export interface RpcConnector {
  serve(options: RpcServeOptions): Promise<RpcService>;
  /** Opens (lazily) a connection that can carry requests. */
  connect(options: { token?: string }): RpcConnection;
}

/** Builds a connector for a service address (`'host:port'`, or several separated by `;`). */
export type RpcConnectorFactory = (address: string) => RpcConnector;

/** The RPC topic mask services declare by default: MEMORY | RPC (3), as 0.11 does. */
export const DEFAULT_SERVICE_MASK: number = Mask.Memory | Mask.Rpc;
export const DEFAULT_SERVICE_ADDRESS = '127.0.0.1:15555';
/** Requests a service handles at once per connection. */
export const DEFAULT_SERVICE_WINDOW = 16;

/** What both bootstraps are told, under the 0.11 builder names: which service, at which broker, with which token. */
export abstract class Bootstrap {
  protected readonly factory: RpcConnectorFactory;
  protected name: string | undefined;
  protected address = DEFAULT_SERVICE_ADDRESS;
  protected token: string | undefined;

  constructor(factory: RpcConnectorFactory) {
    this.factory = factory;
  }

  serviceName(name: string): this {
    this.name = name;
    return this;
  }
  /** `'host:port'`; several separated by `;` once the broker is tracker-aware. */
  serviceAddress(address: string): this {
    this.address = address;
    return this;
  }
  serviceToken(token: string): this {
    this.token = token;
    return this;
  }

  /** The service name; throws when `serviceName()` was not called. */
  protected requireName(): string {
    if (!this.name) throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'serviceName is required');
    return this.name;
  }
}

function checkPositiveInt(n: number, name: string): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `${name} must be an integer >= 1, got ${n}`);
  }
}

/**
 * Starts a service, 0.11 style:
 * ```ts
 * const service = await new ServiceBootstrap(connector)
 *   .serviceName('MyRpc').serviceAddress('127.0.0.1:15555').connectionCount(4)
 *   .addModule('math', { plus: (a: number, b: number) => a + b })
 *   .start();
 * ```
 */
export class ServiceBootstrap extends Bootstrap {
  readonly processor: RpcProcessor;
  #connectionCount = 1;
  #window = DEFAULT_SERVICE_WINDOW;
  #mask = DEFAULT_SERVICE_MASK;
  #service: RpcService | undefined;

  constructor(factory: RpcConnectorFactory, processor: RpcProcessor = new RpcProcessor()) {
    super(factory);
    this.processor = processor;
  }

  /** @default 1 */
  connectionCount(n: number): this {
    checkPositiveInt(n, 'connectionCount');
    this.#connectionCount = n;
    return this;
  }
  /**
   * Requests handled at once per connection (async methods overlap). 1 is the 0.11 behaviour: one request at
   * a time per connection.
   * @default 16
   */
  window(n: number): this {
    checkPositiveInt(n, 'window');
    this.#window = n;
    return this;
  }
  /** @default Mask.Memory | Mask.Rpc */
  serviceMask(mask: number): this {
    this.#mask = mask | Mask.Rpc;
    return this;
  }
  /** Serves callers that use `codec` (e.g. `msgpackCodec` from `@zbus/rpc/msgpack`) besides JSON ones. */
  codec(codec: BodyCodec): this {
    this.processor.addCodec(codec);
    return this;
  }
  addModule(name: string, impl: object, options?: AddModuleOptions): this;
  addModule(impl: object): this;
  addModule(nameOrImpl: string | object, impl?: object, options?: AddModuleOptions): this {
    if (typeof nameOrImpl === 'string') this.processor.addModule(nameOrImpl, impl as object, options);
    else this.processor.addModule('', nameOrImpl);
    return this;
  }

  /** Declares the topic and starts consuming it; resolves once every connection is consuming. */
  async start(): Promise<this> {
    if (this.#service !== undefined)
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'service already started');
    const topic = this.requireName();
    const connector = this.factory(this.address);
    const options: RpcServeOptions = {
      topic,
      mask: this.#mask,
      connectionCount: this.#connectionCount,
      window: this.#window,
      process: (req) => this.processor.process(req),
    };
    if (this.token !== undefined) options.token = this.token;
    this.#service = await connector.serve(options);
    return this;
  }

  async close(): Promise<void> {
    const s = this.#service;
    this.#service = undefined;
    await s?.close();
  }
}

/**
 * Creates invokers for a service, 0.11 style:
 * ```ts
 * const client = new ClientBootstrap(connector).serviceName('MyRpc').serviceAddress('127.0.0.1:15555');
 * const math = client.proxy<MathApi>('math');
 * await math.plus(1, 2);
 * await client.close();
 * ```
 */
export class ClientBootstrap extends Bootstrap {
  #timeout: number | undefined;
  #codec: CodecOption = 'json';
  #connection: RpcConnection | undefined;

  /** Default timeout of calls, ms. @default 10000 */
  timeout(ms: number): this {
    checkTimeout(ms, 'timeout');
    this.#timeout = ms;
    return this;
  }
  /** The request codec: `'json'`, or e.g. `msgpackCodec` from `@zbus/rpc/msgpack`. @default 'json' */
  codec(codec: CodecOption): this {
    this.#codec = codec;
    return this;
  }

  /** An invoker for `module` (default module `''`); all invokers share one connection. */
  invoker(module = ''): RpcInvoker {
    const topic = this.requireName();
    if (this.#connection === undefined) {
      const opts: { token?: string } = {};
      if (this.token !== undefined) opts.token = this.token;
      this.#connection = this.factory(this.address).connect(opts);
    }
    return new RpcInvoker(this.#connection, {
      topic,
      module,
      codec: this.#codec,
      ...(this.#timeout !== undefined ? { timeout: this.#timeout } : {}),
      ...(this.token !== undefined ? { token: this.token } : {}),
    });
  }

  /** A typed proxy of one module. */
  proxy<T extends object = UntypedModule>(module = '', options: InvokeOptions = {}): RpcProxy<T> {
    return this.invoker(module).proxy<T>(module, options);
  }

  async close(): Promise<void> {
    const c = this.#connection;
    this.#connection = undefined;
    await c?.close();
  }
}
