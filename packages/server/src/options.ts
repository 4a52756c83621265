// Every broker option in one place: the interface with its defaults, and the one function that validates
// them. The CLI flags, env vars and docs/configuration.md map onto these names.
import { ZbusError } from '@zbus/protocol';
import type { Logger } from 'pino';
import { isLoopbackOrWildcard } from './auth/loopback.js';
import { isOriginPattern } from './auth/origin.js';
import type { NatsClientOptions, SharedStoreModule } from './cluster/shared-store.js';
import { type Clock, MAX_TIMER_MS } from './store/clock.js';
import type { FsyncPolicy } from './store/types.js';

export interface TlsOptions {
  /** PEM certificate (contents, not a path). */
  cert: string | Uint8Array;
  /** PEM private key (contents, not a path). */
  key: string | Uint8Array;
}

export interface AuthTokenEntry {
  /** The secret. An entry with token '' applies to requests without a token. */
  token: string;
  /** Shown as the `creator` of the topics and groups this token declares (the secret never is). */
  name?: string;
  /** Operations this token may run: command names, `*` (all) or `admin` (all, including admin pages). */
  operations: string[];
  /** Topics this token may touch (`*` = all), each optionally limited to some groups. */
  topics: Array<{ topic: string; groups?: string[] }>;
}

export interface AuthConfig {
  tokens: AuthTokenEntry[];
}

export interface BrokerOptions {
  /** @default '0.0.0.0' */
  host?: string;
  /** 0 picks a free port. @default 15555 */
  port?: number;
  /** Address announced to clients and trackers (`host:port`); derived from the listen address when unset. */
  announce?: string;
  /** @default './zbus-data' */
  dataDir?: string;
  /**
   * `local` (the embedded store in dataDir) or `nats://h1:4222,h2:4222` (`tls://...`): every broker given the
   * same NATS cluster shares its topics (docs/scale-out.md). @default 'local'
   */
  store?: string;
  /** Replicas of each stream on the NATS cluster (1, 3 or 5). @default 3 */
  storeReplicas?: number;
  /** Prefix of the streams, subjects and KV bucket, so that several deployments share one NATS cluster. @default 'zbus' */
  storePrefix?: string;
  /** Credentials and TLS for the NATS connection. */
  nats?: NatsClientOptions;
  /** The shared store's module, when the caller imports `@zbus/store-nats` itself (else imported on demand). */
  storeModule?: SharedStoreModule;
  /** @default 'always' */
  fsync?: FsyncPolicy;
  /** @default 64 MiB */
  segmentBytes?: number;
  /**
   * fsync=always: longest time, in ms, a written produce waits for the producers expected to share its
   * fdatasync while the disk could take one (group commit). 0: an fdatasync starts whenever one can. @default 1
   */
  groupCommitWaitMs?: number;
  /**
   * Most files the local store keeps open at once (segments, indexes, journals); the least recently used idle one
   * is closed to make room. 0: half the process's open-file limit (`ulimit -n`), at least 64. @default 0
   */
  maxOpenFiles?: number;
  /** Largest header block of one message. @default 64 KiB */
  maxHeaderBytes?: number;
  /** @default 256 */
  maxHeaderCount?: number;
  /** Largest body of one message. @default 16 MiB */
  maxBodyBytes?: number;
  /** @default 10000 */
  maxConnections?: number;
  /** Requests of one connection being processed at once; reading stops past it. @default 1024 */
  maxInflightPerConnection?: number;
  /**
   * Bytes queued toward one connection (its socket's write queue and the replies held for order) past which the
   * broker stops reading from it, pushing to it and reading stored messages for it. At least 64 KiB.
   * @default 4 MiB
   */
  writeHighWaterMark?: number;
  /**
   * Bytes queued toward one connection past which it is closed at once: its peer asked for more than it reads.
   * At least writeHighWaterMark + maxHeaderBytes + maxBodyBytes; left unset, it is raised to that when the
   * default is less. @default 64 MiB
   */
  maxWriteQueueBytes?: number;
  /** Close a connection whose queue stays past writeHighWaterMark with no byte taken for this long. 0 disables. @default 30000 */
  writeStallTimeoutMs?: number;
  /**
   * Close a connection that reads and writes nothing for this long (a heartbeat keeps it); it goes between 1 and
   * 1.25 times this after its last byte. 0 disables. @default 180000
   */
  idleTimeoutMs?: number;
  /** RPC requests without a reply after this get 504 (a `timeout` header may ask for less or more). @default 10000 */
  rpcTimeoutMs?: number;
  /**
   * Topics the broker holds (declaring one more answers 429). Each costs a directory, open files while in use,
   * its groups, indexes and buffers. @default 10000
   */
  maxTopics?: number;
  /** Consume groups of one topic (declaring one more answers 429; a broadcast consumer has one each). @default 1000 */
  maxGroupsPerTopic?: number;
  /** Capacity of memory (and RPC) topics in messages. @default 1000 */
  memoryTopicCapacity?: number;
  /**
   * Bytes that all memory (and RPC and proxy) topics hold together, their delayed messages included. Past it,
   * messages every group has read are dropped, and if that is not enough a produce answers 429. @default 256 MiB
   */
  maxMemoryTopicBytes?: number;
  /**
   * Bytes of recently written messages that disk topics keep in memory for consumers at the tail, all topics
   * together (each keeps up to 1 MiB). Past it the topics written least recently give theirs up, and their
   * consumers read from the file. @default 64 MiB
   */
  tailCacheBytes?: number;
  /** Default ack timeout of ack-required groups. @default 10000 */
  ackTimeoutMs?: number;
  /** Default ack window of ack-required groups. @default 100 */
  ackWindow?: number;
  /** Deliveries before a message goes to `<topic>.dlq`. @default 5 */
  maxDeliver?: number;
  /** Dedupe window for produce ids (0 = off). @default 0 */
  dedupeWindowMs?: number;
  /** Most messages one consume may ask for (`consume_window`). @default 1000 */
  maxConsumeWindow?: number;
  /** How long close() waits for in-flight requests. @default 5000 */
  shutdownTimeoutMs?: number;
  /** Token ACLs; auth is off when unset, and then only loopback clients are served unless `insecure`. */
  auth?: AuthConfig;
  /**
   * Without `auth`, serve clients from any address. Off, a broker without auth runs in protected mode: only
   * clients on its loopback interface are served; others get 403 ZBUS_ERR_PROTECTED_MODE. @default false
   */
  insecure?: boolean;
  /**
   * Origins (`https://app.example.com`) whose web pages may send the broker requests that change state and open
   * WebSockets; `*` allows any page. Pages of other origins are refused (403 ZBUS_ERR_CROSS_SITE); clients that
   * are not browsers are never affected. @default []
   */
  allowOrigins?: string[];
  /** TLS on the same port (first byte 0x16). */
  tls?: TlsOptions;
  /** Trackers to report to (`h1:p;h2:p`). */
  trackers?: string[];
  /** Periodic `track_pub` to the trackers. @default 30000 */
  trackerReportIntervalMs?: number;
  /** A tracked server silent for this long is dropped from the tracker's table. @default 90000 */
  trackerDeadlineMs?: number;
  /** Token sent with `track_pub` to the trackers (when they run with auth). */
  trackerToken?: string;
  /**
   * The cluster secret: a tracker accepts `track_pub` only with it, and a broker with `trackers` sends it. Every
   * broker of a cluster has the same one; at least 16 characters. Without it a broker takes no server reports.
   */
  clusterToken?: string;
  /** Most servers a tracker tracks, each watched through one connection it opens. @default 256 */
  trackerMaxServers?: number;
  /** Directory of the monitor's built assets, served at `/`. */
  monitorDir?: string;
  /** pino level. @default 'warn' */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * Where the broker logs: the embedding application's pino logger (or a child of it). `logLevel` then does not
   * apply (the logger's own level does). JSON lines to stderr at `logLevel` when unset.
   */
  logger?: Logger;
  /**
   * Time for the broker's timers and the store's: ack deadlines, consume_timeout, RPC timeouts (504), delayed
   * delivery, idleTimeoutMs, retention and interval fsync. For tests and embedding (a manual clock makes timer
   * logic deterministic); the system clock when unset. The write stall, an incomplete message's deadline, a TLS
   * handshake's and close() keep real time.
   */
  clock?: Clock;
}

/** Options without a default. */
export type OptionsWithoutDefault =
  | 'announce'
  | 'auth'
  | 'tls'
  | 'monitorDir'
  | 'trackerToken'
  | 'clusterToken'
  | 'nats'
  | 'storeModule'
  | 'logger'
  | 'clock';

export type ResolvedBrokerOptions = Readonly<
  Required<Omit<BrokerOptions, OptionsWithoutDefault>> & Pick<BrokerOptions, OptionsWithoutDefault>
>;

export const DEFAULTS = {
  host: '0.0.0.0',
  port: 15555,
  dataDir: './zbus-data',
  store: 'local',
  storeReplicas: 3,
  storePrefix: 'zbus',
  fsync: 'always',
  segmentBytes: 64 * 1024 * 1024, // 64 MiB
  groupCommitWaitMs: 1,
  maxOpenFiles: 0,
  maxHeaderBytes: 64 * 1024, // 64 KiB
  maxHeaderCount: 256,
  maxBodyBytes: 16 * 1024 * 1024, // 16 MiB
  maxConnections: 10_000,
  maxInflightPerConnection: 1024,
  writeHighWaterMark: 4 * 1024 * 1024, // 4 MiB
  maxWriteQueueBytes: 64 * 1024 * 1024, // 64 MiB
  writeStallTimeoutMs: 30_000,
  idleTimeoutMs: 180_000,
  rpcTimeoutMs: 10_000,
  maxTopics: 10_000,
  maxGroupsPerTopic: 1000,
  memoryTopicCapacity: 1000,
  maxMemoryTopicBytes: 256 * 1024 * 1024, // 256 MiB
  tailCacheBytes: 64 * 1024 * 1024, // 64 MiB
  ackTimeoutMs: 10_000,
  ackWindow: 100,
  maxDeliver: 5,
  dedupeWindowMs: 0,
  maxConsumeWindow: 1000,
  shutdownTimeoutMs: 5000,
  insecure: false,
  allowOrigins: [] as string[],
  trackers: [] as string[],
  trackerReportIntervalMs: 30_000,
  trackerDeadlineMs: 90_000,
  trackerMaxServers: 256,
  logLevel: 'warn',
} satisfies Omit<ResolvedBrokerOptions, OptionsWithoutDefault>;

/** A bad option: a wrong type, a value out of its range, or two options that do not fit together. */
export class InvalidOptionError extends ZbusError {
  static override readonly kind: string = 'InvalidOptionError';
  /** The option (or options) at fault, as named in BrokerOptions. */
  readonly option: string;
  constructor(option: string, message: string) {
    super('ZBUS_ERR_INVALID_ARGUMENT', `${message} (${option})`);
    this.option = option;
  }
}

/** Largest capacity of a memory topic (its messages sit in one array of that length). */
export const MAX_MEMORY_CAPACITY = 1_000_000;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

type IntegerOption = {
  [K in keyof BrokerOptions]-?: NonNullable<BrokerOptions[K]> extends number ? K : never;
}[keyof BrokerOptions];

/**
 * The range of every integer option, bounds included. Typed over BrokerOptions: a new number option that is
 * not listed here does not compile.
 */
const INTEGER_RANGES: Record<IntegerOption, readonly [min: number, max: number]> = {
  port: [0, 65535],
  storeReplicas: [1, 5],
  segmentBytes: [1 * KiB, 1024 * GiB],
  groupCommitWaitMs: [0, 1000],
  maxOpenFiles: [0, 1_000_000],
  maxHeaderBytes: [1 * KiB, 16 * MiB],
  maxHeaderCount: [1, 65536],
  maxBodyBytes: [1, 1 * GiB],
  maxConnections: [1, 1_000_000],
  maxInflightPerConnection: [1, 1_000_000],
  // A socket says it emptied its queue ('drain') only after a write found it at its own high-water mark (16 KiB
  // on Node 20, 64 KiB on Node 22): a smaller mark could stop a connection with no event left to resume it.
  writeHighWaterMark: [64 * KiB, 1 * GiB],
  maxWriteQueueBytes: [1 * KiB, 64 * GiB],
  writeStallTimeoutMs: [0, MAX_TIMER_MS],
  idleTimeoutMs: [0, MAX_TIMER_MS],
  rpcTimeoutMs: [1, MAX_TIMER_MS],
  memoryTopicCapacity: [1, MAX_MEMORY_CAPACITY],
  maxTopics: [1, 10_000_000],
  maxGroupsPerTopic: [1, 1_000_000],
  maxMemoryTopicBytes: [1 * MiB, 1024 * GiB],
  tailCacheBytes: [1 * MiB, 1024 * GiB],
  ackTimeoutMs: [1, MAX_TIMER_MS],
  ackWindow: [1, 1_000_000],
  maxDeliver: [1, 1_000_000],
  dedupeWindowMs: [0, MAX_TIMER_MS],
  maxConsumeWindow: [1, 1_000_000],
  shutdownTimeoutMs: [0, MAX_TIMER_MS],
  trackerReportIntervalMs: [0, MAX_TIMER_MS],
  trackerDeadlineMs: [1, MAX_TIMER_MS],
  trackerMaxServers: [1, 100_000],
};

/** Options without a default; with DEFAULTS they name every option (a new one must be listed somewhere). */
const WITHOUT_DEFAULT: Record<OptionsWithoutDefault, true> = {
  announce: true,
  auth: true,
  tls: true,
  trackerToken: true,
  clusterToken: true,
  monitorDir: true,
  nats: true,
  storeModule: true,
  logger: true,
  clock: true,
};

const LOG_LEVELS: ReadonlySet<unknown> = new Set([
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
]);

/** `host:port` with a port from 1 to 65535 (a bracketed IPv6 host too). */
function isHostPort(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const m = /^(?:\[[^\]\s]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(v);
  return m !== null && Number(m[1]) >= 1 && Number(m[1]) <= 65535;
}

function shown(v: unknown): string {
  return typeof v === 'string'
    ? `'${v}'`
    : typeof v === 'object' && v !== null
      ? JSON.stringify(v)
      : String(v);
}

/** Parses `always`, `never`, `interval=<ms>` or `<ms>` into a policy. */
export function parseFsyncPolicy(value: string): FsyncPolicy {
  if (value === 'always' || value === 'never') return value;
  const m = /^(?:interval[=:])?(\d+)(?:ms)?$/.exec(value);
  const ms = Number(m?.[1]);
  if (Number.isSafeInteger(ms) && ms >= 1 && ms <= MAX_TIMER_MS) return { intervalMs: ms };
  throw new InvalidOptionError(
    'fsync',
    `fsync must be always, never or interval=<ms> (1 to ${MAX_TIMER_MS} ms), got '${value}'`,
  );
}

/** Spreads the options over the defaults, validates them and returns a frozen copy. */
export function resolveOptions(options: BrokerOptions = {}): ResolvedBrokerOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', `options must be an object, got ${shown(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(DEFAULTS, key) && !Object.hasOwn(WITHOUT_DEFAULT, key)) {
      throw new InvalidOptionError(key, `unknown option '${key}'`);
    }
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o = { ...DEFAULTS, ...defined } as ResolvedBrokerOptions;
  for (const key of Object.keys(INTEGER_RANGES) as IntegerOption[]) {
    const [min, max] = INTEGER_RANGES[key];
    const v: unknown = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new InvalidOptionError(key, `${key} must be an integer from ${min} to ${max}, got ${shown(v)}`);
    }
  }
  checkTypes(o);
  // A connection just below the high-water mark may still be sent one whole message; that must not close it.
  const least = o.writeHighWaterMark + o.maxHeaderBytes + o.maxBodyBytes;
  // Left unset, the hard bound follows the high-water mark and the largest message: raising those alone works.
  const maxWriteQueueBytes =
    defined.maxWriteQueueBytes === undefined ? Math.max(o.maxWriteQueueBytes, least) : o.maxWriteQueueBytes;
  if (maxWriteQueueBytes < least) {
    throw new InvalidOptionError(
      'maxWriteQueueBytes',
      `maxWriteQueueBytes must be at least writeHighWaterMark + maxHeaderBytes + maxBodyBytes ` +
        `(${least}), got ${maxWriteQueueBytes}`,
    );
  }
  return Object.freeze({ ...o, maxWriteQueueBytes, fsync: fsyncOption(o.fsync) });
}

/**
 * The fsync option as a policy. Callers without types (JavaScript, config files) may pass the CLI's spelling,
 * `'interval=100'`: the store must get `{ intervalMs: 100 }`, not a string it would read as "every tick".
 */
function fsyncOption(v: unknown): FsyncPolicy {
  if (typeof v === 'string') return parseFsyncPolicy(v);
  const ms = (v as { intervalMs?: unknown } | null)?.intervalMs;
  if (typeof ms === 'number' && Number.isSafeInteger(ms) && ms >= 1 && ms <= MAX_TIMER_MS)
    return { intervalMs: ms };
  throw new InvalidOptionError(
    'fsync',
    `fsync must be always, never or { intervalMs: <ms from 1 to ${MAX_TIMER_MS}> }, got ${shown(v)}`,
  );
}

/** The options that are not integers: types, shapes and the values they may take. */
function checkTypes(o: ResolvedBrokerOptions): void {
  if (typeof o.host !== 'string')
    throw new InvalidOptionError('host', `host must be a string, got ${shown(o.host)}`);
  if (typeof o.dataDir !== 'string' || o.dataDir === '') {
    throw new InvalidOptionError('dataDir', `dataDir must be a directory path, got ${shown(o.dataDir)}`);
  }
  if (o.announce !== undefined && !isHostPort(o.announce)) {
    throw new InvalidOptionError('announce', `announce must be host:port, got ${shown(o.announce)}`);
  }
  if (!Array.isArray(o.trackers) || !o.trackers.every(isHostPort)) {
    throw new InvalidOptionError(
      'trackers',
      `trackers must be a list of host:port, got ${shown(o.trackers)}`,
    );
  }
  if (!LOG_LEVELS.has(o.logLevel)) {
    throw new InvalidOptionError(
      'logLevel',
      `logLevel must be one of ${[...LOG_LEVELS].join(', ')}, got ${shown(o.logLevel)}`,
    );
  }
  for (const key of ['trackerToken', 'monitorDir'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'string') {
      throw new InvalidOptionError(key, `${key} must be a string, got ${shown(o[key])}`);
    }
  }
  const pem = (v: unknown) => (typeof v === 'string' || v instanceof Uint8Array) && v.length > 0;
  if (
    o.tls !== undefined &&
    (typeof o.tls !== 'object' || o.tls === null || !pem(o.tls.cert) || !pem(o.tls.key))
  ) {
    throw new InvalidOptionError('tls', 'tls needs both cert and key as PEM text (tls.cert, tls.key)');
  }
  if (
    o.auth !== undefined &&
    (typeof o.auth !== 'object' || o.auth === null || !Array.isArray(o.auth.tokens))
  ) {
    throw new InvalidOptionError('auth', 'auth.tokens must be an array');
  }
  if (typeof o.store !== 'string' || (o.store !== 'local' && !/^(nats|tls):\/\/[^\s]+$/.test(o.store))) {
    throw new InvalidOptionError(
      'store',
      `store must be local or nats://host:port,host:port, got ${shown(o.store)}`,
    );
  }
  if (![1, 3, 5].includes(o.storeReplicas)) {
    throw new InvalidOptionError('storeReplicas', `storeReplicas must be 1, 3 or 5, got ${o.storeReplicas}`);
  }
  if (typeof o.storePrefix !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(o.storePrefix)) {
    throw new InvalidOptionError(
      'storePrefix',
      `storePrefix must be 1 to 32 letters, digits, _ or -, got ${shown(o.storePrefix)}`,
    );
  }
  if (o.nats !== undefined && (typeof o.nats !== 'object' || o.nats === null)) {
    throw new InvalidOptionError('nats', `nats must be an object, got ${shown(o.nats)}`);
  }
  if (o.storeModule !== undefined && (typeof o.storeModule !== 'object' || o.storeModule === null)) {
    throw new InvalidOptionError('storeModule', 'storeModule must be the module of @zbus/store-nats');
  }
  const logger = o.logger as Partial<Record<'error' | 'warn' | 'info' | 'debug', unknown>> | undefined;
  if (
    logger !== undefined &&
    (logger === null ||
      !(['error', 'warn', 'info', 'debug'] as const).every((l) => typeof logger[l] === 'function'))
  ) {
    throw new InvalidOptionError(
      'logger',
      'logger must be a pino logger (error, warn, info and debug methods)',
    );
  }
  const clock = o.clock as Partial<Record<keyof Clock, unknown>> | undefined;
  if (
    clock !== undefined &&
    (clock === null ||
      !(['now', 'setTimer', 'clearTimer'] as const).every((f) => typeof clock[f] === 'function'))
  ) {
    throw new InvalidOptionError('clock', 'clock must have now, setTimer and clearTimer methods');
  }
  checkAccess(o);
  checkCluster(o);
}

/** The cluster secret: a string hard to guess, and one every broker that reports to a tracker has. */
function checkCluster(o: ResolvedBrokerOptions): void {
  const t = o.clusterToken;
  if (t !== undefined && (typeof t !== 'string' || t.length < 16)) {
    throw new InvalidOptionError(
      'clusterToken',
      'clusterToken must be a string of at least 16 characters (try `openssl rand -hex 32`)',
    );
  }
  if (o.trackers.length > 0 && t === undefined) {
    throw new InvalidOptionError(
      'clusterToken',
      'trackers need clusterToken: a tracker accepts reports only from brokers with its --cluster-token',
    );
  }
}

/** Who may use the broker: protected mode, `insecure`, `allowOrigins` (docs/security.md). */
function checkAccess(o: ResolvedBrokerOptions): void {
  if (typeof o.insecure !== 'boolean') {
    throw new InvalidOptionError('insecure', `insecure must be true or false, got ${shown(o.insecure)}`);
  }
  if (
    !Array.isArray(o.allowOrigins) ||
    !o.allowOrigins.every((x) => typeof x === 'string' && isOriginPattern(x))
  ) {
    throw new InvalidOptionError(
      'allowOrigins',
      `allowOrigins must be origins like https://app.example.com, or *, got ${shown(o.allowOrigins)}`,
    );
  }
  if (o.auth === undefined && !o.insecure && !isLoopbackOrWildcard(o.host)) {
    throw new InvalidOptionError(
      'host',
      `protected mode: without auth only loopback clients are served, but host is ${o.host}; turn auth on ` +
        '(auth, --auth <file>) or, on a network you trust, set insecure (--insecure)',
    );
  }
}
