import { relative, resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

const OUT_DIR = 'dist-bench';

// Bundles bench/tokenizer.ts into dist-bench/tokenizer.mjs for Node. The native Rust binding and transformers.js
// stay external (resolved from node_modules at run time). The test helpers find the tokenizer files relative to
// their own source file, so in the bundle their `import.meta.url` is rewritten to point back at that file.
function keepHelperUrls(): Plugin {
  return {
    name: 'keep-helper-urls',
    transform(code, id) {
      if (!id.includes('/tests/helpers/') || !code.includes('import.meta.url')) return null;
      const fromBundle = relative(resolve(OUT_DIR), id).split('\\').join('/');
      return { code: code.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`), map: null };
    },
  };
}

export default defineConfig({
  plugins: [keepHelperUrls()],
  build: {
    ssr: 'bench/tokenizer.ts',
    outDir: OUT_DIR,
    emptyOutDir: false,
    target: 'node20',
    rollupOptions: {
      external: ['@anush008/tokenizers', '@huggingface/transformers'],
      output: { entryFileNames: 'tokenizer.mjs' },
    },
  },
});
