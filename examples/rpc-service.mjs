// An RPC service: module "math" and a default module, on the topic ExampleRpc. Runs until Ctrl-C.
// Call it with examples/rpc-caller.mjs, `zbus rpc ExampleRpc math.plus 1 2`, or
// `curl http://127.0.0.1:15555/ExampleRpc/math/plus/1/2`.
//
//   node examples/rpc-service.mjs           (broker at ZBUS_SERVER, default 127.0.0.1:15555)
import { ServiceBootstrap } from '@zbus/client';

const address = process.env.ZBUS_SERVER ?? '127.0.0.1:15555';
const name = process.env.SERVICE ?? 'ExampleRpc';

class MathService {
  plus(a, b) {
    return a + b;
  }
  divide(a, b) {
    if (b === 0) throw new Error('division by zero');
    return a / b;
  }
  async slowSquare(x) {
    await new Promise((r) => setTimeout(r, 50));
    return x * x;
  }
}

const service = await new ServiceBootstrap()
  .serviceName(name)
  .serviceAddress(address)
  .connectionCount(2) // two connections consume the topic: two requests are served at once
  .addModule('math', new MathService())
  .addModule({ echo: (value) => value, now: () => new Date().toISOString() }) // the default module
  .start();
console.log(`service ${name} ready at ${address}`);

async function stop() {
  await service.close();
  console.log('service stopped');
  process.exit(0);
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
