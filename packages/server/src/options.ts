// Every broker option in one place: the interface with its defaults, and the one function that validates
// them. The CLI flags, env vars and docs/configuration.md map onto these names.
import { ZbusError } from '@zbus/protocol';
import type { NatsClientOptions, SharedStoreModule } from './cluster/shared-store.js';
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
  /** Bytes queued for writing on one connection before it stops reading and receiving pushes. @default 4 MiB */
  writeHighWaterMark?: number;
  /** Close a connection silent for this long (a heartbeat keeps it). 0 disables. @default 180000 */
  idleTimeoutMs?: number;
  /** RPC requests without a reply after this get 504 (a `timeout` header may ask for less or more). @default 10000 */
  rpcTimeoutMs?: number;
  /** Capacity of memory (and RPC) topics in messages. @default 1000 */
  memoryTopicCapacity?: number;
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
  /** Token ACLs; auth is off when unset. */
  auth?: AuthConfig;
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
  /** Directory of the monitor's built assets, served at `/`. */
  monitorDir?: string;
  /** pino level. @default 'warn' */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Options without a default. */
type OptionalKeys = 'announce' | 'auth' | 'tls' | 'monitorDir' | 'trackerToken' | 'nats' | 'storeModule';

export type ResolvedBrokerOptions = Readonly<
  Required<Omit<BrokerOptions, OptionalKeys>> & Pick<BrokerOptions, OptionalKeys>
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
  maxHeaderBytes: 64 * 1024, // 64 KiB
  maxHeaderCount: 256,
  maxBodyBytes: 16 * 1024 * 1024, // 16 MiB
  maxConnections: 10_000,
  maxInflightPerConnection: 1024,
  writeHighWaterMark: 4 * 1024 * 1024, // 4 MiB
  idleTimeoutMs: 180_000,
  rpcTimeoutMs: 10_000,
  memoryTopicCapacity: 1000,
  ackTimeoutMs: 10_000,
  ackWindow: 100,
  maxDeliver: 5,
  dedupeWindowMs: 0,
  maxConsumeWindow: 1000,
  shutdownTimeoutMs: 5000,
  trackers: [] as string[],
  trackerReportIntervalMs: 30_000,
  trackerDeadlineMs: 90_000,
  logLevel: 'warn',
} satisfies Omit<ResolvedBrokerOptions, OptionalKeys>;

const NON_NEGATIVE_INTEGERS = [
  'port',
  'segmentBytes',
  'maxHeaderBytes',
  'maxHeaderCount',
  'maxBodyBytes',
  'maxConnections',
  'maxInflightPerConnection',
  'writeHighWaterMark',
  'idleTimeoutMs',
  'rpcTimeoutMs',
  'memoryTopicCapacity',
  'ackTimeoutMs',
  'ackWindow',
  'maxDeliver',
  'dedupeWindowMs',
  'maxConsumeWindow',
  'shutdownTimeoutMs',
  'trackerReportIntervalMs',
  'trackerDeadlineMs',
] as const;

function invalid(message: string): never {
  throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', message);
}

/** Parses `always`, `never`, `interval=<ms>` or `<ms>` into a policy. */
export function parseFsyncPolicy(value: string): FsyncPolicy {
  if (value === 'always' || value === 'never') return value;
  const m = /^(?:interval[=:])?(\d+)(?:ms)?$/.exec(value);
  const ms = Number(m?.[1]);
  if (Number.isSafeInteger(ms) && ms >= 1) return { intervalMs: ms };
  return invalid(`fsync must be always, never or interval=<ms >= 1>, got '${value}' (fsync)`);
}

/** Spreads the options over the defaults, validates them and returns a frozen copy. */
export function resolveOptions(options: BrokerOptions = {}): ResolvedBrokerOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o = { ...DEFAULTS, ...defined } as ResolvedBrokerOptions;
  for (const key of NON_NEGATIVE_INTEGERS) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      invalid(`${key} must be a non-negative integer, got ${String(v)} (${key})`);
    }
  }
  if (o.port > 65535) invalid(`port must be at most 65535, got ${o.port} (port)`);
  if (o.maxHeaderBytes < 1024) invalid(`maxHeaderBytes must be at least 1024, got ${o.maxHeaderBytes}`);
  if (o.maxConnections < 1) invalid('maxConnections must be at least 1 (maxConnections)');
  if (o.maxInflightPerConnection < 1) invalid('maxInflightPerConnection must be at least 1');
  if (o.memoryTopicCapacity < 1) invalid('memoryTopicCapacity must be at least 1');
  const fsync = fsyncOption(o.fsync);
  if (o.tls && (!o.tls.cert || !o.tls.key)) invalid('tls needs both cert and key (tls.cert, tls.key)');
  if (o.auth && !Array.isArray(o.auth.tokens)) invalid('auth.tokens must be an array (auth)');
  if (o.announce !== undefined && !/^[^\s:]+:\d+$/.test(o.announce)) {
    invalid(`announce must be host:port, got '${o.announce}' (announce)`);
  }
  if (o.store !== 'local' && !/^(nats|tls):\/\/[^\s]+$/.test(o.store)) {
    invalid(`store must be local or nats://host:port,host:port, got '${o.store}' (store)`);
  }
  if (![1, 3, 5].includes(o.storeReplicas))
    invalid(`storeReplicas must be 1, 3 or 5, got ${o.storeReplicas} (storeReplicas)`);
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(o.storePrefix)) {
    invalid(`storePrefix must be 1 to 32 letters, digits, _ or -, got '${o.storePrefix}' (storePrefix)`);
  }
  return Object.freeze({ ...o, fsync });
}

/**
 * The fsync option as a policy. Callers without types (JavaScript, config files) may pass the CLI's spelling,
 * `'interval=100'`: the store must get `{ intervalMs: 100 }`, not a string it would read as "every tick".
 */
function fsyncOption(v: unknown): FsyncPolicy {
  if (typeof v === 'string') return parseFsyncPolicy(v);
  const ms = (v as { intervalMs?: unknown } | null)?.intervalMs;
  if (typeof ms === 'number' && Number.isSafeInteger(ms) && ms >= 1) return { intervalMs: ms };
  return invalid(
    `fsync must be always, never or { intervalMs: <ms >= 1> }, got ${JSON.stringify(v)} (fsync)`,
  );
}
