// `zbus bench pub|sub|rpc`: load from this process against a broker, with a closing report of throughput and
// per-message latency percentiles (closed loop: each connection keeps `concurrency` requests in flight).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  Broker,
  type ConsumedMessage,
  Consumer,
  Mask,
  type Message,
  type MqClient,
  RpcInvoker,
  RpcProcessor,
} from '@zbus/client';
import {
  CliError,
  CONNECTION_HELP,
  type Connection,
  connect,
  connectionFrom,
  duration,
  EXIT_OK,
  formatCount,
  int,
  interrupted,
  parse,
  run,
  str,
  usageError,
} from './common.js';

export const BENCH_HELP = `Usage: zbus bench pub|sub|rpc [options]

  pub   publishes --count messages (or for --duration) and times each acknowledgement
  sub   consumes while this process publishes, and times each message from publish to delivery
  rpc   starts an echo service in this process and times each call through the broker

Each connection keeps --concurrency requests in flight (a closed loop). The report gives messages/s, MB/s
(bodies only, 1 MB = 10^6 bytes) and latency p50/p90/p99/max measured per message, and the durability the
broker reported in its acks (the 'durable' header: fsync, interval, none, memory). Unless --topic is given,
the bench uses a fresh topic and removes it at the end.

Options:
  -c, --connections <n>   connections (default 1)
      --concurrency <n>   requests in flight per connection (default 32)
      --size <bytes>      message body size (default 128)
  -n, --count <n>         messages or calls (default 100000; 1k and 2m also work)
  -d, --duration <t>      run this long instead (10s, 1m)
      --topic <name>      use (and keep) this topic
      --memory            a memory topic instead of a disk topic (pub, sub)
      --json              print the report as one JSON object
      --no-progress       no progress bar (it is shown on a terminal only)

${CONNECTION_HELP}

Examples:
  zbus bench pub --count 200k --size 256 --concurrency 64
  zbus bench pub --connections 4 --duration 10s --memory
  zbus bench sub --count 100k
  zbus bench rpc --connections 2 --concurrency 16 --duration 5s
`;

const OPTIONS = {
  connections: { type: 'string', short: 'c' },
  concurrency: { type: 'string' },
  size: { type: 'string' },
  count: { type: 'string', short: 'n' },
  duration: { type: 'string', short: 'd' },
  topic: { type: 'string' },
  memory: { type: 'boolean' },
  json: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
} as const;

export interface BenchSettings {
  mode: 'pub' | 'sub' | 'rpc';
  connections: number;
  concurrency: number;
  size: number;
  count: number | undefined;
  durationMs: number | undefined;
  topic: string;
  ownTopic: boolean;
  memory: boolean;
}

export interface BenchReport {
  mode: string;
  topic: string;
  connections: number;
  concurrency: number;
  size: number;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  mbPerSecond: number;
  durability: string | undefined;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** bench sub: the publishing side. */
  published?: { messages: number; messagesPerSecond: number };
}

/** Latency samples in ms, in one growing typed array (no per-sample allocation). */
export class Samples {
  #buf = new Float64Array(4096);
  #n = 0;

  add(ms: number): void {
    if (this.#n === this.#buf.length) {
      const bigger = new Float64Array(this.#buf.length * 2);
      bigger.set(this.#buf);
      this.#buf = bigger;
    }
    this.#buf[this.#n++] = ms;
  }

  get count(): number {
    return this.#n;
  }

  summary(): BenchReport['latencyMs'] {
    const n = this.#n;
    if (n === 0) return { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
    const sorted = this.#buf.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i] as number;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[n - 1] as number, mean: sum / n };
  }
}

/** Hands out work: `count` units, or until the deadline. */
class Budget {
  issued = 0;
  done = 0;
  stopped = false;
  readonly started = performance.now();

  constructor(
    readonly count: number | undefined,
    readonly deadline: number | undefined,
  ) {}

  claim(): boolean {
    if (this.stopped) return false;
    if (this.count !== undefined) {
      if (this.issued >= this.count) return false;
    } else if (performance.now() >= (this.deadline as number)) return false;
    this.issued++;
    return true;
  }

  /** 0..1 */
  progress(): number {
    if (this.count !== undefined) return this.count === 0 ? 1 : this.done / this.count;
    const total = (this.deadline as number) - this.started;
    return Math.min(1, (performance.now() - this.started) / total);
  }
}

/** A progress bar on stderr, redrawn every 200 ms while `budget` runs. */
function progressBar(label: string, budget: Budget, counter: () => number): () => void {
  const started = performance.now();
  const draw = () => {
    const p = budget.progress();
    const width = 30;
    const full = Math.round(p * width);
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? counter() / secs : 0;
    process.stderr.write(
      `\r${label} [${'='.repeat(full)}${' '.repeat(width - full)}] ${String(Math.floor(p * 100)).padStart(3)}%` +
        `  ${formatCount(counter())} msgs  ${formatCount(rate)} msg/s   `,
    );
  };
  const timer = setInterval(draw, 200);
  return () => {
    clearInterval(timer);
    process.stderr.write(`\r${' '.repeat(90)}\r`);
  };
}

function settings(mode: string, values: Record<string, unknown>): BenchSettings {
  if (mode !== 'pub' && mode !== 'sub' && mode !== 'rpc') {
    throw usageError(`bench needs pub, sub or rpc, got '${mode}'\nRun 'zbus bench --help' for usage.`);
  }
  const durationMs = duration(values, 'duration');
  let count = int(values, 'count', 1);
  if (durationMs !== undefined && count !== undefined)
    throw usageError('give --count or --duration, not both');
  if (durationMs === undefined) count ??= 100_000;
  const topic = str(values, 'topic');
  return {
    mode,
    connections: int(values, 'connections', 1) ?? 1,
    concurrency: int(values, 'concurrency', 1) ?? 32,
    size: int(values, 'size', 0) ?? 128,
    count,
    durationMs,
    topic: topic ?? `bench-${mode}-${randomBytes(4).toString('hex')}`,
    ownTopic: topic === undefined,
    memory: values.memory === true,
  };
}

function clientOptions(conn: Connection) {
  return { ...(conn.token !== undefined ? { token: conn.token } : {}), closeTimeout: 5_000 };
}

async function connectAll(conn: Connection, n: number): Promise<MqClient[]> {
  const clients: MqClient[] = [];
  try {
    for (let i = 0; i < n; i++) clients.push(await connect(conn, { timeout: 30_000 }));
  } catch (err) {
    await Promise.all(clients.map((c) => c.close()));
    throw err;
  }
  return clients;
}

/** Runs `concurrency` loops per client until the budget runs out; the first failure stops them all. */
async function drive(
  clients: MqClient[],
  concurrency: number,
  budget: Budget,
  one: (client: MqClient) => Promise<void>,
): Promise<void> {
  let failure: unknown;
  const loop = async (client: MqClient) => {
    while (failure === undefined && budget.claim()) {
      try {
        await one(client);
        budget.done++;
      } catch (err) {
        failure ??= err;
        budget.stopped = true;
      }
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: concurrency }, () => loop(c))));
  if (failure !== undefined) throw failure;
}

function report(
  s: BenchSettings,
  messages: number,
  ms: number,
  samples: Samples,
  durability?: string,
): BenchReport {
  const seconds = ms / 1000;
  const rate = seconds > 0 ? messages / seconds : 0;
  return {
    mode: s.mode,
    topic: s.topic,
    connections: s.connections,
    concurrency: s.concurrency,
    size: s.size,
    messages,
    seconds,
    messagesPerSecond: rate,
    mbPerSecond: (rate * s.size) / 1e6,
    durability,
    latencyMs: samples.summary(),
  };
}

export function formatReport(r: BenchReport): string {
  const ms = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
  const l = r.latencyMs;
  const what = r.mode === 'rpc' ? 'calls' : 'messages';
  const lines = [
    `bench ${r.mode}: ${r.topic}, ${r.connections} connection${r.connections === 1 ? '' : 's'} x ${r.concurrency} in flight, ${r.size} B bodies` +
      (r.durability === undefined ? '' : `, durability ${r.durability}`),
    `  ${what.padEnd(9)} ${formatCount(r.messages)} in ${r.seconds.toFixed(2)} s`,
    `  rate      ${formatCount(r.messagesPerSecond)} ${r.mode === 'rpc' ? 'calls' : 'msgs'}/s  ${r.mbPerSecond.toFixed(2)} MB/s`,
  ];
  if (r.published !== undefined) {
    lines.push(
      `  published ${formatCount(r.published.messages)} at ${formatCount(r.published.messagesPerSecond)} msgs/s`,
    );
  }
  lines.push(
    `  latency   p50 ${ms(l.p50)} ms  p90 ${ms(l.p90)} ms  p99 ${ms(l.p99)} ms  max ${ms(l.max)} ms` +
      (r.mode === 'sub'
        ? '  (publish to delivery)'
        : r.mode === 'rpc'
          ? '  (round trip)'
          : '  (publish to ack)'),
  );
  return `${lines.join('\n')}\n`;
}

async function benchPub(s: BenchSettings, conn: Connection, progress: boolean): Promise<BenchReport> {
  const clients = await connectAll(conn, s.connections);
  try {
    const first = clients[0] as MqClient;
    await first.declareTopic(s.topic, s.memory ? Mask.Memory : undefined);
    // Nobody reads a pub bench: without the default group a memory topic drops its oldest messages
    // instead of refusing new ones once full.
    if (s.memory && s.ownTopic) await first.remove(s.topic, s.topic);
    const body = Buffer.alloc(s.size, 'x');
    const samples = new Samples();
    let durability: string | undefined;
    const budget = new Budget(
      s.count,
      s.durationMs === undefined ? undefined : performance.now() + s.durationMs,
    );
    const stopBar = progress ? progressBar('pub', budget, () => budget.done) : () => {};
    const started = performance.now();
    try {
      await drive(clients, s.concurrency, budget, async (client) => {
        const t0 = performance.now();
        const r = await client.produce({ topic: s.topic, body });
        samples.add(performance.now() - t0);
        durability ??= r?.durability;
      });
    } finally {
      stopBar();
    }
    return report(s, budget.done, performance.now() - started, samples, durability);
  } finally {
    if (s.ownTopic) await (clients[0] as MqClient).remove(s.topic).catch(() => {});
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function benchSub(s: BenchSettings, conn: Connection, progress: boolean): Promise<BenchReport> {
  const [publisher] = await connectAll(conn, 1);
  const client = publisher as MqClient;
  const broker = new Broker(conn.server, clientOptions(conn));
  let consumer: Consumer | undefined;
  try {
    await client.declare(s.topic, {
      ...(s.memory ? { topicMask: Mask.Memory } : {}),
      group: { name: 'bench' },
    });
    const samples = new Samples();
    let received = 0;
    let firstAt = 0;
    let lastAt = 0;
    let target = s.count ?? Number.POSITIVE_INFINITY;
    let finish!: () => void;
    const allIn = new Promise<void>((r) => {
      finish = r;
    });
    let consumeError: Error | undefined;
    consumer = new Consumer(broker, {
      topic: s.topic,
      group: 'bench',
      window: s.concurrency,
      connectionCount: s.connections,
      handler: (msg: ConsumedMessage) => {
        const now = performance.now();
        const body = msg.body;
        if (body.length >= 8) {
          const sent = Buffer.from(body.buffer, body.byteOffset, 8).readDoubleLE(0);
          samples.add(now - sent);
        }
        if (received === 0) firstAt = now;
        lastAt = now;
        if (++received >= target) finish();
      },
      onError: (err) => {
        consumeError ??= err;
      },
    });
    await consumer.start();
    const size = Math.max(8, s.size);
    const budget = new Budget(
      s.count,
      s.durationMs === undefined ? undefined : performance.now() + s.durationMs,
    );
    const stopBar = progress ? progressBar('sub', budget, () => received) : () => {};
    let durability: string | undefined;
    const started = performance.now();
    let pubMs = 0;
    try {
      await drive([client], s.concurrency, budget, async (c) => {
        const body = Buffer.alloc(size, 'x');
        body.writeDoubleLE(performance.now(), 0);
        const r = await c.produce({ topic: s.topic, body });
        durability ??= r?.durability;
      });
      pubMs = performance.now() - started;
      target = budget.done;
      if (received >= target) finish();
      // Everything published must arrive; give up when nothing arrives for 10 s.
      for (;;) {
        const before = received;
        const idle = new Promise<'idle'>((r) => setTimeout(() => r('idle'), 10_000).unref());
        if ((await Promise.race([allIn.then(() => 'done' as const), idle])) === 'done') break;
        if (received === before) {
          throw new CliError(
            `only ${received} of ${target} messages arrived${consumeError ? ` (${consumeError.message})` : ''}`,
          );
        }
      }
    } finally {
      stopBar();
    }
    const r = report(s, received, Math.max(lastAt - Math.min(firstAt, started), 0.001), samples, durability);
    r.seconds = (lastAt - started) / 1000;
    r.messagesPerSecond = r.seconds > 0 ? received / r.seconds : 0;
    r.mbPerSecond = (r.messagesPerSecond * s.size) / 1e6;
    r.published = { messages: target, messagesPerSecond: pubMs > 0 ? (target * 1000) / pubMs : 0 };
    return r;
  } finally {
    await consumer?.close().catch(() => {});
    await broker.close();
    if (s.ownTopic) await client.remove(s.topic).catch(() => {});
    await client.close();
  }
}

/** The echo service of `bench rpc`: one module, `bench.echo(x)` returns x. */
async function startEchoService(s: BenchSettings, conn: Connection): Promise<() => Promise<void>> {
  const processor = new RpcProcessor();
  processor.addModule('bench', { echo: (x: unknown) => x });
  const broker = new Broker(conn.server, clientOptions(conn));
  const consumer = new Consumer(broker, {
    topic: s.topic,
    topicMask: Mask.Memory | Mask.Rpc,
    connectionCount: s.connections,
    window: s.concurrency,
    handler: async (req: ConsumedMessage, client: MqClient) => {
      const reply: Message = await processor.process(req);
      if (req.sender === undefined || req.id === undefined) return;
      reply.set('id', req.id);
      reply.set('topic', s.topic);
      client.route(reply, req.sender);
    },
  });
  try {
    await consumer.start();
  } catch (err) {
    await broker.close();
    throw err;
  }
  return async () => {
    await consumer.close();
    await broker.close();
  };
}

async function benchRpc(s: BenchSettings, conn: Connection, progress: boolean): Promise<BenchReport> {
  const stopService = await startEchoService(s, conn);
  const clients = await connectAll(conn, s.connections).catch(async (err: unknown) => {
    await stopService();
    throw err;
  });
  try {
    const invokers = new Map(
      clients.map((c) => [
        c,
        new RpcInvoker(c, {
          topic: s.topic,
          module: 'bench',
          timeout: 30_000,
          ...(conn.token !== undefined ? { token: conn.token } : {}),
        }),
      ]),
    );
    const payload = 'x'.repeat(s.size);
    const samples = new Samples();
    const budget = new Budget(
      s.count,
      s.durationMs === undefined ? undefined : performance.now() + s.durationMs,
    );
    const stopBar = progress ? progressBar('rpc', budget, () => budget.done) : () => {};
    const started = performance.now();
    try {
      await drive(clients, s.concurrency, budget, async (client) => {
        const t0 = performance.now();
        const echoed = await (invokers.get(client) as RpcInvoker).invoke<string>('echo', payload);
        samples.add(performance.now() - t0);
        if (echoed.length !== payload.length)
          throw new CliError('the echo service answered a different body');
      });
    } finally {
      stopBar();
    }
    return report(s, budget.done, performance.now() - started, samples);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await stopService();
    if (s.ownTopic) {
      const admin = await connect(conn).catch(() => undefined);
      await admin?.remove(s.topic).catch(() => {});
      await admin?.close();
    }
  }
}

export function bench(argv: string[]): Promise<number> {
  return run('bench', async () => {
    const { values, positionals } = parse(argv, OPTIONS, 'bench');
    if (values.help) {
      process.stdout.write(BENCH_HELP);
      return EXIT_OK;
    }
    const [mode, ...extra] = positionals;
    if (mode === undefined) throw usageError("missing pub, sub or rpc\nRun 'zbus bench --help' for usage.");
    if (extra.length > 0) throw usageError(`unexpected argument '${extra[0]}'`);
    const s = settings(mode, values as Record<string, unknown>);
    const conn = connectionFrom(values as Record<string, unknown>, process.env);
    const progress = process.stderr.isTTY === true && values['no-progress'] !== true;
    const stop = interrupted();
    const work =
      s.mode === 'pub'
        ? benchPub(s, conn, progress)
        : s.mode === 'sub'
          ? benchSub(s, conn, progress)
          : benchRpc(s, conn, progress);
    const outcome = await Promise.race([work, stop.promise.then(() => undefined)]);
    stop.dispose();
    if (outcome === undefined) {
      // Connections of the interrupted run are still open: leave now.
      process.stderr.write('zbus bench: interrupted\n');
      process.exit(130);
    }
    process.stdout.write(values.json ? `${JSON.stringify(outcome)}\n` : formatReport(outcome));
    return EXIT_OK;
  });
}
