// Exit codes and the one-line error report every `zbus` command shares (0 ok, 1 failed, 2 usage), kept apart
// from the client helpers so that `zbus serve` and `zbus proxy` use them without loading the client.

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A failure the CLI reports as one line on stderr, with an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILED,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT_USAGE);
}

/** A usage error that ends with the hint to read `zbus <command> --help`. */
export function usageHint(command: string, message: string): CliError {
  return usageError(`${message}\nRun 'zbus ${command} --help' for usage.`);
}

/** True for a zbus error about a bad option (a bad value given on the command line). */
export function isInvalidArgument(err: unknown): err is Error {
  return err instanceof Error && (err as { code?: unknown }).code === 'ZBUS_ERR_INVALID_ARGUMENT';
}

/**
 * Runs a command body, turning errors into `zbus <command>: <message>` on stderr and an exit code; `describe`
 * words the errors that are not the CLI's own.
 */
export async function runCommand(
  command: string,
  body: () => Promise<number>,
  describe: (err: unknown) => string = (err) => (err instanceof Error ? err.message : String(err)),
): Promise<number> {
  try {
    return await body();
  } catch (err) {
    const usage = isInvalidArgument(err);
    const message = err instanceof CliError || usage ? (err as Error).message : describe(err);
    process.stderr.write(`zbus ${command}: ${message}\n`);
    return err instanceof CliError ? err.exitCode : usage ? EXIT_USAGE : EXIT_FAILED;
  }
}

/**
 * `zbus serve` and `zbus proxy`: `build` turns the command line into what to run ('help' for --help), and
 * anything it throws is a usage error; `start` runs it.
 */
export function runLongLived<T>(
  command: string,
  help: string,
  build: () => T | 'help',
  start: (built: T) => Promise<number>,
): Promise<number> {
  return runCommand(command, async () => {
    let built: T | 'help';
    try {
      built = build();
    } catch (err) {
      throw usageHint(command, err instanceof Error ? err.message : String(err));
    }
    if (built === 'help') {
      process.stdout.write(help);
      return EXIT_OK;
    }
    return start(built);
  });
}
