// `zbus stat`: live per-topic rates, refreshed every second, from the broker's ServerInfo.
import type { ServerInfo, TopicInfo } from '@zbus/client';
import {
  CONNECTION_HELP,
  connect,
  connectionFrom,
  duration,
  EXIT_OK,
  formatCount,
  int,
  interrupted,
  out,
  parse,
  run,
  table,
  usageError,
} from './common.js';

export const STAT_HELP = `Usage: zbus stat [options]

Shows live rates per topic, refreshed every second until Ctrl-C: messages in per second (stored), out per
second (read by all groups together), messages stored, backlog of the slowest group, unacked deliveries and
consumers. Rates appear from the second refresh on. On a terminal the screen is redrawn; otherwise each
refresh is printed as a block.

Options:
  -n, --count <n>       stop after n refreshes
      --interval <ms>   time between refreshes (default 1s)
      --json            print each refresh as one line of JSON (rates are null on the first)

${CONNECTION_HELP}

Examples:
  zbus stat
  zbus stat --count 5 --interval 2s > stats.txt
  zbus stat --json | jq -c '.rows[] | {topic, inPerSec}'
`;

interface Sample {
  at: number;
  /** Per topic: next offset, and the sum of its groups' positions. */
  topics: Map<string, { next: number; read: number }>;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function nextOffset(t: TopicInfo): number {
  return typeof t.nextOffset === 'number' ? t.nextOffset : num(t.messageDepth);
}

function readSum(t: TopicInfo): number {
  return (t.consumeGroupList ?? []).reduce((n, g) => n + num(g.position), 0);
}

export function sample(info: ServerInfo, at: number): Sample {
  const topics = new Map<string, { next: number; read: number }>();
  for (const t of Object.values(info.topicTable ?? {})) {
    topics.set(t.topicName, { next: nextOffset(t), read: readSum(t) });
  }
  return { at, topics };
}

/** One topic's figures of a refresh; rates are undefined on the first one. */
export interface StatRow {
  topic: string;
  inPerSec: number | undefined;
  outPerSec: number | undefined;
  messages: number;
  backlog: number;
  unacked: number;
  consumers: number;
}

/** The figures of a refresh: per topic, and the totals in and out per second (undefined on the first). */
export function figures(
  info: ServerInfo,
  now: Sample,
  before: Sample | undefined,
): { rows: StatRow[]; inPerSec: number | undefined; outPerSec: number | undefined } {
  const secs = before === undefined ? 0 : (now.at - before.at) / 1000;
  const rate = (a: number, b: number | undefined) =>
    b === undefined || secs <= 0 ? undefined : Math.max(0, a - b) / secs;
  const rows = Object.values(info.topicTable ?? {})
    .sort((a, b) => a.topicName.localeCompare(b.topicName))
    .map((t): StatRow => {
      const cur = now.topics.get(t.topicName) as { next: number; read: number };
      const prev = before?.topics.get(t.topicName);
      const groups = t.consumeGroupList ?? [];
      return {
        topic: t.topicName,
        inPerSec: rate(cur.next, prev?.next),
        outPerSec: rate(cur.read, prev?.read),
        messages: cur.next - (typeof t.firstOffset === 'number' ? t.firstOffset : 0),
        backlog: groups.reduce((m, g) => Math.max(m, num(g.messageCount)), 0),
        unacked: groups.reduce((n, g) => n + num(g.unackedCount), 0),
        consumers: num(t.consumerCount),
      };
    });
  const total = (pick: (r: StatRow) => number | undefined) =>
    before === undefined ? undefined : rows.reduce((n, r) => n + (pick(r) ?? 0), 0);
  return { rows, inPerSec: total((r) => r.inPerSec), outPerSec: total((r) => r.outPerSec) };
}

export function render(info: ServerInfo, now: Sample, before: Sample | undefined, server: string): string {
  const f = figures(info, now, before);
  const rate = (r: number | undefined) => (r === undefined ? '-' : formatCount(r));
  const clock = new Date(now.at).toISOString().slice(11, 19);
  const totals = f.inPerSec === undefined ? '' : `  in ${rate(f.inPerSec)}/s  out ${rate(f.outPerSec)}/s`;
  const head = `zbus stat  ${server}  ${clock}  ${f.rows.length} topics${totals}\n\n`;
  if (f.rows.length === 0) return `${head}no topics\n`;
  const rows = f.rows.map((r) => [
    r.topic,
    rate(r.inPerSec),
    rate(r.outPerSec),
    formatCount(r.messages),
    formatCount(r.backlog),
    formatCount(r.unacked),
    formatCount(r.consumers),
  ]);
  return head + table(['TOPIC', 'IN/S', 'OUT/S', 'MESSAGES', 'BACKLOG', 'UNACKED', 'CONSUMERS'], rows);
}

/** A refresh as one line of JSON (rates are null on the first). */
export function renderJson(
  info: ServerInfo,
  now: Sample,
  before: Sample | undefined,
  server: string,
): string {
  const f = figures(info, now, before);
  return `${JSON.stringify({ server, time: new Date(now.at).toISOString(), ...f }, (_k, v) => v ?? null)}\n`;
}

export function stat(argv: string[]): Promise<number> {
  return run('stat', async () => {
    const { values, positionals } = parse(
      argv,
      { count: { type: 'string', short: 'n' }, interval: { type: 'string' }, json: { type: 'boolean' } },
      'stat',
    );
    if (values.help) {
      process.stdout.write(STAT_HELP);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw usageError(`unexpected argument '${positionals[0]}'`);
    const count = int(values, 'count', 1);
    const interval = duration(values, 'interval') ?? 1_000;
    if (interval < 100) throw usageError('--interval must be at least 100ms');
    const conn = connectionFrom(values as Record<string, unknown>, process.env);
    const client = await connect(conn);
    const tty = process.stdout.isTTY === true;
    const stop = interrupted();
    let stopped = false;
    void stop.promise.then(() => {
      stopped = true;
    });
    try {
      let before: Sample | undefined;
      for (let i = 0; count === undefined || i < count; i++) {
        if (i > 0) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const tick = new Promise<void>((r) => {
            timer = setTimeout(r, interval);
          });
          await Promise.race([tick, stop.promise]);
          clearTimeout(timer);
        }
        if (stopped) break;
        const info = await client.queryServer();
        const now = sample(info, Date.now());
        if (values.json) {
          await out(renderJson(info, now, before, conn.server));
        } else {
          const screen = render(info, now, before, conn.server);
          await out(tty ? `\x1b[H\x1b[2J${screen}` : `${screen}\n`);
        }
        before = now;
      }
      return EXIT_OK;
    } finally {
      stop.dispose();
      await client.close();
    }
  });
}
