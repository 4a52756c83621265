// Every example in examples/ runs against a real broker and prints what its comments promise.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunningBroker, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '../../../examples');

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
      reject(new Error(`example did not exit within 25 s:\n${out}`));
    }, 25_000);
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
    const deadline = Date.now() + 10_000;
    while (!s.text().includes('ready')) {
      if (Date.now() > deadline || service.exitCode !== null)
        throw new Error(`service did not start:\n${s.text()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
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
