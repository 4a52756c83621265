// @zbus/client-browser in headless Chromium against the real broker: produce, consume with ack, RPC to a
// service running in this Node process, reconnect across a broker restart and a frozen broker, large
// messages, and the SPA example from docs/spa.md. The page loads the single-file build (dist/zbus.browser.js).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MqClient, ServiceBootstrap } from '@zbus/client';
import {
  chromiumMissing,
  type LaunchedChromium,
  launchChromium,
  type RunningBroker,
  scaled,
  startBroker,
  waitFor,
} from '@zbus/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type StaticServer, serveStatic } from './static-server.js';

// a stalled broker's backpressure takes up to a minute: longer than the default test timeout (both scale).
vi.setConfig({ testTimeout: scaled(60_000) });

const here = dirname(fileURLToPath(import.meta.url));
const BUNDLE = join(here, '../dist/zbus.browser.js');
const missing = chromiumMissing();
if (missing) console.warn(`skipping browser e2e tests: ${missing}`);

describe.skipIf(missing !== undefined)('browser client e2e (headless Chromium)', () => {
  let broker: RunningBroker;
  let chromium: LaunchedChromium;
  let site: StaticServer;
  let page: Page;
  let node: MqClient;
  let service: ServiceBootstrap;

  beforeAll(async () => {
    [chromium, site] = await Promise.all([
      launchChromium(),
      serveStatic({
        '/': join(here, 'page.html'),
        '/zbus.browser.js': BUNDLE,
        '/zbus.browser.js.map': `${BUNDLE}.map`,
        '/spa/': join(here, '../../../examples/spa/index.html'),
        '/spa/zbus.browser.js': BUNDLE,
      }),
    ]);
    // The pages come from another origin than the broker: the broker must allow it (docs/spa.md).
    broker = await startBroker({ fsync: 'never', args: ['--allow-origin', site.url] });
    node = new MqClient(broker.address);
    service = new ServiceBootstrap()
      .serviceName('MathRpc')
      .serviceAddress(broker.address)
      .addModule('math', {
        plus: (a: number, b: number) => a + b,
        fail: (why: string) => {
          throw new Error(why);
        },
      });
    await Promise.all([node.connect(), service.start()]);
    const ctx = await chromium.newContext();
    page = await ctx.newPage();
    page.on('pageerror', (err) => console.error('page error:', err));
    await page.goto(`${site.url}/`);
    await page.waitForFunction(() => (window as any).zbusReady === true);
  }, scaled(60_000));

  afterAll(async () => {
    await service?.close().catch(() => {});
    await node?.close().catch(() => {});
    await chromium?.close();
    await site?.close();
    await broker?.stop();
  });

  it('ships a single-file bundle without Node built-ins', () => {
    for (const file of [BUNDLE, join(here, '../dist/index.js')]) {
      const code = readFileSync(file, 'utf8');
      expect(code).not.toMatch(/["'`]node:/);
      expect(code).not.toMatch(/\brequire\(/);
    }
  });

  it('produces, and consumes with ack in an ack-required group', async () => {
    const got = await page.evaluate(async (addr) => {
      const { Broker, Consumer, Mask, MqAdmin, Producer } = (window as any).zbus;
      const broker = new Broker(addr);
      await new MqAdmin(broker).declare('orders', { group: { name: 'billing', mask: Mask.AckRequired } });
      const producer = new Producer(broker);
      const acks = [];
      for (let i = 0; i < 20; i++) acks.push(await producer.publish({ topic: 'orders', body: { n: i } }));
      const seen: number[] = [];
      let consumer: any;
      await new Promise<void>((resolve, reject) => {
        consumer = new Consumer(broker, {
          topic: 'orders',
          group: 'billing',
          handler: (m: any) => {
            seen.push(m.json().n);
            if (seen.length === 20) resolve();
          },
        });
        consumer.start().catch(reject);
      });
      await consumer.close();
      await broker.close();
      return { seen, offsets: acks.map((a: any) => a.offset) };
    }, broker.address);
    expect(got.seen).toEqual([...Array(20).keys()]);
    expect(got.offsets).toEqual([...Array(20).keys()]);
    // Every delivery was acked: nothing left unconsumed or unacked.
    const group = await node.queryGroup('orders', 'billing');
    expect(group.messageCount).toBe(0);
    expect(group.unackedCount ?? 0).toBe(0);
  });

  it('calls an RPC service running in Node', async () => {
    const out = await page.evaluate(async (addr) => {
      const { ClientBootstrap, MqClient, RpcInvoker } = (window as any).zbus;
      const boot = new ClientBootstrap().serviceName('MathRpc').serviceAddress(addr).timeout(5000);
      const math = boot.proxy('math');
      const sum = await math.plus(40, 2);
      let error = '';
      try {
        await math.fail('no way');
      } catch (e: any) {
        error = `${e.name}: ${e.message}`;
      }
      await boot.close();
      const client = new MqClient(addr);
      const rpc = new RpcInvoker(client, { topic: 'MathRpc', module: 'math' });
      const again = await rpc.invoke('plus', 1, 2);
      await client.close();
      return { sum, error, again };
    }, broker.address);
    expect(out.sum).toBe(42);
    expect(out.again).toBe(3);
    expect(out.error).toMatch(/no way/);
  });

  it('round-trips large messages (3 MiB of bytes, 1 MiB of UTF-8 text)', async () => {
    const out = await page.evaluate(async (addr) => {
      const { MqClient } = (window as any).zbus;
      const c = new MqClient(addr);
      await c.declare('big');
      const bytes = new Uint8Array(3 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >>> 11)) & 0xff;
      const text = 'zbus-é✓🚀'.repeat(Math.ceil((1024 * 1024) / 14));
      await c.produce({ topic: 'big', body: bytes, contentType: 'application/octet-stream' });
      await c.produce({ topic: 'big', body: text });
      const a = await c.consume('big');
      const b = await c.consume('big');
      let same = a.body.length === bytes.length;
      for (let i = 0; same && i < bytes.length; i++) same = a.body[i] === bytes[i];
      const result = { bytes: a.body.length, same, textOk: b.bodyText() === text, textLength: text.length };
      await c.close();
      return result;
    }, broker.address);
    expect(out).toEqual({ bytes: 3 * 1024 * 1024, same: true, textOk: true, textLength: out.textLength });
  });

  it('survives a broker restart: reconnects, consumes again and publishes again', async () => {
    await page.evaluate(async (addr) => {
      const w = window as any;
      const { Broker, Consumer, Producer } = w.zbus;
      w.events = [];
      // A backoff far longer than the test: only the page's `online` event can bring the clients back in time.
      w.broker = new Broker(addr, { reconnectDelay: 60_000, reconnectMaxDelay: 60_000 });
      w.producer = new Producer(w.broker);
      w.consumer = new Consumer(w.broker, {
        topic: 'events',
        group: 'page',
        handler: (m: any) => {
          w.events.push(m.bodyText());
        },
      });
      await w.consumer.start();
      await w.producer.publish({ topic: 'events', body: 'before' });
    }, broker.address);
    await page.waitForFunction(() => (window as any).events.includes('before'));

    await broker.kill();
    await page.waitForFunction(() => (window as any).producer.client().state === 'reconnecting');
    await broker.restart();
    // The network is back: the `online` event makes every reconnecting client retry at once.
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await node.produce({ topic: 'events', body: 'after-node' }, { timeout: scaled(10_000) });
    await page.evaluate(() => (window as any).producer.publish({ topic: 'events', body: 'after-page' }));
    await page.waitForFunction(
      () => {
        const e = (window as any).events as string[];
        return e.includes('after-node') && e.includes('after-page');
      },
      undefined,
      { timeout: scaled(15_000) },
    );
    // At-least-once: a kill -9 may lose the group's position for 'before' (acked, not yet on disk), so it
    // may come again; nothing is lost.
    const events = await page.evaluate(() => (window as any).events as string[]);
    expect(events.filter((e) => e === 'before').length).toBeGreaterThanOrEqual(1);
  });

  it('finds a dead socket with its ping (broker frozen) and reconnects when it thaws', async () => {
    await page.evaluate(async (addr) => {
      const w = window as any;
      w.frozen = new w.zbus.MqClient(addr, { pingInterval: 300, pingTimeout: 400, connectTimeout: 1000 });
      w.frozenStates = [];
      w.frozen.on('disconnected', () => w.frozenStates.push('disconnected'));
      w.frozen.on('connected', (i: any) => w.frozenStates.push(i.reconnect ? 'reconnected' : 'connected'));
      await w.frozen.connect();
    }, broker.address);
    broker.process.kill('SIGSTOP');
    try {
      // No frame answers the ping: the transport gives up within pingInterval + pingTimeout.
      await page.waitForFunction(() => (window as any).frozenStates.includes('disconnected'), undefined, {
        timeout: scaled(5_000),
      });
    } finally {
      broker.process.kill('SIGCONT');
    }
    await page.waitForFunction(() => (window as any).frozenStates.includes('reconnected'), undefined, {
      timeout: scaled(10_000),
    });
    const info = await page.evaluate(async () => {
      const w = window as any;
      const s = await w.frozen.queryServer();
      await w.frozen.close();
      await w.consumer.close();
      await w.broker.close();
      return typeof s.infoVersion;
    });
    expect(info).toBe('number');
  });

  it('holds a fast producer back while the broker does not read (backpressure over WebSocket)', async () => {
    await node.declareTopic('bp-ws');
    await page.evaluate(async (addr) => {
      const w = window as any;
      w.bp = new w.zbus.MqClient(addr, { highWaterMark: 1 << 20, pingInterval: 0, heartbeatInterval: 0 });
      w.bpState = { published: 0, blocked: false, done: false };
      w.bp.on('backpressure', (blocked: boolean) => {
        if (blocked) w.bpState.blocked = true;
      });
      await w.bp.connect();
    }, broker.address);
    broker.process.kill('SIGSTOP');
    try {
      await page.evaluate(() => {
        const w = window as any;
        const producer = new w.zbus.Producer(w.bp);
        w.bpLoop = (async () => {
          for (let i = 0; i < 40; i++) {
            await producer.publish({ topic: 'bp-ws', body: new Uint8Array(1 << 20) }, { ack: false });
            w.bpState.published++;
          }
          w.bpState.done = true;
        })();
      });
      await page.waitForFunction(
        () => (window as any).bpState.blocked || (window as any).bpState.done,
        undefined,
        {
          timeout: scaled(20_000),
        },
      );
      // Backed up before the loop could hand over all 40 MiB: it waits for the socket instead of buffering.
      const state = await page.evaluate(() => (window as any).bpState);
      expect(state.done).toBe(false);
      expect(state.published).toBeLessThan(40);
    } finally {
      broker.process.kill('SIGCONT');
    }
    await page.waitForFunction(() => (window as any).bpState.done, undefined, { timeout: scaled(30_000) });
    const last = await page.evaluate(async () => {
      const w = window as any;
      const r = await new w.zbus.Producer(w.bp).publish({ topic: 'bp-ws', body: 'last' });
      await w.bp.close();
      return r.offset;
    });
    expect(last).toBe(40);
  });

  it('runs the SPA example from docs/spa.md', { timeout: scaled(45_000) }, async () => {
    const ctx = await chromium.newContext();
    const spa = await ctx.newPage();
    try {
      await spa.goto(`${site.url}/spa/?broker=${broker.address}`);
      await spa.locator('#status').filter({ hasText: 'connected' }).waitFor();
      await spa.fill('#text', 'hello from the page');
      await spa.click('#send');
      await spa.locator('#messages li').filter({ hasText: 'hello from the page' }).waitFor();
      await node.produce({ topic: 'chat', body: JSON.stringify({ from: 'node', text: 'hello from Node' }) });
      await spa.locator('#messages li').filter({ hasText: 'hello from Node' }).waitFor();
      // The broker restart above sent the Node service into its reconnect backoff: wait until it consumes
      // its topic again, or the page's call would rightly get "no responders".
      await waitFor(
        async () => ((await node.queryTopic('MathRpc').catch(() => undefined))?.consumerCount ?? 0) > 0,
        'the RPC service to come back after the broker restart',
        20_000,
      );
      // A call may still meet "no responders" while the page's view of the service catches up: click again.
      for (let i = 0; ; i++) {
        await spa.click('#add');
        await spa.locator('#sum').filter({ hasNotText: '?' }).waitFor();
        if ((await spa.locator('#sum').textContent()) === '5') break;
        if (i === 20) throw new Error(`RPC from the page failed: ${await spa.locator('#sum').textContent()}`);
        await spa.evaluate(() => {
          document.getElementById('sum')!.textContent = '?';
        });
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await ctx.close();
    }
  });
});
