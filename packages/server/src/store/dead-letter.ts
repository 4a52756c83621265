// Dead letters: a message that used up its deliveries in a group moves to `<topic>.dlq`, with the id and tag it
// had. The broker's hook may rewrite the bytes (it adds headers saying why and from where); the store itself
// never parses them.
import type { DeadLetterInfo, StoredRecord, StoreOptions, Topic } from './types.js';

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

/** Append `rec` of `topic`, delivered `deliveries` times to `group`, to the topic's dead-letter topic. */
export async function deadLetter(
  sink: DeadLetterSink,
  topic: string,
  rec: StoredRecord,
  group: string,
  deliveries: number,
): Promise<void> {
  const info: DeadLetterInfo = {
    topic,
    group,
    offset: rec.offset,
    id: rec.id,
    deliveries,
    reason: 'max_deliver',
  };
  const data = sink.deadLetterFn ? sink.deadLetterFn(rec.data, info) : rec.data;
  const dlq = await sink.dlqTopic(topic);
  await dlq.append(rec.tag === undefined ? { id: rec.id, data } : { id: rec.id, tag: rec.tag, data });
}
