// Where a browser says a request comes from (decisions.md §6, issue 14 item 7). A web page on another origin
// can make the operator's browser send requests to the broker (an <img> GET, a form POST, a WebSocket) and the
// browser attaches the monitor's cookie when the page is same-site (another port of the same host). Browsers
// mark such requests: Fetch Metadata (`Sec-Fetch-Site`) where supported, `Origin` on POSTs and WebSocket
// handshakes. Clients that are not browsers (curl, ab, zbus clients) send neither and are never affected.
import { ZbusError } from '@zbus/protocol';

/** `own`: not a browser, or a page of the broker itself; `allowed`: a page of an allowed origin; else `foreign`. */
export type RequestSite = 'own' | 'allowed' | 'foreign';

type Headers = Readonly<Record<string, string | undefined>>;

/** `scheme://host[:port]` as browsers send it in `Origin` (lower case, no path), or `*`. */
const ORIGIN = /^(?:\*|[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+)$/;

/** Whether `value` is something `allowOrigins` may hold. */
export function isOriginPattern(value: string): boolean {
  return ORIGIN.test(value.toLowerCase());
}

/** `host:port` of an origin, with the scheme's default port made explicit. */
function hostPortOfOrigin(origin: string): string | undefined {
  try {
    const u = new URL(origin);
    return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    return undefined;
  }
}

/** `host:port` of a Host header (port 80 when absent; a broker on 443 is reached with an explicit port). */
function hostPortOfHost(host: string): string {
  const h = host.trim().toLowerCase();
  const bracket = h.lastIndexOf(']');
  const colon = h.lastIndexOf(':');
  return colon > bracket ? h : `${h}:80`;
}

export class OriginPolicy {
  readonly #allowed: ReadonlySet<string>;
  readonly #any: boolean;

  /** `allowOrigins`: origins whose pages may use the broker (`*`: any page; the check is off). */
  constructor(allowOrigins: readonly string[]) {
    this.#allowed = new Set(allowOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')));
    this.#any = this.#allowed.has('*');
  }

  /** Where a request (or a WebSocket handshake) comes from; `host` is the Host header as the client sent it. */
  siteOf(headers: Headers): RequestSite {
    const fetchSite = headers['sec-fetch-site'];
    const origin = headers.origin;
    if (fetchSite === undefined && origin === undefined) return 'own'; // not a browser
    // same-origin: the broker's own pages; none: the user typed the URL or opened a bookmark.
    if (fetchSite === 'same-origin' || fetchSite === 'none') return 'own';
    if (fetchSite === undefined && origin !== undefined && headers.host !== undefined) {
      // A browser without Fetch Metadata: compare Origin with the Host it sent the request to.
      if (hostPortOfOrigin(origin) === hostPortOfHost(headers.host)) return 'own';
    }
    if (this.#any || (origin !== undefined && this.#allowed.has(origin.toLowerCase()))) return 'allowed';
    return 'foreign';
  }
}

/**
 * What a page of a foreign origin may still ask for: navigations that read nothing secret and change nothing
 * (the monitor's pages and assets, which need the login anyway, and the login form itself), and liveness.
 */
export function crossSiteSafe(cmd: string, method: string): boolean {
  return CROSS_SITE_SAFE.has(cmd) || (cmd === 'login' && method !== 'POST');
}

const CROSS_SITE_SAFE: ReadonlySet<string> = new Set([
  'home',
  'page',
  'js',
  'css',
  'img',
  'favicon.ico',
  'ping',
  'heartbeat',
]);

/** The answer to a request or WebSocket handshake refused because it comes from a page of a foreign origin. */
export function crossSiteError(origin: string | undefined, what: string): ZbusError {
  const from = origin === undefined ? 'a page of another site' : `a page of ${origin}`;
  return new ZbusError(
    'ZBUS_ERR_CROSS_SITE',
    `cross-site request refused: ${from} may not ${what} here; serve the page from this broker or allow its ` +
      'origin with --allow-origin (allowOrigins)',
  );
}
