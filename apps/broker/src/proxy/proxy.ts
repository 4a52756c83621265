// The proxy (zbus-protocol.md §12 `httpProxy`, §8.3): inside a private network it connects OUTBOUND to a
// broker, declares each entry topic with mask MEMORY|PROXY and consumes it over N connections. Every
// delivery is a caller's HTTP request; it is forwarded to a target and the answer goes back with `route`
// (recver = the delivery's `sender`, id = the request id, origin_status = the target's status).
import { Broker, type ConsumedMessage, Consumer, Mask, type MqClient } from '@zbus/client';
import { Forwarder, type ForwardStats } from './forward.js';
import {
  type ProxyOptions,
  type ResolvedEntry,
  type ResolvedProxyOptions,
  resolveProxyOptions,
} from './options.js';

/** MEMORY|PROXY (1|4): requests are not stored on disk, and the broker never acks a produce itself. */
export const PROXY_TOPIC_MASK = Mask.Memory | Mask.Proxy;

/** A running proxy. */
export interface ZbusProxy {
  readonly options: ResolvedProxyOptions;
  /** Connects (retrying with backoff until the broker answers) and resolves when every entry consumes. */
  start(): Promise<void>;
  /** Per entry: requests forwarded, 502s, 504s, bodies refused. */
  stats(): Record<string, ForwardStats>;
  /** Stops consuming, lets requests in flight finish (bounded), and closes every connection. */
  close(): Promise<void>;
}

class EntryRunner {
  readonly forwarder: Forwarder;
  #consumer: Consumer | undefined;
  #closed = false;
  #attempt = 0;
  #sleep: { timer: NodeJS.Timeout; wake: () => void } | undefined;

  constructor(
    readonly entry: ResolvedEntry,
    readonly broker: Broker,
    readonly proxy: ResolvedProxyOptions,
  ) {
    this.forwarder = new Forwarder(entry);
  }

  /** Resolves once the entry consumes; retries with backoff while the broker cannot be reached. */
  async start(): Promise<void> {
    const { entry, proxy } = this;
    for (;;) {
      if (this.#closed) throw new Error('proxy closed');
      const consumer = new Consumer(this.broker, {
        topic: entry.entry,
        topicMask: PROXY_TOPIC_MASK,
        connectionCount: entry.connections,
        window: entry.window,
        ...(entry.token === undefined ? {} : { token: entry.token }),
        handler: (msg, client) => this.#handle(msg, client),
        onError: (err) => proxy.log('warn', `entry ${entry.entry}: ${err.message}`),
        closeTimeout: entry.timeout,
      });
      try {
        await consumer.start();
        this.#consumer = consumer;
        this.#attempt = 0;
        if (this.#closed) await consumer.close();
        return;
      } catch (err) {
        await consumer.close().catch(() => {});
        const wait = Math.min(proxy.reconnectMaxDelay, proxy.reconnectDelay * 2 ** this.#attempt++);
        proxy.log(
          'warn',
          `entry ${entry.entry}: cannot consume on ${proxy.broker}: ${(err as Error).message}; retrying in ${wait} ms`,
        );
        await this.#wait(wait);
      }
    }
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleep = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleep = { timer, wake };
    });
  }

  async #handle(msg: ConsumedMessage, client: MqClient): Promise<void> {
    const sender = msg.headers.sender;
    const id = msg.headers.id;
    const reply = await this.forwarder.forward(msg);
    // Nobody to answer (a produce from a client that asked for no reply): the request was still forwarded.
    if (sender === undefined || id === undefined) return;
    reply.set('id', id);
    try {
      client.route(reply, sender);
    } catch (err) {
      this.proxy.log('warn', `entry ${this.entry.entry}: reply to ${sender} lost: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sleep?.wake();
    await this.#consumer?.close().catch(() => {});
    await this.forwarder.close().catch(() => {});
  }
}

/** Creates a proxy; call `start()` (or use {@link startProxy}). */
export function createProxy(options: ProxyOptions): ZbusProxy {
  const resolved = resolveProxyOptions(options);
  const broker = new Broker(resolved.broker, {
    reconnectDelay: resolved.reconnectDelay,
    reconnectMaxDelay: resolved.reconnectMaxDelay,
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  const runners = resolved.entries.map((e) => new EntryRunner(e, broker, resolved));
  let starting: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  return {
    options: resolved,
    start() {
      starting ??= (async () => {
        // Consumer.start() resolves once the broker has registered every connection's consume, so callers
        // get no 503 from here on.
        await Promise.all(runners.map((r) => r.start()));
        for (const r of runners) {
          const e = r.entry;
          resolved.log(
            'info',
            `entry ${e.entry} -> ${e.targets.map((t) => t.href).join(', ')} (${e.connections} connections) via ${resolved.broker}`,
          );
        }
      })();
      return starting;
    },
    stats() {
      return Object.fromEntries(runners.map((r) => [r.entry.entry, { ...r.forwarder.stats }]));
    },
    close() {
      closing ??= (async () => {
        await Promise.all(runners.map((r) => r.close()));
        await broker.close();
      })();
      return closing;
    },
  };
}

/**
 * Starts a proxy and resolves when every entry consumes its topic.
 *
 * ```ts
 * const proxy = await startProxy({
 *   broker: 'dmz-broker:15555',
 *   entries: [{ entry: 'orders', target: 'http://127.0.0.1:8080', connections: 4 }],
 * });
 * // curl http://dmz-broker:15555/orders/api/orders?x=1  ->  GET http://127.0.0.1:8080/api/orders?x=1
 * await proxy.close();
 * ```
 */
export async function startProxy(options: ProxyOptions): Promise<ZbusProxy> {
  const proxy = createProxy(options);
  try {
    await proxy.start();
  } catch (err) {
    await proxy.close();
    throw err;
  }
  return proxy;
}
