import { encodeMessage, type Message } from '@zbus/protocol';
import type { Transport, TransportFactory, TransportHandlers } from '../src/index.js';

/** One in-memory connection: records what the client sends, lets the test answer. Not a broker. */
export class FakeConnection implements Transport {
  readonly sent: Message[] = [];
  closed = false;
  onSend: ((m: Message, conn: FakeConnection) => void) | undefined;
  /** What `send` answers: false plays a transport whose buffer is over its high-water mark. */
  room = true;

  constructor(readonly handlers: TransportHandlers) {}

  send(msg: Message): boolean {
    if (this.closed) throw new Error('closed');
    this.sent.push(msg.clone());
    this.onSend?.(msg, this);
    return this.room;
  }

  /** The buffer drained: `send` has room again. */
  drain(): void {
    this.room = true;
    this.handlers.drain?.();
  }

  /** Delivers `msg` to the client as bytes, split in two chunks to exercise the decoder. */
  reply(msg: Message): void {
    const bytes = encodeMessage(msg);
    const cut = Math.floor(bytes.length / 2);
    this.handlers.data(bytes.subarray(0, cut));
    this.handlers.data(bytes.subarray(cut));
  }

  close(): void {
    this.drop();
  }

  /** The peer goes away. */
  drop(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => this.handlers.closed(error));
  }
}

/** A factory whose connections the test controls; `refuse` makes the next attempts fail. */
export function fakeTransport() {
  const connections: FakeConnection[] = [];
  const state = { refuse: 0, attempts: 0, onConnect: undefined as ((c: FakeConnection) => void) | undefined };
  const factory: TransportFactory = async ({ handlers }) => {
    state.attempts++;
    if (state.refuse > 0) {
      state.refuse--;
      throw new Error('ECONNREFUSED');
    }
    const c = new FakeConnection(handlers);
    connections.push(c);
    state.onConnect?.(c);
    return c;
  };
  return { factory, connections, state, last: () => connections[connections.length - 1]! };
}
