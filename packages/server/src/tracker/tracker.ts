// The tracker side every broker has (zbus-protocol.md §9): the servers that report to it with `track_pub`,
// each watched through a connection of the tracker's own, and the sessions subscribed with `track_sub`,
// which get a TrackerInfo push on every change. What a tracker learns is never reported onwards (no loops).

import type { ServerInfo } from '@zbus/protocol';
import { Message, ZbusError } from '@zbus/protocol';
import type { Logger } from 'pino';
import type { Session } from '../session.js';
import { Link } from './link.js';

interface TrackedServer {
  info: ServerInfo;
  /** The session the reports come in on. */
  reporter: Session | undefined;
  lastReport: number;
  /** The tracker's own connection to the server (heartbeats); its loss removes the server. */
  watch: Link | undefined;
}

const WATCH_HEARTBEAT_MS = 10_000;

export class TrackerState {
  /** Only grows, across restarts too: it starts from the clock and never goes back. */
  #infoVersion = Date.now();
  readonly #servers = new Map<string, TrackedServer>();
  readonly subscribers = new Set<Session>();
  #sweep: NodeJS.Timeout | undefined;

  constructor(
    readonly log: Logger,
    /** Servers silent for longer than this are dropped. */
    readonly deadlineMs: number,
    /** Most servers in the table (each watched through one connection the tracker opens). */
    readonly maxServers: number,
    /** Called when the table changed (push to subscribers). */
    readonly onChange: () => void,
    /** `host:port` of this broker: it is never watched. */
    readonly self: () => string,
  ) {}

  get infoVersion(): number {
    return this.#infoVersion;
  }

  bump(): number {
    this.#infoVersion = Math.max(this.#infoVersion + 1, Date.now());
    return this.#infoVersion;
  }

  /** The tracked servers' infos by table key. */
  get servers(): ReadonlyMap<string, ServerInfo> {
    const out = new Map<string, ServerInfo>();
    for (const [k, s] of this.#servers) out.set(k, s.info);
    return out;
  }

  /** A member's report. A new server past `maxServers` is refused (429), before anything is dialled. */
  report(key: string, info: ServerInfo, session: Session): void {
    const known = this.#servers.get(key);
    if (!known && this.#servers.size >= this.maxServers) {
      throw new ZbusError(
        'ZBUS_ERR_LIMIT',
        `the tracker's table is full: ${this.maxServers} servers (trackerMaxServers)`,
      );
    }
    if (known && (info.infoVersion ?? 0) < (known.info.infoVersion ?? 0) && known.reporter === session)
      return;
    const entry: TrackedServer = known ?? { info, reporter: undefined, lastReport: 0, watch: undefined };
    entry.info = info;
    entry.lastReport = Date.now();
    if (entry.reporter !== session) {
      entry.reporter = session;
      session.onClose((s) => {
        if (this.#servers.get(key)?.reporter === s) this.remove(key, 'report connection lost');
      });
    }
    if (!entry.watch && info.serverAddress.address !== this.self()) entry.watch = this.#watch(key, info);
    this.#servers.set(key, entry);
    this.#ensureSweep();
  }

  remove(key: string, reason: string): boolean {
    const s = this.#servers.get(key);
    if (!s) return false;
    this.#servers.delete(key);
    s.watch?.close();
    this.log.info({ server: key, reason }, 'tracked server removed');
    this.onChange();
    return true;
  }

  #watch(key: string, info: ServerInfo): Link {
    let beat: NodeJS.Timeout | undefined;
    const link = new Link({
      address: info.serverAddress.address,
      log: this.log,
      reconnect: false,
      onConnect: (l) => {
        beat = setInterval(() => l.send(new Message({ headers: { cmd: 'heartbeat' } })), WATCH_HEARTBEAT_MS);
        beat.unref();
      },
      onClose: () => {
        if (beat) clearInterval(beat);
        if (this.#servers.get(key)?.watch === link) this.remove(key, 'watch connection lost');
      },
    });
    return link;
  }

  #ensureSweep(): void {
    if (this.#sweep) return;
    this.#sweep = setInterval(
      () => {
        const now = Date.now();
        for (const [k, s] of this.#servers)
          if (now - s.lastReport > this.deadlineMs) this.remove(k, 'missed reports');
      },
      Math.max(100, Math.min(5000, this.deadlineMs / 3)),
    );
    this.#sweep.unref();
  }

  close(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    for (const s of this.#servers.values()) s.watch?.close();
    this.#servers.clear();
    this.subscribers.clear();
  }
}
