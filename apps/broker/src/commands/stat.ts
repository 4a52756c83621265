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

${CONNECTION_HELP}

Examples:
  zbus stat
  zbus stat --count 5 --interval 2s > stats.txt
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

export function render(info: ServerInfo, now: Sample, before: Sample | undefined, server: string): string {
  const secs = before === undefined ? 0 : (now.at - before.at) / 1000;
  const rate = (a: number, b: number | undefined) =>
    b === undefined || secs <= 0 ? '-' : formatCount(Math.max(0, a - b) / secs);
  let totalIn = 0;
  let totalOut = 0;
  const rows = Object.values(info.topicTable ?? {})
    .sort((a, b) => a.topicName.localeCompare(b.topicName))
    .map((t) => {
      const cur = now.topics.get(t.topicName) as { next: number; read: number };
      const prev = before?.topics.get(t.topicName);
      if (prev !== undefined && secs > 0) {
        totalIn += Math.max(0, cur.next - prev.next) / secs;
        totalOut += Math.max(0, cur.read - prev.read) / secs;
      }
      const groups = t.consumeGroupList ?? [];
      const first = typeof t.firstOffset === 'number' ? t.firstOffset : 0;
      return [
        t.topicName,
        rate(cur.next, prev?.next),
        rate(cur.read, prev?.read),
        formatCount(cur.next - first),
        formatCount(groups.reduce((m, g) => Math.max(m, num(g.messageCount)), 0)),
        formatCount(groups.reduce((n, g) => n + num(g.unackedCount), 0)),
        formatCount(num(t.consumerCount)),
      ];
    });
  const clock = new Date(now.at).toISOString().slice(11, 19);
  const totals = before === undefined ? '' : `  in ${formatCount(totalIn)}/s  out ${formatCount(totalOut)}/s`;
  const head = `zbus stat  ${server}  ${clock}  ${rows.length} topics${totals}\n\n`;
  if (rows.length === 0) return `${head}no topics\n`;
  return head + table(['TOPIC', 'IN/S', 'OUT/S', 'MESSAGES', 'BACKLOG', 'UNACKED', 'CONSUMERS'], rows);
}

export function stat(argv: string[]): Promise<number> {
  return run('stat', async () => {
    const { values, positionals } = parse(
      argv,
      { count: { type: 'string', short: 'n' }, interval: { type: 'string' } },
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
        const screen = render(info, now, before, conn.server);
        process.stdout.write(tty ? `\x1b[H\x1b[2J${screen}` : `${screen}\n`);
        before = now;
      }
      return EXIT_OK;
    } finally {
      stop.dispose();
      await client.close();
    }
  });
}
