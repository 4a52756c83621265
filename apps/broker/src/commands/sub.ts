// `zbus sub <topic>`: print messages as they come, from a named group or a private one.
import { randomBytes } from 'node:crypto';
import { Broker, type ConsumedMessage, Consumer, type GroupOptions, Mask } from '@zbus/client';
import {
  CliError,
  CONNECTION_HELP,
  connect,
  connectionFrom,
  EXIT_OK,
  type From,
  int,
  interrupted,
  out,
  parse,
  parseFrom,
  run,
  str,
  usageError,
} from './common.js';

export const SUB_HELP = `Usage: zbus sub <topic> [options]

Prints messages as they come (the body, one per line), until Ctrl-C or --count messages.

Without --group, sub reads through a private group (sub-<random>, deleted when sub exits) that starts
at the end of the topic: only new messages, like 'tail -f'. With --group, sub shares that group with every
other consumer of it: each message goes to one of them, and the group remembers its position.

Options:
  -g, --group <name>      consume this group (created when missing)
      --filter <f>        tag filter for a new group: Stock.HK.*, Stock.#, a.*;b.#
      --ack               the group requires acks: a message is acked after it is printed
      --from <where>      start at an offset (0, 1200), first, end, a time ago (10s, 5m, 2h) or a date;
                          with --group this moves the group's position
  -n, --count <n>         exit after n messages
      --window <n>        messages the broker may push before they are acked (default 1)
  -v, --verbose           print the headers too
      --json              print one JSON object per message (headers, offset, body)

${CONNECTION_HELP}

Examples:
  zbus sub orders
  zbus sub orders --from first --count 10
  zbus sub orders --group billing --ack
  zbus sub quotes --filter 'Stock.HK.*' -v
  zbus sub orders --json --count 1 | jq .body
`;

const OPTIONS = {
  group: { type: 'string', short: 'g' },
  filter: { type: 'string' },
  ack: { type: 'boolean' },
  from: { type: 'string' },
  count: { type: 'string', short: 'n' },
  window: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  json: { type: 'boolean' },
} as const;

export function sub(argv: string[]): Promise<number> {
  return run('sub', async () => {
    const { values, positionals } = parse(argv, OPTIONS, 'sub');
    if (values.help) {
      process.stdout.write(SUB_HELP);
      return EXIT_OK;
    }
    const [topic, ...extra] = positionals;
    if (topic === undefined) throw usageError("missing <topic>\nRun 'zbus sub --help' for usage.");
    if (extra.length > 0) throw usageError(`unexpected argument '${extra[0]}'`);
    const count = int(values, 'count', 1);
    const window = int(values, 'window', 1) ?? 1;
    const fromText = str(values, 'from');
    const from = fromText === undefined ? undefined : parseFrom(fromText);
    const named = str(values, 'group');
    const conn = connectionFrom(values as Record<string, unknown>, process.env);

    // Reach the broker once with a plain client: a clear error when it is down, and the topic's end.
    const probe = await connect(conn);
    let start: { startOffset?: number; startTime?: number } = {};
    try {
      start = await resolveStart(probe, topic, from, named === undefined);
    } finally {
      await probe.close();
    }

    let mask = 0;
    if (values.ack) mask |= Mask.AckRequired;
    // The private group gets a random name rather than `group_name_auto`: the broker picks auto names before
    // it creates the group, so two subs starting at the same moment could be handed the same one.
    const group: GroupOptions = { name: named ?? `sub-${randomBytes(4).toString('hex')}` };
    if (named === undefined) mask |= Mask.DeleteOnExit;
    if (mask !== 0) group.mask = mask;
    const filter = str(values, 'filter');
    if (filter !== undefined) group.filter = filter;
    Object.assign(group, start);

    const broker = new Broker(conn.server, {
      ...(conn.token !== undefined ? { token: conn.token } : {}),
      closeTimeout: 2_000,
    });
    let failure: Error | undefined;
    const consumer = new Consumer(broker, {
      topic,
      group,
      window,
      onError: (err) => {
        failure ??= err;
      },
    });
    const stop = interrupted();
    try {
      await consumer.start().catch((err: unknown) => {
        throw new CliError(`cannot consume ${topic}: ${(err as Error).message}`);
      });
      const iterator = consumer[Symbol.asyncIterator]();
      let seen = 0;
      for (;;) {
        const next = await Promise.race([iterator.next(), stop.promise.then(() => undefined)]);
        if (next === undefined || next.done) break;
        const waiting = out(format(next.value, values.json === true, values.verbose === true));
        if (waiting) await waiting;
        if (count !== undefined && ++seen >= count) break;
      }
      await iterator.return?.();
      if (failure !== undefined && count !== undefined && seen < count) throw failure;
      return EXIT_OK;
    } finally {
      stop.dispose();
      await consumer.close().catch(() => {});
      await broker.close();
    }
  });
}

async function resolveStart(
  client: Awaited<ReturnType<typeof connect>>,
  topic: string,
  from: From | undefined,
  privateGroup: boolean,
): Promise<{ startOffset?: number; startTime?: number }> {
  if (from !== undefined && 'offset' in from) return { startOffset: from.offset };
  if (from !== undefined && 'time' in from) return { startTime: from.time };
  const wantEnd = from !== undefined ? 'end' in from : privateGroup;
  const wantFirst = from !== undefined && 'first' in from;
  if (!wantEnd && !wantFirst) return {};
  try {
    const info = await client.queryTopic(topic);
    const first = typeof info.firstOffset === 'number' ? info.firstOffset : 0;
    const next = typeof info.nextOffset === 'number' ? info.nextOffset : info.messageDepth;
    return { startOffset: wantFirst ? first : next };
  } catch (err) {
    // A topic that does not exist yet is created by the consumer, empty: start at 0.
    if ((err as { code?: string }).code === 'ZBUS_ERR_NOT_FOUND') return { startOffset: 0 };
    throw err;
  }
}

function format(msg: ConsumedMessage, json: boolean, verbose: boolean): string {
  const body = msg.bodyText();
  if (json) {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(msg.headers)) if (v !== undefined) headers[k] = v;
    let value: unknown = body;
    if (/json/i.test(msg.contentType ?? '')) {
      try {
        value = JSON.parse(body);
      } catch {
        value = body;
      }
    }
    const o: Record<string, unknown> = {
      topic: msg.topic,
      group: msg.consumeGroup,
      offset: msg.offset,
      id: msg.id,
      tag: msg.tag,
      timestamp: msg.timestamp,
      retry: msg.retry,
      headers,
      body: value,
    };
    return `${JSON.stringify(o)}\n`;
  }
  if (!verbose) return body.endsWith('\n') ? body : `${body}\n`;
  const head = Object.entries(msg.headers)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
  return `${head}\n\n${body}${body.endsWith('\n') ? '' : '\n'}\n`;
}
