import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

// The dashboard as the broker serves it: dist/index.html, dist/monitor.js (everything bundled, minified),
// dist/monitor.css. The broker's build copies them next to its CLI (apps/broker/scripts/copy-monitor.mjs).
export default defineConfig({
  entry: { monitor: 'src/main.ts' },
  format: ['esm'],
  outExtension: () => ({ js: '.js' }),
  dts: false,
  sourcemap: true,
  clean: true,
  minify: true,
  target: 'es2022',
  platform: 'browser',
  noExternal: [/.*/],
  publicDir: 'public',
  // The broker lets browsers cache assets for 5 minutes: stamp their URLs with a content hash so that a new
  // build is picked up at once (index.html itself is served no-store).
  async onSuccess() {
    const html = 'dist/index.html';
    let text = readFileSync(html, 'utf8');
    for (const [file, cmd] of [
      ['monitor.js', 'js'],
      ['monitor.css', 'css'],
    ] as const) {
      const hash = createHash('sha256')
        .update(readFileSync(`dist/${file}`))
        .digest('hex')
        .slice(0, 10);
      text = text.replace(`/${file}?cmd=${cmd}"`, `/${file}?cmd=${cmd}&amp;v=${hash}"`);
    }
    writeFileSync(html, text);
  },
});
