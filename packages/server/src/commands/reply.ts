// Small builders for replies, shared by the command handlers and the plain-HTTP pages.
import { Message } from '@zbus/protocol';
import { CheckedReply } from '../checked-reply.js';
import { errorParts, errorReply } from '../errors.js';
import { timestampText } from '../mq/delivery.js';
import type { ReplyTicket } from '../session.js';
import type { BrokerState } from './context.js';

/** A reply with a status, a content type and a text body (and the `topic` header when given). */
export function textReply(status: number, type: string, body: string, topic?: string): Message {
  const m = new Message({ status, body });
  if (topic !== undefined) m.headers.topic = topic;
  m.headers['content-type'] = type;
  return m;
}

/** 200 with a text body. */
export function okText(body: string, topic?: string): Message {
  return textReply(200, 'text/plain', body, topic);
}

/**
 * 0.11's acknowledgement (`ReplyKit.reply200`: produce, ack, remove, empty, track_pub): 200, `topic`, and a time
 * in ms as the body, with no content type, as 0.11 sends it. zbus-python decodes a `text/*` body into a str.
 */
export function okAck(timeMs: number, topic?: string): Message {
  const m = new Message({ status: 200, body: String(timeMs) });
  if (topic !== undefined) m.headers.topic = topic;
  return m;
}

/**
 * The body of the last storedAck, for its time's text: the acks of one millisecond share their bytes rather than
 * each encoding its own (a view of ~100 bytes per produce, a twentieth of the broker's garbage per message).
 */
let ackText = '';
let ackBody: Uint8Array = Buffer.alloc(0);

/** okAck of a message stored in `topic` (a store's topic name, checked when it was declared): a CheckedReply. */
export function storedAck(timeMs: number, topic: string): CheckedReply {
  const text = timestampText(timeMs);
  if (text !== ackText) {
    ackText = text;
    ackBody = Buffer.from(text, 'latin1');
  }
  const m = new CheckedReply(200, text, ackBody);
  m.headers.topic = topic;
  return m;
}

/** 200 with a JSON body (info shapes). */
export function okJson(value: unknown, topic?: string): Message {
  return textReply(200, 'application/json', JSON.stringify(value), topic);
}

/** A request failed: counted by code, logged when the broker is at fault, and answered unless it was already. */
export function replyFailure(state: BrokerState, ticket: ReplyTicket, err: unknown, topic?: string): void {
  const { code, status } = errorParts(err);
  state.metrics.error(code);
  if (status >= 500 && status !== 503 && status !== 504) state.log.error({ err }, 'command failed');
  if (ticket.done) return;
  ticket.send(errorReply(err, topic));
}
