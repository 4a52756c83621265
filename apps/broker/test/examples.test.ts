// Every example in examples/ runs against a real broker and prints what its comments promise.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MqClient } from '@zbus/client';
import { BROKER_CLI, freePorts, type RunningBroker, scaled, startBroker, waitFor } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const EXAMPLES = join(ROOT, 'examples');
const CLIENT = pathToFileURL(join(ROOT, 'packages/client-node/dist/index.js')).href;
const BROKER_LIB = pathToFileURL(join(ROOT, 'apps/broker/dist/index.js')).href;

let broker: RunningBroker;

beforeAll(async () => {
  broker = await startBroker({ fsync: 'interval=20' });
});

afterAll(async () => {
  await broker?.stop();
});

function launch(name: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [join(EXAMPLES, name)], {
    cwd: join(EXAMPLES, '..'),
    env: { ...process.env, ZBUS_SERVER: broker.address, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function collect(child: ChildProcess): { text(): string; exit: Promise<number | null> } {
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const exit = new Promise<number | null>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`example did not exit in time:\n${out}`));
    }, scaled(25_000));
    child.once('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
  return { text: () => out, exit };
}

async function runExample(name: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const c = collect(launch(name, env));
  const code = await c.exit;
  expect(code, c.text()).toBe(0);
  return c.text();
}

describe('examples', () => {
  it('work-queue.mjs: two workers share the jobs, a failed job is redelivered, each is done once', async () => {
    const out = await runExample('work-queue.mjs');
    const done = [...out.matchAll(/^(worker-\d) did job (\d+)/gm)];
    expect(done.map((m) => Number(m[2])).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(out).toMatch(/failed job 7; it will be redelivered/);
    expect(out).toMatch(/did job 7 \(delivery 2\)/);
    expect(out).toMatch(/^10 jobs done: /m);
  });

  it('fanout.mjs: each of two groups gets every message', async () => {
    const out = await runExample('fanout.mjs');
    for (const group of ['billing', 'audit']) {
      const got = [...out.matchAll(new RegExp(`^${group} got order (\\d)`, 'gm'))].map((m) => m[1]);
      expect(got).toEqual(['1', '2', '3', '4', '5']);
    }
    expect(out).toContain('billing got 5, audit got 5');
  });

  it('broadcast.mjs: every listener gets every notice; private groups vanish on exit', async () => {
    const out = await runExample('broadcast.mjs');
    expect(out).toContain('groups while listening: 3 private + the default one');
    expect(out).toContain('9 deliveries: each of 3 listeners got all 3 notices');
    for (const n of [1, 2, 3]) {
      expect(out.match(new RegExp(`got: notice ${n}$`, 'gm'))).toHaveLength(3);
    }
    expect(out).toContain('groups after the listeners left: examples.notices\n');
  });

  it('rpc-service.mjs + rpc-caller.mjs: results, concurrency, the default module and a remote error', async () => {
    const service = launch('rpc-service.mjs');
    const s = collect(service);
    onTestFinished(() => {
      if (service.exitCode === null) service.kill('SIGKILL');
    });
    await waitFor(
      () => s.text().includes('ready') || service.exitCode !== null,
      () => `the service to start:\n${s.text()}`,
    );
    expect(service.exitCode, s.text()).toBeNull();
    const out = await runExample('rpc-caller.mjs');
    expect(out).toContain('math.plus(1, 2) = 3');
    expect(out).toContain('math.slowSquare(12) = 144');
    expect(out).toContain('three at once = [ 2, 4, 6 ]');
    expect(out).toContain("echo = { hello: 'world' }");
    expect(out).toContain('math.divide(1, 0) failed: division by zero (ZBUS_ERR_RPC)');
    // The same service over plain HTTP, as the comment in rpc-service.mjs says.
    const res = await fetch(`http://${broker.address}/ExampleRpc/math/plus/1/2`);
    expect(await res.text()).toBe('3');
    service.kill('SIGTERM');
    expect(await s.exit).toBe(0);
    expect(s.text()).toContain('service stopped');
  });
});

/** The fenced code blocks of a Markdown file, in order. */
function codeBlocks(file: string): Array<{ lang: string; code: string }> {
  const md = readFileSync(join(ROOT, 'docs', file), 'utf8');
  return [...md.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1] as string,
    code: m[2] as string,
  }));
}

function block(blocks: Array<{ lang: string; code: string }>, marker: string): string {
  const b = blocks.find((x) => x.code.includes(marker));
  if (b === undefined) throw new Error(`no code block with ${marker} in the docs`);
  return b.code;
}

/** Points a snippet at the test broker and at the built packages. */
function localize(code: string): string {
  return code
    .replaceAll("'@zbus/client'", `'${CLIENT}'`)
    .replaceAll("'@zbus/broker'", `'${BROKER_LIB}'`)
    .replaceAll('127.0.0.1:15555', broker.address)
    .replaceAll('localhost:15555', broker.address);
}

function sh(script: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(
    'sh',
    [
      '-ec',
      `zbus() { "${process.execPath}" "${BROKER_CLI}" "$@"; }\ncurl() { command curl -sS "$@"; }\n${script}`,
    ],
    {
      env: { ...process.env, ZBUS_SERVER: broker.address },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const c = collect(child);
  return c.exit.then((code) => ({ code, out: c.text() }));
}

describe('docs/getting-started.md, as written', () => {
  it('curl, the CLI, the Node consumer and the RPC service with its callers', async () => {
    const blocks = codeBlocks('getting-started.md');
    const dir = mkdtempSync(join(tmpdir(), 'zbus-getting-started-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));

    // 2. curl: declare, publish, consume.
    const curl = await sh(localize(block(blocks, 'curl -X POST')));
    expect(curl.code, curl.out).toBe(0);
    // The publish answer's body is the broker's clock in ms, printed just before the consumed message.
    expect(curl.out.trimEnd()).toMatch(/\d{13}hi there$/);

    // 3. The CLI, minus the two lines that follow a topic forever.
    const cli = block(blocks, 'zbus pub hello')
      .split('\n')
      .filter((l) => !/^zbus sub hello +#|'live!'/.test(l))
      .join('\n');
    const out = await sh(cli);
    expect(out.code, out.out).toBe(0);
    expect(out.out).toContain('published to hello: offset 1');
    expect(out.out).toContain('hi there\nsecond message\n');
    expect(out.out).toMatch(/^hello +disk +2 +1 /m);

    // 4. Node.js: consume.mjs publishes, its consumer prints the order.
    writeFileSync(join(dir, 'consume.mjs'), localize(block(blocks, '// consume.mjs')));
    const consumer = spawn(process.execPath, [join(dir, 'consume.mjs')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const c = collect(consumer);
    onTestFinished(() => {
      if (consumer.exitCode === null) consumer.kill('SIGKILL');
    });
    // Either line may come first: the broker can deliver the message before its ack reaches the producer.
    await waitFor(
      () => c.text().includes('order { id: 1, total: 9.5 }') && c.text().includes('stored at'),
      () => `the order and its ack; output so far:\n${c.text()}`,
    );
    expect(c.text()).toMatch(/stored at 0 (fsync|interval)/);
    consumer.kill('SIGTERM');

    // 6. RPC: the service, then curl, zbus rpc and ClientBootstrap.
    writeFileSync(join(dir, 'service.mjs'), localize(block(blocks, '// service.mjs')));
    const service = spawn(process.execPath, [join(dir, 'service.mjs')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = collect(service);
    onTestFinished(() => {
      if (service.exitCode === null) service.kill('SIGKILL');
    });
    const admin = new MqClient(broker.address, { reconnect: false });
    onTestFinished(() => admin.close());
    await waitFor(
      async () => (await admin.queryTopic('MyRpc').catch(() => undefined))?.consumerCount === 1,
      () => `the service's consumer; output so far:\n${s.text()}`,
    );
    const calls = await sh(localize(block(blocks, 'zbus rpc MyRpc math.plus 1 2')));
    expect(calls.code, calls.out).toBe(0);
    expect(calls.out).toBe('333\n'); // the URL, the JSON body (curl prints no newline), then zbus rpc
    writeFileSync(join(dir, 'caller.mjs'), localize(block(blocks, "client.proxy('math').plus(1, 2)")));
    const caller = collect(
      spawn(process.execPath, [join(dir, 'caller.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    expect(await caller.exit, caller.text()).toBe(0);
    expect(caller.text()).toBe('3\n');
    // "A call to a service name that was never started fails at once too, with ZBUS_ERR_NOT_FOUND."
    writeFileSync(
      join(dir, 'never.mjs'),
      localize(block(blocks, "client.proxy('math').plus(1, 2)"))
        .replace("serviceName('MyRpc')", "serviceName('NeverStarted')")
        .replace(
          "console.log(await client.proxy('math').plus(1, 2));",
          "await client.proxy('math').plus(1, 2).catch((e) => console.log(e.code, e.status));",
        ),
    );
    const never = collect(
      spawn(process.execPath, [join(dir, 'never.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    expect(await never.exit, never.text()).toBe(0);
    expect(never.text()).toBe('ZBUS_ERR_NOT_FOUND 404\n');
    service.kill('SIGTERM');
  });
});

/** Writes `code` to a temp .mjs file and runs it with node; resolves with its exit code and output. */
async function runSnippet(code: string): Promise<{ code: number | null; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'zbus-docs-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'snippet.mjs'), code);
  const child = spawn(process.execPath, [join(dir, 'snippet.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
  // A snippet that never ends fails by the test's timeout, and is not left running.
  onTestFinished(() => void child.kill('SIGKILL'));
  const c = collect(child);
  const exit = await c.exit;
  return { code: exit, out: c.text() };
}

describe('docs/dmz.md, as written', () => {
  it('startProxy as a library: a request to the entry reaches the target and shows in stats()', async () => {
    const target = createServer((req, res) => res.end(`target got ${req.method} ${req.url}`));
    target.listen(0, '127.0.0.1');
    await new Promise((r) => target.once('listening', r));
    onTestFinished(() => new Promise<void>((r) => target.close(() => r())));
    const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    const code = localize(block(codeBlocks('dmz.md'), 'startProxy({'))
      .replace('dmz-broker:15555', broker.address)
      .replace('http://127.0.0.1:8080', targetUrl)
      // One call through the broker before the stats, so that they count it.
      .replace(
        'console.log(proxy.stats());',
        `console.log(await (await fetch('http://${broker.address}/orders/api/orders?x=1')).text());\n$&`,
      );
    const run = await runSnippet(code);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain('target got GET /api/orders?x=1');
    // The fields the snippet's comment names, each printed, and no others.
    const named = /proxy\.stats\(\)\); \/\/ \{ orders: \{ ([\w, ]+) \} \}/.exec(code)?.[1]?.split(', ');
    const printed = /orders: \{ ([^}]*) \}/.exec(run.out)?.[1]?.split(', ');
    expect(printed?.map((f) => f.split(':')[0])).toEqual(named);
    expect(printed?.[0]).toBe('forwarded: 1');
  });
});

describe('docs/ha.md, as written', () => {
  it('the client snippet over three brokers that track each other: declare, publish, consume', async () => {
    const env = { ZBUS_CLUSTER_TOKEN: 'docs-ha-test-cluster-secret' };
    // As ha.md runs them: each broker reports to the other two, so each one, as a tracker, lists all three.
    const ports = await freePorts(3);
    const addr = (p: number) => `127.0.0.1:${p}`;
    const brokers = await Promise.all(
      ports.map(async (port) => {
        const others = ports.filter((p) => p !== port).map(addr);
        const args = ['--log-level', 'silent', '--tracker', others.join(';')];
        const b = await startBroker({ fsync: 'interval=20', port, args, env });
        onTestFinished(() => b.stop().then(() => undefined));
        return b;
      }),
    );
    // Reporters connect with backoff: the snippet starts once every tracker lists all three, so its first view
    // (what ready() waits for) does too.
    const want = JSON.stringify(ports.map(addr).sort());
    await waitFor(
      async () => {
        const views = await Promise.all(
          brokers.map(async (b) => {
            const client = new MqClient(b.address, { reconnect: false });
            try {
              return JSON.stringify(Object.keys((await client.tracker()).serverTable).sort());
            } finally {
              await client.close();
            }
          }),
        );
        return views.every((v) => v === want);
      },
      'the trackers to list all three brokers',
      15_000,
    );
    const code = localize(block(codeBlocks('ha.md'), "new Broker('10.0.0.1"))
      .replace('10.0.0.1:15555;10.0.0.2:15555;10.0.0.3:15555', ports.map(addr).join(';'))
      // `bill` is the reader's own; here it prints the order and ends the run.
      .concat("\nfunction bill(order) { console.log('billed', JSON.stringify(order)); process.exit(0); }\n");
    const run = await runSnippet(code);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain('billed {"id":1}');
    for (const port of ports) expect(run.out).toContain(`up ${addr(port)}`);
  });
});

describe('docs/protocol.md, as written', () => {
  it('the WebSocket snippet: one query frame in, one HTTP reply frame out', async () => {
    // Node 20 has no global WebSocket: the snippet gets ws's, which has the same onopen/onmessage/send.
    const ws = pathToFileURL(createRequire(import.meta.url).resolve('ws')).href;
    const code = `import WebSocket from '${ws}';
const print = console.log;
console.log = (...args) => { print(...args); process.exit(0); };
${localize(block(codeBlocks('protocol.md'), "new WebSocket('ws://localhost:15555/')"))}`;
    const run = await runSnippet(code);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(run.out).toMatch(/\r\nid: q1\r\n/);
    expect(run.out).toContain(`{"serverAddress":`);
  });
});
