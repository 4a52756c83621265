import { Message } from '@zbus/protocol';
import type {
  RpcConnection,
  RpcConnector,
  RpcConnectorFactory,
  RpcServeOptions,
  RpcService,
} from '@zbus/rpc';
import type { Broker } from './broker.js';
import type { MqClient } from './client.js';
import { answeredByRoute, Consumer } from './consumer.js';

/**
 * Binds the `@zbus/rpc` bootstraps to a broker. `makeBroker(address)` builds the transport-specific broker
 * (TCP in `@zbus/client`, WebSocket in the browser client).
 */
export function brokerRpcConnector(makeBroker: (address: string) => Broker): RpcConnectorFactory {
  return (address: string): RpcConnector => ({
    async serve(options: RpcServeOptions): Promise<RpcService> {
      const broker = makeBroker(address);
      const consumer = new Consumer(broker, {
        topic: options.topic,
        topicMask: options.mask,
        connectionCount: options.connectionCount,
        window: options.window ?? 1,
        ...(options.token !== undefined ? { token: options.token } : {}),
        handler: async (req, client) => {
          const caller = req.sender;
          const id = req.id;
          let reply: Message;
          try {
            reply = await options.process(req);
          } catch (err) {
            // `process` of RpcProcessor never throws; a custom one might.
            reply = new Message({ status: 500, body: String((err as Error)?.message ?? err) });
          }
          if (caller === undefined || id === undefined) return; // nobody to answer
          reply.set('id', id);
          reply.set('topic', options.topic);
          client.route(reply, caller);
          answeredByRoute(req);
        },
      });
      try {
        await consumer.start();
      } catch (err) {
        await broker.close();
        throw err;
      }
      return {
        async close() {
          await consumer.close();
          await broker.close();
        },
      };
    },
    connect(options: { token?: string }): RpcConnection {
      const broker = makeBroker(address);
      if (options.token === undefined) {
        // Each call goes to a server whose RPC topic has consumers (the broker's produce routing).
        return { invoke: (msg, opts) => broker.invoke(msg, opts), close: () => broker.close() };
      }
      const token = options.token;
      const own = new Map<string, MqClient>();
      return {
        async invoke(msg, opts) {
          await broker.tracked();
          const server = broker.select(msg.headers.topic);
          let c = own.get(server);
          if (c === undefined || c.state === 'closed' || c.state === 'closing') {
            c = broker.createClientAt(server, { token });
            own.set(server, c);
          }
          return c.invoke(msg, opts);
        },
        close: () => broker.close(),
      };
    },
  });
}
