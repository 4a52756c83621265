// The services behind a DMZ proxy in the path-confinement tests (proxy.test.ts, chaos/hostile.test.ts): two
// targets, one with a base path and one without, and an internal service next to them that no caller may reach.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';
import type { ProxyEntryOptions } from '../src/proxy/options.js';

export interface ConfinementTargets {
  /** Proxy entries: `Orders` to the target with base path `/api`, `Root` to the one without. */
  entries: ProxyEntryOptions[];
  /** `host:port` of the internal service. */
  inner: string;
  /** Paths the internal service was asked for (must stay empty). */
  internalHits: string[];
  /** Paths each target was asked for. */
  seen: { api: string[]; root: string[] };
}

async function listen(s: Server): Promise<number> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  });
  return (s.address() as AddressInfo).port;
}

/** Starts the three services on loopback; they close when the test ends. */
export async function confinementTargets(): Promise<ConfinementTargets> {
  const internalHits: string[] = [];
  const internal = createServer((req, res) => {
    internalHits.push(req.url ?? '');
    res.end('the internal secret');
  });
  const seen = { api: [] as string[], root: [] as string[] };
  const targets = (['api', 'root'] as const).map((name) =>
    createServer((req, res) => {
      seen[name].push(req.url ?? '');
      res.end(`target saw ${req.url}`);
    }),
  );
  const [internalPort, apiPort, rootPort] = await Promise.all([internal, ...targets].map(listen));
  return {
    // One target with a base path, one without: `//host/x` escaped the latter, `..` the former.
    entries: [
      { entry: 'Orders', target: `http://127.0.0.1:${apiPort}/api`, connections: 2 },
      { entry: 'Root', target: `http://127.0.0.1:${rootPort}`, connections: 2 },
    ],
    inner: `127.0.0.1:${internalPort}`,
    internalHits,
    seen,
  };
}
