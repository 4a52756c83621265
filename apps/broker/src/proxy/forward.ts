// One entry's HTTP side: a delivered request becomes an HTTP request to a target (round-robin), and the
// target's answer, or the reason there is none, becomes the message routed back to the caller.
import { Message, type ZbusErrorCode } from '@zbus/protocol';
import { Agent, request } from 'undici';
import { requestHeaders, responseHeaders } from './headers.js';
import type { ResolvedEntry } from './options.js';
import { PathRefused, targetUrl } from './target-path.js';

/** Socket errors that mean the request never reached the target, so another target may take it. */
const NOT_CONNECTED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Methods whose requests carry no body on the wire. */
const BODILESS = new Set(['GET', 'HEAD']);

const encoder = new TextEncoder();

/** A reply that explains itself: `<status>: <message>` as text, with the stable code in `error_code`. */
export function errorMessage(status: number, code: ZbusErrorCode, message: string): Message {
  const m = new Message({ status, headers: { 'content-type': 'text/plain', error_code: code } });
  m.body = encoder.encode(`${status}: ${message}`);
  return m;
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  if (typeof e?.code === 'string' && e.code !== 'UND_ERR_SOCKET') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return typeof e?.code === 'string' ? e.code : undefined;
}

function describe(err: unknown): string {
  const code = errorCode(err);
  const text = err instanceof Error ? err.message : String(err);
  return code !== undefined && !text.includes(code) ? `${text} (${code})` : text;
}

/** Counters of one entry, for logs and tests. */
export interface ForwardStats {
  forwarded: number;
  badGateway: number;
  timeouts: number;
  tooLarge: number;
  /** Requests whose path would leave the target's base path, or could be read as another one. */
  badPath: number;
}

export class Forwarder {
  readonly entry: ResolvedEntry;
  readonly stats: ForwardStats = { forwarded: 0, badGateway: 0, timeouts: 0, tooLarge: 0, badPath: 0 };
  readonly #agent: Agent;
  #next = 0;

  constructor(entry: ResolvedEntry) {
    this.entry = entry;
    this.#agent = new Agent({ keepAliveTimeout: 30_000, connections: entry.connections * entry.window });
  }

  /** Forwards `msg` (a delivery with url and method restored) and resolves with the reply; never rejects. */
  async forward(msg: Message): Promise<Message> {
    const e = this.entry;
    if (msg.body.length > e.maxBodyBytes) {
      this.stats.tooLarge++;
      return errorMessage(
        413,
        'ZBUS_ERR_BODY_TOO_LARGE',
        `request body of ${msg.body.length} bytes exceeds ${e.maxBodyBytes} bytes (maxBodyBytes of entry ${e.entry})`,
      );
    }
    const method = msg.method.toUpperCase();
    const headers = requestHeaders(msg.headers, msg.url, e.sendFilter);
    const body = BODILESS.has(method) && msg.body.length === 0 ? undefined : msg.body;
    const started = this.#next++ % e.targets.length;
    let lastError: unknown;
    // Round-robin; a target that refuses the connection passes the request on to the next one.
    for (let i = 0; i < e.targets.length; i++) {
      const target = e.targets[(started + i) % e.targets.length] as URL;
      try {
        const reply = await this.#exchange(targetUrl(msg.url, e.entry, target), method, headers, body);
        this.stats.forwarded++;
        return reply;
      } catch (err) {
        if (err instanceof Reply) return err.reply;
        if (err instanceof PathRefused) {
          this.stats.badPath++;
          return errorMessage(400, err.code, `not forwarded: ${err.message} (entry ${e.entry})`);
        }
        lastError = err;
        if (!NOT_CONNECTED.has(errorCode(err) ?? '')) break;
      }
    }
    this.stats.badGateway++;
    const where =
      e.targets.length === 1 ? `target ${e.targets[0]?.origin}` : `all ${e.targets.length} targets`;
    const invalid = errorCode(lastError) === 'UND_ERR_INVALID_ARG';
    if (invalid) {
      return errorMessage(400, 'ZBUS_ERR_BAD_REQUEST', `cannot forward to ${where}: ${describe(lastError)}`);
    }
    return errorMessage(
      502,
      'ZBUS_ERR_BAD_GATEWAY',
      `${where} of entry ${e.entry} unreachable: ${describe(lastError)}`,
    );
  }

  async #exchange(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
  ): Promise<Message> {
    const e = this.entry;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, e.timeout);
    try {
      const res = await request(url, {
        method: method as 'GET',
        headers,
        body,
        signal: controller.signal,
        dispatcher: this.#agent,
        headersTimeout: e.timeout,
        bodyTimeout: e.timeout,
      });
      const tooLarge = () => {
        this.stats.tooLarge++;
        controller.abort();
        return new Reply(
          errorMessage(
            502,
            'ZBUS_ERR_BAD_GATEWAY',
            `response of ${url.origin} exceeds ${e.maxBodyBytes} bytes (maxBodyBytes of entry ${e.entry})`,
          ),
        );
      };
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > e.maxBodyBytes) throw tooLarge();
      // Read with a running count: never more than maxBodyBytes in memory, one copy at the end.
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > e.maxBodyBytes) throw tooLarge();
        chunks.push(chunk);
      }
      const reply = new Message({
        status: res.statusCode,
        headers: responseHeaders(res.headers, e.recvFilter),
      });
      if (size > 0) reply.body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      return reply;
    } catch (err) {
      if (err instanceof Reply) throw err;
      if (timedOut) {
        this.stats.timeouts++;
        throw new Reply(
          errorMessage(
            504,
            'ZBUS_ERR_TIMEOUT',
            `${url.origin} did not answer within ${e.timeout} ms (timeout of entry ${e.entry})`,
          ),
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** A finished answer thrown out of the exchange (timeout, limit), as opposed to a failure to retry. */
class Reply {
  constructor(readonly reply: Message) {}
}
