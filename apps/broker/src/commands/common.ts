// What every client command shares: `--server`/`--token` (and their env vars), argument parsing with exit
// code 2 on misuse, one connection to the broker with a clear error when it cannot be reached, mask labels,
// aligned tables, and the mapping of failures to exit codes (0 ok, 1 failed, 2 usage).
import { createInterface } from 'node:readline';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { Mask, MqClient, ZbusError } from '@zbus/client';
import { CliError, EXIT_USAGE, runCommand, usageError, usageHint } from '../usage.js';

export { CliError, EXIT_FAILED, EXIT_OK, EXIT_USAGE, usageError, usageHint } from '../usage.js';

export const DEFAULT_SERVER = '127.0.0.1:15555';

/** Options every client command takes. */
export const CONNECTION_OPTIONS = {
  server: { type: 'string', short: 's' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export const CONNECTION_HELP = `Connection (every command):
  -s, --server <h:p>   broker address; tls://h:p for TLS       [ZBUS_SERVER]  default ${DEFAULT_SERVER}
      --token <t>      auth token                              [ZBUS_TOKEN]
  -h, --help           this help`;

type Options = NonNullable<ParseArgsConfig['options']>;

/** `parseArgs` with the connection options added; a bad flag is a usage error (exit 2). */
export function parse<O extends Options>(
  argv: string[],
  options: O,
  command: string,
): {
  values: { [K in keyof (O & typeof CONNECTION_OPTIONS)]?: unknown };
  positionals: string[];
} {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...CONNECTION_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Record<string, unknown>, positionals } as never;
  } catch (err) {
    throw usageHint(command, (err as Error).message);
  }
}

export interface Connection {
  server: string;
  token: string | undefined;
}

export function connectionFrom(values: Record<string, unknown>, env: NodeJS.ProcessEnv): Connection {
  const server = (values.server as string | undefined) ?? env.ZBUS_SERVER ?? DEFAULT_SERVER;
  const token = (values.token as string | undefined) ?? env.ZBUS_TOKEN;
  return { server, token: token === '' ? undefined : token };
}

/** A string flag, or `undefined`. */
export function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A non-negative integer flag (`1_000`, `1k`, `2m` allowed for counts when `units`). */
export function int(values: Record<string, unknown>, name: string, min = 0): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v.replace(/_/g, ''));
  const n = m ? Number(m[1]) * (m[2] === 'k' || m[2] === 'K' ? 1e3 : m[2] ? 1e6 : 1) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw usageError(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

/** A duration flag: `500` (ms), `500ms`, `10s`, `5m`, `1h`. Returns ms. */
export function duration(values: Record<string, unknown>, name: string): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) throw usageError(`--${name} must be a duration such as 500ms, 10s or 5m, got '${v}'`);
  return ms;
}

/** A size flag: `1048576`, `512KiB`, `64MiB`, `10GiB`, `1TiB` (or k, m, g, t: the same powers of 1024). */
export function size(values: Record<string, unknown>, name: string): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?$/i.exec(v.trim());
  const power = m?.[2] === undefined ? 0 : 'kmgt'.indexOf((m[2] as string).toLowerCase()) + 1;
  const n = m ? Math.round(Number(m[1]) * 1024 ** power) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw usageError(`--${name} must be a size such as 512MiB or 10GiB, got '${v}'`);
  return n;
}

export function parseDuration(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] ?? 'ms'] as number;
  return Math.round(Number(m[1]) * unit);
}

const TOPIC_MASKS: Array<[number, string]> = [
  [Mask.Memory, 'memory'],
  [Mask.Rpc, 'rpc'],
  [Mask.Proxy, 'proxy'],
  [Mask.Pause, 'pause'],
];
const GROUP_MASKS: Array<[number, string]> = [
  [Mask.Pause, 'pause'],
  [Mask.Exclusive, 'exclusive'],
  [Mask.DeleteOnExit, 'delete-on-exit'],
  [Mask.AckRequired, 'ack'],
];
const MASK_NAMES: Record<string, number> = {
  disk: 0,
  memory: Mask.Memory,
  rpc: Mask.Rpc,
  proxy: Mask.Proxy,
  pause: Mask.Pause,
  exclusive: Mask.Exclusive,
  'delete-on-exit': Mask.DeleteOnExit,
  deleteonexit: Mask.DeleteOnExit,
  ack: Mask.AckRequired,
  'ack-required': Mask.AckRequired,
};

/** `memory,rpc` for a topic mask; `disk` when it has no storage bit. */
export function topicMaskLabel(mask: number): string {
  const labels = TOPIC_MASKS.filter(([bit]) => (mask & bit) !== 0).map(([, l]) => l);
  if ((mask & Mask.Memory) === 0) labels.unshift('disk');
  return labels.join(',');
}

/** `ack,exclusive` for a group mask; `-` for none. */
export function groupMaskLabel(mask: number): string {
  const labels = GROUP_MASKS.filter(([bit]) => (mask & bit) !== 0).map(([, l]) => l);
  return labels.length === 0 ? '-' : labels.join(',');
}

/** Parses `memory,rpc`, `ack`, or a number (0.11 numbering). */
export function parseMask(v: string, flag: string): number {
  if (/^\d+$/.test(v)) return Number(v);
  let mask = 0;
  for (const part of v.split(/[,|+\s]+/).filter(Boolean)) {
    const bit = MASK_NAMES[part.toLowerCase()];
    if (bit === undefined) {
      throw usageError(
        `--${flag}: unknown mask '${part}' (use memory, rpc, proxy, pause, exclusive, delete-on-exit, ack or a number)`,
      );
    }
    mask |= bit;
  }
  return mask;
}

/**
 * `--from`: an offset (`0`, `1200`), `first`, `last`/`end` (only new messages), a time ago (`10s`, `5m`,
 * `2h`) or a date (`2026-01-31T10:00:00Z`).
 */
export type From = { offset: number } | { time: number } | { first: true } | { end: true };

export function parseFrom(v: string): From {
  const t = v.trim();
  if (/^\d+$/.test(t)) return { offset: Number(t) };
  if (t === 'first' || t === 'beginning' || t === 'start') return { first: true };
  if (t === 'last' || t === 'end' || t === 'new') return { end: true };
  const ago = /^\d+(?:\.\d+)?(ms|s|m|h|d)$/.test(t) ? parseDuration(t) : undefined;
  if (ago !== undefined) return { time: Date.now() - ago };
  const date = Date.parse(t);
  if (!Number.isNaN(date)) return { time: date };
  throw usageError(`--from must be an offset, first, end, a time ago (10s, 5m) or a date, got '${v}'`);
}

/** Prints rows as columns separated by two spaces; numbers are right-aligned. */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => String(c)))];
  const numberLike = (c: string | number | undefined) =>
    typeof c === 'number' || (typeof c === 'string' && /^(-|-?[\d,.]+)$/.test(c));
  const numeric = header.map(
    (_, i) =>
      rows.length > 0 &&
      rows.every((r) => numberLike(r[i])) &&
      rows.some((r) => typeof r[i] === 'number' || /\d/.test(String(r[i]))),
  );
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => {
        const w = widths[i] as number;
        if (i === r.length - 1 && !numeric[i]) return c;
        return numeric[i] ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return `${cells.map(line).join('\n')}\n`;
}

/** A client for one-shot commands: no reconnects, connected (or a clear error). */
export async function connect(
  conn: Connection,
  options: { reconnect?: boolean; timeout?: number } = {},
): Promise<MqClient> {
  const client = new MqClient(conn.server, {
    ...(conn.token !== undefined ? { token: conn.token } : {}),
    reconnect: options.reconnect ?? false,
    timeout: options.timeout ?? 10_000,
    connectTimeout: 5_000,
    closeTimeout: 2_000,
  });
  try {
    await client.connect();
  } catch (err) {
    throw reachError(conn.server, err);
  }
  return client;
}

function rootCause(err: unknown): unknown {
  let e = err;
  for (let i = 0; i < 5 && e instanceof Error && e.cause !== undefined; i++) e = e.cause;
  return e;
}

/** "cannot reach broker at h:p (connection refused)". */
export function reachError(server: string, err: unknown): CliError {
  const cause = rootCause(err) as NodeJS.ErrnoException | undefined;
  const code = cause?.code;
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'unknown host'
        : code === 'ETIMEDOUT' || /timed out/.test(String(cause?.message))
          ? 'timed out'
          : (cause?.message ?? String(err));
  if (err instanceof ZbusError && err.code === 'ZBUS_ERR_INVALID_ARGUMENT') {
    return new CliError(err.message, EXIT_USAGE);
  }
  return new CliError(`cannot reach broker at ${server} (${why})`);
}

/** One line for a failure, naming the code when the broker gave one. */
export function describeError(err: unknown): string {
  if (err instanceof ZbusError) {
    if (err.code === 'ZBUS_ERR_RPC') return err.message;
    return `${err.message} (${err.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Runs a command body, turning errors into a message on stderr and an exit code. */
export function run(command: string, body: () => Promise<number>): Promise<number> {
  return runCommand(command, body, describeError);
}

/**
 * Asks `question [y/N]` on the terminal (on stderr, so that stdout stays clean) and resolves true on y or yes.
 * Without a terminal on stdin nobody can answer, so it refuses (a usage error naming -f), as `gh repo delete`
 * and `terraform destroy` do, rather than destroy data on a script's behalf without being told to.
 */
export async function confirm(command: string, question: string): Promise<boolean> {
  if (process.stdin.isTTY !== true) {
    throw usageHint(
      command,
      `cannot ask "${question}": stdin is not a terminal; pass -f (--force) to go ahead`,
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
      rl.setPrompt(`${question} [y/N] `);
      rl.prompt();
    });
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** Prints `value` as JSON (two-space indented) on stdout. */
export function printJson(value: unknown): Promise<void> | undefined {
  return out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Resolves on the first SIGINT/SIGTERM (and stops listening then). */
export function interrupted(): { promise: Promise<string>; dispose(): void } {
  let dispose = () => {};
  const promise = new Promise<string>((resolve) => {
    const onInt = () => resolve('SIGINT');
    const onTerm = () => resolve('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    dispose = () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    };
  });
  return { promise, dispose };
}

/** Writes to stdout and waits for it to drain (pipes into `head` must not lose output). */
export function out(text: string): Promise<void> | undefined {
  if (process.stdout.write(text)) return undefined;
  return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `7d`, `12h`, `90m`, `45s`, `500ms`: the largest unit that divides `ms`. */
export function formatDuration(ms: number): string {
  for (const [unit, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % n === 0) return `${ms / n}${unit}`;
  }
  return `${ms}ms`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
