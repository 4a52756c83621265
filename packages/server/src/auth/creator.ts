// What the `creator` of a topic or group written by an earlier version becomes (store/migrate-creators.ts).
// Those versions stored the client's address or the declaring token itself; they never stored a name.
import { isIP } from 'node:net';
import type { Auth } from './auth.js';

/** `ip:port` as sessions report their peer. */
function isAddress(creator: string): boolean {
  const colon = creator.lastIndexOf(':');
  return colon > 0 && /^\d{1,5}$/.test(creator.slice(colon + 1)) && isIP(creator.slice(0, colon)) !== 0;
}

/**
 * Addresses and the store's own `zbus` stay; a token of the auth file becomes its name; anything else, a token
 * no longer listed among them, is dropped.
 */
export function migratedCreator(auth: Auth | undefined): (creator: string) => string {
  return (creator) => {
    if (creator === '' || creator === 'zbus' || isAddress(creator)) return creator;
    return auth?.nameOf(creator) ?? '';
  };
}
