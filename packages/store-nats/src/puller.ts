// Pull requests on a JetStream pull consumer, sent by hand over one inbox subscription: one request at a time,
// sized by the caller's demand, with idle heartbeats so that a request lost with a server (kill -9, leader
// change, reconnect) is noticed within a few seconds instead of at its expiry.
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';

/** How long a pull request waits on the server for messages. */
const EXPIRES_MS = 10_000;
/** Idle heartbeat the server sends while a request waits. */
const HEARTBEAT_MS = 2_000;
/** A request silent this long (no message, no heartbeat) is taken as lost. */
const SILENCE_MS = 3 * HEARTBEAT_MS;

/** Why a request ended: its batch was filled, it expired, the server said why (409 ...), or it went silent. */
export type PullEnd = 'filled' | 'expired' | 'error' | 'lost';

export interface PullHandler {
  message(m: Msg): void;
  /** The request is over; nothing more comes from it. `status` is the server's description on errors. */
  ended(why: PullEnd, status?: string): void;
}

export class Puller {
  readonly #sub: Subscription;
  readonly #inbox: string;
  /** Messages the current request may still bring; 0 when none is outstanding. */
  #remaining = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    readonly nc: NatsConnection,
    /** `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` */
    public apiSubject: string,
    readonly handler: PullHandler,
  ) {
    this.#inbox = createInbox();
    this.#sub = nc.subscribe(this.#inbox, { callback: (_err, m) => this.#onMsg(m) });
  }

  get outstanding(): boolean {
    return this.#remaining > 0;
  }

  /** Sends a pull request for up to `batch` messages unless one is outstanding. True when it sent one. */
  request(batch: number): boolean {
    if (this.#closed || this.#remaining > 0 || batch <= 0 || this.nc.isClosed()) return false;
    this.#remaining = batch;
    const body = JSON.stringify({ batch, expires: EXPIRES_MS * 1e6, idle_heartbeat: HEARTBEAT_MS * 1e6 });
    try {
      this.nc.publish(this.apiSubject, body, { reply: this.#inbox });
    } catch {
      this.#remaining = 0;
      return false;
    }
    this.#arm();
    return true;
  }

  /** Forget the outstanding request (after a reconnect: the server that held it may be gone). */
  reset(): void {
    if (this.#remaining === 0) return;
    this.#end('lost');
  }

  #arm(): void {
    if (this.#watchdog) this.#watchdog.refresh();
    else {
      this.#watchdog = setTimeout(() => {
        this.#watchdog = undefined;
        if (this.#remaining > 0) this.#end('lost');
      }, SILENCE_MS);
      this.#watchdog.unref();
    }
  }

  #end(why: PullEnd, status?: string): void {
    this.#remaining = 0;
    if (this.#watchdog) clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    if (!this.#closed) this.handler.ended(why, status);
  }

  #onMsg(m: Msg): void {
    if (this.#closed) return;
    const h = m.headers;
    if (h !== undefined && h.code !== 0 && m.data.length === 0 && (m.reply === undefined || m.reply === '')) {
      const code = h.code;
      if (code === 100) {
        if (this.#remaining > 0) this.#arm();
        return;
      }
      if (code === 404 || code === 408) this.#end('expired');
      else this.#end('error', `${code} ${h.description}`);
      return;
    }
    // A filled request ends before its last message is handled, so that a new request the handler sends is
    // not mistaken for the old one.
    if (this.#remaining > 0) {
      if (--this.#remaining === 0) this.#end('filled');
      else this.#arm();
    }
    this.handler.message(m);
  }

  close(): void {
    this.#closed = true;
    this.#remaining = 0;
    if (this.#watchdog) clearTimeout(this.#watchdog);
    this.#sub.unsubscribe();
  }
}

/** `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>` (and the longer v2 form). */
export function parseAck(reply: string): { deliveries: number; seq: number; dseq: number; tsNanos: number } {
  const t = reply.split('.');
  const b = t.length === 9 ? 2 : 4;
  return {
    deliveries: Number(t[b + 2]),
    seq: Number(t[b + 3]),
    dseq: Number(t[b + 4]),
    tsNanos: Number(t[b + 5]),
  };
}
