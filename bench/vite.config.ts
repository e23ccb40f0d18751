import { defineConfig } from 'vite';

// Bundles bench/node.ts into dist-bench/bench.mjs: one ES module importing only `webgpu` and Node built-ins.
export default defineConfig({
  build: {
    ssr: 'bench/node.ts',
    outDir: 'dist-bench',
    emptyOutDir: true,
    target: 'node20',
    rollupOptions: { external: ['webgpu'], output: { entryFileNames: 'bench.mjs' } },
  },
  ssr: { noExternal: true, external: ['webgpu'] },
});
