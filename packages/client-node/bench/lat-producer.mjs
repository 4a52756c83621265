// The sending side of peers.bench.mjs's latency workload, in a worker thread of its own: the open-loop send loop
// and one system's publishing client, so that the consumer's work in the main thread (a burst of deliveries after
// any stall) never delays the next send, and the other way round. The same loop drives every system.
//
// Message i is due at start + i / rate. A ticker wakes this thread every tickUs microseconds and everything due is
// sent; each body carries its sequence number and scheduled time on the shared monotonic clock (`monoNow`), and the
// time its send call returned goes into the shared `sentAt` array, so the consumer thread can split each latency
// into the harness's send lag (sent - scheduled) and the transit (received - sent). Where the system acknowledges
// a publish, the time the acknowledgement arrived goes into `ackedAt` (sent -> acked: the publishing client and
// the server's append).
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { connect as natsConnect } from 'nats';
import { createClient } from 'redis';
import { MqClient, Producer } from '../dist/index.js';

/** Milliseconds on CLOCK_MONOTONIC, the same in every thread and process of the machine (performance.now() is not). */
const monoOffset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
export const monoNow = () => performance.now() + monoOffset;

const SIZE = 100;
const PAYLOAD = 'x'.repeat(SIZE);

/** A latency body of exactly SIZE bytes: `seq|scheduled-ms|xxxx`. */
function stamp(seq, at) {
  const head = `${seq}|${at.toFixed(3)}|`;
  return head + PAYLOAD.slice(head.length);
}

/**
 * Calls `tick` about every `us` microseconds until the returned stop() is called, without a busy loop: a worker
 * thread sleeps in Atomics.wait (a futex with a sub-millisecond timeout) and posts a message, which wakes this
 * thread's event loop as any I/O does. It posts again only once the last wake was taken, so a thread that is busy
 * (or descheduled) finds one wake waiting, not a pile. `us` 0: setTimeout(tick, 1) after each tick.
 */
function ticker(us, tick) {
  if (us <= 0) {
    let stopped = false;
    let timer = setTimeout(function again() {
      tick();
      if (!stopped) timer = setTimeout(again, 1);
    }, 1);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }
  // [0]: a wake is posted and not yet taken; [1]: stop.
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(
    `const { workerData: { flags, ms }, parentPort } = require('node:worker_threads');
    while (Atomics.wait(flags, 1, 0, ms) === 'timed-out') {
      if (Atomics.compareExchange(flags, 0, 0, 1) === 0) parentPort.postMessage(0);
    }`,
    { eval: true, workerData: { flags, ms: us / 1000 } },
  );
  worker.on('message', () => {
    Atomics.store(flags, 0, 0);
    tick();
  });
  return () => {
    Atomics.store(flags, 1, 1);
    Atomics.notify(flags, 1);
    worker.removeAllListeners('message');
    worker.unref();
  };
}

/** p50, p99, p99.9 and max of `xs` (sorted in place). */
export function percentiles(xs) {
  xs.sort((a, b) => a - b);
  const pct = (p) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
  return { p50: pct(50), p99: pct(99), p999: pct(99.9), max: xs[xs.length - 1] };
}

/**
 * One system's publisher: `send(seq, body)` must not wait and calls `acked(seq)` when the server acknowledged it;
 * `close()` after everything was handed over.
 */
async function publisher({ system, address, target, total }, acked) {
  const enc = new TextEncoder();
  let errors = 0;
  const failed = (err) => {
    if (errors++ === 0) console.error(`  ${system} publish: ${err?.message ?? err}`);
  };
  if (system === 'zbus') {
    const client = new MqClient(address, { reconnect: false, timeout: 30_000 });
    await client.connect();
    // Open loop: no system's client bounds what is in flight here (nats.js and node-redis have no such bound), so
    // the Producer's bounds are set above anything a run sends (by default 8 MiB of bytes would bind first).
    const producer = new Producer(client, { maxInFlight: total, maxInFlightBytes: Number.MAX_SAFE_INTEGER });
    return {
      send: (seq, body) => void producer.publish({ topic: target, body }).then(() => acked(seq), failed),
      errors: () => errors,
      async close() {
        await producer.flush();
        await client.close();
      },
    };
  }
  if (system === 'nats-core' || system === 'nats-js') {
    const nc = await natsConnect({ servers: address });
    const js = system === 'nats-js' ? nc.jetstream() : undefined;
    return {
      send: js
        ? (seq, body) => void js.publish(target, enc.encode(body)).then(() => acked(seq), failed)
        : (_seq, body) => nc.publish(target, enc.encode(body)),
      errors: () => errors,
      close: () => nc.close(),
    };
  }
  if (system === 'redis') {
    const c = createClient({ url: address, socket: { reconnectStrategy: false } });
    c.on('error', () => {});
    await c.connect();
    return {
      send: (seq, body) => void c.xAdd(target, '*', { v: body }).then(() => acked(seq), failed),
      errors: () => errors,
      close: () => c.quit(),
    };
  }
  throw new Error(`unknown system ${system}`);
}

async function main() {
  const { total, warm, rate, tickUs, sentAt, ackedAt } = workerData;
  const sent = new Float64Array(sentAt);
  const ack = new Float64Array(ackedAt);
  const pub = await publisher(workerData, (seq) => {
    ack[seq] = monoNow();
  });
  const lag = new Float64Array(total);
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  parentPort.postMessage({ ready: true });
  await new Promise((r) => parentPort.once('message', r));
  let n = 0;
  let sendErrors = 0;
  const start = monoNow() + 5;
  let measuring = false;
  await new Promise((resolve) => {
    let stop;
    const tick = () => {
      if (n >= total) return;
      const now = monoNow();
      const due = Math.min(total, Math.floor(((now - start) * rate) / 1000) + 1);
      if (!measuring && n >= warm) {
        measuring = true;
        loopDelay.enable();
        parentPort.postMessage({ measuring: true });
      }
      while (n < due) {
        const at = start + (n * 1000) / rate;
        lag[n] = now - at;
        try {
          pub.send(n, stamp(n, at));
        } catch {
          sendErrors++;
        }
        sent[n] = monoNow();
        n++;
      }
      if (n >= total) {
        stop();
        resolve();
      }
    };
    stop = ticker(tickUs, tick);
  });
  loopDelay.disable();
  parentPort.postMessage({ sent: n, start });
  await pub.close();
  parentPort.postMessage({
    done: true,
    sendLag: percentiles(Array.from(lag.subarray(warm))),
    loopDelay: loopDelayMs(loopDelay),
    errors: sendErrors + pub.errors(),
  });
}

/** Resolution of the event-loop delay histograms, ms: the least delay they can see. */
export const LOOP_RESOLUTION_MS = 1;

/** An event-loop delay histogram as ms late (p50, p99, max): its samples include the resolution itself. */
export function loopDelayMs(h) {
  const late = (ns) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
  return { p50: late(h.percentile(50)), p99: late(h.percentile(99)), max: late(h.max) };
}

if (parentPort !== null && workerData?.latProducer) await main();
