import type { Message } from '@zbus/protocol';
import { describe, expect, it } from 'vitest';
import {
  ClientBootstrap,
  DEFAULT_SERVICE_MASK,
  type RpcConnector,
  type RpcServeOptions,
  ServiceBootstrap,
} from '../src/index.js';

/** A connector whose "broker" is a map of served topics in memory. */
function memoryConnector() {
  const served = new Map<string, RpcServeOptions>();
  const log: string[] = [];
  const factory = (address: string): RpcConnector => ({
    async serve(options) {
      log.push(
        `serve ${address} ${options.topic} mask=${options.mask} n=${options.connectionCount} token=${options.token}`,
      );
      served.set(options.topic, options);
      return {
        async close() {
          served.delete(options.topic);
          log.push(`close ${options.topic}`);
        },
      };
    },
    connect(options) {
      log.push(`connect ${address} token=${options.token}`);
      return {
        async invoke(msg: Message) {
          const s = served.get(msg.topic ?? '');
          if (!s) throw new Error('no service');
          const reply = await s.process(msg);
          reply.set('id', msg.id);
          return reply;
        },
        async close() {
          log.push('client closed');
        },
      };
    },
  });
  return { factory, log };
}

describe('ServiceBootstrap / ClientBootstrap', () => {
  it('start a service and call it through a typed proxy', async () => {
    const { factory, log } = memoryConnector();
    const service = await new ServiceBootstrap(factory)
      .serviceName('MyRpc')
      .serviceAddress('10.0.0.1:15555')
      .serviceToken('s3')
      .connectionCount(4)
      .addModule('math', { plus: (a: number, b: number) => a + b })
      .addModule({ ping: () => 'pong' })
      .start();
    const client = new ClientBootstrap(factory)
      .serviceName('MyRpc')
      .serviceAddress('10.0.0.1:15555')
      .timeout(500);
    const math = client.proxy<{ plus(a: number, b: number): number }>('math');
    expect(await math.plus(1, 2)).toBe(3);
    expect(await client.invoker().invoke('ping')).toBe('pong');
    await client.close();
    await service.close();
    expect(log).toEqual([
      `serve 10.0.0.1:15555 MyRpc mask=${DEFAULT_SERVICE_MASK} n=4 token=s3`,
      'connect 10.0.0.1:15555 token=undefined',
      'client closed',
      'close MyRpc',
    ]);
  });

  it('require a service name and a valid connection count', async () => {
    const { factory } = memoryConnector();
    await expect(new ServiceBootstrap(factory).start()).rejects.toThrow(/serviceName/);
    expect(() => new ServiceBootstrap(factory).connectionCount(0)).toThrow(/connectionCount/);
    expect(() => new ClientBootstrap(factory).invoker()).toThrow(/serviceName/);
  });

  it('always keep the RPC bit in a custom service mask', async () => {
    const { factory, log } = memoryConnector();
    const s = await new ServiceBootstrap(factory).serviceName('DiskRpc').serviceMask(0).start();
    expect(log[0]).toContain('mask=2');
    await s.close();
  });
});
