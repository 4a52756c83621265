// The monitor in headless Chromium, served by the real broker at `/` (apps/broker copies apps/monitor/dist
// next to its CLI at build time): live topics and depth, rates, declare/publish/peek/remove through the UI,
// thousands of topics, and login/logout with auth on. Screenshots go to artifacts/screenshots/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Consumer, Mask, MqClient, Broker as NodeBroker, ServiceBootstrap } from '@zbus/client';
import {
  chromiumMissing,
  type LaunchedChromium,
  launchChromium,
  type RunningBroker,
  scaled,
  startBroker,
} from '@zbus/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// 2000 declares take up to 2 minutes: longer than the default test timeout (both scale with the load).
vi.setConfig({ testTimeout: scaled(120_000) });

const here = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(here, '../../../artifacts/screenshots');
let configDir = '';
/** The brokers here form one cluster: the monitor's broker is the tracker of the other one. */
const MONITOR_CLUSTER_TOKEN = 'monitor-e2e-cluster-secret';

/**
 * A broker serving this package's own build (apps/monitor/dist, built before its tests run) through a config
 * file's `monitorDir`; the first test checks the copy that apps/broker ships next to its CLI.
 */
function startMonitorBroker(args: string[] = []): Promise<RunningBroker> {
  if (configDir === '') {
    configDir = mkdtempSync(join(tmpdir(), 'zbus-monitor-e2e-'));
    writeFileSync(join(configDir, 'broker.json'), JSON.stringify({ monitorDir: join(here, '../dist') }));
  }
  return startBroker({
    fsync: 'never',
    args: ['--config', join(configDir, 'broker.json'), ...args],
    env: { ZBUS_CLUSTER_TOKEN: MONITOR_CLUSTER_TOKEN },
  });
}
const missing = chromiumMissing();
if (missing) console.warn(`skipping monitor e2e tests: ${missing}`);

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name), fullPage });
}

function row(page: Page, topic: string) {
  return page.locator(`#topics tr[data-topic="${topic}"]`);
}

describe.skipIf(missing !== undefined)('monitor e2e (headless Chromium)', () => {
  let chromium: LaunchedChromium;
  beforeAll(async () => {
    chromium = await launchChromium();
  }, scaled(30_000));
  afterAll(async () => {
    await chromium?.close();
    if (configDir !== '') rmSync(configDir, { recursive: true, force: true });
  });

  it('is shipped by the broker: `zbus serve` serves it at / from next to its CLI', async () => {
    const shipped = await startBroker({ fsync: 'never' });
    try {
      const html = await (await fetch(`http://${shipped.address}/`)).text();
      expect(html).toContain('<title>zbus monitor</title>');
      const js = await fetch(`http://${shipped.address}/monitor.js?cmd=js`);
      expect(js.status).toBe(200);
    } finally {
      await shipped.stop();
    }
  });

  describe('without auth', () => {
    let broker: RunningBroker;
    let client: MqClient;
    let page: Page;
    let service: ServiceBootstrap;
    let nodeBroker: NodeBroker;
    let consumer: Consumer;
    const errors: string[] = [];

    beforeAll(async () => {
      broker = await startMonitorBroker();
      client = new MqClient(broker.address);
      await client.connect();
      const ctx = await chromium.newContext({ viewport: { width: 1440, height: 900 } });
      page = await ctx.newPage();
      page.on('pageerror', (err) => errors.push(String(err)));
      await page.goto(`http://${broker.address}/`);
      await page.locator('#conn.live').waitFor();
    }, scaled(30_000));

    afterAll(async () => {
      await consumer?.close().catch(() => {});
      await service?.close().catch(() => {});
      await nodeBroker?.close().catch(() => {});
      await client?.close().catch(() => {});
      await broker?.stop();
    });

    it('serves the dashboard and its assets by the 0.11 conventions', async () => {
      const base = `http://${broker.address}`;
      const html = await (await fetch(`${base}/`)).text();
      expect(html).toMatch(/\/monitor\.js\?cmd=js&amp;v=[0-9a-f]{10}"/);
      expect(html).toMatch(/\/monitor\.css\?cmd=css&amp;v=[0-9a-f]{10}"/);
      const js = await fetch(`${base}/monitor.js?cmd=js`);
      expect(js.status).toBe(200);
      expect(js.headers.get('content-type')).toMatch(/javascript/);
      const css = await fetch(`${base}/monitor.css?cmd=css`);
      expect(css.headers.get('content-type')).toMatch(/text\/css/);
      await page.locator('#servers tbody tr').first().waitFor();
      await expect(page.locator('#servers tbody').textContent()).resolves.toContain(broker.address);
    });

    it('shows a topic a client creates, its depth changing, rates, groups and consumers', async () => {
      await client.declare('e2e.orders', { group: { name: 'billing', mask: Mask.AckRequired } });
      for (let i = 0; i < 5; i++) await client.produce({ topic: 'e2e.orders', body: { n: i } });
      await row(page, 'e2e.orders').locator('td.depth').filter({ hasText: /^5$/ }).waitFor();

      // An RPC service (its topic gets a link to the method page) and a consumer on the group.
      service = new ServiceBootstrap()
        .serviceName('e2e.Rpc')
        .serviceAddress(broker.address)
        .addModule('math', { plus: (a: number, b: number) => a + b });
      await service.start();
      nodeBroker = new NodeBroker(broker.address);
      consumer = new Consumer(nodeBroker, {
        topic: 'e2e.orders',
        group: 'billing',
        handler: async () => {
          await new Promise((r) => setTimeout(r, 20));
        },
      });
      await consumer.start();

      // Keep producing for a few polls so that rates and sparklines have something to show.
      let n = 5;
      const until = Date.now() + 5_000;
      while (Date.now() < until) {
        await Promise.all(
          Array.from({ length: 20 }, () => client.produce({ topic: 'e2e.orders', body: { n: n++ } })),
        );
        await new Promise((r) => setTimeout(r, 100));
      }
      await row(page, 'e2e.orders')
        .locator('td.depth')
        .filter({ hasText: new RegExp(`^${n.toLocaleString('en-US')}$`) })
        .waitFor();
      await expect(row(page, 'e2e.orders').locator('td.in').textContent()).resolves.not.toBe('0');
      await expect(row(page, 'e2e.orders').locator('td.consumers').textContent()).resolves.toBe('1');
      const rpc = row(page, 'e2e.Rpc');
      await expect(rpc.locator('.badge.b-rpc').count()).resolves.toBe(1);
      await expect(rpc.locator('a.methods').getAttribute('href')).resolves.toBe(
        `http://${broker.address}/e2e.Rpc`,
      );

      await row(page, 'e2e.orders').locator('[data-act="toggle"]').click();
      const detail = page.locator('#topics tr[data-detail="e2e.orders"]');
      await detail.locator('tr[data-group="billing"]').waitFor();
      await expect(detail.locator('tr[data-group="billing"] .badge').first().textContent()).resolves.toBe(
        'ack',
      );
      await expect(detail.locator('tr[data-group="billing"] td.consumers').textContent()).resolves.toMatch(
        /127\.0\.0\.1:\d+/,
      );
      await shot(page, 'monitor-overview.png');
    });

    it('declares, publishes to, peeks at and removes a topic through the UI', async () => {
      await page.click('#declare');
      await page.fill('dialog input[name="topic"]', 'ui.created');
      await page.fill('dialog input[name="retentionMiB"]', '512');
      await page.fill('dialog input[name="retentionHours"]', '168');
      await shot(page, 'monitor-declare-dialog.png');
      await page.click('dialog button[type="submit"]');
      await row(page, 'ui.created').waitFor();
      const info = await client.queryTopic('ui.created');
      expect(info.topicName).toBe('ui.created');
      expect(info.retention).toEqual({ bytes: 512 * 1024 * 1024, ms: 7 * 86_400_000 });
      await row(page, 'ui.created').locator('[data-act="toggle"]').click();
      await page
        .locator('#topics tr[data-detail="ui.created"] dd.retention')
        .filter({ hasText: '512 MiB · 7d' })
        .waitFor();
      await row(page, 'ui.created').locator('[data-act="toggle"]').click();

      await row(page, 'ui.created').locator('[data-act="publish"]').click();
      await page.fill('dialog textarea[name="body"]', '{"hello":"from the monitor"}');
      await shot(page, 'monitor-publish-dialog.png');
      await page.click('dialog button[type="submit"]');
      await page.locator('dialog .dialog-status.ok').filter({ hasText: 'Stored at offset 0' }).waitFor();
      await page.click('dialog button.ghost');
      await row(page, 'ui.created').locator('td.depth').filter({ hasText: /^1$/ }).waitFor();

      await row(page, 'ui.created').locator('[data-act="peek"]').click();
      await page.locator('dialog pre.body').filter({ hasText: 'from the monitor' }).waitFor();
      await shot(page, 'monitor-peek.png');
      await page.click('dialog button.ghost');

      await row(page, 'ui.created').locator('td.backlog').filter({ hasText: /^1$/ }).waitFor();
      await row(page, 'ui.created').locator('[data-act="empty"]').click();
      await expect(page.locator('dialog h3').textContent()).resolves.toBe('Empty ui.created?');
      await shot(page, 'monitor-confirm-empty.png');
      await page.click('dialog button[type="submit"]');
      await row(page, 'ui.created').locator('td.backlog').filter({ hasText: /^0$/ }).waitFor();

      await row(page, 'ui.created').locator('[data-act="remove"]').click();
      await expect(page.locator('dialog h3').textContent()).resolves.toBe('Remove ui.created?');
      await page.click('dialog button[type="submit"]');
      await row(page, 'ui.created').waitFor({ state: 'detached' });
      await expect(client.queryTopic('ui.created')).rejects.toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND' });
    });

    it('filters by name and sorts by a column', async () => {
      await page.fill('#search', 'e2e.');
      await expect.poll(() => page.locator('#topics tr.topic').count()).toBe(2);
      await page.click('#topics th[data-sort="depth"]');
      await expect(page.locator('#topics tr.topic').first().getAttribute('data-topic')).resolves.toBe(
        'e2e.orders',
      );
      // The view is in the URL: a reload shows the same filter and order.
      await expect.poll(() => new URL(page.url()).hash).toBe('#q=e2e.&sort=depth&desc=1');
      await page.reload();
      await page.locator('#conn.live').waitFor();
      await expect(page.inputValue('#search')).resolves.toBe('e2e.');
      await expect.poll(() => page.locator('#topics tr.topic').count()).toBe(2);
      await expect(
        page.locator('#topics th[aria-sort="descending"]').getAttribute('data-sort'),
      ).resolves.toBe('depth');
      await page.fill('#search', '');
      await page.click('#topics th[data-sort="name"]');
    });

    it('lists the servers that report to this broker as a tracker', async () => {
      const other = await startBroker({
        fsync: 'never',
        args: ['--tracker', broker.address],
        env: { ZBUS_CLUSTER_TOKEN: MONITOR_CLUSTER_TOKEN },
      });
      try {
        await page
          .locator(`#servers tr[data-server="${other.address}"]`)
          .waitFor({ timeout: scaled(15_000) });
        await expect.poll(() => page.locator('#servers tbody tr').count()).toBe(2);
        await expect(
          page.locator(`#servers tr[data-server="${other.address}"] td`).last().textContent(),
        ).resolves.toBe(broker.address);
        await shot(page, 'monitor-servers.png', false);
      } finally {
        await other.stop();
      }
      await page
        .locator(`#servers tr[data-server="${other.address}"]`)
        .waitFor({ state: 'detached', timeout: scaled(15_000) });
    });

    it('stays fast with thousands of topics: one page of rows in the DOM', async () => {
      const names = Array.from({ length: 2000 }, (_, i) => `bulk.${String(i).padStart(4, '0')}`);
      for (let i = 0; i < names.length; i += 200) {
        await Promise.all(names.slice(i, i + 200).map((t) => client.declareTopic(t, Mask.Memory)));
      }
      await page
        .locator('#count')
        .filter({ hasText: /of 2,00\d topics/ })
        .waitFor({ timeout: scaled(60_000) }); // 2000 declares take a while
      const rows = await page.locator('#topics tr.topic').count();
      expect(rows).toBe(200);
      // A filter over 2000+ topics is applied within the next two frames (no waiting for a poll).
      const shown = await page.evaluate(async () => {
        const s = document.querySelector<HTMLInputElement>('#search')!;
        s.value = 'bulk.19';
        s.dispatchEvent(new Event('input'));
        await new Promise((r) => requestAnimationFrame(() => r(undefined)));
        await new Promise((r) => requestAnimationFrame(() => r(undefined)));
        return document.querySelectorAll('#topics tr.topic').length;
      });
      expect(shown).toBe(100);
      await page.fill('#search', '');
      await page
        .locator('#count')
        .filter({ hasText: /1–200 of/ })
        .waitFor();
      await shot(page, 'monitor-2000-topics.png', false);
      await page.mouse.wheel(0, 2500);
      await page.waitForFunction(() => window.scrollY > 1000);
      await shot(page, 'monitor-2000-topics-scrolled.png', false);
      await page.evaluate(() => window.scrollTo(0, 0));
      expect(errors).toEqual([]);
    });

    it('shows the lost connection and comes back live after a broker restart', async () => {
      await page.fill('#search', 'e2e.orders');
      await broker.kill();
      await page.locator('#conn.reconnecting').waitFor();
      await broker.restart();
      await page.locator('#conn.live').waitFor({ timeout: scaled(15_000) });
      await row(page, 'e2e.orders').waitFor();
      // Rows keep updating after the reconnect.
      await client.produce({ topic: 'e2e.orders', body: 'after restart' }, { timeout: scaled(10_000) });
      const depth = (await client.queryTopic('e2e.orders')).messageDepth;
      await row(page, 'e2e.orders')
        .locator('td.depth')
        .filter({ hasText: new RegExp(`^${depth.toLocaleString('en-US')}$`) })
        .waitFor();
      expect(errors).toEqual([]);
    });
  });

  describe('with auth on', () => {
    let broker: RunningBroker;
    let dir: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'zbus-monitor-auth-'));
      const file = join(dir, 'auth.json');
      writeFileSync(
        file,
        JSON.stringify({ tokens: [{ token: 'secret', operations: ['admin'], topics: [{ topic: '*' }] }] }),
      );
      broker = await startMonitorBroker(['--auth', file]);
      const admin = new MqClient(broker.address, { token: 'secret' });
      await admin.declare('secured.topic');
      await admin.produce({ topic: 'secured.topic', body: 'x' });
      await admin.close();
    }, scaled(30_000));

    afterAll(async () => {
      await broker?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('asks for a token, shows the broker once logged in, and logs out', async () => {
      const ctx = await chromium.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await ctx.newPage();
      try {
        await page.goto(`http://${broker.address}/`);
        expect(page.url()).toContain('cmd=login');
        await page.fill('#token', 'wrong');
        await page.click('button[type="submit"]');
        await page.locator('[role="alert"]').filter({ hasText: 'Invalid token' }).waitFor();
        await page.fill('#token', 'secret');
        await shot(page, 'monitor-login.png');
        await page.click('button[type="submit"]');
        await page.locator('#conn.live').waitFor();
        // The WebSocket carried the HttpOnly cookie: the session sees the token's topics.
        await row(page, 'secured.topic').locator('td.depth').filter({ hasText: /^1$/ }).waitFor();
        await page.locator('#logout:not([hidden])').waitFor();
        await shot(page, 'monitor-auth.png');
        await page.click('#logout');
        await page.waitForURL(/cmd=login/);
        await page.goto(`http://${broker.address}/`);
        expect(page.url()).toContain('cmd=login');
      } finally {
        await ctx.close();
      }
    });
  });
});
