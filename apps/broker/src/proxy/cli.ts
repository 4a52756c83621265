// `zbus proxy`: a JSON config file with any number of entries, or flags for a single entry.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runLongLived } from '../usage.js';
import type { ProxyEntryOptions, ProxyOptions } from './options.js';
import { createProxy, type ZbusProxy } from './proxy.js';

export const PROXY_HELP = `Usage: zbus proxy --config proxy.json
       zbus proxy -s <h:p> --entry <topic> --target <url> [options]

Runs inside a private network, connects OUTBOUND to a broker (for example in a DMZ) and forwards the
HTTP requests callers send to http://<broker>/<entry>/<path> to a target service, answers included.

Options:
  --config <file>        JSON: {"broker", "token", "entries": [{"entry", "target", "connections",
                         "window", "token", "timeout", "sendFilter", "recvFilter", "maxBodyBytes"}]}
  -s, --server <h:p>     broker address (--broker too)  [ZBUS_SERVER]  default 127.0.0.1:15555
  --entry <topic>        entry topic (one entry from flags)
  --target <url>         target base URL; repeat or comma-separate for round-robin
  --connections <n>      connections consuming the entry       default 4
  --window <n>           requests in flight per connection     default 16
  --token <t>            auth token for the broker            [ZBUS_TOKEN]
  --timeout <ms>         time the target has to answer         default 10000
  --send-filter <h,h>    headers not sent to the target (h* = prefix)
  --recv-filter <h,h>    headers of the answer not returned (h* = prefix)
  --max-body <bytes>     largest request/response body         default 8388608
  -h, --help

Flags win over the env vars, and both over the config file. Exit codes: 2 for a bad flag or config.

Example:
  zbus proxy -s dmz.example:15555 --entry orders --target http://127.0.0.1:8080 --connections 4
  curl http://dmz.example:15555/orders/api/orders?x=1     # answered by http://127.0.0.1:8080/api/orders?x=1
`;

function int(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`--${flag} must be a non-negative integer, got '${value}'`);
  return n;
}

function list(values: string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  return values
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Turns the command line (and ZBUS_SERVER, ZBUS_TOKEN) into proxy options ('help' for --help). */
export function proxyOptionsFromArgs(argv: string[], env: NodeJS.ProcessEnv = {}): ProxyOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      server: { type: 'string', short: 's' },
      broker: { type: 'string' },
      entry: { type: 'string' },
      target: { type: 'string', multiple: true },
      connections: { type: 'string' },
      window: { type: 'string' },
      token: { type: 'string' },
      timeout: { type: 'string' },
      'send-filter': { type: 'string', multiple: true },
      'recv-filter': { type: 'string', multiple: true },
      'max-body': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  let o: ProxyOptions = { entries: [] };
  if (values.config !== undefined) {
    try {
      o = JSON.parse(readFileSync(values.config, 'utf8')) as ProxyOptions;
    } catch (err) {
      throw new Error(`cannot read config file ${values.config}: ${(err as Error).message}`);
    }
    o.entries ??= [];
  }
  const broker = values.server ?? values.broker ?? env.ZBUS_SERVER;
  if (broker !== undefined && broker !== '') o.broker = broker;
  const token = values.token ?? env.ZBUS_TOKEN;
  if (token !== undefined && token !== '') o.token = token;
  const targets = list(values.target);
  if (values.entry !== undefined) {
    if (targets === undefined || targets.length === 0) throw new Error('--entry needs --target');
    const e: ProxyEntryOptions = { entry: values.entry, target: targets };
    if (values.connections !== undefined) e.connections = int(values.connections, 'connections');
    if (values.window !== undefined) e.window = int(values.window, 'window');
    if (values.timeout !== undefined) e.timeout = int(values.timeout, 'timeout');
    if (values['max-body'] !== undefined) e.maxBodyBytes = int(values['max-body'], 'max-body');
    const send = list(values['send-filter']);
    if (send !== undefined) e.sendFilter = send;
    const recv = list(values['recv-filter']);
    if (recv !== undefined) e.recvFilter = recv;
    o.entries = [...o.entries, e];
  } else if (targets !== undefined) {
    throw new Error('--target needs --entry');
  }
  if (o.entries.length === 0) throw new Error('nothing to proxy: give --config or --entry and --target');
  return o;
}

/** Runs the proxy until SIGTERM/SIGINT; resolves with -1 (keep running) or an exit code. */
export function proxy(argv: string[]): Promise<number> {
  return runLongLived(
    'proxy',
    PROXY_HELP,
    () => {
      const options = proxyOptionsFromArgs(argv, process.env);
      if (options === 'help') return options;
      options.log = (level, message) => {
        if (level === 'info') process.stdout.write(`zbus proxy: ${message}\n`);
        else process.stderr.write(`zbus proxy: ${level}: ${message}\n`);
      };
      return createProxy(options);
    },
    running,
  );
}

async function running(p: ZbusProxy): Promise<number> {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    process.stderr.write(`zbus proxy: ${signal}, closing\n`);
    p.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await p.start();
  process.stdout.write(`zbus proxy ${__ZBUS_VERSION__} ready (${p.options.entries.length} entries)\n`);
  return -1;
}
