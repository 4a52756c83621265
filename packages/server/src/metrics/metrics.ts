// Counters and gauges for /metrics (Prometheus text format 0.0.4). Counters are plain fields: incrementing
// them is on the hot path, so no labels-map lookup happens per message except for per-topic counts.
import type { CommitStats, Histogram } from '../store/commit-stats.js';

export class Metrics {
  readonly startedAt = Date.now();
  connectionsTotal = 0;
  connectionsRejected = 0;
  /** Connections whose reading is stopped (requests in flight or bytes queued past their limits). */
  connectionsPaused = 0;
  /** Connections closed because their peer did not read (maxWriteQueueBytes, writeStallTimeoutMs). */
  slowConnectionsClosed = 0;
  connections = 0;
  requestsTotal = 0;
  produced = 0;
  delivered = 0;
  acked = 0;
  rpcRequests = 0;
  rpcUnroutableReplies = 0;
  rpcTimeouts = 0;
  rpcNoResponders = 0;
  readonly producedByTopic = new Map<string, number>();
  readonly deliveredByTopic = new Map<string, number>();
  readonly errorsByCode = new Map<string, number>();
  readonly protocolErrorsByCode = new Map<string, number>();

  countProduced(topic: string): void {
    this.produced++;
    this.producedByTopic.set(topic, (this.producedByTopic.get(topic) ?? 0) + 1);
  }

  countDelivered(topic: string): void {
    this.delivered++;
    this.deliveredByTopic.set(topic, (this.deliveredByTopic.get(topic) ?? 0) + 1);
  }

  error(code: string): void {
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }

  protocolError(code: string): void {
    this.protocolErrorsByCode.set(code, (this.protocolErrorsByCode.get(code) ?? 0) + 1);
  }

  forgetTopic(topic: string): void {
    this.producedByTopic.delete(topic);
    this.deliveredByTopic.delete(topic);
  }
}

/** Gauges read from the store at scrape time. */
export interface TopicGauge {
  topic: string;
  depth: number;
  bytes: number;
  corrupt: number;
  groups: Array<{ group: string; backlog: number; unacked: number; consumers: number; deadLettered: number }>;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * `queuedBytes`: bytes queued toward every connection now (Session wires' queuedBytes, summed). `commits`: the
 * store's group-commit figures, when it has them.
 */
export function renderMetrics(
  m: Metrics,
  topics: TopicGauge[],
  queuedBytes: number,
  commits?: CommitStats,
): string {
  const out: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, rows: Array<[string, number]>) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of rows) out.push(`${name}${labels} ${value}`);
  };
  const histogram = (name: string, help: string, h: Histogram) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    let cumulative = 0;
    h.bounds.forEach((le, i) => {
      cumulative += h.counts[i]!;
      out.push(`${name}_bucket{le="${le}"} ${cumulative}`);
    });
    out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
  };
  const one = (v: number): Array<[string, number]> => [['', v]];
  metric(
    'zbus_uptime_seconds',
    'gauge',
    'Seconds since the broker started.',
    one((Date.now() - m.startedAt) / 1000),
  );
  metric('zbus_connections', 'gauge', 'Open client connections.', one(m.connections));
  metric('zbus_connections_total', 'counter', 'Connections accepted.', one(m.connectionsTotal));
  metric(
    'zbus_connections_rejected_total',
    'counter',
    'Connections refused at maxConnections.',
    one(m.connectionsRejected),
  );
  metric(
    'zbus_connections_paused',
    'gauge',
    'Connections not read from: requests in flight or bytes queued toward them past their limits.',
    one(m.connectionsPaused),
  );
  metric(
    'zbus_connections_closed_slow_total',
    'counter',
    'Connections closed because their peer did not read (maxWriteQueueBytes, writeStallTimeoutMs).',
    one(m.slowConnectionsClosed),
  );
  metric(
    'zbus_connections_queued_bytes',
    'gauge',
    'Bytes queued toward client connections and not yet taken by them.',
    one(queuedBytes),
  );
  metric('zbus_requests_total', 'counter', 'Requests handled.', one(m.requestsTotal));
  metric(
    'zbus_messages_produced_total',
    'counter',
    'Messages stored, by topic.',
    [...m.producedByTopic].map(([t, v]) => [`{topic="${escapeLabel(t)}"}`, v]),
  );
  metric(
    'zbus_messages_delivered_total',
    'counter',
    'Messages delivered to consumers, by topic.',
    [...m.deliveredByTopic].map(([t, v]) => [`{topic="${escapeLabel(t)}"}`, v]),
  );
  metric('zbus_acks_total', 'counter', 'Acks received.', one(m.acked));
  metric('zbus_rpc_requests_total', 'counter', 'Requests produced to RPC topics.', one(m.rpcRequests));
  metric('zbus_rpc_timeouts_total', 'counter', 'RPC requests answered 504.', one(m.rpcTimeouts));
  metric('zbus_rpc_no_responders_total', 'counter', 'RPC requests answered 503.', one(m.rpcNoResponders));
  metric(
    'zbus_rpc_unroutable_replies_total',
    'counter',
    'Routed replies whose caller was gone or had timed out.',
    one(m.rpcUnroutableReplies),
  );
  metric(
    'zbus_errors_total',
    'counter',
    'Error replies, by code.',
    [...m.errorsByCode].map(([c, v]) => [`{code="${c}"}`, v]),
  );
  metric(
    'zbus_protocol_errors_total',
    'counter',
    'Malformed or over-limit input, by code.',
    [...m.protocolErrorsByCode].map(([c, v]) => [`{code="${c}"}`, v]),
  );
  metric(
    'zbus_topic_messages',
    'gauge',
    'Messages ever written to the topic.',
    topics.map((t) => [`{topic="${escapeLabel(t.topic)}"}`, t.depth]),
  );
  metric(
    'zbus_topic_bytes',
    'gauge',
    'Bytes of the topic on disk.',
    topics.map((t) => [`{topic="${escapeLabel(t.topic)}"}`, t.bytes]),
  );
  metric(
    'zbus_topic_corrupt_records',
    'gauge',
    'Corrupt records found in the topic.',
    topics.map((t) => [`{topic="${escapeLabel(t.topic)}"}`, t.corrupt]),
  );
  const groups = (pick: (g: TopicGauge['groups'][number]) => number): Array<[string, number]> =>
    topics.flatMap((t) =>
      t.groups.map((g): [string, number] => [
        `{topic="${escapeLabel(t.topic)}",group="${escapeLabel(g.group)}"}`,
        pick(g),
      ]),
    );
  metric(
    'zbus_group_backlog',
    'gauge',
    'Messages the group has not read yet.',
    groups((g) => g.backlog),
  );
  metric(
    'zbus_group_unacked',
    'gauge',
    'Deliveries waiting for an ack.',
    groups((g) => g.unacked),
  );
  metric(
    'zbus_group_consumers',
    'gauge',
    'Consumer sessions of the group.',
    groups((g) => g.consumers),
  );
  metric(
    'zbus_group_dead_lettered_total',
    'counter',
    'Messages moved to the dead-letter topic.',
    groups((g) => g.deadLettered),
  );
  if (commits) {
    histogram(
      'zbus_store_fsync_records',
      'Records made durable by each fdatasync of a topic log (fsync=always group commit).',
      commits.recordsPerSync,
    );
    histogram('zbus_store_fsync_seconds', 'Duration of each of those fdatasyncs.', commits.syncSeconds);
    histogram(
      'zbus_store_commit_wait_seconds',
      'From the first append of a group commit until the fdatasync covering it returned and its acks went out.',
      commits.waitSeconds,
    );
  }
  return `${out.join('\n')}\n`;
}
