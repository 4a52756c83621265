// An RPC or PROXY topic under the shared store: its requests wait in this broker's memory for the services
// connected here (they travel between brokers over core NATS, rpc/relay.ts in the broker), while its groups
// are shared like any other metadata, so a service may consume through whichever broker it reaches.
import { type Group, type GroupConfig, MemoryTopic } from '@zbus/server';

export class LocalTopic extends MemoryTopic {
  constructor(
    name: string,
    config: ConstructorParameters<typeof MemoryTopic>[1],
    limits: ConstructorParameters<typeof MemoryTopic>[2],
    readonly share: (group: string, config: GroupConfig) => Promise<void>,
    readonly unshare: (group: string) => Promise<void>,
  ) {
    super(name, config, limits);
  }

  /** A group declared through this broker: here at once, and on every other broker through the KV entry. */
  override async declareGroup(name: string, config: GroupConfig): Promise<Group> {
    const g = await super.declareGroup(name, config);
    await this.share(name, config);
    return g;
  }

  /** A group another broker declared. */
  adopt(name: string, config: GroupConfig): Promise<Group> {
    return this.group(name) ? Promise.resolve(this.group(name)!) : super.declareGroup(name, config);
  }

  override async removeGroup(name: string): Promise<boolean> {
    const removed = await super.removeGroup(name);
    await this.unshare(name);
    return removed;
  }

  /** Another broker removed the group. */
  drop(name: string): Promise<boolean> {
    return super.removeGroup(name);
  }
}
