// The architecture of zbus-ts as data: which package sits on which, what runs in a browser, and how the broker's
// own folders stack. check.ts enforces it on every package's src/ in `npm test`; DEVELOPERS.md explains it.

/** One package's place in the architecture. Packages are named as in their package.json. */
export interface PackageRule {
  /** A package imports only workspace packages of a lower layer (1 is the lowest). */
  layer: number;
  /**
   * Loads in a browser: no Node built-in (`node:*`), no Node global (Buffer, process, ...), and only browser
   * packages of the workspace plus {@link LayerRules.browserSafe} third-party ones.
   */
  browser?: boolean;
  /**
   * The layers inside src/, lowest first, as globs relative to src/ (`*` within a path segment, `**` across them):
   * a file imports only files of its own or a lower layer, and every file is in one.
   */
  folders?: string[][];
  /** Imports some files must never make, whatever the layers say, and why. */
  forbid?: Forbidden[];
  /**
   * Import cycles not broken yet (files relative to src/), each with who breaks it. The check still fails when a
   * file outside the list joins such a cycle, and when the cycle is gone (delete the entry then).
   */
  cycles?: { files: string[]; why: string }[];
}

export interface Forbidden {
  /** Glob of the files (relative to src/) the rule covers. */
  files: string;
  /** Bare specifiers (`ws`, `node:net`, `@zbus/protocol`) or globs of src/ files (`transport/**`). */
  imports: string[];
  why: string;
}

export interface LayerRules {
  packages: Record<string, PackageRule>;
  /** Third-party packages a browser package may import (they run in browsers as published). */
  browserSafe: string[];
}

export const RULES: LayerRules = {
  packages: {
    // The shared message model and codec; knows nothing of sockets, files or Node.
    '@zbus/protocol': { layer: 1, browser: true },
    '@zbus/rpc': { layer: 2, browser: true },
    '@zbus/server': {
      layer: 2,
      folders: [
        ['store/**'],
        ['errors.ts', 'options.ts', 'session.ts', 'checked-reply.ts', 'metrics/**', 'auth/**', 'cluster/**'],
        ['mq/**', 'rpc/**', 'tracker/**'],
        ['commands/**', 'info.ts'],
        ['http/**', 'transport/**'],
        ['broker/**'],
        ['broker.ts'],
        ['index.ts'],
      ],
      forbid: [
        {
          files: 'store/**',
          imports: ['@zbus/protocol'],
          why: 'the store keeps bytes and offsets; it knows nothing of the protocol',
        },
        {
          files: 'commands/**',
          imports: ['transport/**', 'node:net', 'node:tls', 'node:http', 'node:https', 'node:dgram', 'ws'],
          why: 'a command handler gets a Session and a ReplyTicket, never a socket',
        },
      ],
    },
    '@zbus/client-core': { layer: 3, browser: true },
    '@zbus/store-nats': { layer: 3 },
    '@zbus/client': { layer: 4 },
    '@zbus/client-browser': { layer: 4, browser: true },
    '@zbus/broker': { layer: 5 },
    '@zbus/monitor': { layer: 5, browser: true },
    '@zbus/testkit': { layer: 5 },
    '@zbus/layers': { layer: 5 },
  },
  browserSafe: ['msgpackr'],
};
