// Headless Chromium for end-to-end tests: Debian's `chromium` driven by playwright-core (never
// `playwright install`: no browser downloads). Tests call `launchChromium()` and skip when it returns the
// reason instead of a browser.
import { existsSync } from 'node:fs';
import type { Browser, BrowserContext } from 'playwright-core';
import { scaled } from './scale.js';

/** Where Debian puts Chromium; override with `ZBUS_CHROMIUM`. */
export const CHROMIUM_PATH = process.env.ZBUS_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export interface LaunchedChromium {
  browser: Browser;
  /** A fresh context: its own cookies and storage, and waits (locator.waitFor, ...) of `scaled(30 s)`. */
  newContext(options?: Parameters<Browser['newContext']>[0]): Promise<BrowserContext>;
  /** Closes the browser and waits for the process to exit (playwright removes its temp profile). */
  close(): Promise<void>;
}

/** Why Chromium cannot run here, or undefined when it can. */
export function chromiumMissing(): string | undefined {
  if (!existsSync(CHROMIUM_PATH)) {
    return `chromium not found at ${CHROMIUM_PATH} (apt-get install -y chromium; CI installs it in .ci/run)`;
  }
  return undefined;
}

/**
 * Launches headless Chromium. playwright-core gives every launch a fresh `--user-data-dir` of its own (a
 * mkdtemp directory it removes on close; it refuses the flag in `args`), so runs never share a profile.
 * `args`: flags added to CHROMIUM_ARGS (for example `--host-resolver-rules` to play an attacker's DNS answer).
 */
export async function launchChromium(options: { args?: readonly string[] } = {}): Promise<LaunchedChromium> {
  const missing = chromiumMissing();
  if (missing !== undefined) throw new Error(missing);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
    timeout: scaled(30_000),
  });
  return {
    browser,
    async newContext(options) {
      const context = await browser.newContext(options);
      context.setDefaultTimeout(scaled(30_000));
      return context;
    },
    async close() {
      await browser.close().catch(() => {});
    },
  };
}
