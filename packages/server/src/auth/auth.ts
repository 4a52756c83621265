// Token ACLs in the 0.11 model (zbus-protocol.md §11), deny by default (decisions.md §6): every command is
// checked unless it is on PUBLIC_COMMANDS, so a command added to the registry is refused until a token lists it.
// Tokens are compared in constant time: every candidate is hashed to the same length first, and every entry is
// compared, so timing reveals neither a prefix nor which entry matched.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ZbusError } from '@zbus/protocol';
import type { AuthConfig, AuthTokenEntry } from '../options.js';

/** Commands anyone may run without a token: liveness only. Keep this list short; a test pins it. */
export const PUBLIC_COMMANDS: ReadonlySet<string> = new Set(['ping', 'heartbeat']);

/** Monitor commands that must work before a login: the login form and logout (which only clears the cookie). */
export const PUBLIC_MONITOR_COMMANDS: ReadonlySet<string> = new Set(['login', 'logout']);

/** The operation a command needs, where it is not the command's own name. */
const OPERATION_OF: Readonly<Record<string, string>> = {
  rpc: 'produce', // `/rpc/<topic>/...` and `cmd: rpc` store a message as produce does
  unconsume: 'consume',
  ack: 'consume',
  nack: 'consume',
  touch: 'consume',
};

/** Commands that act on one group (the one named, else the default group named as the topic). */
const GROUP_SCOPED = new Set(['consume', 'unconsume', 'declare', 'ack', 'nack', 'touch']);

/** Commands that act on one group when they name one, and on the whole topic (every group) when they do not. */
const GROUP_OR_TOPIC = new Set(['remove', 'empty']);

/** The monitor's pages and assets: `admin` tokens only (docs/security.md). */
const MONITOR = new Set(['home', 'page', 'js', 'css', 'img', 'favicon.ico']);

/** Stands for "the whole topic" where a group would be checked: only entries without a group list allow it. */
const WHOLE_TOPIC = Symbol('zbus.auth.wholeTopic');
type Scope = string | typeof WHOLE_TOPIC | undefined;

const digest = (s: string) => createHash('sha256').update(s).digest();

interface CompiledEntry {
  entry: AuthTokenEntry;
  hash: Buffer;
  /** `*` or `admin`: every command. */
  all: boolean;
  /** `admin`: every command and the monitor. */
  admin: boolean;
  operations: Set<string>;
  anyTopic: boolean;
  topics: Map<string, Set<string> | undefined>;
}

function forbidden(cmd: string, topic: string | undefined): ZbusError {
  const parts = [`Command(${cmd})`];
  if (topic !== undefined) parts.push(`Topic(${topic})`);
  return new ZbusError('ZBUS_ERR_FORBIDDEN', `${parts.join(' ')} Forbbiden`);
}

export class Auth {
  readonly #entries: CompiledEntry[];

  constructor(config: AuthConfig) {
    this.#entries = config.tokens.map((entry) => {
      const ops = new Set(entry.operations.map((o) => o.toLowerCase()));
      const topics = new Map<string, Set<string> | undefined>();
      for (const t of entry.topics ?? []) {
        topics.set(
          t.topic.toLowerCase(),
          t.groups && t.groups.length > 0 ? new Set(t.groups.map((g) => g.toLowerCase())) : undefined,
        );
      }
      return {
        entry,
        hash: digest(entry.token),
        all: ops.has('*') || ops.has('admin'),
        admin: ops.has('admin'),
        operations: ops,
        anyTopic: topics.has('*'),
        topics,
      };
    });
  }

  /** The entry of a token (constant time over all entries), or undefined. */
  find(token: string | undefined): CompiledEntry | undefined {
    const h = digest(token ?? '');
    let found: CompiledEntry | undefined;
    for (const e of this.#entries) {
      if (timingSafeEqual(h, e.hash) && found === undefined) found = e;
    }
    return found;
  }

  /** Whether `token` may run `operation` (an operation outside any topic, such as `metrics`). */
  allows(operation: string, token: string | undefined): boolean {
    const e = this.find(token);
    return e !== undefined && (e.all || e.operations.has(operation));
  }

  /** The `name` of a token's entry (what `creator` shows), or undefined. */
  nameOf(token: string): string | undefined {
    return this.find(token)?.entry.name || undefined;
  }

  /** An `admin` token: the monitor accepts these only. */
  isAdmin(token: string | undefined): boolean {
    return token !== undefined && token !== '' && this.find(token)?.admin === true;
  }

  /**
   * Throws 403 with the 0.11 text unless `token` may run `cmd` on `topic`/`group`. Public commands pass; the
   * monitor needs `admin`; `remove` and `empty` without a group act on every group, so they need the topic
   * without a group restriction.
   */
  check(cmd: string, token: string | undefined, topic: string | undefined, group: string | undefined): void {
    if (PUBLIC_COMMANDS.has(cmd) || PUBLIC_MONITOR_COMMANDS.has(cmd)) return;
    if (MONITOR.has(cmd)) {
      if (!this.isAdmin(token)) throw forbidden(cmd, undefined);
      return;
    }
    const scope: Scope = GROUP_SCOPED.has(cmd)
      ? group || topic
      : GROUP_OR_TOPIC.has(cmd)
        ? group || WHOLE_TOPIC
        : undefined;
    if (!this.#allowed(cmd, token, topic, scope)) throw forbidden(cmd, topic);
  }

  /** Throws 403 unless `token` may run `cmd` on the whole of `topic` (a topic change by a declare). */
  checkWholeTopic(cmd: string, token: string | undefined, topic: string): void {
    if (!this.#allowed(cmd, token, topic, WHOLE_TOPIC)) throw forbidden(cmd, topic);
  }

  #allowed(cmd: string, token: string | undefined, topic: string | undefined, scope: Scope): boolean {
    const e = this.find(token);
    if (e === undefined) return false;
    if (!e.all && !e.operations.has(OPERATION_OF[cmd] ?? cmd)) return false;
    if (topic === undefined) return true;
    const groups = e.anyTopic ? e.topics.get('*') : e.topics.get(topic.toLowerCase());
    if (!e.anyTopic && !e.topics.has(topic.toLowerCase())) return false;
    if (groups === undefined || scope === undefined) return true;
    return scope !== WHOLE_TOPIC && groups.has(scope.toLowerCase());
  }

  /** Whether info about `topic` may be shown to `token` (query/server/tracker filtering). */
  canSee(token: string | undefined, topic: string): boolean {
    const e = this.find(token);
    if (!e) return false;
    return e.all || e.anyTopic || e.topics.has(topic.toLowerCase());
  }
}
