// Hands stored messages to waiting consumers. Each (topic, group) has a FIFO of pulls (consume requests);
// deliveries go round-robin in arrival order (zbus-protocol.md §7.5). A pull carries credit: `consume_window`
// N lets the broker push up to N messages before the next consume or ack (decisions.md §2). Sessions whose
// writes are queued past the high-water mark are skipped until they drain (backpressure).
import { Mask, Message } from '@zbus/protocol';
import type { Metrics } from '../metrics/metrics.js';
import type { ReplyTicket, Session } from '../session.js';
import { Alarm, type Clock, systemClock } from '../store/clock.js';
import {
  type Delivery,
  type Group,
  STORE_MASK_ACK_REQUIRED,
  STORE_MASK_DELETE_ON_EXIT,
  type Topic,
} from '../store/types.js';
import { buildDelivery } from './delivery.js';
import { OffsetMap } from './offset-map.js';
import { Renewal } from './renewal.js';

interface Pull {
  readonly session: Session;
  readonly channel: Channel;
  /** The consume request's id; every delivery of this pull carries it. */
  readonly id: string;
  readonly ticket: ReplyTicket;
  readonly window: number;
  credit: number;
  /** consume_timeout: ends a consume that got nothing (an Alarm: any duration, also past 2^31 ms). */
  timer: Alarm | undefined;
  /** Windowed pulls stay after their credit runs out, waiting for acks to refill it. */
  parked: boolean;
  /** The channel's batch whose size counted this pull's credit (only those pulls share that batch). */
  batch: number;
  /**
   * Windowed pulls: deliveries not yet settled, offset -> stored message id. Each gives back one credit, once:
   * by an `ack`/`nack` of its offset, or, on RPC topics, by the service's `route` answering its id.
   */
  readonly unsettled: OffsetMap<string> | undefined;
}

interface Channel {
  readonly key: string;
  readonly topic: Topic;
  readonly entry: TopicEntry;
  group: Group;
  readonly pulls: Pull[];
  readonly parked: Pull[];
  /** Consumer sessions and how many consumes each has open. */
  readonly consumers: Map<Session, number>;
  /** Messages taken from the store whose pull vanished before delivery (at-most-once groups). */
  readonly held: Delivery[];
  /** Batches taken from the store so far; numbers them for Pull.batch. */
  batches: number;
  running: boolean;
  again: boolean;
  /** Pulls whose consume_timeout ran out during a delivery loop: answered empty after it, if it gave them nothing. */
  readonly expired: Pull[];
  /** Dropped from the dispatcher's maps (a later consume makes a new channel). */
  forgotten: boolean;
}

/** The channels of one topic (a write batch kicks these, not every channel) and its availability listener. */
interface TopicEntry {
  readonly channels: Set<Channel>;
  readonly unsubscribe: () => void;
}

/**
 * A delivery on an RPC or proxy topic waiting for the service's `route`, found by the stored message's id (the
 * route's `id`); `next` chains deliveries that share an id (two callers may pick the same one).
 */
interface Routed {
  readonly pull: Pull;
  readonly offset: number;
  next: Routed | undefined;
}

/** Most records taken from the store in one step of a delivery loop, and the most data. */
const BATCH = 64;
const BATCH_BYTES = 256 * 1024;

const keyOf = (topic: string, group: string) => `${topic.toLowerCase()}\0${group.toLowerCase()}`;

/** Names as the store compares them (case-insensitive); the spelling the store keeps is the usual one. */
const sameName = (a: string, b: string) => a === b || a.toLowerCase() === b.toLowerCase();

/** A store call whose answer nobody waits for (a failure is the store's to log). */
function quietly(result: boolean | Promise<boolean>): void {
  if (typeof result !== 'boolean') result.catch(() => {});
}

export interface DispatcherEvents {
  /** Consumers of a topic changed (tracker reports, monitor). */
  consumersChanged(topic: string): void;
  /** A delivery loop failed (a record that cannot be decoded, a store error): logged, never thrown. */
  failed(err: unknown, topic: string, group: string): void;
}

export class Dispatcher {
  readonly #channels = new Map<string, Channel>();
  readonly #topics = new Map<Topic, TopicEntry>();
  /** The hot lookups (an ack, a route) go by object, not by a `topic\0group` string built per message. */
  readonly #byGroup = new WeakMap<Group, Channel>();
  readonly #routed = new WeakMap<Session, Map<string, Routed>>();
  /** When a session's routed Map is replaced by a copy (it churns: a set per delivery, a delete per answer). */
  readonly #routedRenewal = new Renewal();

  constructor(
    readonly metrics: Metrics,
    readonly events: DispatcherEvents,
    /** Times consume_timeout (the broker's clock; tests pass a manual one). */
    readonly clock: Clock = systemClock,
  ) {}

  #channel(topic: Topic, group: Group): Channel {
    const known = this.#byGroup.get(group);
    if (known !== undefined && !known.forgotten && known.group === group && known.topic === topic)
      return known;
    const key = keyOf(topic.name, group.name);
    let ch = this.#channels.get(key);
    if (!ch) {
      let entry = this.#topics.get(topic);
      if (!entry) {
        entry = { channels: new Set(), unsubscribe: topic.onAvailable(() => this.kickTopic(topic)) };
        this.#topics.set(topic, entry);
      }
      ch = {
        key,
        topic,
        entry,
        group,
        pulls: [],
        parked: [],
        consumers: new Map(),
        held: [],
        batches: 0,
        running: false,
        again: false,
        expired: [],
        forgotten: false,
      };
      this.#channels.set(key, ch);
      entry.channels.add(ch);
    } else if (ch.group !== group) {
      ch.group = group;
    }
    this.#byGroup.set(group, ch);
    return ch;
  }

  #forget(ch: Channel): void {
    ch.forgotten = true;
    this.#channels.delete(ch.key);
    ch.entry.channels.delete(ch);
  }

  /** Sessions consuming the group (exclusive check, ConsumeGroupInfo). */
  consumersOf(topic: string, group: string): Session[] {
    const ch = this.#channels.get(keyOf(topic, group));
    return ch ? [...ch.consumers.keys()] : [];
  }

  consumerCount(topic: string, group?: string): number {
    if (group !== undefined) return this.#channels.get(keyOf(topic, group))?.consumers.size ?? 0;
    const prefix = `${topic.toLowerCase()}\0`;
    let n = 0;
    for (const [k, ch] of this.#channels) if (k.startsWith(prefix)) n += ch.consumers.size;
    return n;
  }

  /** Consumer sessions of every group of the topic (a produce to an RPC topic asks: anyone serving it?). */
  topicConsumers(topic: Topic): number {
    const entry = this.#topics.get(topic);
    if (!entry) return 0;
    let n = 0;
    for (const ch of entry.channels) n += ch.consumers.size;
    return n;
  }

  /** Queue a consume request. */
  addPull(
    session: Session,
    topic: Topic,
    group: Group,
    id: string,
    ticket: ReplyTicket,
    window: number,
    timeoutMs: number | undefined,
  ): void {
    const ch = this.#channel(topic, group);
    const before = ch.consumers.size;
    ch.consumers.set(session, (ch.consumers.get(session) ?? 0) + 1);
    session.groups.add(ch.key);
    if (ch.consumers.size !== before) this.events.consumersChanged(topic.name);
    const pull: Pull = {
      session,
      channel: ch,
      id,
      ticket,
      window,
      credit: window,
      timer: undefined,
      parked: false,
      batch: 0,
      unsettled: window > 1 ? new OffsetMap() : undefined,
    };
    if (timeoutMs !== undefined && timeoutMs > 0) {
      pull.timer = new Alarm(this.clock, () => this.#expire(ch, pull));
      pull.timer.setIn(timeoutMs);
    }
    ch.pulls.push(pull);
    this.#run(ch);
  }

  /** A consume_timeout ran out before anything was delivered: an empty reply (no origin_id) says so. */
  #expire(ch: Channel, pull: Pull): void {
    pull.timer = undefined;
    if (ch.running) {
      // A store read under way may bring this pull a message: it is answered (or not) when the loop ends.
      ch.expired.push(pull);
      return;
    }
    this.#dropPull(ch, pull);
    if (!pull.ticket.done) {
      const m = new Message({ status: 200, headers: { topic: ch.topic.name, consume_group: ch.group.name } });
      m.set('consume_timeout', 'true');
      pull.ticket.send(m);
    }
  }

  #dropPull(ch: Channel, pull: Pull): void {
    pull.timer?.cancel();
    pull.timer = undefined;
    if (pull.unsettled !== undefined) {
      pull.unsettled.forEach((id, offset) => {
        this.#unroute(pull.session, id, pull, offset);
      });
    }
    let i = ch.pulls.indexOf(pull);
    if (i >= 0) ch.pulls.splice(i, 1);
    i = ch.parked.indexOf(pull);
    if (i >= 0) ch.parked.splice(i, 1);
  }

  /** `unconsume`: the session stops consuming the group. */
  unconsume(session: Session, topic: string, group: string): void {
    const ch = this.#channels.get(keyOf(topic, group));
    if (!ch) return;
    for (const p of [...ch.pulls, ...ch.parked]) {
      if (p.session === session) {
        this.#dropPull(ch, p);
        p.ticket.none();
      }
    }
    this.#leave(ch, session);
  }

  /**
   * An ack (or nack) of `offset`: the session's windowed pull that got that delivery gets its credit back. A
   * second ack of the same delivery gives nothing (so a window never lets more than N deliveries out at once).
   * `settled`: the store settled something at that offset (false for an offset it did not wait on, and always on
   * a memory topic, which tracks no acks).
   */
  acked(session: Session, group: Group, offset: number, settled: boolean): void {
    const ch = this.#byGroup.get(group);
    if (!ch) return;
    const pull = this.#pullWith(ch.parked, session, offset) ?? this.#pullWith(ch.pulls, session, offset);
    if (pull) {
      const id = pull.unsettled!.get(offset)!;
      pull.unsettled!.delete(offset);
      this.#unroute(session, id, pull, offset);
      this.#refill(ch, pull);
    } else if (settled && ch.pulls.length > 0) {
      // The group's ack window may have reopened (or a nack made the message deliverable again). An ack the
      // store did not wait on (a 0.11 service acking after its route already settled the delivery) changes
      // nothing, so it runs no delivery loop.
      this.#run(ch);
    }
  }

  /** The session's windowed pull in `list` that has `offset` unsettled. */
  #pullWith(list: Pull[], session: Session, offset: number): Pull | undefined {
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (p.session === session && p.unsettled !== undefined && p.unsettled.has(offset)) return p;
    }
    return undefined;
  }

  /**
   * A `route` from `session` answering the RPC request `id` of the topic named `topic`: on RPC topics the answer
   * settles the delivery, so a service consuming with consume_window N needs no ack to keep N requests coming.
   * Matched by name, as the store matches names: no store lookup per reply.
   */
  answered(session: Session, topic: string, id: string): void {
    const byId = this.#routed.get(session);
    const head = byId?.get(id);
    let r = head;
    while (r !== undefined && !sameName(r.pull.channel.topic.name, topic)) r = r.next;
    if (r === undefined) return;
    const pull = r.pull;
    pull.unsettled!.delete(r.offset);
    // Mostly the only delivery with that id: dropped here rather than looked up again.
    if (r !== head || r.next !== undefined) this.#unroute(session, id, pull, r.offset);
    else this.#dropRouted(session, byId!, id);
    this.#refill(pull.channel, pull);
  }

  /** Forget the routed entry of `(pull, offset)` under `id`. */
  #unroute(session: Session, id: string, pull: Pull, offset: number): void {
    const byId = this.#routed.get(session);
    const head = byId?.get(id);
    if (head === undefined) return;
    if (head.pull === pull && head.offset === offset) {
      if (head.next === undefined) this.#dropRouted(session, byId!, id);
      else byId!.set(id, head.next);
      return;
    }
    for (let r = head; r.next !== undefined; r = r.next) {
      if (r.next.pull === pull && r.next.offset === offset) {
        r.next = r.next.next;
        return;
      }
    }
  }

  /** Drops `id` from the session's routed Map, renewed when due (mq/renewal.ts). */
  #dropRouted(session: Session, byId: Map<string, Routed>, id: string): void {
    byId.delete(id);
    if (this.#routedRenewal.due(byId.size)) this.#routed.set(session, new Map(byId));
  }

  /** Gives one credit back to a windowed pull; a parked one goes back in line. */
  #refill(ch: Channel, pull: Pull): void {
    pull.credit = Math.min(pull.window, pull.credit + 1);
    if (pull.parked) {
      pull.parked = false;
      ch.parked.splice(ch.parked.indexOf(pull), 1);
      ch.pulls.push(pull);
      this.#run(ch);
    }
    // A pull that still had credit was not what stopped the last run (the group had nothing, or the session was
    // not writable; both kick the channel when they change), so a refill alone need not ask the store again:
    // with auto acks that was one empty group.next() per delivered message.
  }

  /** Something new may be deliverable on every group of the topic. */
  kickTopic(topic: Topic): void {
    const entry = this.#topics.get(topic);
    if (!entry) return;
    for (const ch of entry.channels) if (ch.pulls.length > 0) this.#run(ch);
  }

  /** A session drained its writes: retry the groups it waits on. */
  sessionWritable(session: Session): void {
    for (const key of session.groups) {
      const ch = this.#channels.get(key);
      if (ch && ch.pulls.length > 0) this.#run(ch);
    }
  }

  /** A session went away: drop its pulls, its consumer registrations and its delete-on-exit groups. */
  sessionClosed(session: Session): void {
    this.#leaveAll(session, (ch, p) => this.#dropPull(ch, p));
  }

  /**
   * The session's peer half-closed its socket: it still reads the replies to what it sent, but it is no longer
   * a consumer (a peer that closed both ways looks the same, and a message pushed to it would be lost). A
   * consume still waiting is answered as if its consume_timeout had run out.
   */
  sessionEnded(session: Session): void {
    this.#leaveAll(session, (ch, p) => this.#expire(ch, p));
  }

  #leaveAll(session: Session, end: (ch: Channel, pull: Pull) => void): void {
    for (const key of session.groups) {
      const ch = this.#channels.get(key);
      if (!ch) continue;
      for (const p of [...ch.pulls, ...ch.parked]) if (p.session === session) end(ch, p);
      this.#leave(ch, session);
    }
    session.groups.clear();
  }

  #leave(ch: Channel, session: Session): void {
    if (!ch.consumers.delete(session)) return;
    session.groups.delete(ch.key);
    this.events.consumersChanged(ch.topic.name);
    if (ch.consumers.size === 0 && (ch.group.mask & STORE_MASK_DELETE_ON_EXIT) !== 0) {
      this.#forget(ch);
      void ch.topic.removeGroup(ch.group.name).catch(() => {});
    } else if (ch.consumers.size === 0 && ch.pulls.length === 0 && ch.held.length === 0) {
      this.#forget(ch);
    }
  }

  /** The group (or its topic) was removed: waiting consumes get `reply` (404). */
  groupRemoved(topic: string, group: string | undefined, reply: (ticket: ReplyTicket) => void): void {
    const prefix = group === undefined ? `${topic.toLowerCase()}\0` : keyOf(topic, group);
    for (const [k, ch] of this.#channels) {
      if (group === undefined ? !k.startsWith(prefix) : k !== prefix) continue;
      for (const p of [...ch.pulls, ...ch.parked]) {
        this.#dropPull(ch, p);
        if (!p.ticket.done) reply(p.ticket);
      }
      for (const s of ch.consumers.keys()) s.groups.delete(k);
      this.#forget(ch);
      if (group === undefined) {
        this.#topics.get(ch.topic)?.unsubscribe();
        this.#topics.delete(ch.topic);
      }
    }
  }

  /**
   * The first pull whose session can take a message now, rotated to the back (round-robin). Within batch
   * `batch`, a pull whose credit that batch counted still qualifies when its session went over its write
   * high-water mark meanwhile (see #wait); a session that was already over it never does.
   */
  #pick(ch: Channel, batch = 0): Pull | undefined {
    const n = ch.pulls.length;
    for (let i = 0; i < n; i++) {
      const p = ch.pulls[0]!;
      if (p.session.closed) {
        this.#dropPull(ch, p);
        continue;
      }
      if (p.session.writable || (batch !== 0 && p.batch === batch)) return p;
      ch.pulls.push(ch.pulls.shift()!);
    }
    return undefined;
  }

  /**
   * Records for the channel's pulls: as many as the writable ones have credit for (up to BATCH), in one step of
   * the store when it can batch, instead of an await per message.
   */
  async #take(ch: Channel, batch: number): Promise<Delivery[]> {
    let credit = 0;
    for (const p of ch.pulls) {
      if (p.session.closed || !p.session.writable) continue;
      credit += p.credit;
      p.batch = batch;
    }
    const group = ch.group;
    if (credit > 1 && group.nextBatch !== undefined) {
      return group.nextBatch(Math.min(credit, BATCH), BATCH_BYTES);
    }
    const d = await group.next();
    return d === undefined ? [] : [d];
  }

  /**
   * One delivery loop per channel at a time; a kick during a run makes it go round once more. What the store
   * has in memory is handed out at once, with no promise per message; the loop waits only for a read (#wait).
   */
  #run(ch: Channel): void {
    if (ch.running) {
      ch.again = true;
      return;
    }
    ch.running = true;
    let wait = false;
    try {
      wait = this.#deliverReady(ch);
    } catch (err) {
      this.events.failed(err, ch.topic.name, ch.group.name);
    }
    if (wait) void this.#wait(ch);
    else this.#stop(ch);
  }

  /** Hands out held messages and what the store has ready now. True when the store must be waited for. */
  #deliverReady(ch: Channel): boolean {
    do {
      ch.again = false;
      while (ch.pulls.length > 0) {
        const pull = this.#pick(ch);
        if (!pull) break;
        let d: Delivery | undefined | null = ch.held.shift();
        if (d === undefined) {
          d = ch.group.nextNow === undefined ? null : ch.group.nextNow();
          if (d === null) return true;
          if (d === undefined) break;
        }
        this.#handOut(ch, pull, d);
      }
    } while (ch.again);
    return false;
  }

  /** Takes a batch from the store, waiting for it (a read, ack mode's journal), then goes on without waiting. */
  async #wait(ch: Channel): Promise<void> {
    try {
      for (;;) {
        const batchNo = ++ch.batches;
        let batch: Delivery[];
        try {
          batch = await this.#take(ch, batchNo);
        } catch {
          batch = []; // group removed meanwhile; removal answers the waiters
        }
        for (let i = 0; i < batch.length; i++) {
          // A session that turned unwritable during the batch takes the rest its credit was counted for (at
          // most BATCH messages / BATCH_BYTES over its high-water mark); the next batch waits for its drain.
          // One that was unwritable already gets none: a consumer that never reads would otherwise take a
          // share of every batch until each message it holds runs out of deliveries.
          const pull = this.#pick(ch, batchNo);
          if (!pull) {
            // The consumer vanished while the store read: give the messages back.
            for (let j = i; j < batch.length; j++) {
              const r = batch[j]!;
              if (this.#ackMode(ch)) quietly(ch.group.nack(r.offset));
              else ch.held.push(r);
            }
            break;
          }
          this.#handOut(ch, pull, batch[i]!);
        }
        if (batch.length === 0 && !ch.again) break;
        if (!this.#deliverReady(ch)) break;
      }
    } catch (err) {
      this.events.failed(err, ch.topic.name, ch.group.name);
    }
    this.#stop(ch);
  }

  /** The loop ended: pulls whose consume_timeout ran out during it and got nothing are answered now. */
  #stop(ch: Channel): void {
    ch.running = false;
    while (ch.expired.length > 0) {
      const pull = ch.expired.pop()!;
      // Unless the loop delivered to it, or it went meanwhile (unconsume, its session closed).
      if (!pull.ticket.done && ch.pulls.includes(pull)) this.#expire(ch, pull);
    }
  }

  #handOut(ch: Channel, pull: Pull, d: Delivery): void {
    try {
      this.#deliver(ch, pull, d);
    } catch (err) {
      // One bad record must not stop the group (or, as an unhandled rejection, the process).
      this.events.failed(err, ch.topic.name, ch.group.name);
      if (this.#ackMode(ch)) quietly(ch.group.ack(d.offset));
    }
  }

  #ackMode(ch: Channel): boolean {
    const mask = ch.group.mask !== 0 ? ch.group.mask : ch.topic.mask;
    return (mask & STORE_MASK_ACK_REQUIRED) !== 0;
  }

  #deliver(ch: Channel, pull: Pull, d: Delivery): void {
    const msg = buildDelivery(d, pull.id, ch.topic.name, ch.group.name);
    pull.credit--;
    if (pull.unsettled !== undefined) this.#unsettle(ch, pull, d);
    ch.pulls.shift(); // #pick left it at the head
    if (pull.credit > 0) {
      ch.pulls.push(pull);
    } else if (pull.window > 1) {
      pull.parked = true;
      ch.parked.push(pull);
    }
    if (pull.timer) {
      pull.timer.cancel(); // consume_timeout only answers a consume that got nothing
      pull.timer = undefined;
    }
    this.metrics.countDelivered(ch.topic.name);
    if (!pull.ticket.done) pull.ticket.send(msg);
    else pull.session.push(msg);
  }

  /** Tracks a windowed delivery until its ack, nack or (RPC and proxy topics) its route. */
  #unsettle(ch: Channel, pull: Pull, d: Delivery): void {
    const unsettled = pull.unsettled!;
    const before = unsettled.get(d.offset);
    if (before !== undefined) this.#unroute(pull.session, before, pull, d.offset); // redelivered to this pull
    unsettled.set(d.offset, d.id);
    if ((ch.topic.mask & (Mask.Rpc | Mask.Proxy)) === 0) return;
    let byId = this.#routed.get(pull.session);
    if (byId === undefined) {
      byId = new Map();
      this.#routed.set(pull.session, byId);
    }
    byId.set(d.id, { pull, offset: d.offset, next: byId.get(d.id) });
  }

  /** Shutdown: waiting consumes that got nothing yet are answered with `reply` (503) instead of a silent close. */
  close(reply?: (ticket: ReplyTicket) => void): void {
    for (const ch of this.#channels.values())
      for (const p of [...ch.pulls, ...ch.parked]) {
        this.#dropPull(ch, p);
        if (reply && !p.ticket.done) reply(p.ticket);
      }
    for (const entry of this.#topics.values()) entry.unsubscribe();
    this.#channels.clear();
    this.#topics.clear();
  }
}
