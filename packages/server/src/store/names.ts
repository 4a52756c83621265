// Topic and group names become directory and file names: they are checked before anything touches the file
// system, and a name that passes works for every file the store derives from it.
import { createHash } from 'node:crypto';
import { StoreError } from './types.js';

/** Longest name, in UTF-8 bytes, as sent and lower-cased (names are case-insensitive; the lower-cased one is used). */
export const MAX_NAME_BYTES = 255;
const DLQ_SUFFIX = '.dlq';
/** A topic's dead-letter topic is `<topic>.dlq`: other topic names leave room for that suffix. */
export const MAX_TOPIC_BYTES = MAX_NAME_BYTES - DLQ_SUFFIX.length;
/** Group files are named by the lower-cased name up to this size; a longer one is shortened with a hash. */
const MAX_FILE_KEY_BYTES = 200;

/**
 * `s` as a string of its own, for one the store keeps. A decoded header value is a slice of its message's whole
 * head (V8 slices strings of 13 characters or more), so a kept id, tag or name would keep that head alive: up to
 * maxHeaderBytes for a few bytes. Joined with one character and cut again, it is copied once.
 */
export function ownString<S extends string | undefined>(s: S): S {
  return (s === undefined || s.length < 13 ? s : `${s} `.slice(0, -1)) as S;
}

/**
 * No path separators, no `..`, no NUL or control characters; at most 255 UTF-8 bytes, also lower-cased (a
 * lower-case letter may take more bytes than its capital: `İ` is 2 bytes, `i̇` 3). A topic name is at most 251
 * lower-cased bytes, so that its `.dlq` topic fits, unless it is such a dead-letter topic itself. Returns the name
 * as a string of its own (`ownString`), for a store that keeps it.
 */
export function validateName(kind: 'topic' | 'group', name: string): string {
  const bad = (why: string) =>
    new StoreError('ZBUS_ERR_BAD_NAME', `invalid ${kind} name ${JSON.stringify(name)}: ${why}`);
  if (typeof name !== 'string' || name.length === 0) throw bad('empty');
  if (name === '.' || name.includes('..')) throw bad('contains ..');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) throw bad('contains a control character');
    if (c === 0x2f || c === 0x5c) throw bad('contains a path separator');
  }
  const key = nameKey(name);
  const max = kind === 'topic' && !key.endsWith(DLQ_SUFFIX) ? MAX_TOPIC_BYTES : MAX_NAME_BYTES;
  const bytes = Math.max(Buffer.byteLength(name, 'utf8'), Buffer.byteLength(key, 'utf8'));
  if (bytes > max) {
    throw bad(
      max === MAX_TOPIC_BYTES
        ? `${bytes} bytes (lower-cased); a topic name has at most ${max}, leaving room for ${DLQ_SUFFIX}`
        : `${bytes} bytes (lower-cased); at most ${max}`,
    );
  }
  return ownString(name);
}

/**
 * Names are case-insensitive: this is the key in maps and the name of a topic's directory. A name with no capital
 * is its own key: toLowerCase copies even then, a string per topic or group lookup (two per produce and ack).
 */
export function nameKey(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 65 && c <= 90) || c >= 128) return name.toLowerCase();
  }
  return name;
}

/**
 * The base name of a group's files (`<base>.json`, `<base>.acks`): the lower-cased name, or, past 200 bytes, its
 * first 160 bytes, `..` and a hash of the whole, so that every file name stays under the file system's 255 bytes.
 * No valid name contains `..`, so no other group can be given the shortened name as its own.
 */
export function fileKey(name: string): string {
  const key = nameKey(name);
  if (Buffer.byteLength(key, 'utf8') <= MAX_FILE_KEY_BYTES) return key;
  let head = '';
  let bytes = 0;
  for (const ch of key) {
    bytes += Buffer.byteLength(ch, 'utf8');
    if (bytes > 160) break;
    head += ch;
  }
  return `${head}..${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}
