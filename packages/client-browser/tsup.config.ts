import { defineConfig } from 'tsup';

export default defineConfig([
  // For bundlers: ESM, the @zbus/* packages left as imports (the app's bundler dedupes them).
  {
    entry: { index: 'src/index.ts' },
    format: ['esm'],
    dts: { compilerOptions: { stripInternal: true } },
    sourcemap: true,
    // Both builds run at once: each cleans only its own files.
    clean: ['index.*'],
    target: 'es2022',
    platform: 'browser',
  },
  // For `<script type="module" src=".../zbus.browser.js">`: one file, everything bundled, minified. Its types are
  // those of dist/index.d.ts (package.json exports).
  {
    entry: { 'zbus.browser': 'src/index.ts' },
    format: ['esm'],
    outExtension: () => ({ js: '.js' }),
    dts: false,
    sourcemap: true,
    clean: ['zbus.browser.*'],
    minify: true,
    target: 'es2022',
    platform: 'browser',
    noExternal: [/.*/],
  },
]);
