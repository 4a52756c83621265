// Child process for compare.mjs: an RPC service (zbus or NATS core) answering `plus`.
import { connect } from 'nats';
import { ServiceBootstrap } from '../dist/index.js';

const [kind, address] = process.argv.slice(2);
if (kind === 'zbus') {
  const service = await new ServiceBootstrap()
    .serviceName('BenchRpc')
    .serviceAddress(address)
    .connectionCount(1)
    .window(64)
    .addModule('math', { plus: (a, b) => a + b })
    .start();
  process.on('message', async (m) => {
    if (m === 'stop') {
      await service.close();
      process.exit(0);
    }
  });
} else {
  const nc = await connect({ servers: address });
  nc.subscribe('bench.rpc', {
    callback: (_err, m) => {
      const [a, b] = JSON.parse(new TextDecoder().decode(m.data)).params;
      m.respond(new TextEncoder().encode(JSON.stringify(a + b)));
    },
  });
  await nc.flush();
  process.on('message', async (m) => {
    if (m === 'stop') {
      await nc.close();
      process.exit(0);
    }
  });
}
process.send?.('ready');
