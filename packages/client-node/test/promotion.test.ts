// What a publish leaves in the old generation, in a child process with --expose-gc (publish-promotion.child.mjs).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('Producer.publish', () => {
  it('lets acked publishes die young after a burst whose results were kept (built package)', () => {
    // After a burst kept 30,000 results across scavenges, V8 allocated every later object of core's ProduceResult
    // literal in the old generation, each dead one keeping its ack alive through scavenges: 15.8-16.6 MB reached
    // the old generation in 20,000 publishes, 2.4-2.9 MB with the Node Producer's own class.
    const out = execFileSync(
      process.execPath,
      [
        '--expose-gc',
        '--initial-old-space-size=512',
        join(import.meta.dirname, 'publish-promotion.child.mjs'),
      ],
      { encoding: 'utf8' },
    );
    expect(Number(out)).toBeLessThan(8 * 1024 * 1024);
  });
});
