// Token ACLs in the 0.11 model (zbus-protocol.md §11): each token lists operations and topics (optionally
// groups). Tokens are compared in constant time: every candidate is hashed to the same length first, and
// every entry is compared, so timing reveals neither a prefix nor which entry matched.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ZbusError } from '@zbus/protocol';
import type { AuthConfig, AuthTokenEntry } from '../options.js';

/** Commands subject to auth; any other command always passes (0.11 behaviour). */
const CHECKED = new Set([
  'produce',
  'consume',
  'unconsume',
  'ack',
  'nack',
  'touch',
  'route',
  'query',
  'declare',
  'empty',
  'remove',
  'track_pub',
  'track_sub',
  'tracker',
  'server',
  'ssl',
  'home',
]);

/** Commands whose group is checked as well as the topic. */
const GROUP_CHECKED = new Set(['consume', 'unconsume', 'declare', 'remove', 'empty', 'ack', 'nack', 'touch']);

/** The operation a command needs: `unconsume`, `ack`, `nack`, `touch` are part of `consume`. */
function operationOf(cmd: string): string {
  return cmd === 'unconsume' || cmd === 'ack' || cmd === 'nack' || cmd === 'touch' ? 'consume' : cmd;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

interface CompiledEntry {
  entry: AuthTokenEntry;
  hash: Buffer;
  all: boolean;
  operations: Set<string>;
  anyTopic: boolean;
  topics: Map<string, Set<string> | undefined>;
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

  /** True when the token is known (used by the monitor login). */
  isValid(token: string): boolean {
    return token !== '' && this.find(token) !== undefined;
  }

  /** Whether `token` may run `operation` (an operation outside any topic, such as `metrics`). */
  allows(operation: string, token: string | undefined): boolean {
    const e = this.find(token);
    return e !== undefined && (e.all || e.operations.has(operation));
  }

  isAdmin(token: string | undefined): boolean {
    return this.find(token)?.all === true;
  }

  /** Throws 403 with the 0.11 text when `token` may not run `cmd` on `topic`/`group`. */
  check(cmd: string, token: string | undefined, topic: string | undefined, group: string | undefined): void {
    if (!CHECKED.has(cmd)) return;
    const e = this.find(token);
    const allowed =
      e !== undefined &&
      (e.all || e.operations.has(operationOf(cmd))) &&
      (topic === undefined ||
        this.#topicAllowed(e, topic, GROUP_CHECKED.has(cmd) ? (group ?? topic) : undefined));
    if (!allowed) {
      const parts = [`Command(${cmd})`];
      if (topic !== undefined) parts.push(`Topic(${topic})`);
      throw new ZbusError('ZBUS_ERR_FORBIDDEN', `${parts.join(' ')} Forbbiden`);
    }
  }

  #topicAllowed(e: CompiledEntry, topic: string, group: string | undefined): boolean {
    if (e.anyTopic) {
      const groups = e.topics.get('*');
      return groups === undefined || group === undefined || groups.has(group.toLowerCase());
    }
    const key = topic.toLowerCase();
    if (!e.topics.has(key)) return false;
    const groups = e.topics.get(key);
    return groups === undefined || group === undefined || groups.has(group.toLowerCase());
  }

  /** Whether info about `topic` may be shown to `token` (query/server/tracker filtering). */
  canSee(token: string | undefined, topic: string): boolean {
    const e = this.find(token);
    if (!e) return false;
    return e.all || e.anyTopic || e.topics.has(topic.toLowerCase());
  }
}
