// Who may ask the broker anything, before any command runs (decisions.md §6, docs/security.md): protected mode
// (loopback peers, loopback Host names), pages of other origins, the monitor's cookie, the /metrics token and the
// auth check itself. The request pipeline (requests.ts) asks; this file answers.
import { type Message, tokenFromCookie, ZbusError } from '@zbus/protocol';
import type { Auth } from '../auth/auth.js';
import { isLoopback, protectedModeError, unlistedHostError } from '../auth/loopback.js';
import {
  cookieCounts,
  crossSiteError,
  crossSiteSafe,
  OriginPolicy,
  type RequestSite,
} from '../auth/origin.js';
import type { ResolvedBrokerOptions } from '../options.js';
import type { Session } from '../session.js';
import { isProtectedMode } from './announce.js';

/** Why a request from `site` is refused whatever it asks (`what`), if it is. */
function siteRefusal(site: RequestSite, headers: Message['headers'], what: string): ZbusError | undefined {
  if (site === 'unlisted-host') return unlistedHostError(headers.host ?? '');
  if (site === 'foreign') return crossSiteError(headers.origin, what);
  return undefined;
}

/**
 * The token of a /metrics scrape: `token` header, `?token=`, `Authorization: Bearer`, or (from the broker's own
 * pages only) the `token` cookie.
 */
function metricsToken(msg: Message, session: Session, ownSite: boolean): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(msg.headers.authorization ?? '')?.[1];
  return (
    msg.headers.token ??
    (msg.url.includes('?')
      ? new URLSearchParams(msg.url.slice(msg.url.indexOf('?') + 1)).get('token')
      : null) ??
    bearer ??
    (ownSite ? (tokenFromCookie(msg.headers.cookie) ?? session.cookieToken) : undefined)
  );
}

export class Access {
  readonly #auth: Auth | undefined;
  readonly #origins: OriginPolicy;
  readonly #protectedMode: boolean;
  /** In protected mode: sessions not on the loopback interface (refused at their first request). */
  readonly #outsiders = new WeakSet<Session>();

  constructor(options: ResolvedBrokerOptions, auth: Auth | undefined) {
    this.#auth = auth;
    this.#protectedMode = isProtectedMode(options);
    this.#origins = new OriginPolicy(options.allowOrigins, this.#protectedMode);
  }

  /** A new session: in protected mode, one from outside the loopback interface is marked for refusal. */
  admit(session: Session): void {
    if (this.#protectedMode && !isLoopback(session.remoteAddress)) this.#outsiders.add(session);
  }

  /** In protected mode, a session from outside the loopback interface: every request but the probes is refused. */
  isOutsider(session: Session): boolean {
    return this.#protectedMode && this.#outsiders.has(session);
  }

  /**
   * A WebSocket handshake on `previous`'s connection: its refusal, or the token of its cookie when the cookie
   * counts. The monitor's cookie is bound to the broker's own pages: a WebSocket from an allowed origin brings its
   * own token. Browsers always mark a handshake (Origin), so an unmarked one is no page's.
   */
  handshake(req: Message, previous: Session): { refusal: ZbusError } | { cookieToken: string | undefined } {
    const site = this.#origins.siteOf(req.headers);
    const refusal = this.#outsiders.has(previous)
      ? protectedModeError()
      : siteRefusal(site, req.headers, 'open a WebSocket');
    if (refusal) return { refusal };
    return {
      cookieToken: site === 'own' || site === 'unmarked' ? tokenFromCookie(req.headers.cookie) : undefined,
    };
  }

  /**
   * Where a request comes from. Read before `host` is overwritten by the pipeline. WebSocket frames are not
   * browser requests: their handshake was.
   */
  siteOf(session: Session, msg: Message): RequestSite {
    return session.kind === 'tcp' ? this.#origins.siteOf(msg.headers) : 'own';
  }

  /**
   * Why a scrape of /metrics is refused, if it is. It names every topic and group: a foreign page never reads it
   * (a DNS-rebound page is same-origin to the browser, which shows it every answer), and with auth on it needs a
   * token allowed `metrics` (or `*`/`admin`): header, ?token=, cookie or a Bearer header.
   */
  metricsRefusal(msg: Message, session: Session, site: RequestSite): ZbusError | undefined {
    const refusal = siteRefusal(site, msg.headers, 'read /metrics');
    if (refusal) return refusal;
    const ownSite = site === 'own' || site === 'unmarked';
    if (this.#auth && !this.#auth.allows('metrics', metricsToken(msg, session, ownSite))) {
      return new ZbusError('ZBUS_ERR_FORBIDDEN', 'Command(metrics) Forbbiden');
    }
    return undefined;
  }

  /** Why any request of this session from `site` is refused before it is even read, if it is. */
  requestRefusal(session: Session, msg: Message, site: RequestSite): ZbusError | undefined {
    if (this.isOutsider(session)) return protectedModeError();
    if (site === 'unlisted-host') return unlistedHostError(msg.headers.host ?? '');
    return undefined;
  }

  /**
   * Takes the monitor's cookie as the token of a request without one, where it counts: on requests from the
   * broker's own pages (bound to its origin), after a token in the header or the URL.
   */
  takeCookie(msg: Message, session: Session, site: RequestSite, cmd: string): void {
    if (msg.headers.token !== undefined || !cookieCounts(site, cmd, msg.method)) return;
    const cookie = tokenFromCookie(msg.headers.cookie) ?? session.cookieToken;
    if (cookie !== undefined) msg.set('token', cookie);
  }

  /**
   * Throws why `cmd` is refused: a page of another origin may not run it, or (deny by default, decisions.md §6)
   * auth does not allow it; every command, monitor pages included, unless it is public.
   */
  check(cmd: string, msg: Message, site: RequestSite): void {
    if (site === 'foreign' && !crossSiteSafe(cmd, msg.method)) {
      throw crossSiteError(msg.headers.origin, `run ${cmd}`);
    }
    this.#auth?.check(cmd, msg.token, msg.topic, msg.consumeGroup);
  }
}
