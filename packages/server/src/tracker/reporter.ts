// Reports this broker to its upstream trackers (`--tracker h1:p;h2:p`): a `track_pub` ServerEvent on
// connect, after every change (the first of a burst at once, as 0.11 does) and every reportIntervalMs; lost
// trackers are reconnected.

import type { ServerEvent, ServerInfo } from '@zbus/protocol';
import { Message } from '@zbus/protocol';
import type { Logger } from 'pino';
import { CLUSTER_TOKEN_HEADER } from '../auth/cluster.js';
import { Burst } from './burst.js';
import { Link } from './link.js';

/** Changes after the first of a burst are reported at most once per this many ms. */
const REPORT_COALESCE_MS = 100;

export class TrackerReporter {
  readonly #links: Link[];
  #interval: NodeJS.Timeout | undefined;
  readonly #reports = new Burst(() => this.reportNow(), REPORT_COALESCE_MS);

  constructor(
    trackers: readonly string[],
    readonly info: () => ServerInfo,
    readonly log: Logger,
    intervalMs: number,
    readonly token: string | undefined,
    readonly clusterToken: string | undefined,
  ) {
    this.#links = trackers.map(
      (address) =>
        new Link({
          address,
          log,
          reconnect: true,
          onConnect: (l) => {
            log.info({ tracker: address }, 'connected to tracker');
            l.send(this.#event(true));
          },
          onClose: () => log.warn({ tracker: address }, 'tracker connection lost; reconnecting'),
        }),
    );
    if (this.#links.length > 0 && intervalMs > 0) {
      this.#interval = setInterval(() => this.reportNow(), intervalMs);
      this.#interval.unref();
    }
  }

  #event(live: boolean): Message {
    const m = new Message({ headers: { cmd: 'track_pub', ack: 'false' } });
    if (this.token !== undefined) m.set('token', this.token);
    if (this.clusterToken !== undefined) m.set(CLUSTER_TOKEN_HEADER, this.clusterToken);
    const event: ServerEvent = { serverInfo: this.info(), certificate: null, live };
    m.setBody(event);
    return m;
  }

  reportNow(): void {
    const m = this.#event(true);
    for (const l of this.#links) l.send(m);
  }

  /** Something changed: report at once, and once more at the end of a burst of changes. */
  changed(): void {
    if (this.#links.length > 0) this.#reports.trigger();
  }

  /** Says goodbye (`live: false`) so trackers drop this server at once, then closes. */
  close(): void {
    if (this.#interval) clearInterval(this.#interval);
    this.#reports.close();
    const bye = this.#event(false);
    for (const l of this.#links) {
      l.send(bye);
      l.close();
    }
  }
}
