// Dead letters: a message that used up its deliveries in a group moves to `<topic>.dlq`, with the id and tag it
// had. The broker's hook may rewrite the bytes (it adds headers saying why and from where); the store itself
// never parses them.
import type { DeadLetterInfo, Store, StoredRecord, StoreOptions, Topic } from './types.js';

/** What dead-lettering needs from the store. */
export interface DeadLetterSink {
  readonly deadLetterFn: StoreOptions['deadLetter'];
  /** The `<topic>.dlq` topic, declared on first use. */
  dlqTopic(topicName: string): Promise<Topic>;
}

/** The name of `topic`'s dead-letter topic. */
export function dlqName(topic: string): string {
  return `${topic}.dlq`;
}

/** The `<topic>.dlq` topic of `store`, declared on first use. */
export function declareDlq(store: Pick<Store, 'topic' | 'declareTopic'>, topicName: string): Promise<Topic> {
  const name = dlqName(topicName);
  const t = store.topic(name);
  if (t) return Promise.resolve(t);
  // Like any declare without a group, the dead-letter topic gets the default group named as the topic,
  // reading from its first message, so that it can be consumed (and counted) at once.
  return store.declareTopic(name, { mask: 0, creator: 'zbus' }).then(async (dlq) => {
    if (!dlq.group(name)) await dlq.declareGroup(name, { start: { offset: 0 }, creator: 'zbus' });
    return dlq;
  });
}

/**
 * The bytes `rec` of `topic`, delivered `deliveries` times to `group`, is stored with in the dead-letter topic;
 * `error` is the last reason a consumer gave when it nacked it.
 */
export function deadLetterData(
  sink: Pick<DeadLetterSink, 'deadLetterFn'>,
  topic: string,
  rec: StoredRecord,
  group: string,
  deliveries: number,
  error?: string,
): Uint8Array {
  const info: DeadLetterInfo = {
    topic,
    group,
    offset: rec.offset,
    id: rec.id,
    deliveries,
    reason: 'max_deliver',
  };
  if (error !== undefined) info.error = error;
  return sink.deadLetterFn ? sink.deadLetterFn(rec.data, info) : rec.data;
}

/** Append `rec` of `topic`, delivered `deliveries` times to `group` (last nack reason `error`), to its DLQ. */
export async function deadLetter(
  sink: DeadLetterSink,
  topic: string,
  rec: StoredRecord,
  group: string,
  deliveries: number,
  error?: string,
): Promise<void> {
  const data = deadLetterData(sink, topic, rec, group, deliveries, error);
  const dlq = await sink.dlqTopic(topic);
  await dlq.append(rec.tag === undefined ? { id: rec.id, data } : { id: rec.id, tag: rec.tag, data });
}
