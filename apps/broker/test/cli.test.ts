// The client commands of `zbus` (pub, sub, rpc, topics, groups, declare, rm, empty, stat, bench), run as the
// built CLI against a real broker: output, exit codes (0 ok, 1 failed, 2 usage), --server/--token and env.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MqClient, ServiceBootstrap } from '@zbus/client';
import { BROKER_CLI, freePorts, type RunningBroker, scaled, startBroker, waitFor } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

const SLOW90 = scaled(90_000);

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let broker: RunningBroker;
let admin: MqClient;

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [BROKER_CLI, ...args], {
    env: { ...process.env, ZBUS_SERVER: broker.address, ZBUS_TOKEN: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function finish(child: ChildProcess, timeoutMs = scaled(60_000)): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`zbus did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `zbus ...args` to completion, with `input` on stdin. */
function zbus(args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const child = start(args, o.env);
  const done = finish(child);
  child.stdin?.end(o.input ?? '');
  return done;
}

/**
 * Runs `zbus ...args` on a pseudo-terminal (util-linux `script`), typing `input`: what a user at a shell sees.
 * stdout has the terminal's output, the prompt and the echo included.
 */
function onTerminal(args: string[], input: string): Promise<Result> {
  const cmd = [process.execPath, BROKER_CLI, ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qec', cmd, '/dev/null'], {
    env: { ...process.env, ZBUS_SERVER: broker.address, ZBUS_TOKEN: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const done = finish(child);
  child.stdin?.end(input);
  return done;
}

/** The rows of a table printed by topics/groups, as objects keyed by the header. */
function rowsOf(text: string): Array<Record<string, string>> {
  const [head, ...lines] = text.trimEnd().split('\n');
  const names = (head as string).split(/\s{2,}/);
  return lines.map((l) => Object.fromEntries(l.split(/\s{2,}/).map((c, i) => [names[i], c.trim()])));
}

beforeAll(async () => {
  broker = await startBroker({ fsync: 'interval=20' });
  admin = new MqClient(broker.address, { reconnect: false });
  await admin.connect();
});

afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

describe('zbus help and usage', () => {
  it(
    'lists the client commands and prints --help with examples for each',
    async () => {
      const commands = ['pub', 'sub', 'rpc', 'topics', 'groups', 'declare', 'rm', 'empty', 'stat', 'bench'];
      const [top, ...each] = await Promise.all([
        zbus(['--help']),
        ...commands.map((c) => zbus([c, '--help'])),
      ]);
      expect(top?.code).toBe(0);
      for (const c of commands) expect(top?.stdout).toContain(`zbus ${c}`);
      each.forEach((r, i) => {
        expect(r.code, commands[i]).toBe(0);
        expect(r.stdout).toContain(`Usage: zbus ${commands[i]}`);
        expect(r.stdout).toContain('Examples:');
        expect(r.stdout).toContain('--server');
        expect(r.stdout, `${commands[i]} --json`).toContain('--json');
      });
    },
    SLOW90,
  ); // eleven processes at once: slow to start on a loaded machine

  it('exits 2 on misuse, naming the problem', async () => {
    const [noTopic, badFlag, badMode, badCount, badFrom] = await Promise.all([
      zbus(['pub']),
      zbus(['sub', 'T', '--frob']),
      zbus(['bench', 'frob']),
      zbus(['pub', 'T', 'x', '--count', 'many']),
      zbus(['sub', 'T', '--from', 'yesterday-ish']),
    ]);
    expect(noTopic.code).toBe(2);
    expect(noTopic.stderr).toContain('zbus pub: missing <topic>');
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("'--frob'");
    expect(badFlag.stderr).toContain("Run 'zbus sub --help'");
    expect(badMode.code).toBe(2);
    expect(badMode.stderr).toContain('pub, sub or rpc');
    expect(badCount.code).toBe(2);
    expect(badCount.stderr).toContain('--count must be an integer');
    expect(badFrom.code).toBe(2);
    expect(badFrom.stderr).toContain('--from must be');
  });

  it('exits 1 with "cannot reach broker" when nothing listens, with --server or ZBUS_SERVER', async () => {
    const [port] = await freePorts(1);
    const [flag, env] = await Promise.all([
      zbus(['topics', '--server', `127.0.0.1:${port}`]),
      zbus(['pub', 'T', 'x'], { env: { ZBUS_SERVER: `127.0.0.1:${port}` } }),
    ]);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toBe(`zbus topics: cannot reach broker at 127.0.0.1:${port} (connection refused)\n`);
    expect(env.code).toBe(1);
    expect(env.stderr).toContain(`cannot reach broker at 127.0.0.1:${port}`);
  });
});

describe('zbus pub and sub', () => {
  it('publishes a body, copies with {{i}}, tags and headers, and sub --json reads them back', async () => {
    const one = await zbus(['pub', 'Orders', '{"id":1}', '--content-type', 'application/json']);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^published to Orders: offset 0, id \S+, durable: interval\n$/);
    const many = await zbus([
      'pub',
      'Orders',
      'm{{i}}',
      '--count',
      '3',
      '--tag',
      'eu.paris',
      '-H',
      'trace: t1',
    ]);
    expect(many.code).toBe(0);
    expect(many.stdout).toContain('published 3 messages to Orders: offsets 1..3');

    const r = await zbus(['sub', 'Orders', '--from', 'first', '--count', '4', '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ topic: 'Orders', offset: 0, body: { id: 1 } });
    expect(lines.slice(1).map((m) => m.body)).toEqual(['m1', 'm2', 'm3']);
    expect(lines[1]).toMatchObject({ offset: 1, tag: 'eu.paris', headers: { trace: 't1' } });
    // The private group sub used is gone once it exited.
    const info = await admin.queryTopic('Orders');
    expect(info.consumeGroupList.map((g) => g.groupName)).toEqual(['Orders']);
  });

  it('publishes each line of stdin with -, skipping blank lines', async () => {
    const r = await zbus(['pub', 'Lines', '-'], { input: 'alpha\nbeta\n\ngamma\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('published 3 messages to Lines: offsets 0..2');
    const body = await zbus(['sub', 'Lines', '--from', '0', '-n', '3']);
    expect(body.stdout).toBe('alpha\nbeta\ngamma\n');
    const verbose = await zbus(['sub', 'Lines', '--from', '1', '-n', '1', '-v']);
    expect(verbose.stdout).toMatch(/^topic: Lines$/m);
    expect(verbose.stdout).toMatch(/^offset: 1$/m);
    expect(verbose.stdout).toMatch(/\n\nbeta\n/);
  });

  it('sub without --from prints only new messages as they come', async () => {
    await admin.declareTopic('Live');
    await admin.produce({ topic: 'Live', body: 'old' });
    const child = start(['sub', 'Live', '--count', '1']);
    const done = finish(child);
    await waitFor(async () => (await admin.queryTopic('Live')).consumerCount > 0, 'the subscriber');
    await zbus(['pub', 'Live', 'new']);
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('new\n');
  });

  it('two subs started together each print every message (a private group each)', async () => {
    await admin.declareTopic('Both');
    const a = start(['sub', 'Both', '-n', '2']);
    const b = start(['sub', 'Both', '-n', '2']);
    const done = Promise.all([finish(a), finish(b)]);
    await waitFor(async () => (await admin.queryTopic('Both')).consumerCount === 2, 'both subscribers');
    await admin.produce({ topic: 'Both', body: 'x1' });
    await admin.produce({ topic: 'Both', body: 'x2' });
    for (const r of await done) expect(r).toMatchObject({ code: 0, stdout: 'x1\nx2\n' });
  });

  it('sub --filter delivers only matching tags; --delay holds a message back', async () => {
    await admin.declareTopic('Quotes');
    await admin.produce({ topic: 'Quotes', body: 'us', tag: 'Stock.US.AAPL' });
    await admin.produce({ topic: 'Quotes', body: 'hk', tag: 'Stock.HK.700' });
    const r = await zbus(['sub', 'Quotes', '--from', 'first', '--filter', 'Stock.HK.*', '-n', '1']);
    expect(r.stdout).toBe('hk\n');
    const delayed = await zbus(['pub', 'Quotes', 'later', '--delay', '1m']);
    expect(delayed.code).toBe(0);
    expect(delayed.stdout).toMatch(/^published to Quotes: held until \d{4}-\d\d-\d\dT[\d:.]+Z, id /);
    expect((await admin.queryTopic('Quotes')).delayedCount).toBe(1);
  });

  it('sub --group --ack shares a group and acks what it printed', async () => {
    await admin.declareTopic('Jobs');
    for (const body of ['job1', 'job2', 'job3']) await admin.produce({ topic: 'Jobs', body });
    const d = await zbus(['declare', 'Jobs', '--group', 'workers', '--ack', '--from', 'first']);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain('declared Jobs group workers (mask ack, position 0, backlog 3)');
    const r = await zbus(['sub', 'Jobs', '--group', 'workers', '--ack', '-n', '2']);
    expect(r.stdout).toBe('job1\njob2\n');
    const g = await admin.queryGroup('Jobs', 'workers');
    expect(g).toMatchObject({ messageCount: 1, unackedCount: 0 });
    const next = await zbus(['sub', 'Jobs', '-g', 'workers', '--ack', '-n', '1']);
    expect(next.stdout).toBe('job3\n');
  });
});

describe('zbus rpc', () => {
  it('calls a service, parsing params as JSON when they parse; 600 and no service exit 1', async () => {
    const service = await new ServiceBootstrap()
      .serviceName('CliRpc')
      .serviceAddress(broker.address)
      .addModule('math', {
        plus: (a: number, b: number) => a + b,
        fail: () => {
          throw new Error('cannot divide by zero');
        },
      })
      .addModule({ hello: (name: string, o: { n: number }) => ({ hi: name, n: o.n }) })
      .start();
    onTestFinished(() => service.close());
    const [plus, hello, fail] = await Promise.all([
      zbus(['rpc', 'CliRpc', 'math.plus', '1', '2']),
      zbus(['rpc', 'CliRpc', 'hello', 'bob', '{"n":3}']),
      zbus(['rpc', 'CliRpc', 'math.fail']),
    ]);
    expect(plus).toMatchObject({ code: 0, stdout: '3\n' });
    expect(hello.code).toBe(0);
    expect(JSON.parse(hello.stdout)).toEqual({ hi: 'bob', n: 3 });
    expect(fail.code).toBe(1);
    expect(fail.stderr).toBe('zbus rpc: math.fail failed: cannot divide by zero\n');
    const json = await zbus(['rpc', 'CliRpc', 'hello', 'bob', '{"n":3}', '--json']);
    expect(json).toMatchObject({ code: 0, stdout: '{"hi":"bob","n":3}\n' });
    const none = await zbus(['rpc', 'NoSuchService', 'm.x']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no service is consuming NoSuchService');
  });
});

describe('zbus topics, groups, declare, rm, empty', () => {
  it('prints aligned tables of topics and groups', async () => {
    await zbus(['declare', 'Tbl', '--mask', 'memory']);
    await zbus([
      'declare',
      'Tbl',
      '--group',
      'g2',
      '--group-mask',
      'exclusive,ack',
      '--filter',
      'a.#',
      '--max-deliver',
      '3',
    ]);
    await admin.produce({ topic: 'Tbl', body: 'x1' });
    await admin.produce({ topic: 'Tbl', body: 'x2' });
    const topics = await zbus(['topics']);
    expect(topics.code).toBe(0);
    const header = topics.stdout.split('\n')[0] as string;
    expect(header.split(/\s+/)).toEqual([
      'TOPIC',
      'MASK',
      'MESSAGES',
      'GROUPS',
      'BACKLOG',
      'UNACKED',
      'CONSUMERS',
      'DLQ',
    ]);
    const row = rowsOf(topics.stdout).find((r) => r.TOPIC === 'Tbl');
    expect(row).toEqual({
      TOPIC: 'Tbl',
      MASK: 'memory',
      MESSAGES: '2',
      GROUPS: '2',
      BACKLOG: '2',
      UNACKED: '0',
      CONSUMERS: '0',
      DLQ: '0',
    });
    // Columns line up: every line is as long as the header or ends before it.
    const lines = topics.stdout.trimEnd().split('\n');
    const col = header.indexOf('DLQ') + 3;
    for (const l of lines) expect(l.length).toBe(col);

    const groups = await zbus(['groups', 'Tbl']);
    // BACKLOG counts every message after the group's position, including ones its filter will skip.
    expect(rowsOf(groups.stdout)).toEqual([
      {
        GROUP: 'g2',
        MASK: 'exclusive,ack',
        FILTER: 'a.#',
        POSITION: '0',
        BACKLOG: '2',
        UNACKED: '0',
        CONSUMERS: '0',
        DLQ: '0',
      },
      {
        GROUP: 'Tbl',
        MASK: '-',
        FILTER: '-',
        POSITION: '0',
        BACKLOG: '2',
        UNACKED: '0',
        CONSUMERS: '0',
        DLQ: '0',
      },
    ]);
    const json = await zbus(['groups', 'Tbl', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ topicName: 'Tbl', mask: 1 });
    const missing = await zbus(['groups', 'NoSuchTopic']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ZBUS_ERR_NOT_FOUND');
  });

  it('empties a group, empties a topic, removes a group and a topic', async () => {
    await admin.declareTopic('Tmp');
    for (const body of ['a1', 'a2', 'a3']) await admin.produce({ topic: 'Tmp', body });
    await admin.declareGroup('Tmp', { name: 'other', startOffset: 0 });
    const eg = await zbus(['empty', 'Tmp', '--group', 'other', '-f']);
    expect(eg).toMatchObject({ code: 0, stdout: 'moved group other of Tmp to the end\n' });
    expect((await admin.queryGroup('Tmp', 'other')).messageCount).toBe(0);
    expect((await admin.queryGroup('Tmp', 'Tmp')).messageCount).toBe(3);
    const et = await zbus(['empty', 'Tmp', '--force']);
    expect(et).toMatchObject({ code: 0, stdout: 'emptied Tmp\n' });
    expect((await admin.queryGroup('Tmp', 'Tmp')).messageCount).toBe(0);
    const rg = await zbus(['rm', 'Tmp', '-g', 'other', '-f']);
    expect(rg).toMatchObject({ code: 0, stdout: 'removed group other of Tmp\n' });
    const rt = await zbus(['rm', 'Tmp', '-f']);
    expect(rt).toMatchObject({ code: 0, stdout: 'removed Tmp\n' });
    await expect(admin.queryTopic('Tmp')).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND' });
    const again = await zbus(['rm', 'Tmp', '-f']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^zbus rm: .*Tmp.* \(ZBUS_ERR_NOT_FOUND\)\n$/);
    const unasked = await zbus(['rm', 'Tmp']);
    expect(unasked.code).toBe(1); // a missing topic is said before anything is asked
    expect(unasked.stderr).toContain('ZBUS_ERR_NOT_FOUND');
  });

  it('declare sets retention by size, age and count, and 0 lifts a limit', async () => {
    const set = await zbus([
      'declare',
      'Kept',
      '--retention-bytes',
      '10GiB',
      '--retention-age',
      '7d',
      '--retention-messages',
      '1m',
    ]);
    expect(set).toMatchObject({
      code: 0,
      stdout: 'declared Kept (disk, 0 messages, retention 10.00 GiB, 7d, 1,000,000 messages)\n',
    });
    expect((await admin.queryTopic('Kept')).retention).toEqual({
      bytes: 10 * 1024 ** 3,
      ms: 7 * 86_400_000,
      messages: 1_000_000,
    });
    const lift = await zbus([
      'declare',
      'Kept',
      '--retention-bytes',
      '0',
      '--retention-messages',
      '0',
      '--json',
    ]);
    expect(JSON.parse(lift.stdout).retention).toEqual({ ms: 7 * 86_400_000 });
    const [badSize, badAge] = await Promise.all([
      zbus(['declare', 'Kept', '--retention-bytes', 'huge']),
      zbus(['declare', 'Kept', '--retention-age', 'forever']),
    ]);
    expect(badSize.code).toBe(2);
    expect(badSize.stderr).toContain('--retention-bytes must be a size such as 512MiB or 10GiB');
    expect(badAge.code).toBe(2);
    expect(badAge.stderr).toContain('--retention-age must be a duration');
  });

  it('rm and empty refuse without a terminal unless -f, and ask on one', async () => {
    await admin.declareTopic('Ask');
    await admin.produce({ topic: 'Ask', body: 'keep me' });
    const [rm, empty] = await Promise.all([zbus(['rm', 'Ask']), zbus(['empty', 'Ask', '--group', 'Ask'])]);
    expect(rm.code).toBe(2);
    expect(rm.stderr).toBe(
      'zbus rm: cannot ask "Remove topic Ask with its 1 messages and 1 groups?": stdin is not a terminal; ' +
        "pass -f (--force) to go ahead\nRun 'zbus rm --help' for usage.\n",
    );
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('Move group Ask of Ask to the end, skipping its backlog of 1?');
    expect((await admin.queryTopic('Ask')).messageDepth).toBe(1);

    const no = await onTerminal(['rm', 'Ask'], 'n\n');
    expect(no.code, no.stdout).toBe(1);
    expect(no.stdout).toContain('Remove topic Ask with its 1 messages and 1 groups? [y/N]');
    expect(no.stdout).toContain('zbus rm: cancelled, nothing changed');
    expect((await admin.queryGroup('Ask', 'Ask')).messageCount).toBe(1);
    const yes = await onTerminal(['empty', 'Ask'], 'y\n');
    expect(yes.code, yes.stdout).toBe(0);
    expect(yes.stdout).toContain('Remove all 1 messages of Ask? [y/N]');
    expect(yes.stdout).toContain('emptied Ask');
    expect((await admin.queryGroup('Ask', 'Ask')).messageCount).toBe(0);
  });
});

describe('--json', () => {
  it('every command that prints can print JSON instead', async () => {
    const pub = await zbus(['pub', 'Json', 'hello', '--json']);
    expect(pub.code, pub.stderr).toBe(0);
    expect(JSON.parse(pub.stdout)).toMatchObject({
      topic: 'Json',
      count: 1,
      first: { offset: 0, durability: 'interval', serverTime: expect.any(Number) },
    });
    // stat first and alone: run beside sub, it may see the message already consumed (backlog 0).
    const stat = await zbus(['stat', '-n', '1', '--json']);
    const [topics, groups, declare, sub] = await Promise.all([
      zbus(['topics', '--json']),
      zbus(['groups', 'Json', '--json']),
      zbus(['declare', 'Json', '--group', 'g2', '--json']),
      zbus(['sub', 'Json', '--from', 'first', '--count', '1', '--json']),
    ]);
    expect(JSON.parse(topics.stdout).Json).toMatchObject({ topicName: 'Json' });
    expect(JSON.parse(groups.stdout)).toMatchObject({ topicName: 'Json' });
    expect(JSON.parse(declare.stdout)).toMatchObject({ groupName: 'g2' });
    expect(JSON.parse(sub.stdout)).toMatchObject({ offset: 0, body: 'hello' });
    const refresh = JSON.parse(stat.stdout);
    expect(refresh.inPerSec).toBeNull();
    expect(refresh.rows).toContainEqual({
      topic: 'Json',
      inPerSec: null,
      outPerSec: null,
      messages: 1,
      backlog: 1,
      unacked: 0,
      consumers: 0,
    });
    const empty = await zbus(['empty', 'Json', '-g', 'g2', '-f', '--json']);
    expect(JSON.parse(empty.stdout)).toEqual({ command: 'empty', topic: 'Json', group: 'g2' });
    const rm = await zbus(['rm', 'Json', '-f', '--json']);
    expect(JSON.parse(rm.stdout)).toEqual({ command: 'rm', topic: 'Json' });
  });
});

describe('zbus stat', () => {
  it('prints --count refreshes with per-topic rates', async () => {
    await admin.declareTopic('Stat');
    const child = start(['stat', '--count', '2', '--interval', '300ms']);
    const done = finish(child);
    await admin.produce({ topic: 'Stat', body: 'x' });
    const r = await done;
    expect(r.code).toBe(0);
    const blocks = r.stdout.trimEnd().split(/\n\n(?=zbus stat)/);
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toMatch(/^zbus stat {2}127\.0\.0\.1:\d+ {2}\d\d:\d\d:\d\d {2}\d+ topics\n/);
    expect(blocks[1]).toMatch(/in \d[\d,]*\/s {2}out \d[\d,]*\/s/);
    expect(blocks[1]).toMatch(/^Stat\s+\d/m);
  });
});

describe('zbus bench', () => {
  it('bench pub, sub and rpc report rates, latency percentiles and durability', async () => {
    const common = ['--count', '300', '--concurrency', '8', '--size', '64', '--json'];
    const [pub, sub, rpc] = await Promise.all([
      zbus(['bench', 'pub', ...common, '--connections', '2']),
      zbus(['bench', 'sub', ...common]),
      zbus(['bench', 'rpc', ...common]),
    ]);
    for (const r of [pub, sub, rpc]) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    const p = JSON.parse(pub.stdout);
    expect(p).toMatchObject({
      mode: 'pub',
      connections: 2,
      concurrency: 8,
      size: 64,
      messages: 300,
      durability: 'interval',
    });
    expect(p.messagesPerSecond).toBeGreaterThan(0);
    expect(p.mbPerSecond).toBeCloseTo((p.messagesPerSecond * 64) / 1e6, 6);
    const l = p.latencyMs;
    expect(l.p50).toBeGreaterThan(0);
    expect(l.p50).toBeLessThanOrEqual(l.p90);
    expect(l.p90).toBeLessThanOrEqual(l.p99);
    expect(l.p99).toBeLessThanOrEqual(l.max);
    const s = JSON.parse(sub.stdout);
    expect(s).toMatchObject({ mode: 'sub', messages: 300, published: { messages: 300 } });
    expect(s.latencyMs.max).toBeGreaterThan(0);
    const c = JSON.parse(rpc.stdout);
    expect(c).toMatchObject({ mode: 'rpc', messages: 300 });
    expect(c.latencyMs.p99).toBeGreaterThan(0);
    // Bench topics are removed afterwards.
    const info = await admin.queryServer();
    expect(Object.keys(info.topicTable).filter((t) => t.startsWith('bench-'))).toEqual([]);
  });

  it('prints a readable report, and runs for --duration', async () => {
    const r = await zbus(['bench', 'pub', '--duration', '300ms', '--memory', '--size', '16']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^bench pub: bench-pub-\w+, 1 connection x 32 in flight, 16 B bodies, durability memory\n/,
    );
    expect(r.stdout).toMatch(/ {2}rate {6}[\d,]+ msgs\/s {2}[\d.]+ MB\/s\n/);
    expect(r.stdout).toMatch(/latency {3}p50 [\d.]+ ms {2}p90 [\d.]+ ms {2}p99 [\d.]+ ms {2}max [\d.]+ ms/);
  });
});

describe('--token and ZBUS_TOKEN', () => {
  it('sends the token on every command', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zbus-cli-auth-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'auth.json');
    writeFileSync(
      file,
      JSON.stringify({ tokens: [{ token: 'adm1n', operations: ['admin'], topics: [{ topic: '*' }] }] }),
    );
    const secured = await startBroker({ args: ['--auth', file] });
    onTestFinished(() => secured.stop().then(() => undefined));
    const env = { ZBUS_SERVER: secured.address };
    const [denied, flag, fromEnv] = await Promise.all([
      zbus(['declare', 'Secret'], { env }),
      zbus(['declare', 'Secret', '--token', 'adm1n'], { env }),
      zbus(['pub', 'Secret2', 'x'], { env: { ...env, ZBUS_TOKEN: 'adm1n' } }),
    ]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('ZBUS_ERR_FORBIDDEN');
    expect(flag.code).toBe(0);
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.stdout).toContain('published to Secret2');
  });
});
