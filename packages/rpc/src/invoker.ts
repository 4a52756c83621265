import { Cmd, Message, ZbusError } from '@zbus/protocol';
import type { BodyCodec } from './codec.js';
import { decodeBody } from './codec.js';
import { rpcErrorFromReply } from './errors.js';
import {
  checkTimeout,
  type ResolvedInvokerOptions,
  type RpcInvokerOptions,
  resolveInvokerOptions,
} from './options.js';

/** Options of one request. */
export interface InvokeOptions {
  /** Milliseconds to wait for the reply. */
  timeout?: number;
  /** Aborts the call: it rejects with the signal's reason (a reply that comes later is ignored). */
  signal?: AbortSignal;
}

/**
 * The one thing the RPC layer needs from a connection: send a request and resolve with the message that
 * carries the same `id`. `MqClient` of `@zbus/client` and of `@zbus/client-browser` implement it.
 */
export interface MessageInvoker {
  invoke(msg: Message, options?: InvokeOptions): Promise<Message>;
}

/** One call, in object form. */
export interface RpcCall {
  /** Module; the invoker's module when left out. */
  module?: string;
  method: string;
  params?: readonly unknown[];
  /** Milliseconds to wait for this call; the invoker's timeout when left out. */
  timeout?: number;
  /** Aborts this call: it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Every method of `T` as an RPC call: same parameters, result wrapped in a `Promise`. */
export type RpcProxy<T> = {
  readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (
    ...args: infer A
  ) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/**
 * The module behind `proxy()` without a type argument: any method, any params, an `unknown` result, so
 * `rpc.proxy('math').plus(1, 2)` compiles; give the module's interface (`proxy<MathApi>('math')`) for types.
 */
export type UntypedModule = Record<string, (...params: unknown[]) => unknown>;

/**
 * Calls methods of a service over a {@link MessageInvoker}: the request is produced to the service's topic
 * with `ack: false` and the reply is the message routed back with the same `id` (zbus-protocol.md §8.3).
 *
 * ```ts
 * const rpc = new RpcInvoker(client, { topic: 'MyRpc' });
 * await rpc.invoke('plus', 1, 2);                                   // default module
 * await rpc.invoke({ module: 'math', method: 'plus', params: [1, 2], timeout: 500 });
 * const math = rpc.proxy<MathApi>('math');  await math.plus(1, 2);
 * ```
 */
export class RpcInvoker {
  readonly options: ResolvedInvokerOptions;
  readonly #invoker: MessageInvoker;
  /** Replies come in the request's codec. */
  readonly #codecs: readonly BodyCodec[];

  constructor(invoker: MessageInvoker, options: RpcInvokerOptions) {
    if (invoker === null || typeof invoker !== 'object' || typeof invoker.invoke !== 'function') {
      throw new ZbusError(
        'ZBUS_ERR_INVALID_ARGUMENT',
        'RpcInvoker needs a MessageInvoker (an object with invoke())',
      );
    }
    this.#invoker = invoker;
    this.options = resolveInvokerOptions(options);
    this.#codecs = [this.options.codec];
  }

  /** Calls `method` of the invoker's module with `params`; resolves with the decoded result. */
  invoke<R = unknown>(method: string, ...params: unknown[]): Promise<R>;
  /** Calls `{module, method, params}`, with an optional per-call `timeout`. */
  invoke<R = unknown>(call: RpcCall): Promise<R>;
  async invoke<R = unknown>(first: string | RpcCall, ...params: unknown[]): Promise<R> {
    const call: RpcCall = typeof first === 'string' ? { method: first, params } : first;
    const reply = await this.invokeRaw(call);
    return decodeBody(reply.contentType, reply.body, this.#codecs) as R;
  }

  /**
   * Like `invoke` but resolves with the reply `Message` itself (status 200), for methods that answer
   * with a raw message (HTML, a file, custom headers). Non-200 replies reject as `invoke` does.
   */
  async invokeRaw(call: RpcCall): Promise<Message> {
    const timeout = call.timeout ?? this.options.timeout;
    checkTimeout(timeout, 'timeout');
    const req = this.request(call);
    // The broker forgets the call after this long too, and counts a reply that comes later.
    req.set('timeout', timeout);
    const reply = await this.#invoker.invoke(
      req,
      call.signal === undefined ? { timeout } : { timeout, signal: call.signal },
    );
    if (reply.status === 200 || reply.status === undefined) return reply;
    throw rpcErrorFromReply(reply, `${call.module ?? this.options.module}:${call.method}`, this.#codecs);
  }

  /** Builds the request message for a call (exposed for tests and for custom transports). */
  request(call: RpcCall): Message {
    if (call === null || typeof call !== 'object' || typeof call.method !== 'string') {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'an RPC call needs a method name');
    }
    const codec = this.options.codec;
    const msg = new Message();
    msg.set('cmd', Cmd.Produce);
    msg.set('topic', this.options.topic);
    // The reply comes back by `route`, never as a produce acknowledgement (0.11 RpcInvoker).
    msg.set('ack', 'false');
    if (this.options.token !== undefined) msg.set('token', this.options.token);
    msg.set('content-type', codec.contentType);
    msg.setBody(
      codec.encode({
        module: call.module ?? this.options.module,
        method: call.method,
        params: call.params === undefined ? [] : [...call.params],
      }),
    );
    return msg;
  }

  /**
   * A typed view of one module: `invoker.proxy<MathApi>('math').plus(1, 2)` resolves with the result.
   * `options.timeout` and `options.signal` apply to every call made through the proxy. Without a type argument
   * every method exists and resolves with `unknown`.
   */
  proxy<T extends object = UntypedModule>(
    module: string = this.options.module,
    options: InvokeOptions = {},
  ): RpcProxy<T> {
    if (options.timeout !== undefined) checkTimeout(options.timeout, 'timeout');
    const cache = new Map<string, (...params: unknown[]) => Promise<unknown>>();
    return new Proxy(Object.create(null) as object, {
      get: (_target, name) => {
        // A proxy must not look like a thenable, or `await proxy` would call `then`.
        if (typeof name !== 'string' || name === 'then') return undefined;
        let fn = cache.get(name);
        if (fn === undefined) {
          fn = (...params: unknown[]) =>
            this.invoke({ module, method: name, params, timeout: options.timeout, signal: options.signal });
          cache.set(name, fn);
        }
        return fn;
      },
    }) as RpcProxy<T>;
  }
}
