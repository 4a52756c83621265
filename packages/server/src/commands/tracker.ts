// server, tracker, track_sub and track_pub (zbus-protocol.md §9).
import { type ServerEvent, ZbusError } from '@zbus/protocol';
import { CLUSTER_TOKEN_HEADER, checkClusterMember } from '../auth/cluster.js';
import { serverInfo, serverKey, trackerInfo } from '../info.js';
import type { BrokerState, CommandContext } from './context.js';
import { okAck, okJson } from './reply.js';

export function server(ctx: CommandContext): void {
  ctx.ticket.send(okJson(serverInfo(ctx.state, ctx.msg.token)));
}

export function tracker(ctx: CommandContext): void {
  ctx.ticket.send(okJson(trackerInfo(ctx.state, ctx.msg.token)));
}

export function trackSub(ctx: CommandContext): void {
  const { state, session } = ctx;
  session.trackerSubscriber = true;
  session.token = ctx.msg.token;
  state.tracker.subscribers.add(session);
  session.onClose((s) => state.tracker.subscribers.delete(s));
  const reply = okJson(trackerInfo(state, session.token));
  reply.set('cmd', 'track_pub');
  ctx.ticket.send(reply);
}

export function trackPub(ctx: CommandContext): void {
  const { state, session, msg } = ctx;
  // Only cluster members report servers: the tracker dials what they report and clients follow it.
  checkClusterMember(state.options.clusterToken, msg.headers[CLUSTER_TOKEN_HEADER]);
  let event: Partial<ServerEvent>;
  try {
    event = msg.json<Partial<ServerEvent>>();
  } catch {
    throw new ZbusError('ZBUS_ERR_BAD_REQUEST', 'Bad Format, track_pub json required');
  }
  const info = event?.serverInfo;
  if (!info || typeof info.serverAddress?.address !== 'string') {
    throw new ZbusError('ZBUS_ERR_BAD_REQUEST', 'Bad Format, track_pub json required');
  }
  const key = serverKey(info.serverAddress);
  if (event.live === false) state.tracker.remove(key, 'server said goodbye');
  else {
    state.tracker.report(key, info, session);
    publishTrackerInfo(state);
  }
  if (msg.ack) ctx.ticket.send(okAck(Date.now()));
  else ctx.ticket.none();
}

/** Pushes TrackerInfo to every `track_sub` session, filtered by each one's token. */
export function publishTrackerInfo(state: BrokerState): void {
  state.tracker.bump();
  for (const s of state.tracker.subscribers) {
    if (s.closed) continue;
    const m = okJson(trackerInfo(state, s.token));
    m.set('cmd', 'track_pub');
    s.push(m);
  }
}
