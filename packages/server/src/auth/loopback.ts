// Protected mode (decisions.md §6): with no auth and no `insecure`, only clients on this machine's loopback
// interface are served, as Redis does. Session addresses are `ip:port` as the socket reports them.
import { ZbusError } from '@zbus/protocol';

/** True for a loopback peer (`127.0.0.0/8`, `::1`, or IPv4 loopback mapped into IPv6); `address` is `ip:port`. */
export function isLoopback(address: string): boolean {
  const colon = address.lastIndexOf(':');
  const ip = colon < 0 ? address : address.slice(0, colon);
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
