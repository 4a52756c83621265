// Lookups shared by the handlers, throwing the 0.11 errors.
import { ZbusError } from '@zbus/protocol';
import type { Clock } from '../store/clock.js';
import { validateName } from '../store/names.js';
import type { Group, Topic } from '../store/types.js';
import type { CommandContext } from './context.js';
import { MAX_DURATION_MS, NUMERIC_HEADERS, type NumericHeader } from './header-ranges.js';

export function requireTopicName(ctx: CommandContext): string {
  const name = ctx.msg.topic;
  if (name === undefined || name === '')
    throw new ZbusError('ZBUS_ERR_BAD_REQUEST', 'Bad Format, Missing topic');
  return name;
}

export function requireTopic(ctx: CommandContext): Topic {
  const name = requireTopicName(ctx);
  const topic = ctx.topic ?? ctx.state.store.topic(name);
  if (!topic) {
    validateName('topic', name); // a name that can never exist is a 400, not a 404
    throw new ZbusError('ZBUS_ERR_NOT_FOUND', `Topic(${name}) Not Found`);
  }
  return topic;
}

/** The group named by `consume_group`, defaulting to the topic's own name (0.11). */
export function groupName(ctx: CommandContext, topic: Topic): string {
  const g = ctx.msg.consumeGroup;
  return g === undefined || g === '' ? topic.name : g;
}

export function requireGroup(ctx: CommandContext, topic: Topic): Group {
  const name = groupName(ctx, topic);
  const group = topic.group(name);
  if (!group) throw new ZbusError('ZBUS_ERR_NOT_FOUND', `ConsumeGroup(${name}) Not Found`);
  return group;
}

/** Digits only, with an optional minus sign: no `1e3`, `0x10`, `1.0`, blanks or `+`. */
const INTEGER = /^-?\d{1,16}$/;

/** Where a request narrows a header's range (a memory topic's backlog): the lower maximum, and what it applies to. */
export interface NarrowerRange {
  max: number;
  /** Said in the error: `topic_max_backlog of a memory topic must be ...`. */
  of: string;
}

/**
 * A numeric header, or undefined when absent or empty. Only names with a range in NUMERIC_HEADERS are accepted, so
 * a new numeric header cannot skip the check: anything but an integer within its range is a 400 naming it.
 */
export function intHeader(
  ctx: CommandContext,
  name: NumericHeader,
  narrower?: NarrowerRange,
): number | undefined {
  const v = ctx.msg.headers[name];
  if (v === undefined || v === '') return undefined;
  const { min } = NUMERIC_HEADERS[name];
  const max = narrower ? Math.min(narrower.max, NUMERIC_HEADERS[name].max) : NUMERIC_HEADERS[name].max;
  const n = INTEGER.test(v) ? Number(v) : Number.NaN;
  if (!(n >= min && n <= max)) {
    const what = narrower ? `${name} of ${narrower.of}` : name;
    throw new ZbusError(
      'ZBUS_ERR_BAD_REQUEST',
      `Bad Format, ${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(v.slice(0, 32))}`,
    );
  }
  return n;
}

/** When a produce (or nack) asks to be delivered, from `deliver_at` or `delay`; at most MAX_DURATION_MS ahead. */
export function deliverAt(ctx: CommandContext, clock: Clock): number | undefined {
  // The clock is read only for a message that asks: Date.now() is a call into V8's runtime.
  const at = intHeader(ctx, 'deliver_at');
  if (at !== undefined) {
    if (at - clock.now() > MAX_DURATION_MS) {
      throw new ZbusError(
        'ZBUS_ERR_BAD_REQUEST',
        `Bad Format, deliver_at must be at most ${MAX_DURATION_MS} ms ahead, got ${at}`,
      );
    }
    return at;
  }
  const delay = intHeader(ctx, 'delay');
  return delay !== undefined && delay > 0 ? clock.now() + delay : undefined;
}

export function boolHeader(ctx: CommandContext, name: string): boolean {
  const v = ctx.msg.headers[name];
  return v !== undefined && (v === '1' || v.toLowerCase() === 'true');
}
