// @zbus/store-nats: the zbus store on a replicated NATS JetStream cluster. `zbus serve --store nats://...`
// loads it; a broker without that flag never loads (or installs) any NATS code.
// Its surface is the broker's SharedStore contract (types in @zbus/server): the classes behind it stay inside.
export { openSharedStore, parseStoreUrl } from './open.js';
