// Token ACLs (403 as ZBUS_ERR_FORBIDDEN) against the real broker, and the client's TLS transport against the
// broker's own TLS (`--tls-cert/--tls-key`, sniffed on the same port as plain TCP).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningBroker, selfSignedCert, startBroker } from '@zbus/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, Consumer, MqAdmin, MqClient, Producer, ZbusError } from '../../src/index.js';

let dir: string;
let server: RunningBroker;
let cert: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zbus-client-auth-'));
  const auth = {
    tokens: [
      { token: 'admin-secret', operations: ['*'], topics: [{ topic: '*' }] },
      { token: 'reader', operations: ['consume', 'query'], topics: [{ topic: 'open' }] },
    ],
  };
  writeFileSync(join(dir, 'auth.json'), JSON.stringify(auth));
  const pem = selfSignedCert();
  cert = pem.cert;
  writeFileSync(join(dir, 'cert.pem'), pem.cert);
  writeFileSync(join(dir, 'key.pem'), pem.key);
  server = await startBroker({
    args: [
      '--auth',
      join(dir, 'auth.json'),
      '--tls-cert',
      join(dir, 'cert.pem'),
      '--tls-key',
      join(dir, 'key.pem'),
    ],
  });
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('auth and TLS', () => {
  it('talks TLS to the broker when asked (tls option or tls:// address), on the port plain clients use', async () => {
    const a = new MqClient(server.address, { tls: { ca: cert }, token: 'admin-secret' });
    const b = new MqClient(`tls://${server.address}`, { tls: { ca: cert }, token: 'admin-secret' });
    try {
      await expect(a.server()).resolves.toMatchObject({ serverAddress: { sslEnabled: true } });
      await b.declareTopic('over-tls');
      const r = await b.produce({ topic: 'over-tls', body: 'secret ✓' });
      expect(r!.offset).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('rejects a certificate it does not trust, at connect', async () => {
    const c = new MqClient(server.address, { tls: true, reconnect: false });
    const err = await c.connect().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ZBUS_ERR_CONNECTION_CLOSED' });
    expect(String((err as Error).message)).toMatch(/self.signed|certificate/i);
    await c.close();
  });

  it('turns 403 into ZBUS_ERR_FORBIDDEN; tokens open what their ACL allows', async () => {
    const admin = new Broker(server.address, { token: 'admin-secret' });
    const anon = new MqClient(server.address);
    const reader = new Broker(server.address, { token: 'reader' });
    try {
      await new MqAdmin(admin).declare('open', { group: 'g' });
      const err = await anon.produce({ topic: 'open', body: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ZbusError);
      expect(err).toMatchObject({ code: 'ZBUS_ERR_FORBIDDEN', status: 403 });
      await expect(new Producer(reader).publish({ topic: 'open', body: 'x' })).rejects.toMatchObject({
        code: 'ZBUS_ERR_FORBIDDEN',
      });
      await new Producer(admin).publish({ topic: 'open', body: 'allowed' });
      const seen: string[] = [];
      const c = new Consumer(reader, {
        topic: 'open',
        group: 'g',
        declareOnMissing: false,
        handler: (m) => void seen.push(m.bodyText()),
      });
      await c.start();
      await expect.poll(() => seen).toEqual(['allowed']);
      await c.close();
    } finally {
      await anon.close();
      await admin.close();
      await reader.close();
    }
  });
});
