// Small builders for replies, shared by the command handlers.
import { Message } from '@zbus/protocol';

const encoder = new TextEncoder();

/** 200 with a text body; the 0.11 produce/ack reply body is the server time in ms. */
export function okText(body: string, topic?: string): Message {
  const m = new Message({ status: 200 });
  if (topic !== undefined) m.set('topic', topic);
  m.set('content-type', 'text/plain');
  m.body = encoder.encode(body);
  return m;
}

/** 200 with a JSON body (info shapes). */
export function okJson(value: unknown, topic?: string): Message {
  const m = new Message({ status: 200 });
  if (topic !== undefined) m.set('topic', topic);
  m.set('content-type', 'application/json');
  m.body = encoder.encode(JSON.stringify(value));
  return m;
}

export function nowText(): string {
  return String(Date.now());
}
