import type { ConsumeGroupInfo, ServerInfo, TopicInfo, TrackerInfo, ZbusError } from '@zbus/protocol';
import type { DeclareOptions, GroupOptions, MqClient, RequestOptions } from './client.js';
import { type ClientSource, sourceOf } from './source.js';

/** Options of an {@link MqAdmin}. */
export interface MqAdminOptions {
  /** Token for admin calls (dedicated connections are opened when set). */
  token?: string;
  /** Reply timeout, ms. @default the client's */
  timeout?: number;
}

/** The answer of one server to an admin command sent to several (`declareAll`, `queryAll`, ...). */
export interface ServerResult<T> {
  /** The server (address connected to). */
  server: string;
  /** Its answer, when it succeeded. */
  value?: T;
  /** Its error, when it failed. */
  error?: Error;
}

/**
 * Topic and group management: declare, query, remove, empty (0.11 `MqAdmin`).
 *
 * With a tracker-aware Broker that knows several servers, `declare`, `remove` and `empty` go to every server
 * (so a publish lands on a server that has the topic, whichever it is) and keep their single-server return
 * shape: the first server's answer; they reject when a server fails (`remove` and `empty` accept "not found"
 * from some servers as long as one found it). `query*` ask one server that holds the topic. The `*All`
 * methods return one {@link ServerResult} per server and never reject for a server's failure.
 */
export class MqAdmin {
  readonly #source: ClientSource;
  readonly #options: MqAdminOptions;
  readonly #own = new Map<string, MqClient>();

  constructor(source: ClientSource | MqClient, options: MqAdminOptions = {}) {
    this.#source = sourceOf(source);
    this.#options = options;
  }

  #clientAt(server: string | undefined): MqClient {
    const s = this.#source;
    const token = this.#options.token;
    if (token === undefined) {
      return server === undefined || s.clientAt === undefined ? s.client() : s.clientAt(server);
    }
    const key = server ?? '';
    let c = this.#own.get(key);
    if (c === undefined || c.state === 'closed' || c.state === 'closing') {
      c =
        server === undefined || s.createClientAt === undefined
          ? s.createClient({ token })
          : s.createClientAt(server, { token });
      this.#own.set(key, c);
    }
    return c;
  }

  async #servers(topic?: string): Promise<(string | undefined)[]> {
    const s = this.#source;
    if (s.route === undefined) return [undefined];
    if (s.tracked !== undefined) await s.tracked();
    const list = s.route('admin', topic);
    return list.length > 0 ? list : [undefined];
  }

  #opts<T extends RequestOptions>(o: T): T {
    return this.#options.timeout !== undefined && o.timeout === undefined
      ? { ...o, timeout: this.#options.timeout }
      : o;
  }

  /** Runs `fn` on every admin server; one result per server. */
  async #all<T>(topic: string | undefined, fn: (c: MqClient) => Promise<T>): Promise<ServerResult<T>[]> {
    const servers = await this.#servers(topic);
    return Promise.all(
      servers.map(async (server) => {
        const c = this.#clientAt(server);
        try {
          return { server: c.address, value: await fn(c) };
        } catch (err) {
          return { server: c.address, error: err as Error };
        }
      }),
    );
  }

  /** Runs `fn` on every admin server; the first answer, or the first error (see the class notes). */
  async #everywhere<T>(
    topic: string | undefined,
    fn: (c: MqClient) => Promise<T>,
    notFoundIsFine = false,
  ): Promise<T> {
    const results = await this.#all(topic, fn);
    const ok = results.filter((r) => r.error === undefined);
    const failed = results.filter(
      (r) =>
        r.error !== undefined &&
        !(notFoundIsFine && ok.length > 0 && (r.error as ZbusError).code === 'ZBUS_ERR_NOT_FOUND'),
    );
    if (failed.length > 0) throw (failed[0] as ServerResult<T>).error;
    return (ok[0] as ServerResult<T>).value as T;
  }

  /** Asks the servers that hold the topic, one after the other, until one answers other than "not found". */
  async #one<T>(topic: string | undefined, fn: (c: MqClient) => Promise<T>): Promise<T> {
    const s = this.#source;
    let servers = await this.#servers(topic);
    if (topic !== undefined && s.route !== undefined) {
      const holders = new Set(s.route('consume', topic));
      servers = [...servers.filter((a) => a !== undefined && holders.has(a)), ...servers];
      servers = servers.filter((a, i) => servers.indexOf(a) === i);
    }
    let last: unknown;
    for (const server of servers) {
      try {
        return await fn(this.#clientAt(server));
      } catch (err) {
        last = err;
        if ((err as ZbusError).code !== 'ZBUS_ERR_NOT_FOUND') throw err;
      }
    }
    throw last;
  }

  declare(topic: string, options: DeclareOptions = {}): Promise<TopicInfo | ConsumeGroupInfo> {
    return this.#everywhere(topic, (c) => c.declare(topic, this.#opts(options)));
  }
  declareTopic(topic: string, topicMask?: number): Promise<TopicInfo> {
    return this.#everywhere(topic, (c) => c.declareTopic(topic, topicMask, this.#opts({})));
  }
  declareGroup(topic: string, group: string | GroupOptions): Promise<ConsumeGroupInfo> {
    return this.#everywhere(topic, (c) => c.declareGroup(topic, group, this.#opts({})));
  }
  query(topic?: string, group?: string): Promise<ServerInfo | TopicInfo | ConsumeGroupInfo> {
    return this.#one(topic, (c) => c.query(topic, group, this.#opts({})));
  }
  queryServer(): Promise<ServerInfo> {
    return this.#one(undefined, (c) => c.queryServer(this.#opts({})));
  }
  queryTopic(topic: string): Promise<TopicInfo> {
    return this.#one(topic, (c) => c.queryTopic(topic, this.#opts({})));
  }
  queryGroup(topic: string, group: string): Promise<ConsumeGroupInfo> {
    return this.#one(topic, (c) => c.queryGroup(topic, group, this.#opts({})));
  }
  remove(topic: string, group?: string): Promise<void> {
    return this.#everywhere(topic, (c) => c.remove(topic, group, this.#opts({})), true);
  }
  removeTopic(topic: string): Promise<void> {
    return this.remove(topic);
  }
  removeGroup(topic: string, group: string): Promise<void> {
    return this.remove(topic, group);
  }
  empty(topic: string, group?: string): Promise<void> {
    return this.#everywhere(topic, (c) => c.empty(topic, group, this.#opts({})), true);
  }
  server(): Promise<ServerInfo> {
    return this.#one(undefined, (c) => c.server(this.#opts({})));
  }
  tracker(): Promise<TrackerInfo> {
    return this.#one(undefined, (c) => c.tracker(this.#opts({})));
  }

  // ---- per-server results (0.11 returns arrays, one per server) -------------------------------------------

  /** `declare` on every server, one result each. */
  declareAll(
    topic: string,
    options: DeclareOptions = {},
  ): Promise<ServerResult<TopicInfo | ConsumeGroupInfo>[]> {
    return this.#all(topic, (c) => c.declare(topic, this.#opts(options)));
  }
  /** `query` on every server, one result each (a server without the topic answers `ZBUS_ERR_NOT_FOUND`). */
  queryAll(
    topic?: string,
    group?: string,
  ): Promise<ServerResult<ServerInfo | TopicInfo | ConsumeGroupInfo>[]> {
    return this.#all(topic, (c) => c.query(topic, group, this.#opts({})));
  }
  /** `remove` on every server, one result each. */
  removeAll(topic: string, group?: string): Promise<ServerResult<void>[]> {
    return this.#all(topic, (c) => c.remove(topic, group, this.#opts({})));
  }
  /** `empty` on every server, one result each. */
  emptyAll(topic: string, group?: string): Promise<ServerResult<void>[]> {
    return this.#all(topic, (c) => c.empty(topic, group, this.#opts({})));
  }

  /** `await using admin = new MqAdmin(...)` closes its own connections at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Closes the admin's own connections (none unless a token was given). */
  async close(): Promise<void> {
    const own = [...this.#own.values()];
    this.#own.clear();
    await Promise.all(own.map((c) => c.close()));
  }
}
