// Shared pieces of the fault and hostile-input suite: knobs read from the environment (the bounded form is
// the default, `test:chaos` raises them), a seeded PRNG so a failing run can be replayed, a pipelined raw
// zbus connection, brokers started with a JSON config, RSS and fd probes, and a figures log that
// docs/reliability.md quotes.
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeMessage, Message, MessageDecoder, type MessageInit } from '@zbus/protocol';
import { type RunningBroker, type StartOptions, scaled, startBroker, waitFor } from '@zbus/testkit';
import { onTestFinished } from 'vitest';

// ------------------------------------------------------------------------------------------------ knobs

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${name} must be a non-negative integer, got '${v}'`);
  return n;
}

/** True under `pnpm test:chaos` (or ZBUS_CHAOS_LONG=1): longer runs, more rounds, more inputs. */
export const LONG = process.env.ZBUS_CHAOS_LONG === '1';

export const CHAOS = {
  /** SIGKILL rounds with fsync=always. */
  rounds: envInt('ZBUS_CHAOS_ROUNDS', LONG ? 50 : 3),
  /** SIGKILL rounds with fsync=interval and never (reported, not asserted). */
  lazyRounds: envInt('ZBUS_CHAOS_LAZY_ROUNDS', LONG ? 20 : 1),
  /** Upper bound of the time a round produces before the kill, in ms. */
  killWithinMs: envInt('ZBUS_CHAOS_KILL_WITHIN_MS', LONG ? 3000 : 700),
  /** Producer connections in the crash test. */
  producers: envInt('ZBUS_CHAOS_PRODUCERS', 4),
  /** Inputs per fuzzer (TCP, WebSocket, URL forms). */
  fuzzInputs: envInt('ZBUS_CHAOS_FUZZ', LONG ? 50_000 : 1000),
  /** Idle connections opened at once. */
  idleConnections: envInt('ZBUS_CHAOS_IDLE', LONG ? 9000 : 2000),
  /** Tiny pipelined requests on one connection. */
  tinyRequests: envInt('ZBUS_CHAOS_TINY', LONG ? 1_000_000 : 50_000),
  /** Ack-mode consumers killed mid-handler: messages in the run. */
  ackMessages: envInt('ZBUS_CHAOS_ACK_MESSAGES', LONG ? 5000 : 300),
  /** Seed of every random choice; printed with the figures. */
  seed: envInt('ZBUS_CHAOS_SEED', Date.now() % 2 ** 31),
};

// ------------------------------------------------------------------------------------------------ PRNG

/** mulberry32: small, fast, good enough to pick kill moments and mutate bytes reproducibly. */
export function prng(seed: number): { next(): number; int(n: number): number; pick<T>(a: readonly T[]): T } {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (a) => a[Math.floor(next() * a.length)]!,
  };
}

// ------------------------------------------------------------------------------------------------ figures

const HERE = dirname(fileURLToPath(import.meta.url));
export const FIGURES_FILE = join(HERE, '../../../../artifacts/chaos/figures.jsonl');

/** Prints one line of figures and appends it to artifacts/chaos/figures.jsonl (git-ignored). */
export function report(test: string, figures: Record<string, unknown>): void {
  const line = { test, at: new Date().toISOString(), seed: CHAOS.seed, long: LONG, ...figures };
  console.log(`[chaos] ${JSON.stringify(line)}`);
  try {
    mkdirSync(dirname(FIGURES_FILE), { recursive: true });
    appendFileSync(FIGURES_FILE, `${JSON.stringify(line)}\n`);
  } catch {
    // figures on stdout are enough
  }
}

// ------------------------------------------------------------------------------------------------ brokers

export interface ChaosStart extends StartOptions {
  /** Any BrokerOptions keys, written to a JSON file passed as `--config`. */
  config?: Record<string, unknown>;
  /** Auth config (`--auth <file>`). */
  auth?: unknown;
}

/** Starts the real CLI; it is stopped (or killed if it hangs) when the test ends. */
export async function chaosBroker(o: ChaosStart = {}): Promise<RunningBroker> {
  const args = [...(o.args ?? [])];
  const dir = mkdtempSync(join(tmpdir(), 'zbus-chaos-cfg-'));
  if (o.config) {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(o.config));
    args.push('--config', file);
  }
  if (o.auth) {
    const file = join(dir, 'auth.json');
    writeFileSync(file, JSON.stringify(o.auth));
    args.push('--auth', file);
  }
  const b = await startBroker({ ...o, args });
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  onTestFinished(async () => {
    const p = b.process;
    if (p.exitCode !== null || p.signalCode !== null) return;
    try {
      p.kill('SIGCONT');
    } catch {}
    const timer = setTimeout(() => b.kill('SIGKILL'), 5000);
    await b.stop();
    clearTimeout(timer);
  });
  return b;
}

/** VmRSS of a process in KiB (Linux). */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Open file descriptors of a process (Linux). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ------------------------------------------------------------------------------------------------ wire

export class ConnectionClosed extends Error {
  constructor() {
    super('connection closed');
  }
}

/**
 * A pipelined raw zbus connection: requests matched to replies by `id` in a map (RawClient scans a list,
 * which is too slow for tens of thousands in flight), pushes with a subscribed id go to their handler, and
 * every pending request fails with ConnectionClosed when the socket goes.
 */
export class Wire {
  readonly socket: Socket;
  readonly unmatched: Message[] = [];
  closed = false;
  decodeError: unknown;
  #pending = new Map<
    string,
    { resolve(m: Message): void; reject(e: unknown): void; timer?: NodeJS.Timeout }
  >();
  #streams = new Map<string, (m: Message) => void>();
  #seq = 0;
  #prefix: string;

  private constructor(socket: Socket, prefix: string) {
    this.socket = socket;
    socket.setNoDelay(true); // small pipelined writes must not wait for delayed ACKs (Nagle)
    this.#prefix = prefix;
    const decoder = new MessageDecoder((m) => this.#dispatch(m), {
      maxBodyBytes: 64 * 1024 * 1024,
      maxHeaderBytes: 1024 * 1024,
      maxHeaderCount: 10_000,
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        this.decodeError = err;
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      const err = new ConnectionClosed();
      for (const p of this.#pending.values()) {
        if (p.timer) clearTimeout(p.timer);
        p.reject(err);
      }
      this.#pending.clear();
    });
  }

  static connect(port: number, prefix = 'w'): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve(new Wire(s, prefix));
      });
      s.once('error', reject);
    });
  }

  /** Opens a wire that is closed when the test ends. */
  static async open(port: number, prefix = 'w'): Promise<Wire> {
    const w = await Wire.connect(port, prefix);
    onTestFinished(() => w.close());
    return w;
  }

  #dispatch(m: Message): void {
    const id = m.headers.id;
    if (id !== undefined) {
      const p = this.#pending.get(id);
      if (p) {
        this.#pending.delete(id);
        if (p.timer) clearTimeout(p.timer);
        p.resolve(m);
        return;
      }
      const s = this.#streams.get(id);
      if (s) {
        s(m);
        return;
      }
    }
    this.unmatched.push(m);
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  nextId(): string {
    return `${this.#prefix}${++this.#seq}`;
  }

  /** Writes a request without waiting; returns its id. */
  send(init: MessageInit | Message): string {
    const m = init instanceof Message ? init : new Message(init);
    if (m.headers.id === undefined) m.set('id', this.nextId());
    if (!this.closed) this.socket.write(encodeMessage(m));
    return m.headers.id!;
  }

  /** Sends a request and resolves with its reply; rejects on close or after `scaled(timeoutMs)` (0 = never). */
  request(init: MessageInit | Message, timeoutMs = 10_000): Promise<Message> {
    const m = init instanceof Message ? init : new Message(init);
    if (m.headers.id === undefined) m.set('id', this.nextId());
    const id = m.headers.id!;
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new ConnectionClosed());
        return;
      }
      const entry: { resolve(m: Message): void; reject(e: unknown): void; timer?: NodeJS.Timeout } = {
        resolve,
        reject,
      };
      if (timeoutMs > 0) {
        const limit = scaled(timeoutMs);
        entry.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new Error(`no reply to ${id} within ${limit} ms`));
        }, limit);
      }
      this.#pending.set(id, entry);
      this.socket.write(encodeMessage(m));
    });
  }

  /** Every message carrying `id` (a windowed consume's deliveries) goes to `fn`. */
  stream(id: string, fn: (m: Message) => void): void {
    this.#streams.set(id, fn);
  }

  close(): void {
    this.socket.destroy();
  }
}

// ------------------------------------------------------------------------------------------------ payloads

/** A body derived from the key, so a checker can tell a corrupted body from the right one. */
export function payloadFor(key: string, size = 64): string {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619) >>> 0;
  let out = `${key}|`;
  while (out.length < size) {
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
    out += h.toString(36);
  }
  return out.slice(0, size);
}

export interface StoredCopy {
  offset: number;
  id: string;
  body: string;
}

/**
 * A query of `topic` once the store answers it. A store that cannot say yet how deep the topic is (a JetStream
 * stream without a leader after a restart) answers 503: ask again until it can.
 */
export function queryAnswered(w: Wire, topic: string): Promise<Message> {
  return waitFor(
    async () => {
      const r = await w.request({ headers: { cmd: 'query', topic } });
      return r.status === 200 ? r : undefined;
    },
    `a query of ${topic} answered`,
    60_000,
  );
}

/**
 * Reads a topic back by offset (random reads, pipelined in batches): every stored record from 0 to
 * messageDepth. Offsets that answer 404 are listed as missing (corrupt records are never served).
 */
export async function readAll(
  port: number,
  topic: string,
  from = 0,
): Promise<{ records: StoredCopy[]; missing: number[]; depth: number; corruptRecords: number }> {
  const w = await Wire.connect(port, 'read');
  try {
    const info = (await queryAnswered(w, topic)).json<{ messageDepth: number; corruptRecords: number }>();
    const records: StoredCopy[] = [];
    const missing: number[] = [];
    const BATCH = 2000;
    for (let start = from; start < info.messageDepth; start += BATCH) {
      const to = Math.min(info.messageDepth, start + BATCH);
      const replies = await Promise.all(
        Array.from({ length: to - start }, (_, i) =>
          w.request({ headers: { cmd: 'consume', topic, offset: String(start + i) } }, 30_000),
        ),
      );
      replies.forEach((r, i) => {
        if (r.status === 200) {
          records.push({ offset: start + i, id: r.headers.origin_id ?? '', body: r.bodyText() });
        } else missing.push(start + i);
      });
    }
    const after = (await w.request({ headers: { cmd: 'query', topic } })).json<{ corruptRecords: number }>();
    return { records, missing, depth: info.messageDepth, corruptRecords: after.corruptRecords };
  } finally {
    w.close();
  }
}

/** Files and directories under `dir`, recursively (relative paths). */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out.sort();
}
