// `zbus serve`: flags, env vars and an optional JSON config file map onto BrokerOptions (one source of
// truth); flags win over env vars, env vars over the config file.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import {
  type AuthConfig,
  type Broker,
  type BrokerOptions,
  createBroker,
  InvalidOptionError,
  parseFsyncPolicy,
} from '@zbus/server';
import { runLongLived } from './usage.js';

export const SERVE_HELP = `Usage: zbus serve [options]

Options (each also read from the env var in brackets):
  --port <n>           port for TCP, HTTP and WebSocket            [ZBUS_PORT]       default 15555
  --host <addr>        address to listen on                         [ZBUS_HOST]       default 0.0.0.0
  --announce <h:p>     address announced to clients and trackers    [ZBUS_ANNOUNCE]
  --data <dir>         data directory                               [ZBUS_DATA]       default ./zbus-data
  --fsync <policy>     always | never | interval=<ms>               [ZBUS_FSYNC]      default always
  --max-body <bytes>   largest message body                         [ZBUS_MAX_BODY]   default 16777216
  --max-open-files <n> files the store keeps open (0: half ulimit -n) [ZBUS_MAX_OPEN_FILES] default 0
  --group-commit-wait <ms>  fsync=always: longest wait for the      [ZBUS_GROUP_COMMIT_WAIT] default 1
                       producers expected to share an fdatasync (0: none)
  --write-high-water <bytes>  bytes queued toward a connection      [ZBUS_WRITE_HIGH_WATER] default 4194304
                       past which the broker stops reading from it and pushing to it
  --max-write-queue <bytes>  bytes queued toward a connection past  [ZBUS_MAX_WRITE_QUEUE] default 67108864
                       which it is closed at once
  --write-stall-timeout <ms>  close a connection that stays past    [ZBUS_WRITE_STALL_TIMEOUT] default 30000
                       the high-water mark and takes no byte for this long (0: never)
  --auth <file>        JSON token ACLs; auth is off without it      [ZBUS_AUTH]
  --insecure           without --auth, serve clients off loopback   [ZBUS_INSECURE=1]
                       (by default a broker without auth serves this machine only)
  --allow-origin <o>   web origin whose pages may change state and  [ZBUS_ALLOW_ORIGIN]
                       open WebSockets (repeat, or a comma list; * for any)
  --tls-cert <file>    PEM certificate: TLS on the same port        [ZBUS_TLS_CERT]
  --tls-key <file>     PEM private key                              [ZBUS_TLS_KEY]
  --tracker <h:p;h:p>  trackers to report to                        [ZBUS_TRACKER]
  --cluster-token <s>  cluster secret: trackers take reports only   [ZBUS_CLUSTER_TOKEN]
                       with it (same on every broker; prefer the env var)
  --tracker-max-servers <n>  most servers a tracker tracks          [ZBUS_TRACKER_MAX_SERVERS] default 256
  --store <url>        local | nats://h1:4222,h2:4222 (shared by     [ZBUS_STORE]      default local
                       every broker on it; docs/scale-out.md)
  --store-replicas <n> replicas of each stream on NATS (1, 3, 5)     [ZBUS_STORE_REPLICAS] default 3
  --store-prefix <p>   prefix of streams, subjects and KV bucket     [ZBUS_STORE_PREFIX] default zbus
  --nats-creds <file>  NATS credentials (.creds: JWT + nkey seed)    [ZBUS_NATS_CREDS]
  --nats-token <tok>   NATS token                                    [ZBUS_NATS_TOKEN]
  --nats-tls-ca <file> CA certificate to verify the NATS servers     [ZBUS_NATS_TLS_CA]
  --nats-tls-cert <f>  client certificate for NATS (with the key)    [ZBUS_NATS_TLS_CERT]
  --nats-tls-key <f>   client key for NATS                           [ZBUS_NATS_TLS_KEY]
  --log-level <lvl>    fatal|error|warn|info|debug|trace|silent     [ZBUS_LOG_LEVEL]  default warn
  --config <file>      JSON file with any BrokerOptions keys        [ZBUS_CONFIG]
  -h, --help

Examples:
  zbus serve
  zbus serve --port 15556 --data /var/lib/zbus --fsync interval=100
  zbus serve --store nats://10.0.0.1:4222,10.0.0.2:4222,10.0.0.3:4222
  ZBUS_AUTH=./auth.json zbus serve --tls-cert cert.pem --tls-key key.pem
  zbus serve --auth auth.json --allow-origin https://app.example.com
`;

const FLAGS = {
  port: 'ZBUS_PORT',
  host: 'ZBUS_HOST',
  announce: 'ZBUS_ANNOUNCE',
  data: 'ZBUS_DATA',
  fsync: 'ZBUS_FSYNC',
  'max-body': 'ZBUS_MAX_BODY',
  'max-open-files': 'ZBUS_MAX_OPEN_FILES',
  'group-commit-wait': 'ZBUS_GROUP_COMMIT_WAIT',
  'write-high-water': 'ZBUS_WRITE_HIGH_WATER',
  'max-write-queue': 'ZBUS_MAX_WRITE_QUEUE',
  'write-stall-timeout': 'ZBUS_WRITE_STALL_TIMEOUT',
  auth: 'ZBUS_AUTH',
  'tls-cert': 'ZBUS_TLS_CERT',
  'tls-key': 'ZBUS_TLS_KEY',
  tracker: 'ZBUS_TRACKER',
  'cluster-token': 'ZBUS_CLUSTER_TOKEN',
  'tracker-max-servers': 'ZBUS_TRACKER_MAX_SERVERS',
  store: 'ZBUS_STORE',
  'store-replicas': 'ZBUS_STORE_REPLICAS',
  'store-prefix': 'ZBUS_STORE_PREFIX',
  'nats-creds': 'ZBUS_NATS_CREDS',
  'nats-token': 'ZBUS_NATS_TOKEN',
  'nats-tls-ca': 'ZBUS_NATS_TLS_CA',
  'nats-tls-cert': 'ZBUS_NATS_TLS_CERT',
  'nats-tls-key': 'ZBUS_NATS_TLS_KEY',
  'log-level': 'ZBUS_LOG_LEVEL',
  config: 'ZBUS_CONFIG',
} as const;
type Flag = keyof typeof FLAGS;

/** Flags that set an integer option as they are (ranges are checked by resolveOptions). */
const INTEGER_FLAGS = [
  ['max-body', 'maxBodyBytes'],
  ['max-open-files', 'maxOpenFiles'],
  ['group-commit-wait', 'groupCommitWaitMs'],
  ['write-high-water', 'writeHighWaterMark'],
  ['max-write-queue', 'maxWriteQueueBytes'],
  ['write-stall-timeout', 'writeStallTimeoutMs'],
] as const satisfies ReadonlyArray<readonly [Flag, keyof BrokerOptions]>;

/** The option each flag sets: a refused option names the flag and env var that set it. */
const OPTION_OF_FLAG: Partial<Record<Flag, keyof BrokerOptions>> = {
  port: 'port',
  host: 'host',
  announce: 'announce',
  data: 'dataDir',
  fsync: 'fsync',
  ...Object.fromEntries(INTEGER_FLAGS),
  auth: 'auth',
  'tls-cert': 'tls',
  'tls-key': 'tls',
  tracker: 'trackers',
  'cluster-token': 'clusterToken',
  'tracker-max-servers': 'trackerMaxServers',
  store: 'store',
  'store-replicas': 'storeReplicas',
  'store-prefix': 'storePrefix',
  'nats-creds': 'nats',
  'nats-token': 'nats',
  'nats-tls-ca': 'nats',
  'nats-tls-cert': 'nats',
  'nats-tls-key': 'nats',
  'log-level': 'logLevel',
};

/** createBroker(), with the flags of a refused option added to its message. */
function brokerFrom(options: BrokerOptions): Broker {
  try {
    return createBroker(options);
  } catch (err) {
    if (!(err instanceof InvalidOptionError)) throw err;
    const flags = (Object.keys(OPTION_OF_FLAG) as Flag[])
      .filter((f) => OPTION_OF_FLAG[f] === err.option)
      .map((f) => `--${f} or ${FLAGS[f]}`);
    if (flags.length === 0) throw err;
    throw new Error(`${err.message}; set by ${flags.join(', ')}`, { cause: err });
  }
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new Error(`cannot read ${what} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function integer(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`--${flag} must be a non-negative integer, got '${value}'`);
  return n;
}

/** `1`/`true` or `0`/`false` (unset or empty: undefined). */
function booleanEnv(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new Error(`${name} must be 1, true, 0 or false, got '${value}'`);
}

/** The monitor's assets, copied next to the CLI at build time. */
function monitorDir(): string | undefined {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'monitor');
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}

export function optionsFromArgs(argv: string[], env: NodeJS.ProcessEnv): BrokerOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }])),
      insecure: { type: 'boolean' },
      'allow-origin': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const given = values as Record<string, string | boolean | undefined>;
  const get = (flag: Flag): string | undefined => (given[flag] as string | undefined) ?? env[FLAGS[flag]];
  const config = get('config');
  const o: BrokerOptions = config ? readJson<BrokerOptions>(config, 'config file') : {};
  const v = {
    port: get('port'),
    host: get('host'),
    announce: get('announce'),
    data: get('data'),
    fsync: get('fsync'),
    auth: get('auth'),
    tlsCert: get('tls-cert'),
    tlsKey: get('tls-key'),
    tracker: get('tracker'),
    logLevel: get('log-level'),
  };
  if (v.port !== undefined) o.port = integer(v.port, 'port');
  if (v.host !== undefined) o.host = v.host;
  if (v.announce !== undefined) o.announce = v.announce;
  if (v.data !== undefined) o.dataDir = v.data;
  if (v.fsync !== undefined) o.fsync = parseFsyncPolicy(v.fsync);
  if (typeof o.fsync === 'string' && o.fsync !== 'always' && o.fsync !== 'never')
    o.fsync = parseFsyncPolicy(o.fsync);
  for (const [flag, option] of INTEGER_FLAGS) {
    const value = get(flag);
    if (value !== undefined) o[option] = integer(value, flag);
  }
  if (v.auth !== undefined) o.auth = readJson<AuthConfig>(v.auth, 'auth file');
  if ((v.tlsCert === undefined) !== (v.tlsKey === undefined))
    throw new Error('--tls-cert and --tls-key go together');
  if (v.tlsCert !== undefined && v.tlsKey !== undefined) {
    o.tls = { cert: readFileSync(v.tlsCert, 'utf8'), key: readFileSync(v.tlsKey, 'utf8') };
  }
  if (v.tracker !== undefined) o.trackers = v.tracker.split(/[;,]/).filter((s) => s.trim() !== '');
  const clusterToken = get('cluster-token');
  if (clusterToken !== undefined) o.clusterToken = clusterToken;
  const maxServers = get('tracker-max-servers');
  if (maxServers !== undefined) o.trackerMaxServers = integer(maxServers, 'tracker-max-servers');
  if (v.logLevel !== undefined) o.logLevel = v.logLevel as BrokerOptions['logLevel'];
  storeOptions(o, get);
  const insecure = values.insecure ?? booleanEnv(env.ZBUS_INSECURE, 'ZBUS_INSECURE');
  if (insecure !== undefined) o.insecure = insecure;
  const origins = values['allow-origin'] ?? (env.ZBUS_ALLOW_ORIGIN ? [env.ZBUS_ALLOW_ORIGIN] : undefined);
  if (origins !== undefined)
    o.allowOrigins = origins
      .flatMap((x) => x.split(','))
      .map((x) => x.trim())
      .filter(Boolean);
  o.monitorDir ??= monitorDir();
  return o;
}

/** `--store` and the NATS connection flags. */
function storeOptions(o: BrokerOptions, get: (flag: Flag) => string | undefined): void {
  const store = get('store');
  if (store !== undefined) o.store = store;
  const replicas = get('store-replicas');
  if (replicas !== undefined) o.storeReplicas = integer(replicas, 'store-replicas');
  const prefix = get('store-prefix');
  if (prefix !== undefined) o.storePrefix = prefix;
  const nats = { ...o.nats };
  const creds = get('nats-creds');
  if (creds !== undefined) nats.credsFile = creds;
  const token = get('nats-token');
  if (token !== undefined) nats.token = token;
  const tls = { ca: get('nats-tls-ca'), cert: get('nats-tls-cert'), key: get('nats-tls-key') };
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new Error('--nats-tls-cert and --nats-tls-key go together');
  }
  if (tls.ca !== undefined || tls.cert !== undefined) nats.tls = { ...nats.tls, ...tls };
  if (Object.keys(nats).length > 0) o.nats = nats;
}

/**
 * A shared store's package, imported only when `--store nats://` asks for it (at listen): the plain broker neither
 * loads nor needs it (it is an optional peer dependency of @zbus/broker).
 */
function withStoreModule(o: BrokerOptions): void {
  if (o.store === undefined || o.store === 'local') return;
  const store = o.store;
  o.storeModule = {
    async openSharedStore(options) {
      let module: typeof import('@zbus/store-nats');
      try {
        module = await import('@zbus/store-nats');
      } catch (err) {
        throw new Error(
          `--store ${store} needs @zbus/store-nats next to @zbus/broker (npm install @zbus/store-nats): ${String(err)}`,
        );
      }
      return module.openSharedStore(options);
    },
  };
}

/** Which clients the broker serves, for the startup line (docs/security.md). */
function describeAccess(o: BrokerOptions): string {
  if (o.auth) return `auth on (${o.auth.tokens.length} tokens)`;
  if (o.insecure) return 'INSECURE: no auth, every client served';
  return 'protected mode: no auth, this machine only (--auth <file> or --insecure to serve others)';
}

function describeFsync(o: BrokerOptions['fsync']): string {
  if (o === undefined || o === 'always') return 'always';
  if (o === 'never') return 'never';
  return `interval=${o.intervalMs}ms`;
}

/**
 * Young-generation collections (scavenges) run on the main thread alone unless node was started with a flag of
 * its own about them (docs/operations.md). What a broker's scavenge copies is its messages in flight, tens of KB;
 * V8 splits each scavenge into tasks for its helper threads anyway and the main thread waits for them, which on a
 * machine whose cores are busy (the broker's own clients, other processes) they get late: in the peers bench's
 * latency workload on 2 loaded cores, the 90th percentile scavenge pause was lower in 5 of 6 alternated runs
 * (13.5 -> 5.3 ms at worst). True when set.
 */
export function scavengeOnMainThread(execArgv: readonly string[]): boolean {
  if (execArgv.some((a) => a.includes('parallel-scavenge') || a.includes('single-threaded-gc'))) return false;
  v8.setFlagsFromString('--no-parallel-scavenge');
  return true;
}

/** Starts the broker and resolves with -1 (keep running); it exits 0 after a graceful shutdown. */
export function serve(argv: string[]): Promise<number> {
  return runLongLived(
    'serve',
    SERVE_HELP,
    () => {
      const options = optionsFromArgs(argv, process.env);
      if (options === 'help') return options;
      scavengeOnMainThread(process.execArgv);
      withStoreModule(options);
      return brokerFrom(options);
    },
    started,
  );
}

async function started(broker: Broker): Promise<number> {
  const { host, port } = await broker.listen();
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  const o = broker.options;
  const storage =
    o.store === 'local'
      ? `data ${resolve(o.dataDir)} fsync ${describeFsync(o.fsync)}`
      : `store ${o.store} replicas ${o.storeReplicas}`;
  process.stdout.write(
    `zbus-ts ${__ZBUS_VERSION__} listening on ${host}:${port} (tcp, http, websocket)` +
      ` ${storage} monitor http://${shown}:${port}/ ${describeAccess(o)}\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`zbus: second ${signal}, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    broker.log.info({ signal }, 'shutting down');
    broker.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`zbus: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1;
}
