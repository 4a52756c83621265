// Where a browser says a request comes from (decisions.md §6, issue 14 item 7). A web page on another origin
// can make the operator's browser send requests to the broker (an <img> GET, a form POST, a WebSocket) and the
// browser attaches the monitor's cookie when the page is same-site (another port of the same host). Browsers
// mark such requests: Fetch Metadata (`Sec-Fetch-Site`) where supported, `Origin` on POSTs and WebSocket
// handshakes. Clients that are not browsers (curl, ab, zbus clients) send neither and are never affected.
//
// Browsers send Fetch Metadata only to "potentially trustworthy" addresses (https, localhost, loopback IPs): a
// GET to a plain-HTTP name (an <img>, a same-origin fetch) carries no mark at all, so an unmarked request may
// still come from a page. It changes nothing with the monitor's cookie, and in protected mode it must be
// addressed to a name browsers mark (localhost or a loopback IP), which also stops DNS rebinding.
import { isIPv4 } from 'node:net';
import { ZbusError } from '@zbus/protocol';

/**
 * `own`: a page of the broker itself (marked so); `unmarked`: no mark, so not a browser, or a browser that sends
 * none (a plain-HTTP GET); `allowed`: a page of an allowed origin; `foreign`: a page of any other origin;
 * `unlisted-host`: in protected mode, addressed to a name that is not this machine's loopback (DNS rebinding).
 */
export type RequestSite = 'own' | 'unmarked' | 'allowed' | 'foreign' | 'unlisted-host';

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

/** The host name of a Host header, lower case, without port or IPv6 brackets. */
function hostnameOfHost(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, Math.max(1, h.indexOf(']')));
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/**
 * A name that reaches this machine's loopback whatever anyone's DNS says, and that browsers mark requests to:
 * `localhost` and loopback IP literals. Not the machine's host name, `0.0.0.0`, `*.localhost` or IPv4 mapped into
 * IPv6: some browsers send no Fetch Metadata to those, so a page could send unmarked GETs there.
 */
export function isLoopbackName(host: string): boolean {
  const name = hostnameOfHost(host);
  return name === 'localhost' || name === '::1' || (isIPv4(name) && name.startsWith('127.'));
}

export class OriginPolicy {
  readonly #allowed: ReadonlySet<string>;
  readonly #any: boolean;
  readonly #protectedMode: boolean;
  #lastHost: string | undefined;
  #lastHostIsLoopback = false;

  /**
   * `allowOrigins`: origins whose pages may use the broker (`*`: any page; the check is off). In `protectedMode`,
   * a request with a Host header must name loopback (isLoopbackName), browser or not: a page whose name the
   * attacker points at 127.0.0.1 is same-origin with itself, marked `same-origin` or not marked at all.
   */
  constructor(allowOrigins: readonly string[], protectedMode: boolean) {
    this.#allowed = new Set(allowOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')));
    this.#any = this.#allowed.has('*');
    this.#protectedMode = protectedMode;
  }

  /** isLoopbackName, remembered for the last Host seen: a client sends the same one with every request. */
  #loopbackHost(host: string): boolean {
    if (host !== this.#lastHost) {
      this.#lastHost = host;
      this.#lastHostIsLoopback = isLoopbackName(host);
    }
    return this.#lastHostIsLoopback;
  }

  /** Where a request (or a WebSocket handshake) comes from; `host` is the Host header as the client sent it. */
  siteOf(headers: Headers): RequestSite {
    const host = headers.host;
    if (this.#protectedMode && host !== undefined && !this.#loopbackHost(host)) return 'unlisted-host';
    const fetchSite = headers['sec-fetch-site'];
    const origin = headers.origin;
    if (fetchSite === undefined && origin === undefined) return 'unmarked';
    // same-origin: the broker's own pages; none: the user typed the URL or opened a bookmark.
    if (fetchSite === 'same-origin' || fetchSite === 'none') return 'own';
    if (fetchSite === undefined && origin !== undefined && host !== undefined) {
      // A browser without Fetch Metadata: compare Origin with the Host it sent the request to.
      if (hostPortOfOrigin(origin) === hostPortOfHost(host)) return 'own';
    }
    if (this.#any || (origin !== undefined && this.#allowed.has(origin.toLowerCase()))) return 'allowed';
    return 'foreign';
  }
}

/**
 * Whether the monitor's cookie counts for a request: on the broker's own pages, and on unmarked requests only
 * for what changes and reveals nothing (crossSiteSafe): an unmarked GET may be a page's <img> riding the cookie.
 */
export function cookieCounts(site: RequestSite, cmd: string, method: string): boolean {
  return site === 'own' || (site === 'unmarked' && crossSiteSafe(cmd, method));
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
