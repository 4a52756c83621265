// @zbus/testkit (private): real brokers on loopback ports for tests, a raw zbus TCP connection, a latch, and
// deadlines that scale with the machine's load. Tests never talk to a mock broker: they start this one (a child
// process running the real CLI).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeMessage, Message, MessageDecoder, type MessageInit } from '@zbus/protocol';
import { scaled } from './scale.js';

export { CHROMIUM_PATH, chromiumMissing, type LaunchedChromium, launchChromium } from './browser.js';
export { ManualClock } from './clock.js';
export {
  NATS_SERVER_PATH,
  type NatsCluster,
  type NatsClusterOptions,
  type NatsNode,
  natsServerMissing,
  startNatsCluster,
} from './nats.js';
export { freePorts } from './ports.js';
export { cpuSeconds } from './proc.js';
export { unexportedTypes } from './public-types.js';
export { scaled, waitFor } from './scale.js';
export { type SelfSignedCert, selfSignedCert } from './tls.js';

/** apps/broker/dist/cli.js, built before any test runs (turbo: test depends on ^build). */
export const BROKER_CLI = join(dirname(fileURLToPath(import.meta.url)), '../../../apps/broker/dist/cli.js');

export interface StartOptions {
  /** always | never | interval=<ms>. @default 'always' */
  fsync?: string;
  /** Reuse a data directory (restart tests); a fresh temp dir otherwise, removed by stop(). */
  dataDir?: string;
  /** Extra CLI arguments. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Fixed port (0 = ephemeral). */
  port?: number;
  /** Run the broker under `ulimit -n <n>` (soft and hard limit on open files). */
  openFileLimit?: number;
}

export interface RunningBroker {
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:PORT` */
  readonly address: string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** Everything the broker wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM and wait for exit (graceful); removes a temp data dir it created. Resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Send a signal (default SIGKILL) and wait for the process to exit. Keeps the data dir. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same port and data dir (after kill or stop). */
  restart(): Promise<void>;
}

const STARTED = /listening on ([^\s:]+|\[[^\]]+\]):(\d+)/;

function launch(
  dataDir: string,
  port: number,
  o: StartOptions,
): Promise<{ child: ChildProcess; port: number; out: string[] }> {
  const args = [
    BROKER_CLI,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--data',
    dataDir,
    '--fsync',
    o.fsync ?? 'always',
    ...(o.args ?? []),
  ];
  const env = { ...process.env, ...o.env };
  // Under a limit, the shell sets it and then becomes the broker (exec), so the child's pid is the broker's.
  const child =
    o.openFileLimit === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawn(
          '/bin/sh',
          ['-c', `ulimit -n ${o.openFileLimit} && exec "$0" "$@"`, process.execPath, ...args],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
            env,
          },
        );
  const out: string[] = [];
  return new Promise((resolve, reject) => {
    const limit = scaled(15_000);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`broker did not start within ${limit} ms:\n${out.join('')}`));
    }, limit);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out.push(s);
      const m = STARTED.exec(out.join(''));
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[2]), out });
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => out.push(s));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before listening:\n${out.join('')}`));
    });
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Starts the real broker CLI on 127.0.0.1 and an ephemeral port. */
export async function startBroker(o: StartOptions = {}): Promise<RunningBroker> {
  const ownDir = o.dataDir === undefined;
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'zbus-test-'));
  let { child, port, out } = await launch(dataDir, o.port ?? 0, o);
  const broker: RunningBroker = {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    get address() {
      return `127.0.0.1:${port}`;
    },
    dataDir,
    get process() {
      return child;
    },
    output: () => out.join(''),
    async stop() {
      child.kill('SIGTERM');
      const code = await exited(child);
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
    async kill(signal = 'SIGKILL') {
      child.kill(signal);
      await exited(child);
    },
    async restart() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited(child);
      }
      // The old port may linger in TIME_WAIT for a moment; retry briefly.
      for (let i = 0; ; i++) {
        try {
          ({ child, port, out } = await launch(dataDir, port, o));
          return;
        } catch (err) {
          if (i >= 20 || !String(err).includes('EADDRINUSE')) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
  return broker;
}

/** A raw zbus connection: HTTP/1.1 messages on a TCP socket, replies matched by `id`. */
export class RawClient {
  readonly socket: Socket;
  readonly received: Message[] = [];
  #waiters: Array<{ match: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  #decoder = new MessageDecoder((m) => {
    const i = this.#waiters.findIndex((w) => w.match(m));
    if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m);
    else this.received.push(m);
  });
  #seq = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#decoder.push(chunk));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, host, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Writes a request (an `id` is added when missing) and returns its id. */
  send(init: MessageInit | Message): string {
    const m = init instanceof Message ? init : new Message(init);
    if (m.headers.id === undefined) m.set('id', `raw-${++this.#seq}`);
    this.socket.write(encodeMessage(m));
    return m.headers.id!;
  }

  /** The next message that `match` accepts (already received or still to come), within `scaled(timeoutMs)`. */
  next(match: (m: Message) => boolean = () => true, timeoutMs = 5000): Promise<Message> {
    const i = this.received.findIndex(match);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]!);
    const limit = scaled(timeoutMs);
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (m: Message) => {
          clearTimeout(t);
          resolve(m);
        },
      };
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`no matching message within ${limit} ms`));
      }, limit);
      this.#waiters.push(w);
    });
  }

  /** Sends a request and waits for the reply with its id. */
  async request(init: MessageInit | Message, timeoutMs = 5000): Promise<Message> {
    const id = this.send(init);
    return this.next((m) => m.headers.id === id, timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A countdown latch: `wait()` resolves after `count` calls to `countDown()`, or rejects after `scaled(timeoutMs)`. */
export function latch(count: number, timeoutMs = 5000): { countDown(): void; wait(): Promise<void> } {
  const limit = scaled(timeoutMs);
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  if (count <= 0) resolve();
  return {
    countDown() {
      if (--count === 0) resolve();
    },
    wait() {
      return Promise.race([
        done,
        new Promise<void>((_, reject) =>
          setTimeout(
            () => reject(new Error(`latch: ${count} still outstanding after ${limit} ms`)),
            limit,
          ).unref(),
        ),
      ]);
    },
  };
}

/**
 * A raw TCP connection to a broker on loopback that never reads what comes back: a peer that stopped reading.
 * `atEnd` registers its destruction (vitest's `onTestFinished`).
 */
export async function deafSocket(port: number, atEnd: (cleanup: () => void) => void): Promise<Socket> {
  const s = netConnect(port, '127.0.0.1');
  atEnd(() => s.destroy());
  s.on('error', () => {});
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  s.pause();
  return s;
}
