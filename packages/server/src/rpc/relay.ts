// RPC across brokers that share a store (docs/scale-out.md). A call to an RPC topic that no service consumes on
// this broker is sent over the cluster link to one broker that has such a service (a queue group: each request
// reaches one). That broker queues it in its own RPC topic, as if its caller were connected there; the service's
// `route` answers it through an ordinary call entry whose "session" hands the reply back over the link. With no
// broker serving the topic the link says so at once: 503, no service on any broker. Timeouts stay the caller's
// broker's (504).
import { encodeMessage, type Message, ZbusError } from '@zbus/protocol';
import type { ClusterLink } from '../cluster/shared-store.js';
import { errorReply } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { decodeStored, storedId } from '../mq/delivery.js';
import type { Dispatcher } from '../mq/dispatcher.js';
import type { ResolvedBrokerOptions } from '../options.js';
import type { Store } from '../store/types.js';
import { type Caller, type RpcCalls, routed } from './calls.js';

/** Extra time the link waits beyond the call's own timeout, so that the caller's broker answers 504 itself. */
const LINK_SLACK_MS = 1000;

/** The parts of the broker the relay works with (the broker's state has them all). */
export interface RelayHost {
  readonly options: Pick<ResolvedBrokerOptions, 'rpcTimeoutMs'>;
  readonly store: Store;
  readonly dispatcher: Pick<Dispatcher, 'consumerCount'>;
  readonly metrics: Metrics;
  readonly rpc: RpcCalls;
}

export class RpcRelay {
  /** RPC topics this broker serves for the others (lower-cased name -> unsubscribe). */
  readonly #served = new Map<string, () => void>();
  /** Requests from other brokers still waiting here for the service's route. */
  readonly #pending = new Set<() => void>();

  constructor(
    readonly link: ClusterLink,
    readonly state: RelayHost,
  ) {}

  /**
   * Consumers of `topic` changed on this broker: serve its RPC requests from other brokers while at least one
   * service consumes it here.
   */
  consumersChanged(topic: string, isRpc: boolean): void {
    const key = topic.toLowerCase();
    const serving = this.#served.get(key);
    const consumed = isRpc && this.state.dispatcher.consumerCount(topic) > 0;
    if (consumed && !serving)
      this.#served.set(
        key,
        this.link.serve(topic, (data) => this.#serve(data)),
      );
    else if (!consumed && serving) {
      serving();
      this.#served.delete(key);
    }
  }

  /**
   * Sends the call to a broker that has a service for it. Resolves once the reply went to the caller, rejects
   * with 503 when no broker serves the topic; a call that runs out of time is answered 504 by RpcCalls.
   */
  async forward(
    caller: Caller,
    topic: string,
    id: string,
    request: Uint8Array,
    timeoutMs: number,
  ): Promise<void> {
    const r = await this.link.request(topic, request, timeoutMs + LINK_SLACK_MS);
    if (r.status === 'timeout') return;
    if (r.status === 'no_responders') {
      this.state.metrics.rpcNoResponders++;
      throw new ZbusError(
        'ZBUS_ERR_NO_RESPONDERS',
        `no service is consuming ${topic} on any broker (no responders)`,
      );
    }
    const reply = decodeStored(r.data);
    reply.set('id', id);
    const call = this.state.rpc.take(caller.id, id);
    if (call === undefined || !routed(call, reply)) this.state.metrics.rpcUnroutableReplies++;
  }

  /** A request from another broker: queue it here and wait for the service's route. */
  #serve(data: Uint8Array): Promise<Uint8Array | undefined> {
    const { state } = this;
    let req: Message;
    try {
      req = decodeStored(data);
    } catch (err) {
      return Promise.resolve(encodeMessage(errorReply(err)));
    }
    const topic = req.topic === undefined ? undefined : state.store.topic(req.topic);
    const sender = req.headers.sender;
    const id = storedId(req);
    if (
      !topic ||
      sender === undefined ||
      id === undefined ||
      state.dispatcher.consumerCount(topic.name) === 0
    ) {
      // This broker's service left just now: the caller's broker answers 503 as if nobody had taken it.
      const err = new ZbusError(
        'ZBUS_ERR_NO_RESPONDERS',
        `no service is consuming ${req.topic} (no responders)`,
      );
      return Promise.resolve(encodeMessage(errorReply(err, req.topic)));
    }
    return new Promise((resolve) => {
      const done = (reply: Uint8Array | undefined) => {
        this.#pending.delete(abandon);
        resolve(reply);
      };
      const abandon = () => {
        state.rpc.settle(sender, id);
        done(undefined);
      };
      this.#pending.add(abandon);
      const remote: Caller = {
        id: sender,
        deliverRouted: (reply) => {
          done(encodeMessage(reply));
          return true;
        },
      };
      state.rpc.add(remote, id, topic.name, state.options.rpcTimeoutMs, () => done(undefined));
      topic.append({ id, tag: req.tag, data }).then(
        () => state.metrics.countProduced(topic.name),
        (err: unknown) => {
          state.rpc.settle(sender, id);
          done(encodeMessage(errorReply(err, topic.name)));
        },
      );
    });
  }

  /** Shutdown: stop serving; requests still waiting here get no reply (their callers' brokers answer 504). */
  close(): void {
    for (const off of this.#served.values()) off();
    this.#served.clear();
    for (const abandon of [...this.#pending]) abandon();
  }
}
