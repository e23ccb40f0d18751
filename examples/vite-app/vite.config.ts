import { defineConfig } from 'vite';

export default defineConfig({
  build: { target: 'es2022' },
  // webslm starts its engine as a module Worker.
  worker: { format: 'es' },
  // A model folder served next to the page must answer 404 for the optional files the loader probes
  // (e.g. model.safetensors.index.json), not the SPA fallback page.
  appType: 'mpa',
});
