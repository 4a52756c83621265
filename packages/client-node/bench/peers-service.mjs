// The RPC service of peers.bench.mjs, in its own process: `node peers-service.mjs zbus|nats <address>`.
// zbus: a ServiceBootstrap with module `bench`, method `echo`; nats: a core responder on `bench.rpc` that decodes
// the same JSON request ({module, method, params}) and answers the JSON result, so both sides do the same work.
import { connect } from 'nats';
import { ServiceBootstrap } from '../dist/index.js';

const [kind, address] = process.argv.slice(2);
let stop;
if (kind === 'zbus') {
  const service = await new ServiceBootstrap()
    .serviceName('BenchEcho')
    .serviceAddress(address)
    .connectionCount(1)
    .window(64)
    .addModule('bench', { echo: (s) => s })
    .start();
  stop = () => service.close();
} else if (kind === 'nats') {
  const nc = await connect({ servers: address });
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const methods = { echo: (s) => s };
  nc.subscribe('bench.rpc', {
    callback: (_err, m) => {
      const req = JSON.parse(dec.decode(m.data));
      m.respond(enc.encode(JSON.stringify(methods[req.method](...req.params))));
    },
  });
  await nc.flush();
  stop = () => nc.close();
} else {
  throw new Error(`unknown service kind ${kind}`);
}
process.on('message', async (m) => {
  if (m === 'stop') {
    await stop();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send('ready');
