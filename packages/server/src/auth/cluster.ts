// The cluster secret (decisions.md §6, issue 14 item 6): only brokers started with the same `clusterToken` may
// report themselves to a tracker with `track_pub`. Without it, any client could claim topics for an address of
// its choosing (redirecting every `Broker` client's producers there) and make the tracker dial any address.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ZbusError } from '@zbus/protocol';

/** The header a reporting broker sends its cluster secret in (never the `token` header: that is its ACL token). */
export const CLUSTER_TOKEN_HEADER = 'cluster_token';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Throws 403 unless `given` is this broker's cluster secret (compared in constant time). */
export function checkClusterMember(expected: string | undefined, given: string | undefined): void {
  if (expected === undefined) {
    throw new ZbusError(
      'ZBUS_ERR_FORBIDDEN',
      'Command(track_pub) Forbbiden: this broker takes no server reports; start it and the brokers that report ' +
        'to it with the same --cluster-token (clusterToken)',
    );
  }
  if (given === undefined || !timingSafeEqual(digest(expected), digest(given))) {
    throw new ZbusError(
      'ZBUS_ERR_FORBIDDEN',
      "Command(track_pub) Forbbiden: only brokers started with this cluster's --cluster-token may report " +
        `to it (${CLUSTER_TOKEN_HEADER} header)`,
    );
  }
}
