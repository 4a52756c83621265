// Every type a public member of this package names is exported from its entry (issue 19), checked on the built
// `.d.ts` with the TypeScript checker.
import { join } from 'node:path';
import { scaled, unexportedTypes } from '@zbus/testkit';
import { expect, it } from 'vitest';

const SLOW60 = scaled(60_000);

it(
  'exports every type its public members use',
  () => {
    expect(unexportedTypes(join(import.meta.dirname, '../dist/index.d.ts'))).toEqual([]);
  },
  SLOW60,
);
