// The broker's store: the embedded local one, or a shared one (`--store nats://...`) loaded on demand, both with
// the broker's group defaults, logger, dead-letter headers and (local) creator migration.
import type { Logger } from 'pino';
import type { Auth } from '../auth/auth.js';
import { migratedCreator } from '../auth/creator.js';
import { loadSharedStoreModule, type SharedStore } from '../cluster/shared-store.js';
import { decodeStored, encodeStored, storedId } from '../mq/delivery.js';
import type { ResolvedBrokerOptions } from '../options.js';
import { dlqName } from '../store/dead-letter.js';
import { openStore } from '../store/store.js';
import type { DeadLetterInfo, Store } from '../store/types.js';
import { flushWrites } from '../transport/tcp-connection.js';

/** Adds headers saying why and from where to a message moved to `<topic>.dlq`. */
function deadLetter(data: Uint8Array, info: DeadLetterInfo): Uint8Array {
  const m = decodeStored(data);
  m.set('dlq_reason', info.reason);
  m.set('dlq_topic', info.topic);
  m.set('dlq_group', info.group);
  m.set('dlq_offset', info.offset);
  m.set('dlq_deliveries', info.deliveries);
  if (info.error !== undefined) m.set('dlq_error', info.error);
  return encodeStored(m, storedId(m) ?? info.id, dlqName(info.topic));
}

/** Opens the store `o.store` names; `shared` is set (the same store) when other brokers share it. */
export async function openBrokerStore(
  o: ResolvedBrokerOptions,
  log: Logger,
  auth: Auth | undefined,
): Promise<{ store: Store; shared?: SharedStore }> {
  const common = {
    groupDefaults: { ackWindow: o.ackWindow, ackTimeoutMs: o.ackTimeoutMs, maxDeliver: o.maxDeliver },
    log,
    deadLetter,
    clock: o.clock,
    maxMemoryTopicBytes: o.maxMemoryTopicBytes,
  };
  if (o.store === 'local') {
    const store = await openStore({
      ...common,
      dataDir: o.dataDir,
      fsync: o.fsync,
      segmentBytes: o.segmentBytes,
      groupCommitWaitMs: o.groupCommitWaitMs,
      migrateCreator: migratedCreator(auth),
      maxOpenFiles: o.maxOpenFiles,
      tailCacheBytes: o.tailCacheBytes,
      // Deliveries of a write batch leave in the batch's own turn (the write ran from a setImmediate).
      afterWake: flushWrites,
    });
    return { store };
  }
  const module = await loadSharedStoreModule(o.store, o.storeModule);
  const shared = await module.openSharedStore({
    ...common,
    url: o.store,
    replicas: o.storeReplicas,
    prefix: o.storePrefix,
    nats: o.nats,
  });
  return { store: shared, shared };
}
