// Retention of a disk topic: whole sealed segments are deleted from the head once the topic is over its bytes,
// messages or age limit (never the active segment). Checked after every segment roll and, with an age limit, on a
// timer; groups are moved past what was deleted.
import { Alarm, type Clock } from './clock.js';
import type { LogWriter } from './log-writer.js';
import type { RetentionPolicy } from './types.js';

/** The age check runs every half `maxAgeMs`, within these bounds. */
const MIN_AGE_CHECK_MS = 100;
const MAX_AGE_CHECK_MS = 60_000;

export class Retention {
  readonly #alarm: Alarm;
  #stopped = false;

  constructor(
    readonly writer: LogWriter,
    readonly clock: Clock,
    /** The topic's policy, read at each check (a re-declare may change it). */
    readonly policy: () => RetentionPolicy | undefined,
    /** Called with the new first offset after segments were deleted. */
    readonly onDropped: (firstOffset: number) => void,
    readonly onError: (err: unknown) => void,
  ) {
    this.#alarm = new Alarm(clock, () => {
      this.#armAgeCheck();
      void this.apply();
    });
  }

  /** (Re)start the age check for the current policy. */
  start(): void {
    this.#alarm.cancel();
    this.#armAgeCheck();
  }

  #armAgeCheck(): void {
    const age = this.policy()?.maxAgeMs;
    if (this.#stopped || age === undefined || age <= 0) return;
    this.#alarm.setIn(Math.min(Math.max(age / 2, MIN_AGE_CHECK_MS), MAX_AGE_CHECK_MS));
  }

  /** Delete whole sealed segments beyond the limits; move groups past them. */
  async apply(): Promise<void> {
    const r = this.policy();
    if (r === undefined || this.#stopped) return;
    const now = this.clock.now();
    try {
      // Sizes and counts keep at least the limit: the oldest segment goes only if what remains still meets it.
      const n = await this.writer.dropHead((seg, log) => {
        const rest = log.segments[1]!;
        if (r.maxBytes !== undefined && r.maxBytes > 0 && log.bytes - seg.size >= r.maxBytes) return true;
        if (r.maxMessages !== undefined && r.maxMessages > 0 && log.visibleEnd - rest.base >= r.maxMessages) {
          return true;
        }
        if (r.maxAgeMs !== undefined && r.maxAgeMs > 0 && seg.lastTimestamp < now - r.maxAgeMs) return true;
        return false;
      });
      if (n > 0) this.onDropped(this.writer.log.firstOffset);
    } catch (err) {
      this.onError(err);
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#alarm.cancel();
  }
}
