// Page lifecycle: a tab that was hidden or asleep, or a machine whose network came back, should not wait out
// a reconnect backoff that grew while nothing could work. On `visibilitychange` (to visible), `online`,
// `focus` and `pageshow` every reconnecting client retries at once and every open socket is pinged (a socket
// that died during sleep is found within `pingTimeout` instead of minutes).

import type { MqClient } from '@zbus/client-core';

type Listener = () => void;

const wakeListeners = new Set<Listener>();
const clients = new Set<MqClient>();
let installed = false;
let lastWake = 0;

function wake(): void {
  const doc = (globalThis as { document?: { visibilityState?: string } }).document;
  if (doc?.visibilityState === 'hidden') return;
  // `focus` and `visibilitychange` often come together: one wake-up is enough.
  const now = Date.now();
  if (now - lastWake < 250) return;
  lastWake = now;
  for (const l of wakeListeners) l();
  for (const c of clients) {
    if (c.state === 'closed') clients.delete(c);
    else if (c.state === 'reconnecting') c.connect().catch(() => {});
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as {
    addEventListener?: (type: string, l: Listener) => void;
    document?: { addEventListener?: (type: string, l: Listener) => void };
  };
  g.document?.addEventListener?.('visibilitychange', wake);
  g.addEventListener?.('online', wake);
  g.addEventListener?.('focus', wake);
  g.addEventListener?.('pageshow', wake);
}

/** Calls `listener` whenever the page wakes up (visible again, back online). */
export function onWake(listener: Listener): () => void {
  install();
  wakeListeners.add(listener);
  return () => wakeListeners.delete(listener);
}

/**
 * Lets the page's wake-ups cut `client`'s reconnect backoff short. Forgotten when the client closes.
 * Idempotent.
 */
export function watchClient(client: MqClient): MqClient {
  if (clients.has(client) || client.state === 'closed') return client;
  install();
  clients.add(client);
  const off = client.on('disconnected', () => {
    if (client.state === 'closed') {
      clients.delete(client);
      off();
    }
  });
  return client;
}

/** Simulates a wake-up (what `online` or a visible tab does); for tests and for apps with their own signals. */
export function wakeUp(): void {
  lastWake = 0;
  wake();
}
