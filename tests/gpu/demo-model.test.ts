// The embedded demo model (models/kjv-llama-tiny) through the same hub code a Hub model goes through: held-out
// perplexity by our WebGPU runtime against the PyTorch script's number (eval/README.md gives the rule), and the
// model card's greedy samples.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AutoModelForCausalLM } from '../../src/api/auto-model.js';
import { AutoTokenizer } from '../../src/api/auto-tokenizer.js';
import type { CausalLM } from '../../src/runtime/causal-lm.js';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import type { PreTrainedTokenizer } from '../../src/tokenizer/tokenizer.js';

const server = inject('faultServer');
const MODEL = `${server}/kjv-llama-tiny`;

interface PyTorchEval {
  num_tokens: number;
  num_predicted_tokens: number;
  mean_nll: number;
  perplexity: number;
  windows: { start: number; tokens: number; predicted: number; nll_sum: number }[];
}

let ctx: GPUContext;
let model: CausalLM;
let tokenizer: PreTrainedTokenizer;
beforeAll(async () => {
  ctx = await GPUContext.create();
  model = await AutoModelForCausalLM.from_pretrained(MODEL, { cache: null, context: ctx });
  tokenizer = await AutoTokenizer.from_pretrained(MODEL, { cache: null });
});
afterAll(() => {
  model?.dispose();
  ctx?.dispose();
});

/** Σ −log softmax(row)[target] in float64. */
function nll(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let z = 0;
  for (const v of row) z += Math.exp(v - max);
  return -(row[target]! - max - Math.log(z));
}

/** Node runs every window of the held-out text (~3 min on SwiftShader); Chromium a spread of four. */
const inNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

describe('kjv-llama-tiny', () => {
  it('held-out perplexity agrees with the PyTorch script within 1%', { timeout: 600_000 }, async () => {
    const text = await (await fetch(`${MODEL}/eval/heldout.txt`)).text();
    const ref = (await (await fetch(`${MODEL}/eval/pytorch.json`)).json()) as PyTorchEval;
    const ids = tokenizer(text).input_ids;
    expect(ids.length).toBe(ref.num_tokens);
    const window = model.config.maxPositionEmbeddings;
    let total = 0;
    let count = 0;
    const last = ref.windows.length - 1;
    const chosen = inNode ? ref.windows.map((_, i) => i) : [0, Math.floor(last / 3), Math.floor((2 * last) / 3), last];
    let refTotal = 0;
    for (const i of chosen) {
      const w = ref.windows[i]!;
      expect(w.start).toBe(i * window);
      const slice = ids.slice(w.start, w.start + w.tokens);
      const { logits } = await model({ input_ids: [slice] });
      let sum = 0;
      for (let t = 1; t < slice.length; t++) sum += nll(logits.row(0, t - 1), slice[t]!);
      expect(Math.abs(sum - w.nll_sum) / w.nll_sum, `window ${i}`).toBeLessThan(0.01);
      total += sum;
      refTotal += w.nll_sum;
      count += slice.length - 1;
    }
    const perplexity = Math.exp(total / count);
    const refPerplexity = Math.exp(refTotal / count);
    if (inNode) {
      expect(count).toBe(ref.num_predicted_tokens);
      expect(refPerplexity).toBeCloseTo(ref.perplexity, 6);
      console.log(`held-out perplexity: webslm ${perplexity.toFixed(4)}, PyTorch ${ref.perplexity.toFixed(4)}`);
    }
    expect(Math.abs(perplexity - refPerplexity) / refPerplexity).toBeLessThan(0.01);
  });

  it('generates the greedy samples of the model card', { timeout: 300_000 }, async () => {
    const samples = (await (await fetch(`${MODEL}/eval/samples.json`)).json()) as { prompt: string; greedy_ids: number[] }[];
    for (const s of samples) {
      const input_ids = tokenizer(s.prompt).input_ids;
      const out = (await model.generate({ input_ids: [input_ids], max_new_tokens: s.greedy_ids.length, do_sample: false, repetition_penalty: 1, eos_token_id: [] }))[0]!;
      expect(out.slice(input_ids.length), s.prompt).toEqual(s.greedy_ids);
    }
  });

  it('q8 and q4 perplexity stay within 1% and 10% of f32 (first and last held-out windows)', { timeout: 600_000 }, async () => {
    const text = await (await fetch(`${MODEL}/eval/heldout.txt`)).text();
    const ref = (await (await fetch(`${MODEL}/eval/pytorch.json`)).json()) as PyTorchEval;
    const ids = tokenizer(text).input_ids;
    const windows = [ref.windows[0]!, ref.windows[ref.windows.length - 1]!];
    const refPpl = Math.exp(windows.reduce((a, w) => a + w.nll_sum, 0) / windows.reduce((a, w) => a + w.tokens - 1, 0));
    for (const [dtype, bound] of [['q8', 0.01], ['q4', 0.1]] as const) {
      const q = await AutoModelForCausalLM.from_pretrained(MODEL, { cache: null, context: ctx, dtype });
      try {
        let total = 0;
        let count = 0;
        for (const w of windows) {
          const slice = ids.slice(w.start, w.start + w.tokens);
          const { logits } = await q({ input_ids: [slice] });
          for (let t = 1; t < slice.length; t++) total += nll(logits.row(0, t - 1), slice[t]!);
          count += slice.length - 1;
        }
        const ppl = Math.exp(total / count);
        console.log(`${dtype} perplexity ${ppl.toFixed(4)} vs f32 ${refPpl.toFixed(4)} (${(((ppl - refPpl) / refPpl) * 100).toFixed(2)}%)`);
        expect(Math.abs(ppl - refPpl) / refPpl, dtype).toBeLessThan(bound);
      } finally {
        q.dispose();
      }
    }
  });
});
