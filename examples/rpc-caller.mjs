// Calls the service of examples/rpc-service.mjs: a typed proxy per module, the default module, errors.
//
//   node examples/rpc-caller.mjs            (broker at ZBUS_SERVER, default 127.0.0.1:15555)
import { ClientBootstrap } from '@zbus/client';

const address = process.env.ZBUS_SERVER ?? '127.0.0.1:15555';
const name = process.env.SERVICE ?? 'ExampleRpc';

const client = new ClientBootstrap().serviceName(name).serviceAddress(address).timeout(5_000);
const math = client.proxy('math');

console.log('math.plus(1, 2) =', await math.plus(1, 2));
console.log('math.slowSquare(12) =', await math.slowSquare(12));
// Calls run concurrently over one connection; replies are matched by id.
console.log('three at once =', await Promise.all([math.plus(1, 1), math.plus(2, 2), math.plus(3, 3)]));
console.log('echo =', await client.invoker().invoke('echo', { hello: 'world' }));

try {
  await math.divide(1, 0);
} catch (err) {
  // The method threw on the service side: status 600, the remote message, code ZBUS_ERR_RPC.
  console.log(`math.divide(1, 0) failed: ${err.message} (${err.code})`);
}

// With the service stopped (its topic still declared), calls fail at once with ZBUS_ERR_NO_RESPONDERS;
// a slow service fails the call with ZBUS_ERR_TIMEOUT after .timeout(ms).
await client.close();
