// Runs the exported onnx/model.onnx and onnx/model_q4.onnx with onnxruntime-web's WASM backend (Node) the way
// transformers.js drives a decoder-only model, and compares logits with export.py's PyTorch reference.
//
//   node tools/export-onnx/verify.mjs <export dir> [--fp32-tol 1e-4] [--q4-tol 1e-3]
//
// Per prompt: prefill with an empty past (past_key_values.N.* of shape [1, kv_heads, 0, head_dim]),
// attention_mask of ones, position_ids 0..T-1; then steps-1 decode steps feeding the reference's greedy token,
// attention_mask of ones over past + 1, position_ids [[past]], and `present.N.*` back as `past_key_values.N.*`.
// Every logits row is compared with the reference's row; the argmax of every step must equal the reference's
// greedy token. fp32 is compared with llama.py's forward on the checkpoint weights; q4 with llama.py's forward
// on the q4-dequantised weights (and, for information, with the fp32 reference).
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';

const args = process.argv.slice(2);
const dir = args[0];
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const TOL = { fp32: opt('--fp32-tol', 1e-4), q4: opt('--q4-tol', 1e-3) };
ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';

const meta = JSON.parse(fs.readFileSync(path.join(dir, 'reference', 'reference.json'), 'utf8'));
const V = meta.vocab_size;
const readRef = (file) => {
  const b = fs.readFileSync(path.join(dir, 'reference', file));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

function argmax(a, off, n) {
  let best = off;
  for (let i = off + 1; i < off + n; i++) if (a[i] > a[best]) best = i;
  return best - off;
}
function maxAbsDiff(a, aOff, b, bOff, n) {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[aOff + i] - b[bOff + i]));
  return m;
}
const i64 = (arr, dims) => new ort.Tensor('int64', BigInt64Array.from(arr.map(BigInt)), dims);

async function runVariant(name, file, refKeys) {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(fs.readFileSync(path.join(dir, 'onnx', file)), {
    executionProviders: ['wasm'],
  });
  const loadMs = performance.now() - t0;
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const result = { file, loadMs: Math.round(loadMs), prompts: [] };
  let decodeMs = 0;
  let decodeSteps = 0;
  for (const p of meta.prompts) {
    const refs = Object.fromEntries(refKeys.map((k) => [k, readRef(p[k].logits_file)]));
    const refTokens = p[refKeys[0]].tokens;
    const T = p.ids.length;
    const steps = meta.steps;
    // prefill with an empty past, as transformers.js builds it from the session's input metadata
    let feeds = {
      input_ids: i64(p.ids, [1, T]),
      attention_mask: i64(Array(T).fill(1), [1, T]),
      position_ids: i64([...Array(T).keys()], [1, T]),
    };
    for (const n of pastNames) {
      feeds[n] = new ort.Tensor('float32', new Float32Array(0), [1, meta.num_key_value_heads, 0, meta.head_dim]);
    }
    const diffs = Object.fromEntries(refKeys.map((k) => [k, 0]));
    const tokens = [];
    let out = await session.run(feeds);
    let logits = out.logits.data;
    for (const k of refKeys) diffs[k] = Math.max(diffs[k], maxAbsDiff(logits, 0, refs[k], 0, T * V));
    tokens.push(argmax(logits, (T - 1) * V, V));
    for (let s = 1; s < steps; s++) {
      const total = T + s;
      feeds = {
        input_ids: i64([refTokens[s - 1]], [1, 1]),
        attention_mask: i64(Array(total).fill(1), [1, total]),
        position_ids: i64([total - 1], [1, 1]),
      };
      for (const n of pastNames) feeds[n] = out[n.replace('past_key_values', 'present')];
      const t1 = performance.now();
      out = await session.run(feeds);
      decodeMs += performance.now() - t1;
      decodeSteps++;
      logits = out.logits.data;
      const row = T - 1 + s;
      for (const k of refKeys) diffs[k] = Math.max(diffs[k], maxAbsDiff(logits, 0, refs[k], row * V, V));
      tokens.push(argmax(logits, 0, V));
    }
    const agree = tokens.filter((t, i) => t === refTokens[i]).length;
    result.prompts.push({ ids: p.ids.join(" "), maxAbsDiff: diffs, tokens: tokens.join(" "), refTokens: refTokens.join(" "), tokensAgree: `${agree}/${steps}`, allAgree: agree === steps });
  }
  result.decodeMsPerStep = +(decodeMs / decodeSteps).toFixed(2);
  if (meta.prompts.length >= 2) result.batch = await runBatch(session, pastNames, refKeys[0]);
  const main = refKeys[0];
  result.worst = Math.max(...result.prompts.map((r) => r.maxAbsDiff[main]));
  result.pass =
    result.worst <= TOL[name] &&
    result.prompts.every((r) => r.allAgree) &&
    (!result.batch || (result.batch.maxAbsDiff <= TOL[name] && result.batch.allAgree));
  result.tolerance = TOL[name];
  return result;
}

// Batch of all prompts, left-padded to one length, with transformers.js' position_ids
// (cumsum(attention_mask) - 1, padding positions set to 1, the last `seq` columns after prefill): the logits of the
// real positions must match each prompt's own (unpadded) reference.
async function runBatch(session, pastNames, refKey) {
  const P = meta.prompts;
  const B = P.length;
  const L = Math.max(...P.map((p) => p.ids.length));
  const steps = meta.steps;
  const refs = P.map((p) => readRef(p[refKey].logits_file));
  const mask = P.map((p) => [...Array(L - p.ids.length).fill(0), ...Array(p.ids.length).fill(1)]);
  const ids = P.map((p) => [...Array(L - p.ids.length).fill(0), ...p.ids]);
  const positions = (m) => {
    let c = 0;
    return m.map((x) => ((c += x), x ? c - 1 : 1));
  };
  let feeds = {
    input_ids: i64(ids.flat(), [B, L]),
    attention_mask: i64(mask.flat(), [B, L]),
    position_ids: i64(mask.map(positions).flat(), [B, L]),
  };
  for (const n of pastNames) {
    feeds[n] = new ort.Tensor('float32', new Float32Array(0), [B, meta.num_key_value_heads, 0, meta.head_dim]);
  }
  let out = await session.run(feeds);
  let worst = 0;
  let agree = true;
  for (let b = 0; b < B; b++) {
    const T = P[b].ids.length;
    for (let t = 0; t < T; t++) {
      worst = Math.max(worst, maxAbsDiff(out.logits.data, (b * L + (L - T + t)) * V, refs[b], t * V, V));
    }
    agree &&= argmax(out.logits.data, (b * L + L - 1) * V, V) === P[b][refKey].tokens[0];
  }
  for (let s = 1; s < steps; s++) {
    mask.forEach((m) => m.push(1));
    const total = L + s;
    feeds = {
      input_ids: i64(P.map((p) => p[refKey].tokens[s - 1]), [B, 1]),
      attention_mask: i64(mask.flat(), [B, total]),
      position_ids: i64(mask.map((m) => positions(m).at(-1)), [B, 1]),
    };
    for (const n of pastNames) feeds[n] = out[n.replace('past_key_values', 'present')];
    out = await session.run(feeds);
    for (let b = 0; b < B; b++) {
      const row = P[b].ids.length - 1 + s;
      worst = Math.max(worst, maxAbsDiff(out.logits.data, b * V, refs[b], row * V, V));
      agree &&= argmax(out.logits.data, b * V, V) === P[b][refKey].tokens[s];
    }
  }
  return { batch: B, paddedLength: L, maxAbsDiff: worst, allAgree: agree };
}

const report = {};
report.fp32 = await runVariant('fp32', 'model.onnx', ['fp32']);
if (fs.existsSync(path.join(dir, 'onnx', 'model_q4.onnx')) && meta.prompts[0].q4) {
  report.q4 = await runVariant('q4', 'model_q4.onnx', ['q4', 'fp32']);
}
console.log(JSON.stringify(report, null, 1));
const ok = Object.values(report).every((r) => r.pass);
console.log(ok ? 'PASS' : 'FAIL');
process.exit(ok ? 0 : 1);
