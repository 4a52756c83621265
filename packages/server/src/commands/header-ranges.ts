// The range of every numeric request header, checked in one place (`intHeader` in lookup.ts, which takes only
// names listed here): a value that is not a plain integer or falls outside its range is a 400 naming the header,
// before a handler, a timer or the store sees it (issue 14 item 19). docs/protocol.md lists the same ranges.
import { Mask } from '@zbus/protocol';

const DAY_MS = 86_400_000;
/** The longest duration a header may ask for (delays, timeouts, windows of time): 365 days. */
export const MAX_DURATION_MS = 365 * DAY_MS;
/** The latest time a JavaScript Date holds, as epoch ms. */
const MAX_EPOCH_MS = 8.64e15;
const MAX_COUNT = 1_000_000;
const MAX_INT32 = 2 ** 31 - 1;
const SAFE = Number.MAX_SAFE_INTEGER;
/** Every mask bit zbus knows (0.11 numbering); others would change a topic in ways nobody asked for. */
const ALL_MASK_BITS = Object.values(Mask).reduce<number>((all, bit) => all | bit, 0);

export interface HeaderRange {
  readonly min: number;
  readonly max: number;
  /** The commands that read the header (the tests send each out-of-range value to each of them). */
  readonly commands: readonly string[];
}

export const NUMERIC_HEADERS = {
  offset: { min: 0, max: SAFE, commands: ['consume', 'ack', 'nack', 'touch'] },
  consume_window: { min: 0, max: MAX_INT32, commands: ['consume'] }, // above maxConsumeWindow: clamped to it
  consume_timeout: { min: 0, max: MAX_DURATION_MS, commands: ['consume'] },
  delay: { min: 0, max: MAX_DURATION_MS, commands: ['produce', 'nack'] },
  deliver_at: { min: 0, max: MAX_EPOCH_MS, commands: ['produce'] }, // and at most MAX_DURATION_MS ahead
  timeout: { min: 0, max: MAX_DURATION_MS, commands: ['produce'] },
  origin_status: { min: 100, max: 999, commands: ['route'] },
  topic_mask: { min: 0, max: ALL_MASK_BITS, commands: ['declare'] },
  topic_retention_bytes: { min: 0, max: SAFE, commands: ['declare'] },
  topic_retention_ms: { min: 0, max: SAFE, commands: ['declare'] },
  topic_retention_messages: { min: 0, max: SAFE, commands: ['declare'] },
  topic_max_backlog: { min: 0, max: SAFE, commands: ['declare'] }, // memory topics: MAX_MEMORY_CAPACITY (declare.ts narrows it)
  topic_max_message_bytes: { min: 1, max: SAFE, commands: ['declare'] },
  topic_dedupe_window: { min: 0, max: MAX_DURATION_MS, commands: ['declare'] },
  group_mask: { min: 0, max: ALL_MASK_BITS, commands: ['declare'] },
  group_start_offset: { min: 0, max: SAFE, commands: ['declare'] },
  group_start_time: { min: 0, max: MAX_EPOCH_MS, commands: ['declare'] },
  group_ack_window: { min: 1, max: MAX_COUNT, commands: ['declare'] },
  group_ack_timeout: { min: 1, max: MAX_DURATION_MS, commands: ['declare'] },
  group_max_deliver: { min: 1, max: MAX_COUNT, commands: ['declare'] },
} as const satisfies Record<string, HeaderRange>;

export type NumericHeader = keyof typeof NUMERIC_HEADERS;
