// Command name -> handler. The monitor commands (home, login, ...) are served by http/monitor.ts.
import { ack, nack, touch } from './ack.js';
import { empty, query, remove } from './admin.js';
import { consume, unconsume } from './consume.js';
import type { CommandHandler } from './context.js';
import { declare } from './declare.js';
import { heartbeat, ping } from './misc.js';
import { produce } from './produce.js';
import { route } from './route.js';
import { ssl } from './ssl.js';
import { server, tracker, trackPub, trackSub } from './tracker.js';

export const COMMAND_HANDLERS: ReadonlyMap<string, CommandHandler> = new Map<string, CommandHandler>([
  ['produce', produce],
  ['rpc', produce], // 0.8 `/rpc/<topic>/<method>/...`: produce to an RPC topic
  ['consume', consume],
  ['unconsume', unconsume],
  ['ack', ack],
  ['nack', nack],
  ['touch', touch],
  ['route', route],
  ['declare', declare],
  ['query', query],
  ['remove', remove],
  ['empty', empty],
  ['server', server],
  ['tracker', tracker],
  ['track_sub', trackSub],
  ['track_pub', trackPub],
  ['heartbeat', heartbeat],
  ['ping', ping],
  ['ssl', ssl],
]);
