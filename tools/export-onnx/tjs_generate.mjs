// Loads an exported folder with @huggingface/transformers (local files only) and generates greedy tokens for the
// reference prompts, comparing them with export.py's PyTorch greedy tokens.
//
//   node tools/export-onnx/tjs_generate.mjs <export dir> [fp32|q4] [node|web]
//
// node: transformers.js' Node default, onnxruntime-node with device 'cpu'.
// web:  onnxruntime-web (WASM backend, 1 thread) handed to transformers.js through globalThis[Symbol.for('onnxruntime')],
//       the hook transformers.js reads for a runtime-provided ONNX Runtime. transformers.js lists no devices for an
//       injected runtime (device 'cpu'/'wasm' throw "Unsupported device"), so this passes device 'auto' (which maps
//       to that empty list without throwing) and session_options.executionProviders = ['wasm'].
import fs from 'node:fs';
import path from 'node:path';

const [dir, dtype = 'fp32', backend = 'node'] = process.argv.slice(2);
if (backend === 'web') {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  globalThis[Symbol.for('onnxruntime')] = ort;
}
const { AutoModelForCausalLM, AutoTokenizer, env } = await import('@huggingface/transformers');

const abs = path.resolve(dir);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.dirname(abs) + '/';
if (backend === 'web') {
  // transformers.js points ORT-web's wasmPaths at a CDN; load the .wasm/.mjs from node_modules instead.
  const { createRequire } = await import('node:module');
  const { pathToFileURL } = await import('node:url');
  const ortDist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
  env.useWasmCache = false;
  env.backends.onnx.wasm.wasmPaths = pathToFileURL(ortDist + '/').href;
}
const name = path.basename(abs);
const meta = JSON.parse(fs.readFileSync(path.join(abs, 'reference', 'reference.json'), 'utf8'));
const refKey = dtype === 'q4' ? 'q4' : 'fp32';

const t0 = performance.now();
const tokenizer = await AutoTokenizer.from_pretrained(name);
const opts = { dtype };
if (backend === 'node') opts.device = 'cpu';
else Object.assign(opts, { device: 'auto', session_options: { executionProviders: ['wasm'] } });
const model = await AutoModelForCausalLM.from_pretrained(name, opts);
const loadMs = Math.round(performance.now() - t0);

const results = [];
for (const p of meta.prompts) {
  const enc = p.text != null ? tokenizer(p.text) : { input_ids: null };
  const ids = Array.from(enc.input_ids.data, Number);
  const t1 = performance.now();
  const out = await model.generate({
    ...enc,
    max_new_tokens: meta.steps,
    do_sample: false,
    repetition_penalty: 1.0,
    num_beams: 1,
  });
  const ms = Math.round(performance.now() - t1);
  const gen = Array.from(out.data, Number).slice(ids.length);
  const ref = p[refKey].tokens;
  const agree = gen.filter((t, i) => t === ref[i]).length;
  results.push({
    promptIdsMatch: ids.join(' ') === p.ids.join(' '),
    generated: gen.join(' '),
    pytorch: ref.join(' '),
    agree: `${agree}/${ref.length}`,
    generateMs: ms,
    text: tokenizer.decode(out[0], { skip_special_tokens: true }),
  });
}
const ok = results.every((r) => r.promptIdsMatch && r.agree === `${meta.steps}/${meta.steps}`);
console.log(JSON.stringify({ dtype, backend, loadMs, results, pass: ok }, null, 1));
process.exit(ok ? 0 : 1);
