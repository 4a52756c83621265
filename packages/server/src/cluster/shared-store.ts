// A store shared by several brokers (`--store nats://...`, package @zbus/store-nats): what it offers beyond the
// Store contract, and how the broker loads it. The broker never imports the package statically, so a plain
// broker installs and loads no NATS code.
import { ZbusError } from '@zbus/protocol';
import type { Store, StoreOptions } from '../store/types.js';

/** A topic or group appeared, changed or went, through any broker. */
export type StoreChange =
  | { kind: 'topic'; topic: string; removed: boolean }
  | { kind: 'group'; topic: string; group: string; removed: boolean };

/** Outcome of an RPC request sent to the brokers that serve the topic. */
export type LinkReply =
  | { status: 'ok'; data: Uint8Array }
  | { status: 'no_responders' }
  | { status: 'timeout' };

/**
 * Core messaging between the brokers of one shared store: RPC requests go to one broker that has a service
 * consuming the topic (a queue group), and its reply comes back. Bytes only: the link knows no protocol.
 */
export interface ClusterLink {
  request(topic: string, data: Uint8Array, timeoutMs: number): Promise<LinkReply>;
  /** Take requests for `topic` while this broker has a service consuming it; returns the unsubscribe. */
  serve(topic: string, handler: (data: Uint8Array) => Promise<Uint8Array | undefined>): () => void;
}

export interface SharedStore extends Store {
  /** Says which store the brokers share (ServerInfo `sharedStore`): brokers with the same value see the same topics. */
  readonly sharedId: string;
  readonly link: ClusterLink;
  /** Brings the counters of one topic (or of every topic) up to date, for query replies. */
  refresh(topic?: string): Promise<void>;
  onChange(listener: (c: StoreChange) => void): () => void;
}

export function isShared(store: Store): store is SharedStore {
  return typeof (store as Partial<SharedStore>).onChange === 'function';
}

export interface SharedStoreOptions extends Omit<StoreOptions, 'dataDir' | 'fsync' | 'segmentBytes'> {
  /** `nats://h1:4222,h2:4222` (or `tls://...`). */
  url: string;
  replicas: number;
  prefix: string;
  nats: NatsClientOptions | undefined;
}

/** Credentials and TLS for the NATS connection. */
export interface NatsClientOptions {
  /** Path of a `.creds` file (JWT + nkey seed). */
  credsFile?: string;
  token?: string;
  user?: string;
  password?: string;
  /** PEM file paths; `ca` alone verifies the servers, `cert` + `key` add a client certificate. */
  tls?: { ca?: string; cert?: string; key?: string };
}

/** What `@zbus/store-nats` exports for the broker. */
export interface SharedStoreModule {
  openSharedStore(options: SharedStoreOptions): Promise<SharedStore>;
}

const NATS_STORE_PACKAGE = '@zbus/store-nats';

/** The store module for `url`, given by the caller or imported on demand (only when such a store is asked for). */
export async function loadSharedStoreModule(
  url: string,
  given: SharedStoreModule | undefined,
): Promise<SharedStoreModule> {
  if (!/^(nats|tls):\/\//.test(url)) {
    throw new ZbusError(
      'ZBUS_ERR_INVALID_ARGUMENT',
      `store must be local or nats://host:port,..., got '${url}' (store)`,
    );
  }
  if (given) return given;
  const specifier: string = NATS_STORE_PACKAGE;
  try {
    return (await import(specifier)) as SharedStoreModule;
  } catch (err) {
    throw new ZbusError(
      'ZBUS_ERR_INVALID_ARGUMENT',
      `--store ${url} needs the package ${NATS_STORE_PACKAGE} (npm install ${NATS_STORE_PACKAGE}): ${String(err)}`,
    );
  }
}
