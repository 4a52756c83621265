// Names on the NATS side. Topic and group names are case-insensitive in zbus and may hold characters that NATS
// forbids in stream, consumer and KV key names (`.`, `*`, `>`, spaces) or in subject tokens, so they are
// encoded: lower case, `[a-z0-9_-]` kept, any other byte written as `X` + two upper-case hex digits (upper
// case never occurs otherwise, so the encoding is one to one). Names too long for a file name on a NATS server
// (stream and consumer names are directory names) keep a readable head and end in a hash.
import { createHash } from 'node:crypto';

const KEEP = /^[a-z0-9_-]$/;
const MAX_ENCODED = 120;

export function encodeName(name: string): string {
  let out = '';
  for (const ch of name.toLowerCase()) {
    if (KEEP.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `X${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length <= MAX_ENCODED) return out;
  const hash = createHash('sha256').update(name.toLowerCase()).digest('hex').slice(0, 32);
  return `${out.slice(0, MAX_ENCODED - 34)}_H${hash}`;
}

/** One tag segment as a subject token: never empty, never a wildcard, no whitespace, `%` escaped. */
export function encodeToken(t: string): string {
  if (t === '') return '%e';
  if (t === '*') return '%2A';
  if (t === '>') return '%3E';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped here
  return t.replace(/[%\s\u0000-\u001f\u007f]/g, (c) => {
    let s = '';
    for (const b of Buffer.from(c, 'utf8')) s += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    return s;
  });
}

/** Token that ends every tagged subject, so that `a.#` (`a` and below) is one subject filter, `...a.>`. */
const END = '%';

/** Where a deployment's names live: streams `<P>_T_<topic>`, subjects `<p>.t.<topic>...`, KV `<p>_meta`. */
export class Names {
  readonly streamPrefix: string;
  readonly subjectPrefix: string;

  constructor(readonly prefix: string) {
    if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`invalid NATS name prefix '${prefix}'`);
    this.streamPrefix = prefix.toUpperCase();
    this.subjectPrefix = prefix.toLowerCase();
  }

  stream(topicKey: string): string {
    return `${this.streamPrefix}_T_${topicKey}`;
  }

  /** Every subject of a topic's stream. */
  topicSubjects(topicKey: string): string {
    return `${this.subjectPrefix}.t.${topicKey}.>`;
  }

  /** The subject a message with `tag` is stored under. */
  subject(topicKey: string, tag: string | undefined): string {
    const base = `${this.subjectPrefix}.t.${topicKey}`;
    if (tag === undefined || tag === '') return `${base}.u`;
    return `${base}.t.${tag.split('.').map(encodeToken).join('.')}.${END}`;
  }

  /**
   * The subject filter of one 0.11 tag pattern (`*` one segment, `#` the rest, including nothing), or of
   * every tagged message when `pattern` is undefined.
   */
  filterSubject(topicKey: string, pattern: string | undefined): string {
    const base = `${this.subjectPrefix}.t.${topicKey}.t`;
    if (pattern === undefined) return `${base}.>`;
    const out: string[] = [];
    for (const p of pattern.split('.')) {
      if (p === '#') return `${base}.${[...out, '>'].join('.')}`;
      out.push(p === '*' ? '*' : encodeToken(p));
    }
    return `${base}.${out.join('.')}.${END}`;
  }

  consumer(groupKey: string, generation: number): string {
    return `${groupKey}_${generation}`;
  }

  get metaBucket(): string {
    return `${this.subjectPrefix}_meta`;
  }

  /** Why deliveries were nacked, for their dead letters (reasons.ts). */
  get reasonBucket(): string {
    return `${this.subjectPrefix}_reasons`;
  }

  get delayStream(): string {
    return `${this.streamPrefix}_DELAYS`;
  }

  delaySubject(topicKey: string): string {
    return `${this.subjectPrefix}.d.${topicKey}`;
  }

  get delaySubjects(): string {
    return `${this.subjectPrefix}.d.>`;
  }

  /** Core NATS subject on which brokers with a consumer of RPC topic `topicKey` take requests. */
  rpcSubject(topicKey: string): string {
    return `${this.subjectPrefix}.rpc.${topicKey}`;
  }
}
