import type { ClientSource } from './broker.js';
import type { DeclareOptions, GroupOptions, MqClient, RequestOptions } from './client.js';
import type { ConsumeGroupInfo, ServerInfo, TopicInfo, TrackerInfo } from './info.js';

/** Options of an {@link MqAdmin}. */
export interface MqAdminOptions {
  /** Token for admin calls (a dedicated connection is opened when set). */
  token?: string;
  /** Reply timeout, ms. @default the client's */
  timeout?: number;
}

/** Topic and group management: declare, query, remove, empty (0.11 `MqAdmin`). */
export class MqAdmin {
  readonly #source: ClientSource;
  readonly #options: MqAdminOptions;
  #own: MqClient | undefined;

  constructor(source: ClientSource, options: MqAdminOptions = {}) {
    this.#source = source;
    this.#options = options;
  }

  #client(): MqClient {
    if (this.#options.token === undefined) return this.#source.client();
    this.#own ??= this.#source.createClient({ token: this.#options.token });
    return this.#own;
  }

  #opts<T extends RequestOptions>(o: T): T {
    return this.#options.timeout !== undefined && o.timeout === undefined
      ? { ...o, timeout: this.#options.timeout }
      : o;
  }

  declare(topic: string, options: DeclareOptions = {}): Promise<TopicInfo | ConsumeGroupInfo> {
    return this.#client().declare(topic, this.#opts(options));
  }
  declareTopic(topic: string, topicMask?: number): Promise<TopicInfo> {
    return this.#client().declareTopic(topic, topicMask, this.#opts({}));
  }
  declareGroup(topic: string, group: string | GroupOptions): Promise<ConsumeGroupInfo> {
    return this.#client().declareGroup(topic, group, this.#opts({}));
  }
  query(topic?: string, group?: string): Promise<ServerInfo | TopicInfo | ConsumeGroupInfo> {
    return this.#client().query(topic, group, this.#opts({}));
  }
  queryServer(): Promise<ServerInfo> {
    return this.#client().queryServer(this.#opts({}));
  }
  queryTopic(topic: string): Promise<TopicInfo> {
    return this.#client().queryTopic(topic, this.#opts({}));
  }
  queryGroup(topic: string, group: string): Promise<ConsumeGroupInfo> {
    return this.#client().queryGroup(topic, group, this.#opts({}));
  }
  remove(topic: string, group?: string): Promise<void> {
    return this.#client().remove(topic, group, this.#opts({}));
  }
  removeTopic(topic: string): Promise<void> {
    return this.remove(topic);
  }
  removeGroup(topic: string, group: string): Promise<void> {
    return this.remove(topic, group);
  }
  empty(topic: string, group?: string): Promise<void> {
    return this.#client().empty(topic, group, this.#opts({}));
  }
  server(): Promise<ServerInfo> {
    return this.#client().server(this.#opts({}));
  }
  tracker(): Promise<TrackerInfo> {
    return this.#client().tracker(this.#opts({}));
  }

  /** Closes the admin's own connection (none unless a token was given). */
  async close(): Promise<void> {
    await this.#own?.close();
    this.#own = undefined;
  }
}
