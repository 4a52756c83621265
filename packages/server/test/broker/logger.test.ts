// createBroker({ logger }): an embedding application's pino logger gets the broker's logs (issue 19).
import { once } from 'node:events';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createBroker } from '../../src/index.js';
import { startTestBroker } from './helpers.js';

describe('logger option', () => {
  it("logs through the application's pino logger instead of its own", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const logger = pino({ level: 'debug', base: { app: 'embedding' } }, sink);
    const { port } = await startTestBroker({ logger, idleTimeoutMs: 50 });
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    await once(socket, 'close'); // the broker closes the idle connection and logs it (debug)
    expect(lines).toContainEqual(expect.objectContaining({ app: 'embedding', msg: 'idle timeout' }));
  });

  it('refuses a logger without the pino methods', () => {
    expect(() => createBroker({ logger: {} as pino.Logger })).toThrow(
      'logger must be a pino logger (error, warn, info and debug methods) (logger)',
    );
  });
});
