import { defineConfig } from 'vite';

// Bundles bench/hub.ts into dist-bench/hub.mjs: one ES module importing only Node built-ins.
export default defineConfig({
  build: {
    ssr: 'bench/hub.ts',
    outDir: 'dist-bench',
    emptyOutDir: false,
    target: 'node20',
    rollupOptions: { output: { entryFileNames: 'hub.mjs' } },
  },
  ssr: { noExternal: true },
});
