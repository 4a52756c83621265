// Protected mode (decisions.md §6): with no auth and no `insecure`, only clients on this machine's loopback
// interface are served, as Redis does. Session addresses are `ip:port` as the socket reports them.
import { isIP } from 'node:net';
import { ZbusError } from '@zbus/protocol';

/**
 * True for a loopback address (`127.0.0.0/8`, `::1`, or IPv4 loopback mapped into IPv6); `address` is `ip:port`.
 * Only IP literals count: a host name such as `127.0.0.1.evil.example` is whatever its owner's DNS says.
 */
export function isLoopback(address: string): boolean {
  const colon = address.lastIndexOf(':');
  const ip = colon < 0 ? address : address.slice(0, colon);
  if (isIP(ip) === 0) return false;
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

/** True for an address that listening on admits only loopback clients (or every address, a wildcard). */
export function isLoopbackOrWildcard(host: string): boolean {
  return (
    host === '' || host === '0.0.0.0' || host === '::' || host === 'localhost' || isLoopback(`${host}:0`)
  );
}

/** The answer a client off the loopback interface gets in protected mode; it says how to open the broker. */
export function protectedModeError(): ZbusError {
  return new ZbusError(
    'ZBUS_ERR_PROTECTED_MODE',
    'protected mode: this broker runs without auth and serves clients on its own machine (loopback) only; ' +
      'turn auth on (--auth <file>, see docs/security.md) or, on a network you trust, start it with --insecure',
  );
}

/**
 * The answer, in protected mode, to a request addressed (Host header) to a name that is not loopback: a web page
 * can point a name of its own at 127.0.0.1 (DNS rebinding) and its requests then reach this broker as its own.
 */
export function unlistedHostError(host: string): ZbusError {
  return new ZbusError(
    'ZBUS_ERR_PROTECTED_MODE',
    `protected mode: this broker runs without auth and answers requests addressed to localhost or a loopback ` +
      `address only, not to ${host.replace(/[^\w.:[\]-]/g, '?')} (a web page can point a name of its own at this ` +
      'machine); use localhost or 127.0.0.1, or turn auth on (--auth <file>, see docs/security.md)',
  );
}
