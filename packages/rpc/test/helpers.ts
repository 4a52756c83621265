import { Message } from '@zbus/protocol';
import type { InvokeOptions, MessageInvoker, RpcProcessor } from '../src/index.js';

/**
 * An in-memory MessageInvoker: does what the broker and a service do for one RPC request (deliver, process,
 * route back with the same id), without sockets. Records what it was asked.
 */
export class LoopInvoker implements MessageInvoker {
  readonly sent: { msg: Message; options: InvokeOptions | undefined }[] = [];
  delay = 0;

  constructor(readonly processor: RpcProcessor | undefined) {}

  async invoke(msg: Message, options?: InvokeOptions): Promise<Message> {
    this.sent.push({ msg, options });
    const processor = this.processor;
    if (processor === undefined) {
      return new Message({
        status: 503,
        headers: { id: msg.id ?? '', error_code: 'ZBUS_ERR_NO_RESPONDERS' },
        body: `no service consumes ${msg.topic}`,
      });
    }
    const timeout = options?.timeout ?? 10_000;
    const work = (async () => {
      if (this.delay > 0) await new Promise((r) => setTimeout(r, this.delay));
      // The broker hands the service a copy of the request (bytes on the wire).
      const delivered = new Message({ headers: { ...msg.headers }, body: msg.body.slice(), url: msg.url });
      const reply = await processor.process(delivered);
      reply.set('id', msg.id);
      return reply;
    })();
    return Promise.race([
      work,
      new Promise<Message>((_, reject) =>
        setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'ZBUS_ERR_TIMEOUT' })), timeout),
      ),
    ]);
  }
}
