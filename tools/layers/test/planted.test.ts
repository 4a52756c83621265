// The check fails on planted violations: test/fixtures/planted is a small workspace (pnpm-workspace.yaml,
// package.json names, src/ files) with one violation of each kind, checked against the real rules.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkLayers, globMatch, type Violation } from '../src/check.js';
import { type LayerRules, RULES } from '../src/rules.js';

const planted = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/planted');

function found(rules: LayerRules = RULES): string[] {
  return checkLayers(planted, rules)
    .map((v: Violation) => `${v.kind} ${v.file}:${v.line} ${v.message}`)
    .sort();
}

describe('the layering check on planted violations', () => {
  const all = found();
  const at = (file: string) => all.filter((v) => v.includes(` ${file}:`));

  it('fails when the protocol imports a Node built-in, uses a Node global, or references Node types', () => {
    expect(at('packages/protocol/src/socket.ts')).toEqual([
      'browser packages/protocol/src/socket.ts:2 imports node:net, a Node built-in: @zbus/protocol runs in browsers',
    ]);
    expect(at('packages/protocol/src/bytes.ts')).toEqual([
      'browser packages/protocol/src/bytes.ts:2 uses the Node global Buffer: @zbus/protocol runs in browsers',
      'browser packages/protocol/src/bytes.ts:2 uses the Node global Buffer: @zbus/protocol runs in browsers',
      'browser packages/protocol/src/bytes.ts:3 uses the Node global process: @zbus/protocol runs in browsers',
    ]);
    expect(at('packages/protocol/src/types.ts')).toEqual([
      "browser packages/protocol/src/types.ts:1 references Node's types: @zbus/protocol runs in browsers",
    ]);
  });

  it('fails when a package imports a higher layer, or a browser package a package not known to be browser-safe', () => {
    expect(at('packages/rpc/src/index.ts')).toEqual([
      'browser packages/rpc/src/index.ts:5 imports ws, a package not listed as browser-safe: @zbus/rpc runs in browsers',
      'layer packages/rpc/src/index.ts:3 @zbus/rpc (layer 2) imports @zbus/client-core (layer 3): a package imports only lower layers',
    ]);
  });

  it('fails when a browser package imports a Node-only workspace package', () => {
    expect(at('packages/client-core/src/index.ts')).toEqual([
      'browser packages/client-core/src/index.ts:2 imports @zbus/server, a Node-only package: @zbus/client-core runs in browsers',
    ]);
  });

  it('fails on an import cycle between files, type-only imports included', () => {
    expect(at('packages/client-core/src/a.ts')).toEqual([
      'cycle packages/client-core/src/a.ts:0 import cycle in @zbus/client-core: a.ts -> b.ts -> a.ts',
    ]);
  });

  it('fails when a command imports a transport or a socket module', () => {
    expect(at('packages/server/src/commands/produce.ts')).toEqual([
      'folder-layer packages/server/src/commands/produce.ts:3 commands/produce.ts imports transport/listener.ts, a higher layer of @zbus/server (commands/**, info.ts sit below http/**, transport/**)',
      'forbidden packages/server/src/commands/produce.ts:2 imports node:net: a command handler gets a Session and a ReplyTicket, never a socket',
      'forbidden packages/server/src/commands/produce.ts:3 imports ../transport/listener.js: a command handler gets a Session and a ReplyTicket, never a socket',
    ]);
  });

  it('fails when the store imports the protocol or a higher layer of the server', () => {
    expect(at('packages/server/src/store/log.ts')).toEqual([
      'forbidden packages/server/src/store/log.ts:2 imports @zbus/protocol: the store keeps bytes and offsets; it knows nothing of the protocol',
    ]);
    expect(at('packages/server/src/store/topic.ts')).toEqual([
      'folder-layer packages/server/src/store/topic.ts:2 store/topic.ts imports mq/dispatcher.ts, a higher layer of @zbus/server (store/** sit below mq/**, rpc/**, tracker/**)',
    ]);
  });

  it('fails on a file outside every folder layer and on a package without a layer', () => {
    expect(at('packages/server/src/stray.ts')).toEqual([
      "folder-layer packages/server/src/stray.ts:0 stray.ts is in none of @zbus/server's folder layers (tools/layers/src/rules.ts)",
    ]);
    expect(all.filter((v) => v.startsWith('no-layer'))).toEqual([
      'no-layer packages/mystery:0 @zbus/mystery has no layer: give it one in tools/layers/src/rules.ts and DEVELOPERS.md',
    ]);
  });

  it('reports nothing else (the parameter, property and shorthand named like Node globals are not violations)', () => {
    expect(all).toHaveLength(16);
  });

  it('lets a listed cycle pass, and fails when a listed cycle is gone', () => {
    const withCycles = (files: string[]): LayerRules => ({
      ...RULES,
      packages: {
        ...RULES.packages,
        '@zbus/client-core': { ...RULES.packages['@zbus/client-core']!, cycles: [{ files, why: 'planted' }] },
      },
    });
    expect(found(withCycles(['a.ts', 'b.ts'])).filter((v) => v.startsWith('cycle'))).toEqual([]);
    expect(found(withCycles(['a.ts'])).filter((v) => v.startsWith('cycle'))).toEqual([
      'cycle packages/client-core/src/a.ts:0 import cycle in @zbus/client-core: a.ts -> b.ts -> a.ts',
      'cycle packages/client-core/src:0 @zbus/client-core no longer has the cycle among a.ts: delete it from tools/layers/src/rules.ts',
    ]);
  });
});

describe('globMatch', () => {
  it('matches * within a path segment and ** across segments', () => {
    expect(globMatch('store/**', 'store/log.ts')).toBe(true);
    expect(globMatch('store/**', 'store/a/b.ts')).toBe(true);
    expect(globMatch('store/**', 'stores.ts')).toBe(false);
    expect(globMatch('*.ts', 'broker.ts')).toBe(true);
    expect(globMatch('*.ts', 'mq/delivery.ts')).toBe(false);
    expect(globMatch('info.ts', 'infoXts')).toBe(false);
  });
});
