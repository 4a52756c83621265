import { StoreError } from './types.js';

const MAX_NAME_BYTES = 255;

/**
 * Topic and group names become directory and file names, so they are checked before anything touches the file
 * system: no path separators, no `..`, no NUL or control characters, at most 255 UTF-8 bytes.
 */
export function validateName(kind: 'topic' | 'group', name: string): void {
  const bad = (why: string) =>
    new StoreError('ZBUS_ERR_BAD_NAME', `invalid ${kind} name ${JSON.stringify(name)}: ${why}`);
  if (typeof name !== 'string' || name.length === 0) throw bad('empty');
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) throw bad(`longer than ${MAX_NAME_BYTES} bytes`);
  if (name === '.' || name.includes('..')) throw bad('contains ..');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) throw bad('contains a control character');
    if (c === 0x2f || c === 0x5c) throw bad('contains a path separator');
  }
}

/** Names are case-insensitive: this is the key in maps and the name on disk. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}
