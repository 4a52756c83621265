// Which clients a broker serves and the address it tells them to use (decisions.md §1 "Announced address", §6).
import { networkInterfaces } from 'node:os';
import type { ResolvedBrokerOptions } from '../options.js';

/** No auth and not `insecure`: only clients on the loopback interface are served (decisions.md §6). */
export function isProtectedMode(o: ResolvedBrokerOptions): boolean {
  return o.auth === undefined && !o.insecure;
}

/**
 * The address 0.11 clients should connect to. In protected mode only loopback clients are served, so a wildcard
 * listener announces loopback: clients that reconnect to the announced address (0.11 `Broker`, ours) stay on it.
 */
export function announceAddress(o: ResolvedBrokerOptions, port: number): string {
  if (o.announce) return o.announce;
  if (o.host !== '0.0.0.0' && o.host !== '::' && o.host !== '') return `${o.host}:${port}`;
  if (isProtectedMode(o)) return `127.0.0.1:${port}`;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return `${a.address}:${port}`;
  }
  return `127.0.0.1:${port}`;
}
