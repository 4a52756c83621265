// `zbus serve`: flags, env vars and an optional JSON config file map onto BrokerOptions (one source of
// truth); flags win over env vars, env vars over the config file.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type AuthConfig,
  type Broker,
  type BrokerOptions,
  createBroker,
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
  --auth <file>        JSON token ACLs; auth is off without it      [ZBUS_AUTH]
  --tls-cert <file>    PEM certificate: TLS on the same port        [ZBUS_TLS_CERT]
  --tls-key <file>     PEM private key                              [ZBUS_TLS_KEY]
  --tracker <h:p;h:p>  trackers to report to                        [ZBUS_TRACKER]
  --log-level <lvl>    fatal|error|warn|info|debug|trace|silent     [ZBUS_LOG_LEVEL]  default warn
  --config <file>      JSON file with any BrokerOptions keys        [ZBUS_CONFIG]
  -h, --help

Examples:
  zbus serve
  zbus serve --port 15556 --data /var/lib/zbus --fsync interval=100
  ZBUS_AUTH=./auth.json zbus serve --tls-cert cert.pem --tls-key key.pem
`;

const FLAGS = {
  port: 'ZBUS_PORT',
  host: 'ZBUS_HOST',
  announce: 'ZBUS_ANNOUNCE',
  data: 'ZBUS_DATA',
  fsync: 'ZBUS_FSYNC',
  'max-body': 'ZBUS_MAX_BODY',
  auth: 'ZBUS_AUTH',
  'tls-cert': 'ZBUS_TLS_CERT',
  'tls-key': 'ZBUS_TLS_KEY',
  tracker: 'ZBUS_TRACKER',
  'log-level': 'ZBUS_LOG_LEVEL',
  config: 'ZBUS_CONFIG',
} as const;
type Flag = keyof typeof FLAGS;

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
    maxBody: get('max-body'),
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
  if (v.maxBody !== undefined) o.maxBodyBytes = integer(v.maxBody, 'max-body');
  if (v.auth !== undefined) o.auth = readJson<AuthConfig>(v.auth, 'auth file');
  if ((v.tlsCert === undefined) !== (v.tlsKey === undefined))
    throw new Error('--tls-cert and --tls-key go together');
  if (v.tlsCert !== undefined && v.tlsKey !== undefined) {
    o.tls = { cert: readFileSync(v.tlsCert, 'utf8'), key: readFileSync(v.tlsKey, 'utf8') };
  }
  if (v.tracker !== undefined) o.trackers = v.tracker.split(/[;,]/).filter((s) => s.trim() !== '');
  if (v.logLevel !== undefined) o.logLevel = v.logLevel as BrokerOptions['logLevel'];
  o.monitorDir ??= monitorDir();
  return o;
}

function describeFsync(o: BrokerOptions['fsync']): string {
  if (o === undefined || o === 'always') return 'always';
  if (o === 'never') return 'never';
  return `interval=${o.intervalMs}ms`;
}

/** Starts the broker and resolves with -1 (keep running); it exits 0 after a graceful shutdown. */
export function serve(argv: string[]): Promise<number> {
  return runLongLived(
    'serve',
    SERVE_HELP,
    () => {
      const options = optionsFromArgs(argv, process.env);
      return options === 'help' ? options : createBroker(options);
    },
    started,
  );
}

async function started(broker: Broker): Promise<number> {
  const { host, port } = await broker.listen();
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  process.stdout.write(
    `zbus-ts ${__ZBUS_VERSION__} listening on ${host}:${port} (tcp, http, websocket)` +
      ` data ${resolve(broker.options.dataDir)} fsync ${describeFsync(broker.options.fsync)}` +
      ` monitor http://${shown}:${port}/\n`,
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
