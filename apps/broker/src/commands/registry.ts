// The client commands of `zbus` (everything but `serve` and `proxy`): name → handler, and their usage lines.
// Each command is loaded on demand, so `zbus serve` never loads the client (nor undici, which it imports).

export type Command = (argv: string[]) => Promise<number>;

const LOADERS: Readonly<Record<string, () => Promise<Command>>> = {
  pub: async () => (await import('./pub.js')).pub,
  sub: async () => (await import('./sub.js')).sub,
  rpc: async () => (await import('./rpc.js')).rpc,
  topics: async () => (await import('./admin.js')).topics,
  groups: async () => (await import('./admin.js')).groups,
  declare: async () => (await import('./admin.js')).declare,
  rm: async () => (await import('./admin.js')).rm,
  empty: async () => (await import('./admin.js')).empty,
  stat: async () => (await import('./stat.js')).stat,
  bench: async () => (await import('./bench.js')).bench,
};

/** The names of the client commands. */
export const CLIENT_COMMANDS: readonly string[] = Object.freeze(Object.keys(LOADERS));

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

/** The handler of a client command (loaded when called), or undefined. */
export function clientCommand(name: string): Command | undefined {
  const load = Object.hasOwn(LOADERS, name) ? LOADERS[name] : undefined;
  if (load === undefined) return undefined;
  return async (argv) => (await load())(argv);
}
