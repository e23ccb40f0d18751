// `npm run bench`: bundles the benchmark and runs it under Node + Dawn (SwiftShader where there is no GPU).
// Arguments after `--` go to the benchmark, e.g. `npm run bench -- --large --json out.json`.
import { spawnSync } from 'node:child_process';
import { nodeGpuEnv } from './gpu-env.mjs';

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const build = spawnSync(npx, ['vite', 'build', '--config', 'bench/vite.config.ts', '--logLevel', 'warn'], {
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);
const run = spawnSync(process.execPath, ['dist-bench/bench.mjs', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, ...nodeGpuEnv() },
});
process.exit(run.status ?? 1);
