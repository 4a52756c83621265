// RPC between brokers over core NATS (nothing stored): a broker that has a service consuming an RPC topic
// subscribes to `<p>.rpc.<topic>` in the queue group `zbus`, so each request reaches one such broker, which
// answers on the request's inbox. With no broker subscribed NATS answers "no responders" at once: no service
// on any broker.
import { type NatsConnection, NoRespondersError, TimeoutError } from '@nats-io/nats-core';
import type { ClusterLink, LinkReply } from '@zbus/server';
import type { Names } from './names.js';
import { encodeName } from './names.js';

const QUEUE = 'zbus';

export class NatsLink implements ClusterLink {
  constructor(
    readonly nc: NatsConnection,
    readonly names: Names,
    readonly log: (err: unknown, msg: string) => void,
  ) {}

  async request(topic: string, data: Uint8Array, timeoutMs: number): Promise<LinkReply> {
    try {
      const m = await this.nc.request(this.names.rpcSubject(encodeName(topic)), data, { timeout: timeoutMs });
      return { status: 'ok', data: m.data };
    } catch (err) {
      if (err instanceof NoRespondersError || /no responders|503/i.test(String(err))) {
        return { status: 'no_responders' };
      }
      if (err instanceof TimeoutError || /timeout/i.test(String(err))) return { status: 'timeout' };
      throw err;
    }
  }

  serve(topic: string, handler: (data: Uint8Array) => Promise<Uint8Array | undefined>): () => void {
    const sub = this.nc.subscribe(this.names.rpcSubject(encodeName(topic)), {
      queue: QUEUE,
      callback: (_err, m) => {
        handler(m.data).then(
          (reply) => {
            if (reply !== undefined) m.respond(reply);
          },
          (err: unknown) => this.log(err, `serving an RPC request of ${topic} for another broker failed`),
        );
      },
    });
    return () => sub.unsubscribe();
  }
}
