// `npm run bench` entry under Node + Dawn. Bundled into one file (dist-bench/bench.mjs) that imports only
// `webgpu` and Node built-ins, so it also runs on a GPU machine that has no npm.
//   node dist-bench/bench.mjs [--large] [--json FILE]          matmul throughput
//   node dist-bench/bench.mjs --kernels [--model 0.5B|1.5B] [--json FILE]   every kernel family at model shapes
//   node dist-bench/bench.mjs --models [--case NAME]… [--tokens N] [--prompt N] [--dtype auto|f32|f16|bf16|q8|q4[,…]]
//                                      [--warmup|--no-warmup] [--json FILE]   generate() on the hf-tiny fixtures + a synthetic
//                                      ~125M Llama (run from the repository root: fixtures are read from tests/)
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { create, globals } from 'webgpu';
import { GPUContext } from '../src/runtime/gpu-context.js';
import { benchMatmul, matmulTable } from './matmul.js';
import { benchKernels, kernelTable, MODEL_SHAPES } from './kernels.js';
import { benchModels, describeSynthetic, modelTable } from './models.js';
import type { ModelDtype } from '../src/api/auto-model.js';

Object.assign(globalThis, globals);
const args = process.argv.slice(2);
const large = args.includes('--large');
const jsonAt = args.indexOf('--json');

const ctx = await GPUContext.create({ gpu: create([]) });
console.log(`adapter: ${ctx.adapter.name}${ctx.adapter.isFallbackAdapter ? ' (software)' : ''}`);
console.log(`features: ${[...ctx.features].join(', ') || 'none'}`);

const valueOf = (flag: string): string | undefined => {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
};
const intOf = (flag: string): number | undefined => {
  const v = valueOf(flag);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${JSON.stringify(v)}`);
  return n;
};

let result: Record<string, unknown>;
if (args.includes('--models')) {
  // --case may repeat or take a comma-separated list.
  const cases = args.flatMap((a, i) => (args[i - 1] === '--case' ? a.split(',').filter(Boolean) : []));
  const t0 = performance.now();
  const rows = await benchModels(ctx, {
    cases,
    tokens: intOf('--tokens'),
    prompt: intOf('--prompt'),
    dtypes: valueOf('--dtype')?.split(',').filter(Boolean) as ModelDtype[] | undefined,
    warmup: args.includes('--no-warmup') ? false : args.includes('--warmup') ? true : undefined,
    log: (line) => console.log(line),
  });
  const seconds = (performance.now() - t0) / 1000;
  console.log(`\nmodels: greedy generate(), batch 1 (${describeSynthetic()})`);
  console.log('TTFT: generate() to first token, warm (cold = first call, pipelines compiled; — = no warm-up run); GB/s: weight bytes per decode step × decode steps/s\n');
  console.log(modelTable(rows));
  console.log(`\n${rows.length} model(s) in ${seconds.toFixed(1)} s`);
  result = { models: rows };
} else if (args.includes('--kernels')) {
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
