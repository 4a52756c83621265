// In-process brokers for the broker's own tests: real listener on 127.0.0.1, a fresh data dir, cleanup
// registered beside the resource.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '@zbus/testkit';
import { onTestFinished } from 'vitest';
import { type Broker, type BrokerOptions, createBroker } from '../../src/index.js';

export interface TestBroker {
  broker: Broker;
  port: number;
  url: string;
  dataDir: string;
  raw(): Promise<RawClient>;
}

export async function startTestBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'zbus-broker-test-'));
  const broker = createBroker({
    host: '127.0.0.1',
    port: 0,
    fsync: 'never',
    logLevel: 'silent',
    ...options,
    dataDir,
  });
  const { port } = await broker.listen();
  const clients: RawClient[] = [];
  onTestFinished(async () => {
    for (const c of clients) c.close();
    await broker.close();
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    broker,
    port,
    url: `http://127.0.0.1:${port}`,
    dataDir,
    async raw() {
      const c = await RawClient.connect(port);
      clients.push(c);
      return c;
    },
  };
}
