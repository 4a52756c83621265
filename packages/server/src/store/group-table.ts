// The consume groups of one disk topic: opening them from `groups/`, declaring (once, however many declares
// overlap), removing, and the two timers they share: the ack timer, armed for the earliest unacked deadline of
// any group (never one per message), and the checkpoint timer, armed only when a group's position moved.
import fs from 'node:fs';
import { Alarm } from './clock.js';
import { declareOnce } from './declare-once.js';
import { DiskGroup, type GroupState, type GroupTableHooks, type TopicPort } from './group.js';
import { maxPosition, resolveStart, type StartSource } from './group-start.js';
import { fileKey, nameKey, validateName } from './names.js';
import type { Group, GroupConfig, GroupInfo, StoreError } from './types.js';

/** How long a group's moved position may stay in memory only. */
const CHECKPOINT_MS = 200;

export class GroupTable implements GroupTableHooks, StartSource {
  readonly #groups = new Map<string, DiskGroup>();
  readonly #declaring = new Map<string, Promise<DiskGroup>>();
  readonly #ackAlarm: Alarm;
  readonly #checkpointAlarm: Alarm;

  constructor(readonly port: TopicPort) {
    this.#ackAlarm = new Alarm(port.clock, () => void this.#expireAcks());
    this.#checkpointAlarm = new Alarm(port.clock, () => void this.checkpoint(false));
  }

  // ---------------------------------------------------------------- start positions (group-start.ts)

  get firstOffset(): number {
    return this.port.reader.firstOffset;
  }
  get endOffset(): number {
    return this.port.reader.visibleEnd;
  }
  positionOf(name: string): number | undefined {
    return this.#groups.get(nameKey(name))?.position;
  }
  maxPosition(): number {
    return maxPosition(this.#groups.values());
  }
  /** The lowest position of any group, or +Infinity without groups. */
  minPosition(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const g of this.#groups.values()) if (g.position < min) min = g.position;
    return min;
  }
  async idAt(offset: number): Promise<string | undefined> {
    return (await this.port.reader.read(offset))?.id;
  }
  seekTime(time: number): Promise<number> {
    return this.port.reader.seekTime(time);
  }
  resolveStart(config: GroupConfig, isNew: boolean): Promise<number | undefined> {
    return resolveStart(config, isNew, this);
  }

  // ---------------------------------------------------------------- the table

  /** Open every group found in `groups/`; one that cannot be opened is logged and skipped. */
  async load(): Promise<void> {
    for (const f of await fs.promises.readdir(this.port.groupsDir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const g = await DiskGroup.open(this.port, this, f.slice(0, -5));
        this.#groups.set(nameKey(g.name), g);
      } catch (err) {
        this.port.logError(err, `cannot open group file ${f}`);
      }
    }
    let next = Number.POSITIVE_INFINITY;
    for (const g of this.#groups.values()) {
      for (const e of g.pending.values()) if (e.deadline < next) next = e.deadline;
    }
    this.armDeadline(next);
  }

  get size(): number {
    return this.#groups.size;
  }

  get(name: string): DiskGroup | undefined {
    return this.#groups.get(nameKey(name));
  }

  all(): Group[] {
    return [...this.#groups.values()];
  }

  info(): GroupInfo[] {
    return [...this.#groups.values()].map((g) => g.info());
  }

  /** Create or update a group. `closedError` makes the error a declare racing with a close fails with. */
  async declare(given: string, config: GroupConfig, closedError: () => StoreError): Promise<Group> {
    const name = validateName('group', given);
    if (this.port.closed) throw closedError();
    const key = nameKey(name);
    return declareOnce(
      this.#groups,
      this.#declaring,
      key,
      async () => {
        const pos = (await this.resolveStart(config, true)) ?? this.firstOffset;
        const now = this.port.clock.now();
        const st: GroupState = {
          name,
          filter: config.filter ?? '',
          mask: config.mask ?? 0,
          position: pos,
          ackWindow: config.ackWindow,
          ackTimeoutMs: config.ackTimeoutMs,
          maxDeliver: config.maxDeliver,
          creator: config.creator ?? '',
          createdTime: now,
          lastUpdatedTime: now,
          deadLettered: 0,
        };
        const g = await DiskGroup.open(this.port, this, fileKey(name), st);
        if (this.port.closed) {
          await g.destroy(false);
          throw closedError();
        }
        this.#groups.set(key, g);
        return g;
      },
      (g) => g.update(config),
    );
  }

  async remove(name: string): Promise<boolean> {
    const key = nameKey(name);
    const g = this.#groups.get(key);
    if (g === undefined) return false;
    this.#groups.delete(key);
    await g.destroy(true);
    return true;
  }

  /** Every group moves to the end of the (emptied) log. */
  async emptyAll(): Promise<void> {
    for (const g of this.#groups.values()) await g.empty();
  }

  /** Drop what retention deleted from every group's pending table and position. */
  dropBelow(first: number): void {
    for (const g of this.#groups.values()) g.dropBelow(first);
  }

  // ---------------------------------------------------------------- timers

  armDeadline(at: number): void {
    if (!this.port.closed) this.#ackAlarm.setEarlier(at);
  }

  scheduleCheckpoint(): void {
    if (this.port.closed || this.#checkpointAlarm.at !== Number.POSITIVE_INFINITY) return;
    this.#checkpointAlarm.setIn(CHECKPOINT_MS);
  }

  /** Write positions that moved (all of them, and fsynced, with `sync`). */
  async checkpoint(sync: boolean): Promise<void> {
    for (const g of this.#groups.values()) {
      if (!g.dirty && !sync) continue;
      await g.checkpoint(sync).catch((err) => this.port.logError(err, 'group checkpoint failed'));
    }
  }

  /** Queue expired deliveries for redelivery (dead-lettering exhausted ones), wake consumers, re-arm. */
  async #expireAcks(): Promise<void> {
    if (this.port.closed) return;
    const now = this.port.clock.now();
    let next = Number.POSITIVE_INFINITY;
    let ready = false;
    for (const g of this.#groups.values()) {
      try {
        const r = await g.tick(now);
        if (r.ready) ready = true;
        if (r.nextDeadline < next) next = r.nextDeadline;
      } catch (err) {
        this.port.logError(err, 'ack timer failed');
      }
    }
    if (ready) this.port.notify();
    if (next < Number.POSITIVE_INFINITY) this.armDeadline(Math.max(next, this.port.clock.now() + 1));
  }

  stopTimers(): void {
    this.#ackAlarm.cancel();
    this.#checkpointAlarm.cancel();
  }

  /** Checkpoint (fsynced) and close every group. */
  async close(): Promise<void> {
    this.stopTimers();
    for (const g of this.#groups.values()) await g.close();
  }

  /** Stop every group without writing (the topic is being removed). */
  async destroy(): Promise<void> {
    this.stopTimers();
    for (const g of this.#groups.values()) await g.destroy(false);
  }
}
