// Plain-HTTP endpoints reserved on every broker: /metrics (Prometheus text), /healthz, /readyz. These names
// cannot be topics in the URL form; the `cmd` header still reaches such topics (decisions.md §3).
import type { Message } from '@zbus/protocol';
import type { BrokerState } from '../commands/context.js';
import { textReply } from '../commands/reply.js';
import { renderMetrics, type TopicGauge } from '../metrics/metrics.js';

/**
 * The paths the broker answers itself. Compared, not looked up in a Set: a request's path is a new string each
 * time, and a lookup hashes it first (the URL of every produce by URL).
 */
export function isReservedPath(path: string): boolean {
  return path === '/metrics' || path === '/healthz' || path === '/readyz';
}

function text(status: number, body: string, type = 'text/plain; charset=utf-8'): Message {
  return textReply(status, type, body);
}

/** The path of a URL without its query. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function serveEndpoint(state: BrokerState, path: string, ready: boolean): Message {
  if (path === '/healthz') return text(200, 'ok\n');
  if (path === '/readyz') return ready ? text(200, 'ready\n') : text(503, 'not ready\n');
  const topics: TopicGauge[] = state.store.topics().map((t) => {
    const info = t.info();
    return {
      topic: t.name,
      depth: info.messageDepth,
      bytes: info.bytes,
      corrupt: info.corruptRecords,
      groups: info.groups.map((g) => ({
        group: g.groupName,
        backlog: g.backlog,
        unacked: g.unacked,
        deadLettered: g.deadLettered,
        consumers: state.dispatcher.consumerCount(t.name, g.groupName),
      })),
    };
  });
  let queued = 0;
  for (const s of state.sessions.values()) queued += s.wire.queuedBytes;
  return text(
    200,
    renderMetrics(state.metrics, topics, queued, state.store.commits),
    'text/plain; version=0.0.4; charset=utf-8',
  );
}
