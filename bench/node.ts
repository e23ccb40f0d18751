// `npm run bench` entry under Node + Dawn. Bundled into one file (dist-bench/bench.mjs) that imports only
// `webgpu` and Node built-ins, so it also runs on a GPU machine that has no npm.
//   node dist-bench/bench.mjs [--large] [--json FILE]          matmul throughput
//   node dist-bench/bench.mjs --kernels [--model 0.5B|1.5B] [--json FILE]   every kernel family at model shapes
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { create, globals } from 'webgpu';
import { GPUContext } from '../src/runtime/gpu-context.js';
import { benchMatmul, matmulTable } from './matmul.js';
import { benchKernels, kernelTable, MODEL_SHAPES } from './kernels.js';

Object.assign(globalThis, globals);
const args = process.argv.slice(2);
const large = args.includes('--large');
const jsonAt = args.indexOf('--json');

const ctx = await GPUContext.create({ gpu: create([]) });
console.log(`adapter: ${ctx.adapter.name}${ctx.adapter.isFallbackAdapter ? ' (software)' : ''}`);
console.log(`features: ${[...ctx.features].join(', ') || 'none'}`);

let result: Record<string, unknown>;
if (args.includes('--kernels')) {
  const modelAt = args.indexOf('--model');
  const models = modelAt >= 0 ? MODEL_SHAPES.filter((m) => m.name.toLowerCase() === args[modelAt + 1]?.toLowerCase()) : MODEL_SHAPES;
  const rows = await benchKernels(ctx, models);
  console.log('\nkernels at model shapes (decode: one token; linear also at a 128-token prefill chunk)\n');
  console.log(kernelTable(rows));
  result = { kernels: rows };
} else {
  // SwiftShader runs ~1 GFLOP/s, so the default shapes are small; --large uses model-sized ones.
  const d = large ? 2048 : 512;
  const shapes: Array<[number, number, number]> = [
    [1, d, d],
    [1, 4 * d, d],
    [large ? 128 : 16, d, d],
  ];
  const rows = await benchMatmul(ctx, shapes);
  console.log('\nmatmul f32 (y = x · Wᵀ)\n');
  console.log(matmulTable(rows));
  result = { matmul: rows };
}

if (jsonAt >= 0) {
  const file = args[jsonAt + 1];
  const report = {
    date: new Date().toISOString(),
    machine: { host: os.hostname(), cpus: os.cpus().length, adapter: ctx.adapter },
    ...result,
  };
  writeFileSync(file, JSON.stringify(report, null, 2));
  console.log(`\nwrote ${file}`);
}
ctx.dispose();
process.exit(0);
