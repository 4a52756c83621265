// The page's data from the broker that served it, over one WebSocket (@zbus/client-browser): `track_sub` for
// the tracker view (a push on every change), `query` every 2 s for topics and groups, and one refresh soon
// after a burst of pushes. Everything lands in the MonitorState; the page renders it.
import { Message, type MqClient, type ServerInfo, type TrackerInfo } from '@zbus/client-browser';
import type { MonitorState } from './state.js';

const POLL_MS = 2000;
/** A hidden tab polls less often (rates are per second of elapsed time, so they stay right). */
const HIDDEN_POLL_MS = 10_000;
/** A change comes as a burst of pushes (declare, then consumers): one refresh this long after the first. */
const PUSH_REFRESH_MS = 150;
const MAX_RECONNECT_WAIT_MS = 5000;

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline';

export interface FeedEvents {
  /** The state changed: render it. */
  changed(): void;
  connection(state: ConnectionState): void;
}

/** Sends a request and resolves with its reply; a reply other than 200 rejects with its status and text. */
export async function checked(client: MqClient, msg: Message): Promise<Message> {
  const reply = await client.invoke(msg);
  if (reply.status !== 200) {
    const text = reply.bodyText().trim();
    throw new Error(`${reply.status} ${text || 'request failed'}`);
  }
  return reply;
}

export class Feed {
  readonly #client: MqClient;
  readonly #state: MonitorState;
  readonly #events: FeedEvents;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #polling = false;
  #pushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(client: MqClient, state: MonitorState, events: FeedEvents) {
    this.#client = client;
    this.#state = state;
    this.#events = events;
    client.on('connected', () => {
      events.connection('live');
      this.#subscribe();
      void this.poll();
    });
    client.on('disconnected', () => events.connection('reconnecting'));
    client.on('message', (m) => {
      if (m.headers.cmd !== 'track_pub' || m.status !== 200) return;
      try {
        this.#onTracker(m.json<TrackerInfo>());
      } catch {
        // not a TrackerInfo: ignore
      }
    });
  }

  /** Connects, retrying with a growing wait until the broker answers; the client reconnects after that. */
  async start(): Promise<void> {
    this.#events.connection('connecting');
    for (let wait = 250; ; wait = Math.min(wait * 2, MAX_RECONNECT_WAIT_MS)) {
      try {
        await this.#client.connect();
        return;
      } catch {
        this.#events.connection('offline');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Queries the broker now and restarts the poll period. */
  async poll(): Promise<void> {
    if (this.#pollTimer !== undefined) clearTimeout(this.#pollTimer);
    this.#pollTimer = setTimeout(() => void this.poll(), document.hidden ? HIDDEN_POLL_MS : POLL_MS);
    if (this.#polling || !this.#client.connected) return;
    this.#polling = true;
    try {
      const reply = await checked(this.#client, new Message({ headers: { cmd: 'query' } }));
      this.#state.model.apply(reply.json<ServerInfo>());
      this.#state.lastError = '';
    } catch (err) {
      this.#state.lastError = (err as Error).message;
    } finally {
      this.#polling = false;
    }
    this.#events.changed();
  }

  #subscribe(): void {
    checked(this.#client, new Message({ headers: { cmd: 'track_sub' } }))
      .then((reply) => this.#onTracker(reply.json<TrackerInfo>()))
      .catch(() => {
        // an older broker without tracker support: the servers table falls back to ServerInfo
      });
  }

  #onTracker(info: TrackerInfo): void {
    this.#state.tracker = info;
    this.#events.changed();
    if (this.#pushTimer === undefined) {
      this.#pushTimer = setTimeout(() => {
        this.#pushTimer = undefined;
        void this.poll();
      }, PUSH_REFRESH_MS);
    }
  }
}

/** Auth is on when the broker serves its login page rather than redirecting it to `/`. */
export async function authEnabled(): Promise<boolean> {
  try {
    const res = await fetch('/?cmd=login', { redirect: 'manual', credentials: 'same-origin' });
    return res.type !== 'opaqueredirect';
  } catch {
    return false;
  }
}
