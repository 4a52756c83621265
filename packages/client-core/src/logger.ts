// The clients log through a pino-compatible interface (`logger.warn({ err, topic }, 'message')`), so an app passes
// its own pino (or any logger with these four methods) and the clients depend on no logging library.

/** One level of a pino-compatible logger: `(object, message)` or `(message)`. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** What the clients log through: a subset of pino's `Logger` (pass a pino logger, or anything alike). */
export interface Logger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
}

function toConsole(write: (...args: unknown[]) => void): LogFn {
  return ((obj: object | string, msg?: string) => {
    if (typeof obj === 'string') write(`zbus: ${obj}`);
    else write(`zbus: ${msg ?? ''}`, obj);
  }) as LogFn;
}

const ignore: LogFn = (() => {}) as LogFn;

/**
 * The default: errors to `console.error`, nothing else, so that a failure nobody listens for (a consumer
 * handler that throws with no `onError`) is not lost, while a client riding through a broker restart prints
 * nothing (connection losses are `warn`, reconnects `info`: pass a logger to see them).
 */
export const consoleLogger: Logger = {
  error: toConsole((...a) => console.error(...a)),
  warn: ignore,
  info: ignore,
  debug: ignore,
};

/** Logs nothing: `logger: silentLogger`. */
export const silentLogger: Logger = { error: ignore, warn: ignore, info: ignore, debug: ignore };
