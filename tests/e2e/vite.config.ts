/**
 * The demo's Vite config for the end-to-end tests: the demo as `npm start` serves it, but without file watching or
 * HMR (a file saved during a run must not reload the page under test), and with the library's dependencies
 * pre-bundled up front (so the first page load does not trigger a re-optimization and reload).
 */
import { defineConfig, mergeConfig, type UserConfig } from 'vite';
import demoConfig from '../../vite.config.js';

export default defineConfig((env) =>
  mergeConfig(typeof demoConfig === 'function' ? (demoConfig(env) as UserConfig) : demoConfig, {
    cacheDir: '../node_modules/.vite-e2e',
    server: { hmr: false, watch: null },
    optimizeDeps: { include: ['comlink', 'idb-keyval', '@huggingface/jinja'] },
  }),
);
