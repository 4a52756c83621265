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
});
