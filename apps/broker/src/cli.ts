#!/usr/bin/env node
// `zbus`: the broker's command line. `npx @zbus/broker` and `zbus serve` start a broker.
import { CLIENT_NOTE, CLIENT_USAGE, clientCommand } from './commands/registry.js';
import { serve } from './serve.js';

const USAGE = `zbus ${__ZBUS_VERSION__}: message broker (MQ + RPC) on one port for TCP, HTTP and WebSocket

Usage:
  zbus [serve] [options]     start a broker (the default command)
  zbus proxy [options]       forward an entry topic's HTTP requests to a service (zbus proxy --help)
${CLIENT_USAGE}
  zbus --help | --version

Run 'zbus serve --help' for the broker's options.
${CLIENT_NOTE}
`;

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version' || first === '-V') {
    process.stdout.write(`${__ZBUS_VERSION__}\n`);
    return 0;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (first === undefined || first.startsWith('-')) return serve(argv);
  if (first === 'serve') return serve(rest);
  // Loaded on demand: `serve` needs no HTTP client (undici), which keeps the broker's start-up short.
  if (first === 'proxy') return (await import('./proxy/cli.js')).proxy(rest);
  const command = clientCommand(first);
  if (command !== undefined) return command(rest);
  process.stderr.write(`zbus: unknown command '${first}'\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`zbus: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
