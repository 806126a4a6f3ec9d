import { defineConfig } from 'vite';

// The page is served by `weft serve` from the built files (embedded in the
// binary): scripts and styles go to dist/assets/ with content-hashed names.
export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: {
    // `npm run dev` against a local `weft serve`.
    proxy: { '/api': { target: 'http://127.0.0.1:8080', ws: true } },
  },
});
