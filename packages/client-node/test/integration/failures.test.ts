// Failures that speak (issue 19), against the real broker: a handler error nobody handles reaches the consumer's
// `error` listeners or the logger, automatic nacks back off, a publish to an undeclared topic says how to declare
// it (or declares it), and clients log through a pino-compatible logger and report where they stand (stats).
import { type RunningBroker, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  Broker,
  type ConsumedMessage,
  Consumer,
  type Logger,
  Mask,
  MqClient,
  Producer,
  type ZbusError,
} from '../../src/index.js';

interface Line {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A pino-compatible logger that keeps what it is given. */
function captureLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const level =
    (name: string) =>
    (obj: object | string, msg?: string): void => {
      if (typeof obj === 'string') lines.push({ level: name, obj: {}, msg: obj });
      else lines.push({ level: name, obj: obj as Record<string, unknown>, msg });
    };
  const logger = { error: level('error'), warn: level('warn'), info: level('info'), debug: level('debug') };
  return { logger: logger as Logger, lines };
}

let server: RunningBroker;
let broker: Broker;
let producer: Producer;
const { logger, lines } = captureLogger();

beforeAll(async () => {
  server = await startBroker({ fsync: 'never' });
  broker = new Broker(server.address, { logger });
  producer = new Producer(broker, { declareOnMissing: true });
});

afterAll(async () => {
  await broker?.close();
  await server?.stop();
});

function consumer(options: ConstructorParameters<typeof Consumer>[1]): Consumer {
  const c = new Consumer(broker, options);
  onTestFinished(() => c.close());
  return c;
}

describe('a consumer handler that throws', () => {
  it("goes to the consumer's error listeners when there is no onError", async () => {
    const c = consumer({
      topic: 'f-listener',
      nackBackoff: false,
      handler: () => {
        throw new Error('boom');
      },
    });
    const seen = new Promise<[Error, ConsumedMessage | undefined]>((resolve) =>
      c.on('error', (err, msg) => resolve([err, msg])),
    );
    await c.start();
    await producer.publish({ topic: 'f-listener', body: 'payload' });
    const [err, msg] = await seen;
    expect(err.message).toBe('boom');
    expect(msg?.bodyText()).toBe('payload');
  });

  it('is logged at error level with topic, group and offset when nobody listens', async () => {
    const c = consumer({
      topic: 'f-logged',
      nackBackoff: false,
      handler: () => {
        throw new TypeError('no listener');
      },
    });
    await c.start();
    const sent = await producer.publish({ topic: 'f-logged', body: 'x' });
    const line = await new Promise<Line>((resolve) => {
      const check = () => {
        const l = lines.find((x) => x.obj.topic === 'f-logged');
        if (l) resolve(l);
        else setImmediate(check);
      };
      check();
    });
    expect(line).toMatchObject({
      level: 'error',
      msg: 'zbus consumer handler failed',
      obj: { topic: 'f-logged', group: 'f-logged', offset: String(sent.offset) },
    });
    expect((line.obj.err as Error).message).toBe('no listener');
  });

  it('is redelivered after a backoff (nack with delay), not at once', async () => {
    const times: number[] = [];
    const retries: (number | undefined)[] = [];
    let resolve!: () => void;
    const second = new Promise<void>((r) => {
      resolve = r;
    });
    const c = consumer({
      topic: 'f-backoff',
      group: { name: 'g', mask: Mask.AckRequired, ackTimeout: 60_000 },
      nackBackoff: { delay: 400, jitter: 0 },
      onError: () => {},
      handler: (m) => {
        times.push(Date.now());
        retries.push(m.retry);
        if (times.length === 1) throw new Error('first try fails');
        resolve();
      },
    });
    await c.start();
    await producer.publish({ topic: 'f-backoff', body: 'x' });
    await second;
    expect(retries).toEqual([undefined, 1]);
    // A lower bound only (a busy machine may redeliver later, never sooner); without a backoff it is ~1 ms.
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(350);
  });

  it('leaves the last error in the dead letter (dlq_error) once the deliveries are used up', async () => {
    let tries = 0;
    const c = consumer({
      topic: 'f-dlq',
      group: { name: 'g', mask: Mask.AckRequired, ackTimeout: 60_000, maxDeliver: 2 },
      nackBackoff: false,
      onError: () => {},
      handler: () => {
        tries++;
        throw new Error(`attempt ${tries} failed`);
      },
    });
    await c.start();
    const dead = new Promise<ConsumedMessage>((resolve) => {
      consumer({ topic: 'f-dlq.dlq', handler: (m) => resolve(m) })
        .start()
        .catch(() => {});
    });
    await producer.publish({ topic: 'f-dlq', body: 'poison' });
    const m = await dead;
    expect(m.bodyText()).toBe('poison');
    expect(m.headers).toMatchObject({
      dlq_reason: 'max_deliver',
      dlq_deliveries: '2',
      dlq_error: 'attempt 2 failed',
    });
  });
});

describe('a publish to a topic nobody declared', () => {
  it('fails with ZBUS_ERR_NOT_FOUND and says how to declare it', async () => {
    const strict = new Producer(broker);
    const err = (await strict.publish({ topic: 'f-never-declared', body: 'x' }).catch((e) => e)) as ZbusError;
    expect(err).toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND', status: 404 });
    expect(err.message).toMatch(/declare topic f-never-declared first/);
    expect(err.message).toMatch(/`zbus declare f-never-declared`/);
    expect(err.message).toMatch(/declareOnMissing: true$/);
  });

  it('declares it first with declareOnMissing', async () => {
    const r = await producer.publish({ topic: 'f-declared-on-publish', body: 'x' });
    expect(r.offset).toBe(0);
    expect((await broker.client().queryTopic('f-declared-on-publish')).messageDepth).toBe(1);
  });
});

describe('a publish on a producer that published before (the path without an async step)', () => {
  it('fails on a missing topic as the first publish does, or declares it, and frees its place in flight', async () => {
    await broker.client().declareTopic('f-warm');
    const strict = new Producer(broker);
    const warm = new Producer(broker, { declareOnMissing: true });
    await strict.publish({ topic: 'f-warm', body: 'x' });
    await warm.publish({ topic: 'f-warm', body: 'x' });
    const err = (await strict.publish({ topic: 'f-warm-missing', body: 'x' }).catch((e) => e)) as ZbusError;
    expect(err).toMatchObject({ code: 'ZBUS_ERR_NOT_FOUND', status: 404 });
    expect(err.message).toMatch(/declareOnMissing: true$/);
    const r = await warm.publish({ topic: 'f-warm-declared', body: 'x' });
    expect(r.offset).toBe(0);
    expect([strict.inFlight, strict.inFlightBytes, warm.inFlight, warm.inFlightBytes]).toEqual([0, 0, 0, 0]);
  });
});

describe('client state and logs', () => {
  it('stats() tells state, in-flight requests, reconnects and rtt; Broker.stats() every connection', async () => {
    const client = broker.client();
    await client.ping();
    expect(client.stats()).toMatchObject({
      server: server.address,
      state: 'open',
      reconnects: 0,
      inFlight: 0,
      queued: 0,
      blocked: false,
    });
    expect(client.stats().rtt).toBeGreaterThanOrEqual(0);
    const s = broker.stats();
    expect(s.servers).toEqual([server.address]);
    expect(s.connections.find((c) => c.role === 'shared')).toMatchObject({
      server: server.address,
      state: 'open',
    });
    expect(s.connections.some((c) => c.role === 'tracker')).toBe(true);
  });

  it('logs a lost connection (warn) and its reconnect (info) through the logger', async () => {
    const own = await startBroker({ fsync: 'never' });
    onTestFinished(async () => {
      await own.stop();
    });
    const log = captureLogger();
    const client = new MqClient(own.address, { logger: log.logger, reconnectDelay: 20 });
    onTestFinished(() => client.close());
    await client.connect();
    const lost = new Promise<void>((resolve) => client.on('disconnected', () => resolve()));
    await own.kill();
    await lost;
    expect(log.lines.find((l) => l.msg === 'zbus connection lost')).toMatchObject({
      level: 'warn',
      obj: { server: own.address },
    });
    const back = new Promise<void>((resolve) => client.on('connected', () => resolve()));
    await own.restart();
    await back;
    expect(log.lines.find((l) => l.msg === 'zbus reconnected')).toMatchObject({ level: 'info' });
    expect(client.stats().reconnects).toBe(1);
  });
});
