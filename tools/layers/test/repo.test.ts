// The repository keeps its layers: this is the check `npm test` runs (DEVELOPERS.md, "Shape of the code").
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { checkLayers, formatViolations } from '../src/check.js';
import { RULES } from '../src/rules.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

it('finds no layering violation in any package of the repository', () => {
  expect(formatViolations(checkLayers(root, RULES))).toBe('');
});
