// The documentation stays in step with the code: every option with a default appears in
// docs/configuration.md, and every error code appears in docs/errors.md with its status.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS_BY_CODE } from '@zbus/protocol';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/index.js';

const docs = join(import.meta.dirname, '../../../../docs');

describe('docs', () => {
  it('configuration.md documents every option of DEFAULTS', () => {
    const md = readFileSync(join(docs, 'configuration.md'), 'utf8');
    for (const key of Object.keys(DEFAULTS)) expect(md, key).toContain(`| \`${key}\` |`);
  });

  it('errors.md lists every error code with its status', () => {
    const md = readFileSync(join(docs, 'errors.md'), 'utf8');
    for (const [code, status] of Object.entries(STATUS_BY_CODE)) {
      expect(md, code).toContain(`| \`${code}\` | ${status} |`);
    }
  });
});
