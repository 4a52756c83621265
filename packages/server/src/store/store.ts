// The store: a data directory with one sub-directory per disk topic (named by the lower-cased topic name; the
// declared spelling lives in its topic.json), plus memory topics that exist only in this process.
import fs from 'node:fs';
import path from 'node:path';
import { type Clock, systemClock } from './clock.js';
import { CommitStats } from './commit-stats.js';
import { declareDlq } from './dead-letter.js';
import { declareOnce } from './declare-once.js';
import { defaultMaxOpenFiles, FileCache } from './file-cache.js';
import { asStoreError, TMP_SUFFIX } from './fs-util.js';
import { TailCache } from './log.js';
import { DEFAULT_GROUP_WAIT_MS } from './log-writer.js';
import { MemoryBudget, MemoryTopic } from './memory-topic.js';
import { migrateCreators } from './migrate-creators.js';
import { nameKey, validateName } from './names.js';
import { DiskTopic, type StoreContext, TRASH_PREFIX } from './topic.js';
import {
  type FsyncPolicy,
  STORE_MASK_MEMORY,
  type Store,
  StoreError,
  type StoreLogger,
  type StoreOptions,
  type Topic,
  type TopicConfig,
} from './types.js';

/** @default 64 MiB */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Topic directories opened at once at start (each holds a few files open while it is opened). */
const OPEN_CONCURRENCY = 16;

type AnyTopic = DiskTopic | MemoryTopic;

class FileStore implements Store, StoreContext {
  readonly dataDir: string;
  readonly fsync: FsyncPolicy;
  readonly segmentBytes: number;
  readonly groupCommitWaitMs: number;
  readonly topicDefaults: NonNullable<StoreOptions['topicDefaults']>;
  readonly groupDefaults: NonNullable<StoreOptions['groupDefaults']>;
  readonly log: StoreLogger | undefined;
  readonly deadLetterFn: StoreOptions['deadLetter'];
  readonly clock: Clock;
  readonly files: FileCache;
  readonly tailCache: TailCache;
  readonly commits = new CommitStats();
  readonly afterWake: StoreOptions['afterWake'];
  readonly #memory: MemoryBudget;
  readonly #topics = new Map<string, AnyTopic>();
  readonly #declaring = new Map<string, Promise<AnyTopic>>();
  readonly #migrateCreator: StoreOptions['migrateCreator'];
  #closed = false;

  constructor(options: StoreOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.fsync = options.fsync ?? 'always';
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.groupCommitWaitMs = options.groupCommitWaitMs ?? DEFAULT_GROUP_WAIT_MS;
    this.topicDefaults = options.topicDefaults ?? {};
    this.groupDefaults = options.groupDefaults ?? {};
    this.log = options.log;
    this.deadLetterFn = options.deadLetter;
    this.clock = options.clock ?? systemClock;
    this.#migrateCreator = options.migrateCreator;
    this.afterWake = options.afterWake;
    this.#memory = new MemoryBudget(options.maxMemoryTopicBytes);
    this.tailCache = new TailCache(options.tailCacheBytes);
    this.files = new FileCache(
      options.maxOpenFiles !== undefined && options.maxOpenFiles > 0
        ? options.maxOpenFiles
        : defaultMaxOpenFiles(),
    );
  }

  async load(): Promise<void> {
    await fs.promises.mkdir(this.dataDir, { recursive: true });
    if (this.#migrateCreator) await migrateCreators(this.dataDir, this.#migrateCreator, this.log);
    const entries = await fs.promises.readdir(this.dataDir, { withFileTypes: true });
    for (const e of entries) {
      // Topics being deleted when the process stopped, and temp files of writes it did not finish.
      if (
        (e.isDirectory() && e.name.startsWith(TRASH_PREFIX)) ||
        (e.isFile() && e.name.endsWith(TMP_SUFFIX))
      ) {
        await fs.promises.rm(path.join(this.dataDir, e.name), { recursive: true, force: true });
      }
    }
    const dirs = entries
      .filter((e) => e.isDirectory() && !e.name.startsWith(TRASH_PREFIX))
      .map((e) => e.name);
    // A few at a time: 10,000 topics opened at once would each hold files open at the same moment.
    let next = 0;
    const worker = async () => {
      while (next < dirs.length) {
        const name = dirs[next++]!;
        try {
          const t = await DiskTopic.open(this, path.join(this.dataDir, name));
          if (t) this.#topics.set(nameKey(t.name), t);
        } catch (err) {
          this.log?.error({ dir: name, err }, 'cannot open topic directory; skipped');
        }
      }
    };
    await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, worker));
  }

  #check(): void {
    if (this.#closed) throw new StoreError('ZBUS_ERR_CLOSED', 'store is closed');
  }

  topic(name: string): Topic | undefined {
    return this.#topics.get(nameKey(name));
  }

  topics(): Topic[] {
    return [...this.#topics.values()];
  }

  async declareTopic(given: string, config: TopicConfig): Promise<Topic> {
    this.#check();
    const name = validateName('topic', given);
    const key = nameKey(name);
    return declareOnce(
      this.#topics,
      this.#declaring,
      key,
      async () => {
        const t =
          (config.mask & STORE_MASK_MEMORY) !== 0
            ? new MemoryTopic(
                name,
                config,
                {
                  maxBacklog: this.topicDefaults.maxBacklog,
                  maxMessageBytes: this.topicDefaults.maxMessageBytes,
                  budget: this.#memory,
                },
                this.clock,
              )
            : await asStoreError(
                DiskTopic.create(this, path.join(this.dataDir, key), name, config),
                `declare topic ${name}`,
              );
        this.#topics.set(key, t);
        return t;
      },
      (t) => asStoreError(Promise.resolve(t.redeclare(config)), `declare topic ${name}`),
    );
  }

  async removeTopic(name: string): Promise<boolean> {
    this.#check();
    const key = nameKey(name);
    const t = this.#topics.get(key);
    if (t === undefined) return false;
    this.#topics.delete(key);
    if (t instanceof MemoryTopic) t.close();
    else await asStoreError(t.destroy(), `remove topic ${name}`);
    return true;
  }

  dlqTopic(topicName: string): Promise<Topic> {
    return declareDlq(this, topicName);
  }

  async flush(): Promise<void> {
    this.#check();
    for (const t of this.#topics.values()) {
      if (t instanceof DiskTopic) await asStoreError(t.flush(), `flush topic ${t.name}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      [...this.#topics.values()].map((t) => (t instanceof MemoryTopic ? t.close() : t.close())),
    );
    this.#topics.clear();
  }
}

/** Open (creating if needed) the store in `options.dataDir`; every topic directory found is opened. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const s = new FileStore(options);
  await s.load();
  return s;
}
