// Lookups shared by the handlers, throwing the 0.11 errors.
import { ZbusError } from '@zbus/protocol';
import { validateName } from '../store/names.js';
import type { Group, Topic } from '../store/types.js';
import type { CommandContext } from './context.js';

export function requireTopicName(ctx: CommandContext): string {
  const name = ctx.msg.topic;
  if (name === undefined || name === '')
    throw new ZbusError('ZBUS_ERR_BAD_REQUEST', 'Bad Format, Missing topic');
  return name;
}

export function requireTopic(ctx: CommandContext): Topic {
  const name = requireTopicName(ctx);
  const topic = ctx.state.store.topic(name);
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

/** Integer header, or undefined; a malformed number is a 400 naming the header. */
export function intHeader(ctx: CommandContext, name: string): number | undefined {
  const v = ctx.msg.headers[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n))
    throw new ZbusError('ZBUS_ERR_BAD_REQUEST', `Bad Format, ${name} must be an integer`);
  return n;
}

export function boolHeader(ctx: CommandContext, name: string): boolean {
  const v = ctx.msg.headers[name];
  return v !== undefined && (v === '1' || v.toLowerCase() === 'true');
}
