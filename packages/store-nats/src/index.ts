// @zbus/store-nats: the zbus store on a replicated NATS JetStream cluster. `zbus serve --store nats://...`
// loads it; a broker without that flag never loads (or installs) any NATS code.
export { openSharedStore, parseStoreUrl } from './open.js';
export { NatsStore, type NatsStoreOptions } from './store.js';
