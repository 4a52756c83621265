// Real NATS JetStream clusters for tests: Debian's `nats-server` (2.9.10 here), each node on loopback ports of
// its own with a temp store dir. Tests call `natsServerMissing()` and skip with its message when it is absent;
// `.ci/run` installs it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './ports.js';
import { scaled } from './scale.js';

/** Where Debian puts nats-server; override with `ZBUS_NATS_SERVER`. */
export const NATS_SERVER_PATH = process.env.ZBUS_NATS_SERVER ?? '/usr/sbin/nats-server';

let missing: string | undefined | null = null;

/** Why nats-server cannot run here, or undefined when it can. */
export function natsServerMissing(): string | undefined {
  if (missing !== null) return missing;
  const r = spawnSync(NATS_SERVER_PATH, ['--version'], { encoding: 'utf8' });
  missing =
    r.status === 0
      ? undefined
      : `nats-server not found at ${NATS_SERVER_PATH} (apt-get install -y nats-server; CI installs it in .ci/run)`;
  return missing;
}

export interface NatsNode {
  readonly name: string;
  /** Client port. */
  readonly port: number;
  readonly clusterPort: number;
  readonly storeDir: string;
  readonly process: ChildProcess | undefined;
  /** Everything this node wrote since its last (re)start. */
  output(): string;
  /** True while the process runs. */
  readonly running: boolean;
  /** Send a signal (default SIGKILL) and wait for the process to exit. Keeps the store dir. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same ports and store dir; resolves once it has rejoined the JetStream cluster. */
  restart(): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** `nats://127.0.0.1:p1,127.0.0.1:p2,...`, the form `zbus serve --store` takes. */
  readonly url: string;
  /** `127.0.0.1:p` of each node. */
  readonly servers: string[];
  /** Kills every node and removes the store dirs. */
  stop(): Promise<void>;
}

export interface NatsClusterOptions {
  /** @default 3 */
  size?: number;
  /** Largest message the servers accept. @default 8 MiB */
  maxPayload?: number;
  /** JetStream `sync_interval` (`always` makes every replica fsync each write); nats-server 2.10 and later. */
  syncInterval?: string;
}

/** Lines a node logs once it knows the JetStream meta leader (itself or another). */
const JOINED = /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/;
const START_TIMEOUT_MS = scaled(60_000);
/**
 * A new cluster's tries, and how long each waits for its nodes to join. Under load a fresh 3-node cluster has
 * stayed without a meta leader for minutes (nats-server 2.9.10: routes up, no election logged in 126 s), where
 * one that forms takes a few seconds; a new start, on new ports and store dirs, forms.
 */
const CLUSTER_TRIES = 3;
const CLUSTER_JOIN_MS = scaled(20_000);

class Node implements NatsNode {
  process: ChildProcess | undefined;
  #out: string[] = [];

  constructor(
    readonly name: string,
    readonly port: number,
    readonly clusterPort: number,
    readonly storeDir: string,
    readonly configFile: string,
  ) {}

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  output(): string {
    return this.#out.join('');
  }

  /** Starts the process; resolves once it logged that it joined the JetStream cluster. */
  start(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    this.#out = [];
    const child = spawn(NATS_SERVER_PATH, ['-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`nats-server ${this.name} did not join within ${timeoutMs} ms:\n${this.output()}`));
      }, timeoutMs);
      const onData = (s: string) => {
        this.#out.push(s);
        // The whole output: a line may arrive split across two chunks.
        if (JOINED.test(this.output())) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`nats-server ${this.name} exited with ${code} before joining:\n${this.output()}`));
      };
      child.stdout!.setEncoding('utf8').on('data', onData);
      child.stderr!.setEncoding('utf8').on('data', onData);
      child.once('exit', onExit);
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    await exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }
}

/**
 * Starts a JetStream cluster of `size` nats-server processes on 127.0.0.1 (every node routes to every other)
 * and resolves once each node knows the meta leader, so that streams can be created at once.
 */
export async function startNatsCluster(o: NatsClusterOptions = {}): Promise<NatsCluster> {
  const why = natsServerMissing();
  if (why !== undefined) throw new Error(why);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCluster(o);
    } catch (err) {
      if (attempt === CLUSTER_TRIES) throw err;
    }
  }
}

/** One try of startNatsCluster: new ports and store dirs; every node stopped when one does not join in time. */
async function startCluster(o: NatsClusterOptions): Promise<NatsCluster> {
  const size = o.size ?? 3;
  const root = mkdtempSync(join(tmpdir(), 'zbus-nats-'));
  const ports = await freePorts(size * 2);
  const routes = Array.from({ length: size }, (_, i) => `nats-route://127.0.0.1:${ports[size + i]}`);
  const nodes = Array.from({ length: size }, (_, i) => {
    const name = `n${i + 1}`;
    const storeDir = join(root, name);
    const configFile = join(root, `${name}.conf`);
    const config = [
      `server_name: ${name}`,
      `listen: 127.0.0.1:${ports[i]}`,
      `max_payload: ${o.maxPayload ?? 8 * 1024 * 1024}`,
      `jetstream { store_dir: ${JSON.stringify(storeDir)}, max_memory_store: 1GB, max_file_store: 4GB${
        o.syncInterval ? `, sync_interval: ${o.syncInterval}` : ''
      } }`,
      `cluster { name: zbus-test, listen: 127.0.0.1:${ports[size + i]}, routes: [${routes.join(', ')}] }`,
    ].join('\n');
    writeFileSync(configFile, `${config}\n`);
    return new Node(name, ports[i]!, ports[size + i]!, storeDir, configFile);
  });
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start(CLUSTER_JOIN_MS)));
  } catch (err) {
    await stop();
    throw err;
  }
  const servers = nodes.map((n) => `127.0.0.1:${n.port}`);
  return { nodes, servers, url: `nats://${servers.join(',')}`, stop };
}
