// The client's view of a zbus cluster (zbus-protocol.md §9): what every tracker says, merged into one table of
// servers and of the topics each of them holds. Pure data, no I/O: the Broker feeds it TrackerInfo pushes and
// tracker losses, and turns the differences it reports into serverJoin / serverLeave events.
//
//   tracker h1 ──TrackerInfo──┐   votes:   h1 → {A, B, C}      servers: A, B, C (listed by >= half the
//   tracker h2 ──TrackerInfo──┼─▶          h2 → {A, B, C}               trackers that are alive)
//   tracker h3 ──TrackerInfo──┘            h3 → {A, B}         topics:  orders → {A: TopicInfo, B: ...}

import type { ServerInfo, TopicInfo, TrackerInfo } from '@zbus/protocol';

/** What the selectors see: servers, topics, and whether this client currently reaches a server. */
export interface RouteTable {
  /** Servers by the address they announce (`host:port`), each with its latest `ServerInfo`. */
  readonly servers: ReadonlyMap<string, ServerInfo>;
  /** Servers holding `topic` (names are case-insensitive), each with its `TopicInfo`; empty when none. */
  topic(topic: string): ReadonlyMap<string, TopicInfo>;
  /**
   * Whether the client's connection to `server` is not known to be down (a connection that was lost and is
   * being re-established, or a connect attempt that just failed, makes a server unavailable for a moment).
   */
  available(server: string): boolean;
}

/** Picks servers for one kind of traffic (0.11 `ServerSelector.select(routeTable, msg)`). */
export type ServerSelector = (table: RouteTable, topic: string | undefined) => string[];

/** The three selectors a Broker uses; replace any of them with the `selectors` option. */
export interface ServerSelectors {
  /** Producers (and RPC callers) publish to the first server returned. */
  produce: ServerSelector;
  /** Consumers consume from every server returned. */
  consume: ServerSelector;
  /** Admin commands (declare, query, remove, empty) go to every server returned. */
  admin: ServerSelector;
}

/** What one change did to the table. */
export interface RouteDiff {
  joined: string[];
  left: string[];
  /** Anything changed (servers, topics, versions). */
  changed: boolean;
}

/** A server is kept while at least this share of the live trackers lists it (0.11 `voteFactor`). */
export const VOTE_FACTOR = 0.5;

const EMPTY: ReadonlyMap<string, TopicInfo> = new Map();

/**
 * Merges TrackerInfo from several trackers (0.11 `BrokerRouteTable`): a server's info is replaced only by one
 * with an `infoVersion` at least as high; a server is dropped when fewer than half of the live trackers list
 * it. A lost tracker's votes are dropped while another tracker is still live; when the last one is lost the
 * table stays as it was (no news is not news of a death: the servers may well be up).
 */
export class RouteState implements RouteTable {
  readonly #votes = new Map<string, Set<string>>();
  readonly #trackerVersion = new Map<string, number>();
  readonly #known = new Map<string, ServerInfo>();
  #servers = new Map<string, ServerInfo>();
  #topics = new Map<string, Map<string, TopicInfo>>();

  constructor(readonly isAvailable: (server: string) => boolean = () => true) {}

  get servers(): ReadonlyMap<string, ServerInfo> {
    return this.#servers;
  }

  /** Trackers whose view currently counts. */
  get trackers(): number {
    return this.#votes.size;
  }

  topic(topic: string): ReadonlyMap<string, TopicInfo> {
    return this.#topics.get(topic.toLowerCase()) ?? EMPTY;
  }

  available(server: string): boolean {
    return this.isAvailable(server);
  }

  /** Applies a TrackerInfo from `tracker` (any id; the Broker uses the address it was given). */
  update(tracker: string, info: TrackerInfo): RouteDiff {
    const version = Number(info.infoVersion ?? 0);
    const last = this.#trackerVersion.get(tracker);
    // A tracker's infoVersion only grows (also across its restarts): an older one is a stale push.
    if (last !== undefined && version < last) return { joined: [], left: [], changed: false };
    this.#trackerVersion.set(tracker, version);
    const listed = new Set<string>();
    let changed = !this.#votes.has(tracker);
    for (const s of Object.values(info.serverTable ?? {})) {
      const address = s?.serverAddress?.address;
      if (typeof address !== 'string' || address === '') continue;
      listed.add(address);
      const known = this.#known.get(address);
      // ">=" rather than ">": a server's report may carry new topics under the same infoVersion.
      if (known === undefined || Number(s.infoVersion ?? 0) >= Number(known.infoVersion ?? 0)) {
        if (known === undefined || !sameInfo(known, s)) changed = true;
        this.#known.set(address, s);
      }
    }
    const before = this.#votes.get(tracker);
    if (before === undefined || !sameSet(before, listed)) changed = true;
    this.#votes.set(tracker, listed);
    return this.#recompute(changed);
  }

  /** `tracker` is gone (its connection was lost). */
  removeTracker(tracker: string): RouteDiff {
    this.#trackerVersion.delete(tracker);
    if (!this.#votes.has(tracker) || this.#votes.size === 1) return { joined: [], left: [], changed: false };
    this.#votes.delete(tracker);
    return this.#recompute(true);
  }

  #recompute(changed: boolean): RouteDiff {
    const count = new Map<string, number>();
    for (const set of this.#votes.values()) for (const a of set) count.set(a, (count.get(a) ?? 0) + 1);
    const need = this.#votes.size * VOTE_FACTOR;
    const next = new Map<string, ServerInfo>();
    for (const [address, n] of count) {
      const info = this.#known.get(address);
      if (n >= need && info !== undefined) next.set(address, info);
    }
    for (const address of this.#known.keys()) if (!count.has(address)) this.#known.delete(address);
    const joined = [...next.keys()].filter((a) => !this.#servers.has(a));
    const left = [...this.#servers.keys()].filter((a) => !next.has(a));
    this.#servers = next;
    const topics = new Map<string, Map<string, TopicInfo>>();
    for (const [address, info] of next) {
      for (const [name, t] of Object.entries(info.topicTable ?? {})) {
        const key = (t?.topicName ?? name).toLowerCase();
        let m = topics.get(key);
        if (m === undefined) {
          m = new Map();
          topics.set(key, m);
        }
        m.set(address, t);
      }
    }
    this.#topics = topics;
    return { joined, left, changed: changed || joined.length > 0 || left.length > 0 };
  }
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function sameInfo(a: ServerInfo, b: ServerInfo): boolean {
  return a.infoVersion === b.infoVersion && JSON.stringify(a.topicTable) === JSON.stringify(b.topicTable);
}

// ---- default selectors (zbus-protocol.md §9) ---------------------------------------------------------------

function availableFirst(table: RouteTable, servers: string[]): string[] {
  const up = servers.filter((s) => table.available(s));
  return up.length > 0 ? up : servers;
}

/**
 * The 0.11 selectors, each Broker with its own round-robin state:
 * - `produce`: among available servers that hold the topic, those with the most consumers; when some have
 *   consumers they take turns (round-robin), when none has, the least `messageDepth` wins (turns among equals).
 *   A topic on no server goes to a random available server (so declare-then-publish works before the
 *   trackers report the new topic). The other servers follow in that order, for retries.
 * - `consume`: every server that holds the topic; every server when none does (the consumer declares it).
 * - `admin`: every available server (every server when none is).
 */
export function defaultSelectors(random: () => number = Math.random): ServerSelectors {
  const turns = new Map<string, number>();
  const turn = (key: string, n: number): number => {
    const t = turns.get(key) ?? 0;
    turns.set(key, t + 1 >= Number.MAX_SAFE_INTEGER ? 0 : t + 1);
    return t % n;
  };
  const all = (table: RouteTable) => [...table.servers.keys()];
  return {
    produce(table, topic) {
      const servers = availableFirst(table, all(table));
      if (servers.length <= 1) return servers;
      const holders = topic === undefined ? [] : [...table.topic(topic)].filter(([a]) => table.available(a));
      if (holders.length === 0) {
        const i = Math.floor(random() * servers.length);
        return [...servers.slice(i), ...servers.slice(0, i)];
      }
      holders.sort(
        ([, a], [, b]) =>
          (b.consumerCount ?? 0) - (a.consumerCount ?? 0) || (a.messageDepth ?? 0) - (b.messageDepth ?? 0),
      );
      const top = holders[0]?.[1] as TopicInfo;
      const equal = holders.filter(([, t]) =>
        (top.consumerCount ?? 0) > 0
          ? (t.consumerCount ?? 0) > 0
          : (t.messageDepth ?? 0) === (top.messageDepth ?? 0),
      );
      const i = turn((topic as string).toLowerCase(), equal.length);
      const first = [...equal.slice(i), ...equal.slice(0, i)].map(([a]) => a);
      const rest = servers.filter((a) => !first.includes(a));
      return [...first, ...rest];
    },
    consume(table, topic) {
      const holders = topic === undefined ? [] : [...table.topic(topic).keys()];
      return holders.length > 0 ? holders : all(table);
    },
    admin(table) {
      return availableFirst(table, all(table));
    },
  };
}
