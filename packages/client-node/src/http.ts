import { type Body, type ProduceResult, restoreDelivery, setBody } from '@zbus/client-core';
import { errorFromReply, Message, ZbusError } from '@zbus/protocol';
import { decodeBody, type MessageInvoker } from '@zbus/rpc';
import type { Agent, request as UndiciRequest } from 'undici';

/** Options of an {@link HttpClient}. */
export interface HttpClientOptions {
  /** Token sent as the `token` header. */
  token?: string;
  /**
   * Milliseconds a request may take.
   * @default 10000
   */
  timeout?: number;
  /**
   * Kept-alive connections to the broker.
   * @default 16
   */
  connections?: number;
}

/**
 * zbus over plain HTTP/1.1 (undici), for processes that would rather not hold a socket: produce, consume,
 * RPC by URL, and any message via `invoke` (so an `RpcInvoker` can run over it too: the broker answers an
 * RPC request on the same HTTP exchange).
 *
 * ```ts
 * const http = new HttpClient('http://127.0.0.1:15555');
 * await http.produce('orders', { id: 1 });
 * const sum = await http.rpc('MyRpc', 'math', 'plus', 1, 2);
 * ```
 */
export class HttpClient implements MessageInvoker {
  readonly baseUrl: string;
  /** undici, loaded on the first request: importing `@zbus/client` does not load it for TCP-only users. */
  #undici: Promise<{ agent: Agent; request: typeof UndiciRequest }> | undefined;
  readonly #connections: number;
  #closed = false;
  readonly #token: string | undefined;
  readonly #timeout: number;

  constructor(baseUrl = 'http://127.0.0.1:15555', options: HttpClientOptions = {}) {
    const url = /^https?:\/\//i.test(baseUrl) ? baseUrl : `http://${baseUrl}`;
    this.baseUrl = url.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeout = options.timeout ?? 10_000;
    if (!(this.#timeout > 0)) throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'timeout must be > 0');
    this.#connections = options.connections ?? 16;
  }

  #load(): Promise<{ agent: Agent; request: typeof UndiciRequest }> {
    this.#undici ??= import('undici').then(({ Agent, request }) => ({
      agent: new Agent({ connections: this.#connections, keepAliveTimeout: 30_000 }),
      request,
    }));
    return this.#undici;
  }

  /**
   * Sends `msg` as an HTTP request (method, url, headers, body) and returns the response as a message. Rejects
   * with `ZBUS_ERR_TIMEOUT` after `timeout` ms, and with the signal's reason when `signal` aborts.
   */
  async invoke(msg: Message, options: { timeout?: number; signal?: AbortSignal } = {}): Promise<Message> {
    const timeout = options.timeout ?? this.#timeout;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(msg.headers)) {
      if (k === 'content-length' || k === 'connection' || k === 'transfer-encoding' || k === 'host') continue;
      headers[k] = v;
    }
    if (this.#token !== undefined && headers.token === undefined) headers.token = this.#token;
    const method = msg.method || 'GET';
    const hasBody = msg.body.length > 0;
    if (this.#closed) throw new ZbusError('ZBUS_ERR_CLOSED', 'HTTP client is closed');
    const { agent, request } = await this.#load();
    const timer = AbortSignal.timeout(timeout);
    const signal = options.signal === undefined ? timer : AbortSignal.any([timer, options.signal]);
    try {
      const res = await request(this.baseUrl + (msg.url || '/'), {
        method: hasBody && method === 'GET' ? 'POST' : (method as 'GET'),
        headers,
        body: hasBody ? msg.body : null,
        dispatcher: agent,
        signal,
      });
      const body = new Uint8Array(await res.body.arrayBuffer());
      const out = new Message({ status: res.statusCode, body });
      for (const [k, v] of Object.entries(res.headers)) {
        if (v === undefined) continue;
        out.headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
      }
      return out;
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (timer.aborted) {
        throw new ZbusError(
          'ZBUS_ERR_TIMEOUT',
          `HTTP ${method} ${msg.url} timed out after ${timeout} ms (timeout)`,
          {
            cause: err,
          },
        );
      }
      if (err instanceof ZbusError) throw err;
      throw new ZbusError(
        'ZBUS_ERR_CONNECTION_CLOSED',
        `HTTP request to ${this.baseUrl} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Produces a message (`POST /<topic>`); resolves with the broker's ack. */
  async produce(
    topic: string,
    body: Body,
    options: {
      tag?: string;
      id?: string;
      headers?: Record<string, string>;
      timeout?: number;
      signal?: AbortSignal;
    } = {},
  ): Promise<Omit<ProduceResult, 'reply'> & { reply: Message }> {
    const msg = new Message({
      method: 'POST',
      url: `/${encodeURIComponent(topic)}`,
      headers: options.headers ?? {},
    });
    msg.set('cmd', 'produce');
    msg.set('topic', topic);
    if (options.tag !== undefined) msg.set('tag', options.tag);
    if (options.id !== undefined) msg.set('id', options.id);
    setBody(msg, body);
    const reply = await this.invoke(msg, { timeout: options.timeout, signal: options.signal });
    if (reply.status !== 200) throw errorFromReply(reply);
    const t = Number(reply.bodyText().trim());
    return {
      id: reply.headers.id ?? options.id ?? '',
      topic,
      offset: reply.offset,
      durability: reply.headers.durable,
      serverTime: Number.isFinite(t) ? t : undefined,
      server: this.baseUrl,
      reply,
    };
  }

  /**
   * Takes one message (`GET /<topic>[/<group>]?cmd=consume`), waiting up to `timeout` ms; `undefined` when
   * nothing came. The message is restored as 0.11 clients do.
   */
  async consume(
    topic: string,
    options: { group?: string; timeout?: number; signal?: AbortSignal } = {},
  ): Promise<Message | undefined> {
    const timeout = options.timeout ?? this.#timeout;
    const path = options.group === undefined ? topic : `${topic}/${options.group}`;
    const msg = new Message({ url: `/${path.split('/').map(encodeURIComponent).join('/')}?cmd=consume` });
    msg.set('cmd', 'consume');
    msg.set('topic', topic);
    if (options.group !== undefined) msg.set('consume_group', options.group);
    msg.set('consume_timeout', timeout);
    const reply = await this.invoke(msg, {
      timeout: timeout + Math.min(timeout, 2_000),
      signal: options.signal,
    });
    if (reply.status !== 200) throw errorFromReply(reply);
    if (reply.headers.origin_id === undefined) return undefined;
    return restoreDelivery(reply);
  }

  /**
   * Calls `GET /<topic>/<module>/<method>/<p1>/...` (RPC by URL; `module` '' is the default module) and
   * resolves with the decoded result. Params travel as text.
   */
  async rpc<R = unknown>(topic: string, module: string, method: string, ...params: unknown[]): Promise<R> {
    const segments = [
      topic,
      module,
      method,
      ...params.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))),
    ];
    const url = `/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
    const reply = await this.invoke(new Message({ url }));
    if (reply.status !== 200) throw errorFromReply(reply);
    return decodeBody(reply.headers['content-type'], reply.body) as R;
  }

  /** `await using http = new HttpClient(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Closes the kept-alive connections. */
  async close(): Promise<void> {
    this.#closed = true;
    const loaded = this.#undici;
    if (loaded !== undefined) await (await loaded).agent.close();
  }
}
