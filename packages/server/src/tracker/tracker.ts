// The tracker side every broker has (zbus-protocol.md §9): the servers that report to it with `track_pub`,
// and the sessions subscribed with `track_sub`, which get a TrackerInfo push on every change.
import type { ServerInfo } from '../info.js';
import type { Session } from '../session.js';

export class TrackerState {
  /** Only grows, across restarts too: it starts from the clock and never goes back. */
  #infoVersion = Date.now();
  /** Servers that reported to this tracker, by table key. */
  readonly servers = new Map<string, ServerInfo>();
  /** Sessions the reports came in on (a lost session removes its server). */
  readonly reporters = new Map<Session, string>();
  readonly subscribers = new Set<Session>();

  get infoVersion(): number {
    return this.#infoVersion;
  }

  bump(): number {
    this.#infoVersion = Math.max(this.#infoVersion + 1, Date.now());
    return this.#infoVersion;
  }
}
