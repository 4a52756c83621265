// Resource abuse over the network, each cut off by a configured limit with a clear error while the broker's
// memory stays bounded: slowloris, huge headers, huge bodies, floods of tiny pipelined requests, thousands of
// idle connections, and a consumer that never reads its socket.
import { connect as netConnect, type Socket } from 'node:net';
import { scaled, waitFor } from '@zbus/testkit';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { WebSocket } from 'ws';
import { CHAOS, chaosBroker, report, rssKiB, Wire } from './helpers.js';

// the idle test may run three times: longer than the default test timeout (both scale with the load).
vi.setConfig({ testTimeout: scaled(240_000) });

const IDLE_MS = 1500;
const LIMITS = {
  maxHeaderBytes: 4096,
  maxHeaderCount: 64,
  maxBodyBytes: 64 * 1024,
  idleTimeoutMs: IDLE_MS,
  writeHighWaterMark: 256 * 1024,
  maxInflightPerConnection: 256,
};

/** The broker's zbus_connections gauge (this request's own connection included). */
async function openConnections(port: number): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`)
    .then((r) => r.text())
    .catch(() => ''); // refused or reset while the broker is at maxConnections
  const m = /^zbus_connections (\d+)/m.exec(text);
  return m ? Number(m[1]) : -1;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
    onTestFinished(() => {
      s.destroy();
    });
  });
}

/** Collects what the server sends until it closes the connection (or `scaled(timeoutMs)` passes). */
function collect(s: Socket, timeoutMs: number): Promise<{ text: string; closed: boolean; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(
      () => resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false, ms: Date.now() - t0 }),
      scaled(timeoutMs),
    );
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true, ms: Date.now() - t0 });
    });
  });
}

/** One connection that asked for `/ping`: answered (accepted), refused with 503, or reset before any answer. */
interface Pinged {
  socket: Socket;
  answer: 'accepted' | '503' | 'reset';
  /** What the broker sent (the whole refusal for a refused one). */
  text: string;
  /** When the ping was written: the broker's idle timer for it starts later than this. */
  sentAt: number;
  /** Resolves with the time the connection closed. */
  closed: Promise<number>;
}

function ping(port: number): Promise<Pinged> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    onTestFinished(() => {
      socket.destroy();
    });
    let text = '';
    let sentAt = 0;
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    const settle = (answer: Pinged['answer']) => resolve({ socket, answer, text, sentAt, closed });
    socket.on('error', () => {});
    socket.once('connect', () => {
      sentAt = Date.now();
      socket.write('GET /ping HTTP/1.1\r\nhost: localhost\r\n\r\n');
    });
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.startsWith('HTTP/1.1 200 ') && text.includes('\r\n\r\n')) settle('accepted');
    });
    // A refused connection is answered 503 and closed at once, or reset without a word.
    socket.once('close', () => settle(text.startsWith('HTTP/1.1 503 ') ? '503' : 'reset'));
  });
}

/**
 * Opens `n` connections to a broker allowing `max`, each answering one ping and then idle. When opening took
 * less than half of `idleMs`, checks what the broker did; either way returns how long opening took.
 */
async function holdIdle(n: number, max: number, idleMs: number): Promise<{ openMs: number }> {
  const b = await chaosBroker({
    fsync: 'never',
    config: { ...LIMITS, idleTimeoutMs: idleMs, maxConnections: max },
  });
  const pid = b.process.pid!;
  const rss0 = rssKiB(pid);
  const held: Pinged[] = [];
  const t0 = Date.now();
  // In batches, each connection answered before the next batch: none waits in the listen backlog.
  for (let i = 0; i < n; i += 100) {
    held.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => ping(b.port)))));
  }
  const openMs = Date.now() - t0;
  if (openMs >= idleMs / 2) {
    for (const h of held) h.socket.destroy();
    await b.stop();
    report('idle connections', {
      opened: n,
      openMs,
      idleTimeoutMs: idleMs,
      outcome: 'opening too slow, again',
    });
    return { openMs };
  }
  const peak = rssKiB(pid);
  const count = (a: Pinged['answer']) => held.filter((h) => h.answer === a).length;
  // Exactly the excess is refused: with 503 while Node's own limit (maxConnections + 64) has room, reset past it.
  expect([count('accepted'), count('503') + count('reset')]).toEqual([max, n - max]);
  expect(count('503')).toBeGreaterThan(0);
  const gaugeAtPeak = await openConnections(b.port);
  // The broker closes the accepted ones once idle (its zbus_connections gauge says so; only the probe's own
  // connection is left), each no sooner than idleTimeoutMs after its ping.
  await waitFor(
    async () => {
      const open = await openConnections(b.port); // -1 while the probe itself is refused
      return open >= 0 && open <= 1;
    },
    `the broker to close its ${max} idle connections`,
    idleMs * 4,
  );
  const closedByBrokerMs = Date.now() - t0;
  const idleFor = await Promise.all(
    held.filter((h) => h.answer === 'accepted').map(async (h) => (await h.closed) - h.sentAt),
  );
  expect(Math.min(...idleFor)).toBeGreaterThanOrEqual(idleMs - 5); // timers may fire a little early
  const refusal = held.find((h) => h.answer === '503')!;
  const after = await Wire.open(b.port);
  expect((await after.request({ headers: { cmd: 'server' } })).status).toBe(200);
  report('idle connections', {
    opened: n,
    maxConnections: max,
    accepted: count('accepted'),
    refusedWith503: count('503'),
    refusedByReset: count('reset'),
    openMs,
    gaugeAtPeak,
    closedByBrokerMs,
    idleTimeoutMs: idleMs,
    idleForMs: [Math.min(...idleFor), Math.max(...idleFor)],
    rssBeforeKiB: rss0,
    rssWithAllOpenKiB: peak,
    perConnectionKiB: Math.round((peak - rss0) / max),
  });
  expect(refusal.text).toContain('maxConnections');
  expect(peak - rss0).toBeLessThan(200 * 1024);
  return { openMs };
}

describe('limits', () => {
  it('cuts off a slowloris client that trickles its header one byte at a time', async () => {
    const b = await chaosBroker({ fsync: 'never', config: LIMITS });
    const s = await open(b.port);
    const done = collect(s, IDLE_MS * 4);
    const head = `GET /?cmd=server HTTP/1.1\r\nhost: localhost\r\n${'x-slow: '.padEnd(40, 'z')}\r\n`;
    // One byte every 200 ms: each byte alone would keep an idle timer from firing.
    let sent = 0;
    const trickle = setInterval(() => {
      if (s.destroyed) return;
      s.write(head[sent % head.length]!);
      sent++;
    }, 200);
    onTestFinished(() => clearInterval(trickle));
    const r = await done;
    clearInterval(trickle);
    report('slowloris', {
      idleTimeoutMs: IDLE_MS,
      bytesTrickled: sent,
      cutAfterMs: r.ms,
      closed: r.closed,
      answer: r.text.split('\r\n')[0],
    });
    expect(r.closed, 'the broker kept a connection that never finished its header').toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.text).toContain('error_code: ZBUS_ERR_TIMEOUT');
  });

  it('answers 431 to a header block over maxHeaderBytes or maxHeaderCount, and closes', async () => {
    const b = await chaosBroker({ fsync: 'never', config: LIMITS });
    const big = await open(b.port);
    const r1 = collect(big, 3000);
    big.write(`GET /?cmd=server HTTP/1.1\r\nx-big: ${'a'.repeat(8000)}\r\n\r\n`);
    const many = await open(b.port);
    const r2 = collect(many, 3000);
    many.write(
      `GET /?cmd=server HTTP/1.1\r\n${Array.from({ length: 100 }, (_, i) => `x-h${i}: v`).join('\r\n')}\r\n\r\n`,
    );
    // Endless header: no blank line ever, 1 MiB of it; the broker must stop at 4 KiB, not buffer it all.
    const endless = await open(b.port);
    const r3 = collect(endless, 3000);
    endless.write('GET / HTTP/1.1\r\nx-endless: ');
    endless.write(Buffer.alloc(1024 * 1024, 0x61));
    const [a, c, e] = await Promise.all([r1, r2, r3]);
    for (const x of [a, c, e]) {
      expect(x.text).toMatch(/^HTTP\/1\.1 431 /);
      expect(x.text).toContain('error_code: ZBUS_ERR_HEADERS_TOO_LARGE');
      expect(x.closed).toBe(true);
    }
    report('huge headers', {
      maxHeaderBytes: LIMITS.maxHeaderBytes,
      answers: [a, c, e].map((x) => x.text.split('\r\n')[0]),
      bodies: [a, c, e].map((x) => x.text.split('\r\n\r\n')[1]),
    });
  });

  it('answers 413 to a body over maxBodyBytes before reading it (content-length, chunked, WebSocket)', async () => {
    const b = await chaosBroker({ fsync: 'never', config: LIMITS });
    const w = await Wire.open(b.port);
    await w.request({ headers: { cmd: 'declare', topic: 'Big' } });
    // Declared length: the answer comes before any body byte is sent.
    const s = await open(b.port);
    const r1 = collect(s, 3000);
    s.write(`POST /Big HTTP/1.1\r\ncontent-length: ${10 * 1024 * 1024}\r\n\r\n`);
    const a = await r1;
    expect(a.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(a.text).toContain('error_code: ZBUS_ERR_BODY_TOO_LARGE');
    expect(a.closed).toBe(true);
    // Chunked: cut off once the sum passes the limit.
    const s2 = await open(b.port);
    const r2 = collect(s2, 3000);
    s2.write('POST /Big HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n');
    for (let i = 0; i < 40 && !s2.destroyed; i++) s2.write(`4000\r\n${'c'.repeat(0x4000)}\r\n`);
    const c = await r2;
    expect(c.text).toMatch(/^HTTP\/1\.1 413 /);
    // WebSocket: a frame over the payload limit closes with 1009 (message too big).
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}/`);
    onTestFinished(() => ws.terminate());
    await new Promise((r) => ws.once('open', r));
    const code = new Promise<number>((r) => ws.once('close', (k) => r(k)));
    ws.on('error', () => {});
    ws.send(Buffer.alloc(LIMITS.maxHeaderBytes + LIMITS.maxBodyBytes + 1024, 0x62));
    const closeCode = await code;
    expect(closeCode).toBe(1009);
    // Nothing of it was stored; the topic still takes normal messages.
    const ok = await w.request({ headers: { cmd: 'produce', topic: 'Big' }, body: 'small' });
    expect(ok.headers.offset).toBe('0');
    report('huge bodies', {
      maxBodyBytes: LIMITS.maxBodyBytes,
      contentLength: a.text.split('\r\n')[0],
      chunked: c.text.split('\r\n')[0],
      websocketCloseCode: closeCode,
    });
  });

  it(`answers ${CHAOS.tinyRequests} tiny pipelined requests on one connection with bounded memory`, async () => {
    const b = await chaosBroker({ fsync: 'never', config: LIMITS });
    const pid = b.process.pid!;
    const admin = await Wire.open(b.port);
    await admin.request({ headers: { cmd: 'declare', topic: 'Tiny' } });
    admin.close();
    const rss0 = rssKiB(pid);
    const s = await open(b.port);
    let replies = 0;
    let buffered = '';
    s.on('data', (c: Buffer) => {
      buffered += c.toString('latin1');
      let i = buffered.indexOf('HTTP/1.1 200');
      while (i >= 0) {
        replies++;
        buffered = buffered.slice(i + 12);
        i = buffered.indexOf('HTTP/1.1 200');
      }
    });
    const one = Buffer.from(
      'GET / HTTP/1.1\r\ncmd: produce\r\ntopic: Tiny\r\nid: t\r\ncontent-length: 1\r\n\r\nx',
    );
    const BATCH = 2000;
    let peak = rss0;
    const t0 = Date.now();
    for (let sent = 0; sent < CHAOS.tinyRequests; sent += BATCH) {
      const n = Math.min(BATCH, CHAOS.tinyRequests - sent);
      if (!s.write(Buffer.concat(Array.from({ length: n }, () => one)))) {
        await new Promise((r) => s.once('drain', r));
      }
      if ((sent / BATCH) % 10 === 0) peak = Math.max(peak, rssKiB(pid));
    }
    await waitFor(() => replies >= CHAOS.tinyRequests, `${CHAOS.tinyRequests} replies`, 120_000);
    const ms = Date.now() - t0;
    peak = Math.max(peak, rssKiB(pid));
    const w = await Wire.open(b.port);
    const depth = (await w.request({ headers: { cmd: 'query', topic: 'Tiny' } })).json<{
      messageDepth: number;
    }>().messageDepth;
    report('tiny pipelined requests', {
      requests: CHAOS.tinyRequests,
      replies,
      ms,
      perSecond: Math.round((CHAOS.tinyRequests * 1000) / ms),
      rssBeforeKiB: rss0,
      rssPeakKiB: peak,
      depth,
    });
    expect(depth).toBe(CHAOS.tinyRequests);
    expect(peak - rss0).toBeLessThan(150 * 1024);
  });

  it(`holds ${CHAOS.idleConnections} idle connections, refuses past maxConnections with 503, and closes idle ones`, async () => {
    const n = CHAOS.idleConnections;
    const max = Math.floor(n * 0.75);
    // Every connection must be open before the first one idles out, or its slot goes to a later one. The idle
    // timeout starts at a guess; when opening took more than half of it (a busy machine), the run is repeated
    // with four times what opening took.
    let idleMs = Math.max(4000, Math.round(n * 1.5));
    for (let attempt = 1; ; attempt++) {
      const run = await holdIdle(n, max, idleMs);
      if (run.openMs < idleMs / 2) break;
      if (attempt === 3)
        throw new Error(`opening ${n} connections took over half of the idle timeout 3 times`);
      idleMs = run.openMs * 4;
    }
  });

  it('does not let a consumer that never reads its socket grow memory or starve the others', async () => {
    const b = await chaosBroker({ fsync: 'never', config: LIMITS });
    const pid = b.process.pid!;
    const w = await Wire.open(b.port);
    await w.request({
      headers: {
        cmd: 'declare',
        topic: 'Flood',
        consume_group: 'g',
        group_mask: '64',
        group_ack_timeout: '1000',
        group_ack_window: '900',
      },
    });
    const N = 800;
    const body = 'f'.repeat(32 * 1024); // 25 MiB in all, 100x the write high-water mark
    for (let i = 0; i < N; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          w.request({ headers: { cmd: 'produce', topic: 'Flood', id: `f${i + j}` }, body }),
        ),
      );
    }
    const rss0 = rssKiB(pid);
    const base = await openConnections(b.port);
    // The stuck consumer asks for everything and never reads (a paused socket does not see its own close:
    // the broker's zbus_connections gauge tells when it was cut off).
    const stuck = await open(b.port);
    stuck.pause();
    const t0 = Date.now();
    stuck.write(
      'GET / HTTP/1.1\r\ncmd: consume\r\ntopic: Flood\r\nconsume_group: g\r\nconsume_window: 1000\r\nid: stuck\r\n\r\n',
    );
    await waitFor(
      async () =>
        (await w.request({ headers: { cmd: 'query', topic: 'Flood', consume_group: 'g' } })).json<{
          unackedCount: number;
        }>().unackedCount > 0,
      'the stuck consumer holding deliveries',
    );
    // A healthy consumer on the same group gets everything in the end (what the stuck one held is redelivered).
    const good = await Wire.open(b.port, 'good');
    const got = new Set<string>();
    let peak = rss0;
    let deliveries = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`healthy consumer starved at ${got.size}/${N}`)),
        scaled(30_000),
      );
      good.stream('pull', (m) => {
        if (m.headers.origin_id === undefined) return;
        deliveries++;
        got.add(m.headers.origin_id);
        good.send({
          headers: {
            cmd: 'ack',
            topic: 'Flood',
            consume_group: 'g',
            offset: m.headers.offset!,
            ack: 'false',
          },
        });
        if (deliveries % 50 === 0) peak = Math.max(peak, rssKiB(pid));
        if (got.size >= N) {
          clearTimeout(timer);
          resolve();
        }
      });
      good.send({
        headers: { id: 'pull', cmd: 'consume', topic: 'Flood', consume_group: 'g', consume_window: '50' },
      });
    });
    // Cut off by the idle timeout: nothing moved on it for idleTimeoutMs.
    const stuckCutMs = await waitFor(
      async () => (await openConnections(b.port)) <= base + 1,
      'the stuck consumer cut off',
      IDLE_MS * 6,
    )
      .then(() => Date.now() - t0)
      .catch(() => -1);
    report('consumer never reads', {
      messages: N,
      bodyBytes: body.length,
      writeHighWaterMark: LIMITS.writeHighWaterMark,
      healthyGot: got.size,
      healthyDeliveries: deliveries,
      stuckCutAfterMs: stuckCutMs,
      rssBeforeKiB: rss0,
      rssPeakKiB: peak,
    });
    expect(got.size).toBe(N);
    expect(stuckCutMs, 'the non-reading consumer was never cut off').toBeGreaterThan(0);
    expect(peak - rss0).toBeLessThan(100 * 1024);
  });
});
