// The broker's entry point: `--store nats://h1:4222,h2:4222` plus the replicas, prefix, credentials and TLS
// options become a connected NatsStore.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from '@nats-io/nats-core';
import { credsAuthenticator } from '@nats-io/nats-core';
import type { SharedStore, SharedStoreOptions } from '@zbus/server';
import { NatsStore } from './store.js';

/** `nats://a:4222,b:4222` -> [`nats://a:4222`, `nats://b:4222`] (user:pass@ and `tls://` kept per server). */
export function parseStoreUrl(url: string): string[] {
  const m = /^(nats|tls):\/\/(.+)$/.exec(url);
  if (!m) throw new Error(`a NATS store URL looks like nats://host:port,host:port, got '${url}'`);
  const servers = m[2]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (servers.length === 0) throw new Error(`no server in '${url}'`);
  return servers.map((s) => `${m[1]}://${s}`);
}

export async function openSharedStore(o: SharedStoreOptions): Promise<SharedStore> {
  const connection: Omit<ConnectionOptions, 'servers'> = {};
  const n = o.nats ?? {};
  if (n.credsFile !== undefined) connection.authenticator = credsAuthenticator(readFileSync(n.credsFile));
  if (n.token !== undefined) connection.token = n.token;
  if (n.user !== undefined) connection.user = n.user;
  if (n.password !== undefined) connection.pass = n.password;
  if (n.tls !== undefined || o.url.startsWith('tls://')) {
    connection.tls = { caFile: n.tls?.ca, certFile: n.tls?.cert, keyFile: n.tls?.key };
  }
  return NatsStore.open({
    servers: parseStoreUrl(o.url),
    replicas: o.replicas,
    prefix: o.prefix,
    connection,
    groupDefaults: o.groupDefaults,
    topicDefaults: o.topicDefaults,
    log: o.log,
    deadLetter: o.deadLetter,
  });
}
