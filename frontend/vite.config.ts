import { defineConfig } from 'vite';

declare const process: { env: Record<string, string | undefined> };

// Django serves the built files from /static/app/ and returns dist/index.html for
// the SPA page routes; the page is cross-origin isolated (COOP/COEP), so every
// script, worker and wasm file must come from our own origin.
export default defineConfig(({ command }) => ({
  // In `npm run dev` the app sits at the root so the SPA page routes (/viewer/...) fall back to index.html.
  base: command === 'build' ? '/static/app/' : '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    manifest: false,
    target: 'es2022',
    chunkSizeWarningLimit: 4000,
  },
  // The DICOM image loader starts its decode workers with
  // `new Worker(new URL('./decodeImageFrameWorker.js', import.meta.url), { type: 'module' })`;
  // pre-bundling would break that relative URL, and the worker imports ESM codecs.
  optimizeDeps: {
    exclude: ['@cornerstonejs/dicom-image-loader'],
    // CommonJS (emscripten) modules the loader imports by default export: pre-bundle them to ESM
    // for the dev server (the production build converts them itself).
    include: [
      'dicom-parser',
      '@cornerstonejs/codec-charls/decodewasmjs',
      '@cornerstonejs/codec-openjpeg/decodewasmjs',
      '@cornerstonejs/codec-libjxl/decodewasmjs',
      '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs',
      '@cornerstonejs/codec-openjph/wasmjs',
    ],
  },
  worker: {
    format: 'es',
  },
  server: {
    // `npm run dev` proxies everything except the app itself to a portal
    // (real Django or frontend/dev/mock_portal.py).
    proxy: {
      '^/(api|dicomweb|accounts)/': {
        target: process.env.PORTAL_URL ?? 'http://127.0.0.1:8765',
        changeOrigin: false,
      },
    },
    headers: {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    },
  },
}));
