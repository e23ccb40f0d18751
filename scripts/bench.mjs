// `npm run bench`: every benchmark, each bundled into dist-bench/ and run under Node.
//   npm run bench                      all suites
//   npm run bench -- gpu [--large] [--json FILE]        WebGPU kernels under Dawn (SwiftShader without a GPU)
//   npm run bench -- kernels [--model 0.5B|1.5B] [--json FILE]   every kernel family at 0.5B/1.5B model shapes
//   npm run bench -- models [--case NAME] [--tokens N] [--json FILE]   generate() on hf-tiny fixtures + synthetic ~125M / ~0.5B Llamas
//   npm run bench -- tokenizer [--all] [--json FILE]    tokenizer encode MB/s: webslm, transformers.js, Rust
//   npm run bench -- hub [--mb N] [--runs N] [--json FILE]   model file download, cache and tensor streaming MB/s
import { spawnSync } from 'node:child_process';
import { nodeGpuEnv } from './gpu-env.mjs';

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const SUITES = {
  // The GPU bundle imports only `webgpu` and Node built-ins, so it can be carried to a GPU machine without npm.
  gpu: { config: 'bench/vite.config.ts', file: 'dist-bench/bench.mjs', env: nodeGpuEnv() },
  // The same bundle, run for the per-kernel table.
  kernels: { config: 'bench/vite.config.ts', file: 'dist-bench/bench.mjs', env: nodeGpuEnv(), args: ['--kernels'] },
  // The same bundle again: generate() end to end on the Llama-family hf-tiny fixtures and a synthetic ~125M Llama.
  models: { config: 'bench/vite.config.ts', file: 'dist-bench/bench.mjs', env: nodeGpuEnv(), args: ['--models'] },
  // The tokenizer bundle keeps the Rust binding and transformers.js external: it needs node_modules.
  tokenizer: { config: 'bench/tokenizer.vite.config.ts', file: 'dist-bench/tokenizer.mjs', env: {} },
  // The hub bundle imports only Node built-ins: a local HTTP server, a folder cache, and the loaders.
  hub: { config: 'bench/hub.vite.config.ts', file: 'dist-bench/hub.mjs', env: {} },
};

const [first, ...rest] = process.argv.slice(2);
const chosen = first && first in SUITES ? [first] : Object.keys(SUITES);
const args = first && first in SUITES ? rest : process.argv.slice(2);

let status = 0;
// The GPU build empties dist-bench/, so it goes first.
for (const name of chosen) {
  const suite = SUITES[name];
  console.log(`\n=== bench: ${name} ===`);
  const build = spawnSync(npx, ['vite', 'build', '--config', suite.config, '--logLevel', 'warn'], { stdio: 'inherit' });
  if (build.status !== 0) {
    status = build.status ?? 1;
    continue;
  }
  const run = spawnSync(process.execPath, [suite.file, ...(suite.args ?? []), ...(chosen.length === 1 ? args : [])], {
    stdio: 'inherit',
    env: { ...process.env, ...suite.env },
  });
  if (run.status !== 0) status = run.status ?? 1;
}
process.exit(status);
