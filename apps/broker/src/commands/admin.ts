// Topic and group management: `zbus topics`, `zbus groups <topic>`, `zbus declare`, `zbus rm`, `zbus empty`.
import {
  type ConsumeGroupInfo,
  Header,
  Message,
  type MqClient,
  type TopicInfo,
  type TopicRetention,
  ZbusError,
} from '@zbus/client';
import {
  CliError,
  CONNECTION_HELP,
  confirm,
  connect,
  connectionFrom,
  duration,
  EXIT_OK,
  formatBytes,
  formatCount,
  formatDuration,
  groupMaskLabel,
  int,
  parse,
  parseFrom,
  parseMask,
  printJson,
  run,
  size,
  str,
  table,
  topicMaskLabel,
  usageError,
} from './common.js';

export const TOPICS_HELP = `Usage: zbus topics [options]

Lists the broker's topics: storage and masks, messages stored, groups, the largest group backlog, unacked
deliveries, consumers and messages moved to the dead-letter topic (<topic>.dlq).

Options:
      --json           print the broker's ServerInfo topic table as JSON

${CONNECTION_HELP}

Examples:
  zbus topics
  zbus topics --server 10.0.0.5:15555 --token s3cret
`;

export const GROUPS_HELP = `Usage: zbus groups <topic> [options]

Lists the consume groups of a topic: mask, filter, position, backlog (messages not read yet), unacked
deliveries, consumers and dead-lettered messages.

Options:
      --json           print the TopicInfo as JSON

${CONNECTION_HELP}

Examples:
  zbus groups orders
`;

export const DECLARE_HELP = `Usage: zbus declare <topic> [options]

Creates a topic, or updates it, and a consume group. Without --group the group named as the topic is
created (as 0.11 does). Declaring again is harmless: existing messages and positions are kept unless --from
is given.

Options:
      --mask <m>          topic mask: disk (default), memory, rpc, proxy, or a number; only when creating
  -g, --group <name>      a group to create or update
      --group-mask <m>    group mask: ack, exclusive, delete-on-exit, pause, or a number
      --ack               same as --group-mask ack: deliveries must be acked
      --filter <f>        tag filter of the group (Stock.HK.*, Stock.#, a.*;b.#)
      --from <where>      group start: offset, first, end, a time ago (10s, 5m) or a date
      --ack-timeout <ms>  redeliver an unacked message after this long (30s, 5m)
      --ack-window <n>    unacked deliveries allowed before the group stops delivering
      --max-deliver <n>   deliveries before a message moves to <topic>.dlq
      --retention-bytes <size>    keep the topic under this size on disk (10GiB); 0 lifts the limit
      --retention-age <duration>  drop messages older than this (7d, 12h); 0 lifts the limit
      --retention-messages <n>    keep this many messages (1m); 0 lifts the limit
                          (retention deletes whole old segments, keeping at least the limit; a limit
                          left out keeps its value; without any, messages stay until rm or empty)
      --json              print the broker's answer as JSON

${CONNECTION_HELP}

Examples:
  zbus declare orders
  zbus declare orders --group billing --ack --ack-timeout 30s --max-deliver 5
  zbus declare quotes --group hk --filter 'Stock.HK.*' --from first
  zbus declare events --mask memory
  zbus declare logs --retention-bytes 10GiB --retention-age 7d
`;

export const RM_HELP = `Usage: zbus rm <topic> [--group <name>] [options]

Removes a topic with all its messages and groups, or only one group of it. Safe while clients are connected.
On a terminal it asks first; without one (a script, a pipe) it refuses unless -f is given.

Options:
  -g, --group <name>   remove only this group
  -f, --force          do not ask
      --json           print what was removed as JSON

${CONNECTION_HELP}

Examples:
  zbus rm orders
  zbus rm orders --group billing -f
`;

export const EMPTY_HELP = `Usage: zbus empty <topic> [--group <name>] [options]

Removes every message of a topic (its groups stay and start over at the new end), or moves one group to the
end of the topic so it skips its backlog. On a terminal it asks first; without one (a script, a pipe) it
refuses unless -f is given.

Options:
  -g, --group <name>   move only this group to the end
  -f, --force          do not ask
      --json           print what was emptied as JSON

${CONNECTION_HELP}

Examples:
  zbus empty orders
  zbus empty orders --group billing -f
`;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function groupsOf(t: TopicInfo): ConsumeGroupInfo[] {
  return Array.isArray(t.consumeGroupList) ? t.consumeGroupList : [];
}

/** Messages still stored: next offset minus first offset when the broker says them, else the depth. */
function stored(t: TopicInfo): number {
  if (typeof t.nextOffset === 'number' && typeof t.firstOffset === 'number')
    return t.nextOffset - t.firstOffset;
  return num(t.messageDepth);
}

export function topicsTable(topics: TopicInfo[]): string {
  const rows = [...topics]
    .sort((a, b) => a.topicName.localeCompare(b.topicName))
    .map((t) => {
      const groups = groupsOf(t);
      return [
        t.topicName,
        topicMaskLabel(num(t.mask)),
        stored(t),
        groups.length,
        groups.reduce((m, g) => Math.max(m, num(g.messageCount)), 0),
        groups.reduce((n, g) => n + num(g.unackedCount), 0),
        num(t.consumerCount),
        groups.reduce((n, g) => n + num(g.deadLetterCount), 0),
      ];
    });
  return table(['TOPIC', 'MASK', 'MESSAGES', 'GROUPS', 'BACKLOG', 'UNACKED', 'CONSUMERS', 'DLQ'], rows);
}

export function groupsTable(t: TopicInfo): string {
  const rows = [...groupsOf(t)]
    .sort((a, b) => a.groupName.localeCompare(b.groupName))
    .map((g) => [
      g.groupName,
      groupMaskLabel(num(g.mask)),
      g.filter ? String(g.filter) : '-',
      num(g.position),
      num(g.messageCount),
      num(g.unackedCount),
      num(g.consumerCount),
      num(g.deadLetterCount),
    ]);
  return table(['GROUP', 'MASK', 'FILTER', 'POSITION', 'BACKLOG', 'UNACKED', 'CONSUMERS', 'DLQ'], rows);
}

async function withClient<T>(values: Record<string, unknown>, body: (c: MqClient) => Promise<T>): Promise<T> {
  const client = await connect(connectionFrom(values, process.env));
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

function oneTopic(positionals: string[], command: string): string {
  const [topic, ...extra] = positionals;
  if (topic === undefined) throw usageError(`missing <topic>\nRun 'zbus ${command} --help' for usage.`);
  if (extra.length > 0) throw usageError(`unexpected argument '${extra[0]}'`);
  return topic;
}

export function topics(argv: string[]): Promise<number> {
  return run('topics', async () => {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, 'topics');
    if (values.help) {
      process.stdout.write(TOPICS_HELP);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw usageError(`unexpected argument '${positionals[0]}'`);
    const info = await withClient(values as Record<string, unknown>, (c) => c.queryServer());
    const list = Object.values(info.topicTable ?? {});
    if (values.json) process.stdout.write(`${JSON.stringify(info.topicTable ?? {}, null, 2)}\n`);
    else if (list.length === 0) process.stdout.write('no topics\n');
    else process.stdout.write(topicsTable(list));
    return EXIT_OK;
  });
}

export function groups(argv: string[]): Promise<number> {
  return run('groups', async () => {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, 'groups');
    if (values.help) {
      process.stdout.write(GROUPS_HELP);
      return EXIT_OK;
    }
    const topic = oneTopic(positionals, 'groups');
    const info = await withClient(values as Record<string, unknown>, (c) => c.queryTopic(topic));
    if (values.json) process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    else if (groupsOf(info).length === 0) process.stdout.write(`${topic} has no groups\n`);
    else process.stdout.write(groupsTable(info));
    return EXIT_OK;
  });
}

const DECLARE_OPTIONS = {
  mask: { type: 'string' },
  group: { type: 'string', short: 'g' },
  'group-mask': { type: 'string' },
  ack: { type: 'boolean' },
  filter: { type: 'string' },
  from: { type: 'string' },
  'ack-timeout': { type: 'string' },
  'ack-window': { type: 'string' },
  'max-deliver': { type: 'string' },
  'retention-bytes': { type: 'string' },
  'retention-age': { type: 'string' },
  'retention-messages': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The declare request (built here so that `group_max_deliver`, a zbus-ts header, can be set too). */
export function declareMessage(topic: string, values: Record<string, unknown>): Message {
  const msg = new Message({ headers: { cmd: 'declare', topic } });
  const mask = str(values, 'mask');
  if (mask !== undefined) msg.set('topic_mask', parseMask(mask, 'mask'));
  const group = str(values, 'group');
  if (group !== undefined) msg.set('consume_group', group);
  let groupMask =
    str(values, 'group-mask') === undefined
      ? undefined
      : parseMask(str(values, 'group-mask') as string, 'group-mask');
  if (values.ack) groupMask = (groupMask ?? 0) | 64;
  if (groupMask !== undefined) msg.set('group_mask', groupMask);
  const filter = str(values, 'filter');
  if (filter !== undefined) msg.set('group_filter', filter);
  const from = str(values, 'from');
  if (from !== undefined) {
    const f = parseFrom(from);
    if ('offset' in f) msg.set('group_start_offset', f.offset);
    else if ('time' in f) msg.set('group_start_time', f.time);
    else if ('first' in f) msg.set('group_start_offset', 0);
    else msg.set('group_start_offset', Number.MAX_SAFE_INTEGER);
  }
  const ackTimeout = duration(values, 'ack-timeout');
  if (ackTimeout !== undefined) msg.set('group_ack_timeout', ackTimeout);
  const ackWindow = int(values, 'ack-window', 1);
  if (ackWindow !== undefined) msg.set('group_ack_window', ackWindow);
  const maxDeliver = int(values, 'max-deliver', 1);
  if (maxDeliver !== undefined) msg.set('group_max_deliver', maxDeliver);
  const bytes = size(values, 'retention-bytes');
  if (bytes !== undefined) msg.set(Header.TopicRetentionBytes, bytes);
  const age = duration(values, 'retention-age');
  if (age !== undefined) msg.set(Header.TopicRetentionMs, age);
  const messages = int(values, 'retention-messages');
  if (messages !== undefined) msg.set(Header.TopicRetentionMessages, messages);
  return msg;
}

/** `10.0 GiB, 7d, 1,000,000 messages`: the limits a topic has. */
export function retentionLabel(r: TopicRetention): string {
  const parts: string[] = [];
  if (r.bytes) parts.push(formatBytes(r.bytes));
  if (r.ms) parts.push(formatDuration(r.ms));
  if (r.messages) parts.push(`${formatCount(r.messages)} messages`);
  return parts.join(', ');
}

function replyError(reply: Message): ZbusError {
  const code = reply.headers.error_code ?? 'ZBUS_ERR_INTERNAL';
  const status = reply.status ?? 500;
  return new ZbusError(code as ZbusError['code'], reply.bodyText() || `status ${status}`, { status });
}

export function declare(argv: string[]): Promise<number> {
  return run('declare', async () => {
    const { values, positionals } = parse(argv, DECLARE_OPTIONS, 'declare');
    if (values.help) {
      process.stdout.write(DECLARE_HELP);
      return EXIT_OK;
    }
    const topic = oneTopic(positionals, 'declare');
    const msg = declareMessage(topic, values as Record<string, unknown>);
    const info = await withClient(values as Record<string, unknown>, async (c) => {
      const reply = await c.invoke(msg);
      if (reply.status !== 200) throw replyError(reply);
      return reply.json<TopicInfo | ConsumeGroupInfo>();
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    } else if ('groupName' in info) {
      const g = info as ConsumeGroupInfo;
      process.stdout.write(
        `declared ${topic} group ${g.groupName} (mask ${groupMaskLabel(num(g.mask))}` +
          `${g.filter ? `, filter ${g.filter}` : ''}, position ${num(g.position)}, backlog ${num(g.messageCount)})\n`,
      );
    } else {
      const t = info as TopicInfo;
      process.stdout.write(
        `declared ${t.topicName ?? topic} (${topicMaskLabel(num(t.mask))}, ${stored(t)} messages` +
          `${t.retention ? `, retention ${retentionLabel(t.retention)}` : ''})\n`,
      );
    }
    return EXIT_OK;
  });
}

const DESTRUCTIVE_OPTIONS = {
  group: { type: 'string', short: 'g' },
  force: { type: 'boolean', short: 'f' },
  json: { type: 'boolean' },
} as const;

/** `zbus rm` and `zbus empty`: what they ask before, do, and print. */
interface Destructive {
  help: string;
  question(info: TopicInfo, group: string | undefined): string;
  act(c: MqClient, topic: string, group: string | undefined): Promise<void>;
  done(topic: string, group: string | undefined): string;
}

function destructive(command: 'rm' | 'empty', d: Destructive): (argv: string[]) => Promise<number> {
  return (argv) =>
    run(command, async () => {
      const { values, positionals } = parse(argv, DESTRUCTIVE_OPTIONS, command);
      if (values.help) {
        process.stdout.write(d.help);
        return EXIT_OK;
      }
      const topic = oneTopic(positionals, command);
      const group = str(values, 'group');
      const done = await withClient(values as Record<string, unknown>, async (c) => {
        if (values.force !== true) {
          const info = await c.queryTopic(topic);
          if (group !== undefined && !groupsOf(info).some((g) => g.groupName === group)) {
            await c.queryGroup(topic, group); // the broker's 404, as without -f
          }
          if (!(await confirm(command, d.question(info, group)))) return false;
        }
        await d.act(c, topic, group);
        return true;
      });
      if (!done) throw new CliError('cancelled, nothing changed');
      if (values.json) await printJson({ command, topic, ...(group === undefined ? {} : { group }) });
      else process.stdout.write(`${d.done(topic, group)}\n`);
      return EXIT_OK;
    });
}

function backlogOf(info: TopicInfo, group: string): number {
  return num(groupsOf(info).find((g) => g.groupName === group)?.messageCount);
}

export const rm = destructive('rm', {
  help: RM_HELP,
  question: (t, group) =>
    group === undefined
      ? `Remove topic ${t.topicName} with its ${stored(t)} messages and ${groupsOf(t).length} groups?`
      : `Remove group ${group} of ${t.topicName} (backlog ${backlogOf(t, group)})?`,
  act: (c, topic, group) => c.remove(topic, group),
  done: (topic, group) => (group === undefined ? `removed ${topic}` : `removed group ${group} of ${topic}`),
});

export const empty = destructive('empty', {
  help: EMPTY_HELP,
  question: (t, group) =>
    group === undefined
      ? `Remove all ${stored(t)} messages of ${t.topicName}?`
      : `Move group ${group} of ${t.topicName} to the end, skipping its backlog of ${backlogOf(t, group)}?`,
  act: (c, topic, group) => c.empty(topic, group),
  done: (topic, group) =>
    group === undefined ? `emptied ${topic}` : `moved group ${group} of ${topic} to the end`,
});
