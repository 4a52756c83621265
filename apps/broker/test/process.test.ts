// The `zbus serve` process: startup line, flags and env vars, graceful SIGTERM, and restarts (clean and
// after kill -9) that keep topics, groups, messages and unacked deliveries.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { BROKER_CLI, RawClient, startBroker, waitFor } from '@zbus/testkit';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { optionsFromArgs, scavengeOnMainThread } from '../src/serve.js';

async function connect(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  onTestFinished(() => c.close());
  return c;
}

/** Bytes in the ack journal (`<group>.acks`) of a consume group under a broker's data dir; 0 until it exists. */
function ackJournalBytes(dataDir: string, group: string): number {
  const file = readdirSync(dataDir, { recursive: true, encoding: 'utf8' }).find((f) =>
    f.endsWith(`/${group}.acks`),
  );
  return file === undefined ? 0 : statSync(join(dataDir, file)).size;
}

describe('zbus serve', () => {
  it('prints where it listens, where data lives and the fsync policy', async () => {
    const b = await startBroker({ fsync: 'interval=100' });
    onTestFinished(() => b.stop().then(() => undefined));
    expect(b.output()).toMatch(/listening on 127\.0\.0\.1:\d+ .* data \S+ fsync interval=100ms/);
  });

  it('says which clients it serves: protected mode by default, insecure or auth on when asked', async () => {
    const b = await startBroker({ fsync: 'never' });
    onTestFinished(() => b.stop().then(() => undefined));
    expect(b.output()).toContain('protected mode: no auth, this machine only (--auth <file> or --insecure');
    const open = await startBroker({ fsync: 'never', env: { ZBUS_INSECURE: '1' } });
    onTestFinished(() => open.stop().then(() => undefined));
    expect(open.output()).toContain('INSECURE: no auth, every client served');
    const bad = spawnSync(process.execPath, [BROKER_CLI, 'serve', '--host', '192.0.2.77'], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/protected mode: .*host is 192\.0\.2\.77.*--auth <file>.*--insecure/);
  });

  it('takes --insecure and --allow-origin from flags and env vars', () => {
    const o = optionsFromArgs(
      [
        '--insecure',
        '--allow-origin',
        'https://a.example,https://b.example',
        '--allow-origin',
        'http://c:8080',
      ],
      {},
    );
    expect(o).toMatchObject({
      insecure: true,
      allowOrigins: ['https://a.example', 'https://b.example', 'http://c:8080'],
    });
    const e = optionsFromArgs([], { ZBUS_INSECURE: 'false', ZBUS_ALLOW_ORIGIN: 'https://x.example' });
    expect(e).toMatchObject({ insecure: false, allowOrigins: ['https://x.example'] });
    expect(() => optionsFromArgs([], { ZBUS_INSECURE: 'yes' })).toThrow(/ZBUS_INSECURE must be/);
  });

  it('takes the bounds of a connection queue from flags and env vars', () => {
    const o = optionsFromArgs(
      ['--write-high-water', '1048576', '--max-write-queue', '33554432', '--write-stall-timeout', '0'],
      { ZBUS_WRITE_STALL_TIMEOUT: '5000' },
    );
    expect(o).toMatchObject({
      writeHighWaterMark: 1048576,
      maxWriteQueueBytes: 33554432,
      writeStallTimeoutMs: 0,
    });
    const e = optionsFromArgs([], { ZBUS_WRITE_HIGH_WATER: '65536', ZBUS_MAX_WRITE_QUEUE: '20000000' });
    expect(e).toMatchObject({ writeHighWaterMark: 65536, maxWriteQueueBytes: 20000000 });
    expect(() => optionsFromArgs(['--write-stall-timeout', 'soon'], {})).toThrow(
      "--write-stall-timeout must be a non-negative integer, got 'soon'",
    );
  });

  it('takes the group-commit wait from --group-commit-wait and ZBUS_GROUP_COMMIT_WAIT', () => {
    expect(optionsFromArgs(['--group-commit-wait', '0'], { ZBUS_GROUP_COMMIT_WAIT: '5' })).toMatchObject({
      groupCommitWaitMs: 0,
    });
    expect(optionsFromArgs([], { ZBUS_GROUP_COMMIT_WAIT: '5' })).toMatchObject({ groupCommitWaitMs: 5 });
    const tooLong = spawnSync(process.execPath, [BROKER_CLI, 'serve', '--group-commit-wait', '5000'], {
      encoding: 'utf8',
    });
    expect(tooLong.status).toBe(2);
    expect(tooLong.stderr).toMatch(/^zbus serve: groupCommitWaitMs must be an integer from 0 to 1000/);
    expect(tooLong.stderr).toContain('--group-commit-wait');
  });

  it('prints help and rejects bad flags with a clear message and exit code', () => {
    const help = spawnSync(process.execPath, [BROKER_CLI, 'serve', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--fsync <policy>');
    const bad = spawnSync(process.execPath, [BROKER_CLI, 'serve', '--fsync', 'sometimes'], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^zbus serve: .*fsync must be always, never or interval=<ms/);
    expect(bad.stderr).toContain("Run 'zbus serve --help' for usage.");
    const flag = spawnSync(process.execPath, [BROKER_CLI, 'serve', '--frob'], { encoding: 'utf8' });
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain("Unknown option '--frob'");
    const option = spawnSync(process.execPath, [BROKER_CLI, 'serve', '--port', '99999'], {
      encoding: 'utf8',
    });
    expect(option.status).toBe(2);
    expect(option.stderr).toMatch(/^zbus serve: .*port/);
    const unknown = spawnSync(process.execPath, [BROKER_CLI, 'frob'], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
  });

  it('refuses an option out of range at startup, naming the option, its flag and env var', () => {
    // --max-body 0 used to start, and the first connection crashed the broker.
    const zero = spawnSync(process.execPath, [BROKER_CLI, 'serve', '--port', '0', '--max-body', '0'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(zero.status).toBe(2);
    expect(zero.stdout).not.toContain('listening');
    expect(zero.stderr).toContain(
      'zbus serve: maxBodyBytes must be an integer from 1 to 1073741824, got 0 (maxBodyBytes); set by --max-body or ZBUS_MAX_BODY',
    );
    const env = spawnSync(process.execPath, [BROKER_CLI, 'serve', '--port', '0'], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, ZBUS_LOG_LEVEL: 'chatty' },
    });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('(logLevel); set by --log-level or ZBUS_LOG_LEVEL');
  });

  it('reads options from env vars', async () => {
    const b = await startBroker({ env: { ZBUS_LOG_LEVEL: 'silent', ZBUS_FSYNC: 'never' }, fsync: 'never' });
    onTestFinished(() => b.stop().then(() => undefined));
    expect(b.output()).toContain('fsync never');
  });

  it('exits 0 on SIGTERM after answering what is in flight', async () => {
    const b = await startBroker();
    const c = await connect(b.port);
    await c.request({ headers: { cmd: 'declare', topic: 'T' } });
    const ids = Array.from({ length: 50 }, (_, i) =>
      c.send({ headers: { cmd: 'produce', topic: 'T', id: `p${i}` }, body: `m${i}` }),
    );
    const replies = Promise.all(ids.map((id) => c.next((m) => m.headers.id === id)));
    const code = b.stop();
    const got = await replies;
    expect(got.every((r) => r.status === 200 || r.status === 503)).toBe(true);
    expect(await code).toBe(0);
  });

  it('keeps topics, groups, messages and unacked deliveries across a kill -9 and restart', async () => {
    const b = await startBroker();
    onTestFinished(() => b.stop().then(() => undefined));
    let c = await connect(b.port);
    const workers = {
      cmd: 'declare',
      topic: 'Jobs',
      consume_group: 'workers',
      group_mask: '64',
      group_ack_timeout: '300',
    };
    await c.request({ headers: workers });
    await c.request({
      headers: { cmd: 'declare', topic: 'Jobs', consume_group: 'audit', group_filter: 'a.*' },
    });
    for (let i = 0; i < 3; i++)
      await c.request({ headers: { cmd: 'produce', topic: 'Jobs', tag: 'a.b' }, body: `job${i}` });
    const first = await c.request({ headers: { cmd: 'consume', topic: 'Jobs', consume_group: 'workers' } });
    expect(first.bodyText()).toBe('job0'); // delivered, never acked
    // The delivery record reaches the group's ack journal on the next turn of the broker's event loop, after
    // the reply: wait until the file holds it (one 28-byte entry), or the kill can come first.
    await waitFor(() => ackJournalBytes(b.dataDir, 'workers') >= 28, 'the delivery in the ack journal');
    c.close();
    await b.kill('SIGKILL');
    await b.restart();
    c = await connect(b.port);
    const topic = (await c.request({ headers: { cmd: 'query', topic: 'Jobs' } })).json<{
      messageDepth: number;
      consumeGroupList: Array<{ groupName: string; filter: string; unackedCount: number }>;
    }>();
    expect(topic.messageDepth).toBe(3);
    expect(topic.consumeGroupList.map((g) => g.groupName).sort()).toEqual(['audit', 'workers']);
    expect(topic.consumeGroupList.find((g) => g.groupName === 'audit')!.filter).toBe('a.*');
    expect(topic.consumeGroupList.find((g) => g.groupName === 'workers')!.unackedCount).toBe(1);
    // Everything is delivered again or for the first time: job0 comes back once its ack timeout runs out.
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await c.request({ headers: { cmd: 'consume', topic: 'Jobs', consume_group: 'workers' } });
      got.push(d.bodyText());
      await c.request({
        headers: { cmd: 'ack', topic: 'Jobs', consume_group: 'workers', offset: d.headers.offset! },
      });
    }
    expect(got.sort()).toEqual(['job0', 'job1', 'job2']);
  });
});

describe('garbage collection', () => {
  it('runs scavenges on the main thread unless node was started with a flag about them', () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => {});
    onTestFinished(() => set.mockRestore());
    expect(scavengeOnMainThread(['--max-old-space-size=512'])).toBe(true);
    expect(set).toHaveBeenCalledWith('--no-parallel-scavenge');
    set.mockClear();
    expect(scavengeOnMainThread(['--parallel-scavenge'])).toBe(false);
    expect(scavengeOnMainThread(['--single-threaded-gc'])).toBe(false);
    expect(set).not.toHaveBeenCalled();
  });
});
