// `zbus rpc <topic> <module.method> [params...]`: call a service and print its JSON result.
import { RpcInvoker, ZbusError } from '@zbus/client';
import {
  CliError,
  CONNECTION_HELP,
  connect,
  connectionFrom,
  duration,
  EXIT_OK,
  parse,
  run,
  usageError,
} from './common.js';

export const RPC_HELP = `Usage: zbus rpc <topic> <module.method | method> [params...] [options]

Calls a method of the service consuming <topic> and prints its result as JSON. Each param is parsed as JSON
when it parses (1, true, null, "s", [1,2], {"a":1}), else passed as a string. A method without a module
('plus') calls the default module. Exits 1 with the remote message when the method throws (status 600), and
at once when no service consumes the topic.

Options:
      --timeout <ms>   how long to wait for the reply (default 10s)
      --raw            print the reply body as it came, not re-formatted JSON
      --json           print the result as one line of JSON (for jq and scripts)

${CONNECTION_HELP}

Examples:
  zbus rpc MyRpc math.plus 1 2
  zbus rpc MyRpc echo '{"hello":"world"}'
  zbus rpc MyRpc users.find alice --timeout 2s
`;

const OPTIONS = {
  timeout: { type: 'string' },
  raw: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** `'1'` → 1, `'{"a":1}'` → object, `'alice'` → 'alice'. */
export function parseParam(p: string): unknown {
  try {
    return JSON.parse(p);
  } catch {
    return p;
  }
}

export function rpc(argv: string[]): Promise<number> {
  return run('rpc', async () => {
    const { values, positionals } = parse(argv, OPTIONS, 'rpc');
    if (values.help) {
      process.stdout.write(RPC_HELP);
      return EXIT_OK;
    }
    if (values.raw && values.json) throw usageError('--raw and --json do not go together');
    const [topic, target, ...params] = positionals;
    if (topic === undefined || target === undefined) {
      throw usageError("missing <topic> or <module.method>\nRun 'zbus rpc --help' for usage.");
    }
    const dot = target.lastIndexOf('.');
    const module = dot < 0 ? '' : target.slice(0, dot);
    const method = dot < 0 ? target : target.slice(dot + 1);
    if (method === '') throw usageError(`no method in '${target}'`);
    const timeout = duration(values, 'timeout') ?? 10_000;
    if (timeout <= 0) throw usageError('--timeout must be > 0');

    const conn = connectionFrom(values as Record<string, unknown>, process.env);
    const client = await connect(conn, { timeout });
    try {
      const invoker = new RpcInvoker(client, {
        topic,
        module,
        timeout,
        ...(conn.token !== undefined ? { token: conn.token } : {}),
      });
      // A request to a topic that does not exist gets no answer (0.11 answers errors only when acked):
      // ask first, so the caller hears at once instead of after the timeout.
      try {
        await client.queryTopic(topic);
      } catch (err) {
        if ((err as { code?: string }).code === 'ZBUS_ERR_NOT_FOUND') {
          throw new CliError(
            `no service is consuming ${topic}: the topic does not exist (ZBUS_ERR_NOT_FOUND)`,
          );
        }
        throw err;
      }
      let text: string;
      try {
        const call = { module, method, params: params.map(parseParam), timeout };
        if (values.raw) {
          text = (await invoker.invokeRaw(call)).bodyText();
        } else {
          const result = await invoker.invoke(call);
          text = result === undefined ? 'null' : JSON.stringify(result, null, values.json ? undefined : 2);
        }
      } catch (err) {
        throw callError(err, topic, target);
      }
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      return EXIT_OK;
    } finally {
      await client.close();
    }
  });
}

function callError(err: unknown, topic: string, target: string): Error {
  if (!(err instanceof ZbusError)) return err as Error;
  switch (err.code) {
    case 'ZBUS_ERR_RPC':
      return new CliError(`${target} failed: ${err.message}`);
    case 'ZBUS_ERR_NO_RESPONDERS':
      return new CliError(`no service is consuming ${topic} (ZBUS_ERR_NO_RESPONDERS)`);
    case 'ZBUS_ERR_NOT_FOUND':
      return new CliError(`${err.message}: is a service running on ${topic}? (${err.code})`);
    default:
      return err;
  }
}
