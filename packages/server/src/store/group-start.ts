// Where a new or re-declared group starts reading, the same for every kind of topic.
import { type GroupConfig, StoreError } from './types.js';

/** What the start rules need to know about a topic. */
export interface StartSource {
  /** First offset still stored. */
  readonly firstOffset: number;
  /** The offset after the last visible record. */
  readonly endOffset: number;
  /** The position of group `name`, if it exists. */
  positionOf(name: string): number | undefined;
  /** The most advanced position of any group, or -1 without groups. */
  maxPosition(): number;
  /** The id stored at `offset`, if any. */
  idAt(offset: number): Promise<string | undefined>;
  /** The first offset stored at or after `time`. */
  seekTime(time: number): Promise<number>;
}

/** The most advanced position of `groups`, or -1 when there are none. */
export function maxPosition(groups: Iterable<{ position: number }>): number {
  let max = -1;
  for (const g of groups) if (g.position > max) max = g.position;
  return max;
}

/**
 * The position a new (`isNew`) or re-declared group starts at; undefined: keep the current one. `start.copy`
 * copies a group; a new group otherwise copies the most advanced one (0.11, zbus-protocol.md §7.3), so that it
 * does not replay history; `start.offset` (checked against `start.msgId`) and `start.time` override both.
 */
export async function resolveStart(
  config: GroupConfig,
  isNew: boolean,
  src: StartSource,
): Promise<number | undefined> {
  const start = config.start;
  let pos: number | undefined;
  if (start?.copy !== undefined) pos = src.positionOf(start.copy);
  if (pos === undefined && isNew) {
    const max = src.maxPosition();
    pos = max >= 0 ? max : src.firstOffset;
  }
  if (start?.offset !== undefined) {
    if (start.msgId !== undefined && (await src.idAt(start.offset)) !== start.msgId) {
      throw new StoreError(
        'ZBUS_ERR_SEEK',
        `seek by offset failed: offset ${start.offset} does not hold message ${start.msgId}`,
      );
    }
    pos = Math.min(Math.max(start.offset, src.firstOffset), src.endOffset);
  } else if (start?.time !== undefined) {
    pos = await src.seekTime(start.time);
  }
  return pos;
}
