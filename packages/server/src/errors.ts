// The one place where an error becomes a reply (fastify's lib/error-status.js idea). Bodies keep the 0.11
// texts ("404: Topic(x) Not Found"); the `error_code` header carries the stable code for zbus-ts clients.
import { Message, STATUS_BY_CODE, type ZbusErrorCode } from '@zbus/protocol';

/** 0.11 sends these bodies without the "<status>: " prefix. */
const UNPREFIXED = new Set<string>(['ZBUS_ERR_UNKNOWN_COMMAND', 'ZBUS_ERR_EXCLUSIVE']);

function isCode(code: unknown): code is ZbusErrorCode {
  return typeof code === 'string' && Object.hasOwn(STATUS_BY_CODE, code);
}

export interface ErrorParts {
  code: ZbusErrorCode;
  status: number;
  message: string;
}

export function errorParts(err: unknown): ErrorParts {
  const e = err as { code?: unknown; status?: unknown; message?: unknown };
  if (e && isCode(e.code)) {
    const status = typeof e.status === 'number' ? e.status : STATUS_BY_CODE[e.code];
    return { code: e.code, status, message: String(e.message ?? e.code) };
  }
  if (e && e.code === 'ENOSPC')
    return { code: 'ZBUS_ERR_NO_SPACE', status: 507, message: 'no space left on device' };
  return { code: 'ZBUS_ERR_INTERNAL', status: 500, message: `Exception Caught, ${internalText(err)}` };
}

/**
 * What a client is told of an unexpected error. A system error's message names the file it failed on (Node:
 * "ENAMETOOLONG: name too long, mkdir '/var/lib/zbus/...'"): clients get its code only, never a server path.
 */
function internalText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const sys = err as NodeJS.ErrnoException;
  if (typeof sys.syscall === 'string' || typeof sys.path === 'string')
    return `${err.name}: ${sys.code ?? 'system error'}`;
  return `${err.name}: ${err.message}`;
}

export function errorReply(err: unknown, topic?: string): Message {
  const { code, status, message } = errorParts(err);
  const m = new Message({ status, body: UNPREFIXED.has(code) ? message : `${status}: ${message}` });
  m.set('error_code', code);
  if (topic !== undefined) m.set('topic', topic);
  // 0.11 (ReplyKit) sends error texts without a content type, except for an unknown command (text/html);
  // zbus-python decodes a text/* body into a str and then fails to decode it again.
  if (code === 'ZBUS_ERR_UNKNOWN_COMMAND') m.set('content-type', 'text/html');
  return m;
}
