// What the dashboard knows: the latest TopicInfo of every topic, and produce/consume rates computed from
// successive infos. Produce rate: the change of `messageDepth` (messages ever written). Consume rate: the sum
// over groups of the change of `position` (a message read by two groups counts twice).
import type { ConsumeGroupInfo, ServerInfo, TopicInfo } from '@zbus/client-browser';

/** Rate samples kept per topic: 150 at one per 2 s poll = the last 5 minutes. */
export const HISTORY = 150;
/** Samples closer together than this only refresh the figures; rates need a longer baseline. */
const MIN_SAMPLE_MS = 1000;

export interface GroupView extends ConsumeGroupInfo {
  unackedCount?: number;
  deadLetterCount?: number;
  position?: number;
}

export interface TopicView extends TopicInfo {
  bytes?: number;
  corruptRecords?: number;
  delayedCount?: number;
  firstOffset?: number;
  nextOffset?: number;
  consumeGroupList: GroupView[];
}

/** A fixed-size ring of numbers, oldest first when read. */
export class Ring {
  readonly #data: Float64Array;
  #start = 0;
  #size = 0;
  constructor(capacity: number) {
    this.#data = new Float64Array(capacity);
  }
  push(v: number): void {
    const cap = this.#data.length;
    if (this.#size < cap) this.#data[(this.#start + this.#size++) % cap] = v;
    else {
      this.#data[this.#start] = v;
      this.#start = (this.#start + 1) % cap;
    }
  }
  get size(): number {
    return this.#size;
  }
  at(i: number): number {
    return this.#data[(this.#start + i) % this.#data.length] ?? 0;
  }
  max(): number {
    let m = 0;
    for (let i = 0; i < this.#size; i++) m = Math.max(m, this.at(i));
    return m;
  }
}

export class TopicModel {
  readonly name: string;
  info: TopicView;
  inRate = 0;
  outRate = 0;
  readonly inHist = new Ring(HISTORY);
  readonly outHist = new Ring(HISTORY);
  /** Bumped whenever the rate history changes (charts redraw only then). */
  histVersion = 0;
  // derived, for sorting and display
  backlog = 0;
  unacked = 0;
  dlq = 0;
  consumers = 0;
  #baseT = 0;
  #baseDepth = 0;
  #basePos = new Map<string, number>();

  constructor(info: TopicView, t: number) {
    this.name = info.topicName;
    this.info = info;
    this.#derive();
    this.#rebase(t);
  }

  update(info: TopicView, t: number): void {
    this.info = info;
    this.#derive();
    const dtMs = t - this.#baseT;
    if (dtMs < MIN_SAMPLE_MS) return;
    const dt = dtMs / 1000;
    this.inRate = Math.max(0, info.messageDepth - this.#baseDepth) / dt;
    let consumed = 0;
    for (const g of info.consumeGroupList) {
      const before = this.#basePos.get(g.groupName);
      if (before !== undefined && typeof g.position === 'number')
        consumed += Math.max(0, g.position - before);
    }
    this.outRate = consumed / dt;
    this.inHist.push(this.inRate);
    this.outHist.push(this.outRate);
    this.histVersion++;
    this.#rebase(t);
  }

  #rebase(t: number): void {
    this.#baseT = t;
    this.#baseDepth = this.info.messageDepth;
    this.#basePos.clear();
    for (const g of this.info.consumeGroupList) {
      if (typeof g.position === 'number') this.#basePos.set(g.groupName, g.position);
    }
  }

  #derive(): void {
    let backlog = 0;
    let unacked = 0;
    let dlq = 0;
    for (const g of this.info.consumeGroupList) {
      backlog += g.messageCount ?? 0;
      unacked += g.unackedCount ?? 0;
      dlq += g.deadLetterCount ?? 0;
    }
    this.backlog = backlog;
    this.unacked = unacked;
    this.dlq = dlq;
    this.consumers = this.info.consumerCount ?? 0;
  }
}

/** Every topic of one server, plus server-wide totals. */
export class Model {
  readonly topics = new Map<string, TopicModel>();
  readonly inHist = new Ring(HISTORY);
  readonly outHist = new Ring(HISTORY);
  inRate = 0;
  outRate = 0;
  server: ServerInfo | undefined;
  updatedAt = 0;
  #lastTotalsT = 0;

  /** Applies a ServerInfo; returns whether the set of topics changed. */
  apply(info: ServerInfo, t = Date.now()): boolean {
    this.server = info;
    this.updatedAt = t;
    const table = info.topicTable ?? {};
    let changed = false;
    const seen = new Set<string>();
    for (const name of Object.keys(table)) {
      const ti = table[name] as TopicView;
      seen.add(name);
      const m = this.topics.get(name);
      if (m === undefined) {
        this.topics.set(name, new TopicModel(ti, t));
        changed = true;
      } else m.update(ti, t);
    }
    for (const name of this.topics.keys()) {
      if (!seen.has(name)) {
        this.topics.delete(name);
        changed = true;
      }
    }
    if (t - this.#lastTotalsT >= MIN_SAMPLE_MS) {
      let i = 0;
      let o = 0;
      for (const m of this.topics.values()) {
        i += m.inRate;
        o += m.outRate;
      }
      this.inRate = i;
      this.outRate = o;
      if (this.#lastTotalsT !== 0) {
        this.inHist.push(i);
        this.outHist.push(o);
      }
      this.#lastTotalsT = t;
    }
    return changed;
  }
}
