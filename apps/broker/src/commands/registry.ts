// The client commands of `zbus` (everything but `serve` and `proxy`): name → handler, and their usage lines.
import { declare, empty, groups, rm, topics } from './admin.js';
import { bench } from './bench.js';
import { pub } from './pub.js';
import { rpc } from './rpc.js';
import { stat } from './stat.js';
import { sub } from './sub.js';

export type Command = (argv: string[]) => Promise<number>;

export const CLIENT_COMMANDS: Readonly<Record<string, Command>> = {
  pub,
  sub,
  rpc,
  topics,
  groups,
  declare,
  rm,
  empty,
  stat,
  bench,
};

export const CLIENT_USAGE = `  zbus pub <topic> [body|-]  publish a message (or each line of stdin)
  zbus sub <topic>           print messages as they come
  zbus rpc <topic> <module.method> [params...]
                             call an RPC service and print the JSON result
  zbus topics                list topics
  zbus groups <topic>        list a topic's consume groups
  zbus declare <topic>       create or update a topic and a group
  zbus rm <topic>            remove a topic (or --group)
  zbus empty <topic>         remove a topic's messages (or move --group to the end)
  zbus stat                  live rates per topic
  zbus bench pub|sub|rpc     load test with a latency report`;

export const CLIENT_NOTE = `Client commands take --server h:p [ZBUS_SERVER] and --token [ZBUS_TOKEN]; 'zbus <command> --help' shows
each one's options and examples. Exit codes: 0 ok, 1 failed, 2 usage.`;

/** The handler of a client command, or undefined. */
export function clientCommand(name: string): Command | undefined {
  return Object.hasOwn(CLIENT_COMMANDS, name) ? CLIENT_COMMANDS[name] : undefined;
}
