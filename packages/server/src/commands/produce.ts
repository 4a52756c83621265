// produce: store a message and answer with the durability the store met. On RPC and proxy topics the
// answer comes from the service through `route`; with nobody consuming, the caller gets 503 at once.
import { Mask, ZbusError } from '@zbus/protocol';
import { errorReply } from '../errors.js';
import { decimalText, encodeStored, type StoredLines, storedLines } from '../mq/delivery.js';
import type { Session } from '../session.js';
import type { AppendInput, AppendResult, Topic } from '../store/types.js';
import type { CommandContext } from './context.js';
import { deliverAt, intHeader, requireTopic } from './lookup.js';
import { replyFailure, storedAck } from './reply.js';

const MAX_ID = 39;
const MAX_TAG = 127;

export function isRpcTopic(topic: Topic): boolean {
  return (topic.mask & (Mask.Rpc | Mask.Proxy)) !== 0;
}

/**
 * Only RPC-mask topics turn a bodiless URL into an RPC body (§4.2); a PROXY topic keeps the raw request, which
 * the proxy forwards as it came.
 */
export function hasRpcMask(topic: Topic): boolean {
  return (topic.mask & Mask.Rpc) !== 0;
}

/** The stored header lines each connection's produces repeat (encodeStored's `kept`). */
const keptLines = new WeakMap<Session, StoredLines>();

function keptFor(session: Session): StoredLines {
  let kept = keptLines.get(session);
  if (kept === undefined) {
    kept = storedLines();
    keptLines.set(session, kept);
  }
  return kept;
}

export function produce(ctx: CommandContext): void | Promise<void> {
  const { msg, state, session, ticket } = ctx;
  // 0.11 answered these errors only when the producer asked for an ack; zbus-ts always does, so that a
  // fire-and-forget producer or an RPC caller (which sends ack: false) learns at once that nothing was
  // stored instead of waiting for its own timeout. 0.11 clients ignore a reply they did not wait for.
  if (msg.id !== undefined && msg.id.length > MAX_ID) {
    throw new ZbusError('ZBUS_ERR_BAD_REQUEST', `Bad Format, Message.Id length should <= ${MAX_ID}`);
  }
  if (msg.tag !== undefined && msg.tag.length > MAX_TAG) {
    throw new ZbusError('ZBUS_ERR_BAD_REQUEST', `Bad Format, Message.Tag length should <= ${MAX_TAG}`);
  }
  const topic = requireTopic(ctx);
  const rpc = isRpcTopic(topic);
  // No service here: with a shared store another broker may have one (rpc/relay.ts), else 503 at once.
  const unserved = rpc && state.dispatcher.topicConsumers(topic) === 0;
  const relay = unserved ? state.relay : undefined;
  if (unserved && !relay) {
    state.metrics.rpcNoResponders++;
    throw new ZbusError('ZBUS_ERR_NO_RESPONDERS', `no service is consuming ${topic.name} (no responders)`);
  }
  const at = deliverAt(ctx, state.clock);
  const timeout = intHeader(ctx, 'timeout');
  const id = msg.headers.id!; // the broker gives every request an id
  const input: AppendInput = {
    id,
    tag: msg.tag,
    data: encodeStored(msg, id, topic.name, true, keptFor(session)),
  };
  if (at !== undefined) input.deliverAt = at;

  let timeoutMs = 0;
  if (rpc) {
    state.metrics.rpcRequests++;
    timeoutMs = timeout !== undefined && timeout > 0 ? timeout : state.options.rpcTimeoutMs;
    // A plain-HTTP caller (RPC by URL) gets the routed reply as the answer to its request (the call keeps its
    // ticket); a zbus client matches it by id on its own.
    state.rpc.add(
      session,
      id,
      topic.name,
      timeoutMs,
      () => {
        state.metrics.rpcTimeouts++;
        const reply = errorReply(
          new ZbusError('ZBUS_ERR_TIMEOUT', `${topic.name} did not answer within ${timeoutMs} ms (timeout)`),
          topic.name,
        );
        reply.set('id', id);
        if (ticket.ordered) ticket.send(reply);
        else session.push(reply);
      },
      ticket.ordered ? ticket : undefined,
    );
  }

  if (relay) {
    // The reply comes back over the link; the request is done here once sent (it must not hold the
    // connection's in-flight budget for as long as the service takes).
    relay.forward(session, topic.name, input.id, input.data, timeoutMs).catch((err: unknown) => {
      if (!state.rpc.settle(session.id, input.id)) return; // answered 504 meanwhile
      const reply = errorReply(err, topic.name);
      reply.set('id', input.id);
      if (ticket.ordered) ticket.send(reply);
      else session.push(reply);
    });
    if (!ticket.ordered) ticket.none();
    return;
  }
  if (topic.appendNow !== undefined) {
    // A memory topic (every RPC topic is one unless declared otherwise): stored at once, no promise per call.
    let r: AppendResult;
    try {
      r = topic.appendNow(input);
    } catch (err) {
      refused(ctx, topic, rpc, err);
      return;
    }
    stored(ctx, topic, rpc, r);
    return;
  }
  if (topic.appendThen !== undefined) {
    // A disk topic: answered when its write batch completes, with no promise per produce; the request stays in
    // flight until then. A throw here must not reach the store's writer, which answers a whole batch in a loop.
    ticket.answersLater = true;
    topic.appendThen(
      input,
      (r) => {
        try {
          stored(ctx, topic, rpc, r);
        } catch (err) {
          replyFailure(state, ticket, err, msg.topic);
        }
      },
      (err: unknown) => refused(ctx, topic, rpc, err),
    );
    return;
  }
  return topic.append(input).then(
    (r) => stored(ctx, topic, rpc, r),
    (err: unknown) => refused(ctx, topic, rpc, err),
  );
}

/** The message is stored: the producer gets its ack (an RPC caller gets the service's answer instead). */
function stored(ctx: CommandContext, topic: Topic, rpc: boolean, r: AppendResult): void {
  const { msg, state, ticket } = ctx;
  state.metrics.countProduced(topic.name);
  if (rpc) {
    if (!ticket.ordered) ticket.none();
    return;
  }
  if (!msg.ack) {
    ticket.none();
    return;
  }
  const reply = storedAck(r.timestamp, topic.name);
  const h = reply.headers;
  h.durable = r.durability;
  if (r.offset >= 0) h.offset = decimalText(r.offset);
  if (r.duplicate) h.duplicate = 'true';
  if (r.deliverAt !== undefined) h.deliver_at = String(r.deliverAt);
  ticket.send(reply);
}

/** The store refused the message: the producer gets the error, unless nobody waits for an answer. */
function refused(ctx: CommandContext, topic: Topic, rpc: boolean, err: unknown): void {
  const { msg, state, ticket } = ctx;
  if (rpc) state.rpc.settle(ctx.session.id, msg.headers.id!);
  else if (!msg.ack) {
    state.log.warn({ err, topic: topic.name }, 'produce without ack failed');
    ticket.none();
    return;
  }
  replyFailure(state, ticket, err, msg.topic);
}
