// Small builders for replies, shared by the command handlers and the plain-HTTP pages.
import { Message } from '@zbus/protocol';

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

/** 200 with a JSON body (info shapes). */
export function okJson(value: unknown, topic?: string): Message {
  return textReply(200, 'application/json', JSON.stringify(value), topic);
}
