// The broker's code before the stored form (mq/delivery.ts), kept as the oracle of the delivery 0.11 shapes
// (stored-form.test.ts) and as the baseline of bench/delivery.mjs: produce stored the request minus six headers,
// and each delivery decoded the stored message and rewrote it.
import { decodeMessage, encodeMessage, type Message } from '@zbus/protocol';
import type { Delivery } from '../../src/store/types.js';

/** How produce stored a message before the stored form: the request minus six headers and the token. */
export function olderRecord(msg: Message): Uint8Array {
  for (const h of ['cmd', 'ack', 'token', 'delay', 'deliver_at', 'timeout']) msg.delete(h);
  if (msg.url.includes('token=')) msg.url = msg.url.replace(/([?&])token=[^&]*&?/, '$1').replace(/[?&]$/, '');
  const cookie = msg.headers.cookie;
  if (cookie?.includes('token')) {
    const rest = cookie
      .split(';')
      .map((p) => p.trim())
      .filter((p) => p !== '' && !/^(?:__Host-)?token\s*=/.test(p))
      .join('; ');
    if (rest === '') msg.delete('cookie');
    else msg.set('cookie', rest);
  }
  return encodeMessage(msg).slice();
}

/** How a delivery was built before the stored form: decode the record, rewrite it, encode it. */
export function olderDelivery(
  d: Delivery,
  requestId: string,
  topic: string,
  group: string | undefined,
): Message {
  const m = decodeMessage(d.data);
  if (m.status === undefined) {
    m.set('origin_method', m.method);
    if (m.url !== '/') m.set('origin_url', m.url);
  } else {
    m.set('origin_status', m.status);
  }
  m.status = 200;
  m.method = 'GET';
  m.url = '/';
  m.set('origin_id', m.headers.id ?? d.id);
  m.set('id', requestId);
  m.set('topic', m.headers.topic ?? topic);
  if (group !== undefined) m.set('consume_group', group);
  m.set('offset', d.offset);
  m.set('timestamp', d.timestamp);
  if (d.retry > 0) m.set('retry', d.retry);
  m.delete('token');
  return m;
}
