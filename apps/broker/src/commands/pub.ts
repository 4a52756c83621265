// `zbus pub <topic> [body|-]`: publish one message, N copies, or every line of stdin.
import { createInterface } from 'node:readline';
import type { MqClient, ProduceResult, PublishInput } from '@zbus/client';
import {
  CONNECTION_HELP,
  connect,
  connectionFrom,
  duration,
  EXIT_OK,
  int,
  parse,
  printJson,
  run,
  str,
  usageError,
} from './common.js';

export const PUB_HELP = `Usage: zbus pub <topic> [body | -] [options]

Publishes a message and prints where it was stored. With '-' (or no body and piped input) every line of
stdin is one message. The topic is declared when it does not exist yet.

Options:
      --tag <tag>          tag for group filters (Stock.HK.700)
      --delay <ms>         deliver after this long (500, 10s, 5m); survives restarts
  -H, --header <k:v>       extra header, repeatable
      --count <n>          publish the body n times ({{i}} in the body becomes 1..n)
      --content-type <t>   default text/plain
      --id <id>            message id (the broker dedupes by it)
  -q, --quiet              print nothing on success
      --json               print {topic, count, first, last} (each {id, offset, durability, serverTime}) as JSON

${CONNECTION_HELP}

Examples:
  zbus pub orders '{"id":1,"total":9.5}'
  zbus pub orders hello --tag eu.paris -H trace:abc
  zbus pub reminders 'call back' --delay 10m
  zbus pub load 'message {{i}}' --count 1000
  tail -f app.log | zbus pub logs -
`;

const OPTIONS = {
  tag: { type: 'string' },
  delay: { type: 'string' },
  header: { type: 'string', short: 'H', multiple: true },
  count: { type: 'string' },
  'content-type': { type: 'string' },
  id: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  json: { type: 'boolean' },
} as const;

/** Publishes in order, keeping at most this many acks outstanding. */
const MAX_IN_FLIGHT = 256;

export function pub(argv: string[]): Promise<number> {
  return run('pub', async () => {
    const { values, positionals } = parse(argv, OPTIONS, 'pub');
    if (values.help) {
      process.stdout.write(PUB_HELP);
      return EXIT_OK;
    }
    const [topic, body, ...extra] = positionals;
    if (topic === undefined) throw usageError("missing <topic>\nRun 'zbus pub --help' for usage.");
    if (extra.length > 0) throw usageError(`unexpected argument '${extra[0]}' (quote the body)`);
    const fromStdin = body === '-' || (body === undefined && !process.stdin.isTTY);
    if (body === undefined && !fromStdin) throw usageError("missing body (or '-' to read stdin)");
    const count = int(values, 'count', 1) ?? 1;
    if (fromStdin && values.count !== undefined) throw usageError('--count does not go with stdin');
    const headers: Record<string, string> = {};
    for (const h of (values.header as string[] | undefined) ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) throw usageError(`--header must be name:value, got '${h}'`);
      headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
    }
    const template: Omit<PublishInput, 'topic' | 'body'> = { headers };
    const tag = str(values, 'tag');
    if (tag !== undefined) template.tag = tag;
    const delay = duration(values, 'delay');
    if (delay !== undefined) template.delay = delay;
    const id = str(values, 'id');
    if (id !== undefined) template.id = id;
    template.contentType = str(values, 'content-type') ?? 'text/plain';
    const quiet = values.quiet === true;

    const conn = connectionFrom(values as Record<string, unknown>, process.env);
    const client = await connect(conn);
    const sender = new Sender(client, topic, template);
    try {
      if (fromStdin) {
        const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
        for await (const line of lines) {
          if (line === '') continue;
          await sender.send(line);
        }
      } else {
        for (let i = 1; i <= count; i++) {
          await sender.send(count > 1 ? (body as string).replaceAll('{{i}}', String(i)) : (body as string));
        }
      }
      const results = await sender.done();
      const [first, last] = [brief(results[0]), brief(results.at(-1))];
      if (values.json) await printJson({ topic, count: results.length, first, last });
      else if (!quiet) process.stdout.write(`${summary(topic, results, delay)}\n`);
      return EXIT_OK;
    } finally {
      await client.close();
    }
  });
}

class Sender {
  readonly #inFlight = new Set<Promise<void>>();
  readonly results: ProduceResult[] = [];
  #failure: unknown;
  #declared = false;
  #n = 0;

  constructor(
    readonly client: MqClient,
    readonly topic: string,
    readonly template: Omit<PublishInput, 'topic' | 'body'>,
  ) {}

  async send(body: string): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    const slot = this.#n++;
    // The first message goes alone: it finds out whether the topic exists (and declares it if not).
    if (slot === 0) {
      this.results[slot] = await this.#produce(body);
      return;
    }
    const p = this.#produce(body).then(
      (r) => {
        this.results[slot] = r;
      },
      (err: unknown) => {
        this.#failure ??= err;
      },
    );
    const tracked = p.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
    if (this.#inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.#inFlight);
  }

  async #produce(body: string): Promise<ProduceResult> {
    const input: PublishInput = { ...this.template, topic: this.topic, body };
    try {
      return (await this.client.produce(input)) as ProduceResult;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ZBUS_ERR_NOT_FOUND' || this.#declared) throw err;
      this.#declared = true;
      await this.client.declareTopic(this.topic);
      return (await this.client.produce({ ...input })) as ProduceResult;
    }
  }

  async done(): Promise<ProduceResult[]> {
    await Promise.all(this.#inFlight);
    if (this.#failure !== undefined) throw this.#failure;
    return this.results;
  }
}

/** What `--json` shows of an ack. */
function brief(r: ProduceResult | undefined) {
  return r && { id: r.id, offset: r.offset, durability: r.durability, serverTime: r.serverTime };
}

function summary(topic: string, results: ProduceResult[], delay: number | undefined): string {
  if (results.length === 0) return `published nothing to ${topic}`;
  const first = results[0] as ProduceResult;
  const last = results[results.length - 1] as ProduceResult;
  const durable = first.durability === undefined ? '' : `, durable: ${first.durability}`;
  // A delayed message gets its offset when it is due; until then the broker holds it.
  const due =
    delay === undefined
      ? ''
      : `held until ${new Date((first.serverTime ?? Date.now()) + delay).toISOString()}`;
  if (results.length === 1) {
    const where = first.offset === undefined ? due || 'stored' : `offset ${first.offset}`;
    return `published to ${topic}: ${where}, id ${first.id}${durable}`;
  }
  const where =
    first.offset === undefined || last.offset === undefined
      ? due || 'stored'
      : `offsets ${first.offset}..${last.offset}`;
  return `published ${results.length} messages to ${topic}: ${where}${durable}`;
}
