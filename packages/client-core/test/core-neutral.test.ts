// `@zbus/client-core` runs in browsers as well as Node: its sources must not reach for Node built-ins, and it
// depends on nothing but the protocol and RPC packages (issue 19: the browser client stands on its own).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const dir = join(root, 'src');

describe('@zbus/client-core', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    it(`${file} uses no Node built-ins`, () => {
      const src = readFileSync(join(dir, file), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
      expect(src).not.toMatch(/from ['"](node:|net|tls|fs|events|buffer|crypto|undici|msgpackr)['"/]/);
      expect(src).not.toMatch(/(?<![.\w])(Buffer|process|require)\s*[.(]/);
    });
  }

  it('depends on @zbus/protocol and @zbus/rpc only', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['@zbus/protocol', '@zbus/rpc']);
    expect(pkg.optionalDependencies).toBeUndefined();
  });
});
