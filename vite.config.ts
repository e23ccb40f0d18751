import { defineConfig } from 'vite';

// `vite build` → the library (dist/webslm.js); `vite --mode demo` / `vite build --mode demo` → the demo app.
export default defineConfig(({ mode }) => {
  if (mode === 'demo') {
    return {
      root: 'demo',
      // The embedded default model (models/kjv-llama-tiny) is served next to the page, and copied into the build,
      // so the demo works offline and loads it through the same hub code as a Hub model.
      publicDir: '../models',
      // A missing file must be a 404 (the loaders probe optional files such as model.safetensors.index.json), not
      // the SPA fallback page.
      appType: 'mpa',
      // The demo imports the library from source so edits show up without a build.
      server: { port: 5173, fs: { allow: ['..'] } },
      preview: { port: 4173 },
      build: { outDir: '../dist-demo', emptyOutDir: true, target: 'es2022' },
      worker: { format: 'es' },
    };
  }
  return {
    // Relative URLs, so dist/webslm.js finds the engine's worker file next to itself wherever it is served from.
    base: './',
    build: {
      target: 'es2022',
      outDir: 'dist',
      sourcemap: true,
      lib: { entry: 'src/index.ts', formats: ['es'], fileName: () => 'webslm.js' },
      rollupOptions: {
        // Dependencies stay imports; the app that uses webslm bundles them once.
        external: [/^comlink/, /^idb-keyval/, /^@huggingface\/jinja/, /^onnxruntime-web/],
      },
    },
    // The Worker engine's entry (src/runtime/worker/engine-worker.ts), emitted as dist/engine-worker.js.
    worker: { format: 'es', rollupOptions: { output: { entryFileNames: '[name].js' } } },
  };
});
