// How a stored message is rewritten for delivery (zbus-protocol.md §7.6): it travels as a 200 response whose
// `id` is the consume request's id, with the stored id, url, method and status moved into `origin_*` headers
// so that clients can restore them.
import { type Message, MessageDecoder, ZbusError } from '@zbus/protocol';
import type { Delivery, StoredRecord } from '../store/types.js';

/**
 * Stored records were validated on the way in (a broker may have taken more headers or bytes under other limits
 * than it runs with now), so decoding them again applies no limits.
 */
const STORED_LIMITS = {
  maxHeaderBytes: Number.MAX_SAFE_INTEGER,
  maxHeaderCount: Number.MAX_SAFE_INTEGER,
  maxBodyBytes: Number.MAX_SAFE_INTEGER,
  maxUrlBytes: Number.MAX_SAFE_INTEGER,
};

// One decoder, reused for every stored record (a record is exactly one message): a decoder per delivery costs
// its limits check and per-message tables on the hot consume path. Decoding is synchronous, so one is enough.
let storedDecoder: MessageDecoder | undefined;
let decoded: Message | undefined;

export function decodeStored(data: Uint8Array): Message {
  storedDecoder ??= new MessageDecoder((m) => {
    decoded = m;
  }, STORED_LIMITS);
  const d = storedDecoder;
  decoded = undefined;
  try {
    d.push(data);
  } catch (err) {
    storedDecoder = undefined; // an errored decoder stays errored
    throw err;
  }
  const m = decoded;
  decoded = undefined;
  if (m === undefined || d.bufferedBytes !== 0) {
    storedDecoder = undefined;
    throw new ZbusError('ZBUS_ERR_STORE', 'a stored record is not one whole message');
  }
  return m;
}

export function buildDelivery(
  d: Delivery | StoredRecord,
  requestId: string,
  topic: string,
  group: string | undefined,
): Message {
  const m = decodeStored(d.data);
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
  const retry = (d as Delivery).retry;
  if (retry !== undefined && retry > 0) m.set('retry', retry);
  m.delete('token');
  return m;
}
