// `@zbus/client/core` is shared with the browser client: its sources must not reach for Node built-ins.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(import.meta.dirname, '../src/core');

describe('src/core', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    it(`${file} uses no Node built-ins`, () => {
      const src = readFileSync(join(dir, file), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
      expect(src).not.toMatch(/from ['"](node:|net|tls|fs|events|buffer|crypto|undici)['"/]/);
      expect(src).not.toMatch(/(?<![.\w])(Buffer|process|require)\s*[.(]/);
    });
  }
});
