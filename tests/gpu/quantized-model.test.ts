// q8 / q4 weights quantized on load (kernels/quant.ts) on the Llama-family and Gemma fixtures, in Chromium and Node + Dawn.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AutoModelForCausalLM } from '../../src/api/auto-model.js';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { argmax, cutAfterEos, fetchGolden } from '../helpers/goldens.js';

const server = inject('faultServer');
const CASES = ['llama', 'llama3-rope', 'mistral', 'qwen2', 'qwen3', 'smollm-tied', 'gemma', 'gemma2', 'phi3'];

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

describe.each(CASES)('%s', (name) => {
  it('q8: logits near f32, and the greedy tokens equal f32 wherever the f32 top-2 margin exceeds that error', async () => {
    const golden = await fetchGolden(server, name);
    const model = await AutoModelForCausalLM.from_pretrained(`${server}/${name}`, { cache: null, context: ctx, dtype: 'q8' });
    try {
      // The q8 error on the logits, measured at every prompt position against the f32 goldens.
      let err = 0;
      for (const p of golden.prompts) {
        const { logits } = await model({ input_ids: [p.input_ids] });
        p.logits_positions.forEach((pos, i) => {
          const row = logits.row(0, pos);
          p.logits[i]!.forEach((g, v) => (err = Math.max(err, Math.abs(row[v]! - g))));
        });
      }
      expect(err, 'q8 logit error').toBeLessThan(0.5);
      // A token can only differ where f32's top-2 margin is within twice that error; compare up to the first such step.
      const eos = golden.generate_kwargs.eos_token_id;
      let compared = 0;
      for (const p of golden.prompts) {
        const out = (await model.generate({ input_ids: [p.input_ids], max_new_tokens: golden.generate_kwargs.max_new_tokens }))[0]!;
        const ours = cutAfterEos(out.slice(p.input_ids.length), eos);
        // No margins where the reference is an uncached run (gemma2's single-token prompt): nothing to compare there.
        const margins = (p.greedy as unknown as { top2_margins?: number[] }).top2_margins ?? [];
        for (let i = 0; i < p.greedy.new_tokens.length && (margins[i] ?? 0) > 2 * err; i++) {
          expect(ours[i], `${p.name} step ${i} (f32 margin ${margins[i]}, q8 error ${err})`).toBe(p.greedy.new_tokens[i]);
          compared++;
        }
        // Teacher-forced, so steps after a close call count too: fed f32's tokens, q8 picks f32's next token at every
        // step whose f32 margin exceeds twice the error (Gemma-2's capped logits leave few such first steps).
        const forced = [...p.input_ids, ...p.greedy.new_tokens];
        const { logits } = await model({ input_ids: [forced] });
        for (let i = 0; i < p.greedy.new_tokens.length; i++) {
          if (!((margins[i] ?? 0) > 2 * err)) continue;
          const at = p.input_ids.length - 1 + i;
          expect(argmax(logits.row(0, at)), `${p.name} forced step ${i} (f32 margin ${margins[i]}, q8 error ${err})`).toBe(p.greedy.new_tokens[i]);
          compared++;
        }
      }
      expect(compared).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
  });

  it('q4: runs, and its linear weights take at most 0.32× of f16', async () => {
    const golden = await fetchGolden(server, name);
    const q4 = await AutoModelForCausalLM.from_pretrained(`${server}/${name}`, { cache: null, context: ctx, dtype: 'q4' });
    const f16 = await AutoModelForCausalLM.from_pretrained(`${server}/${name}`, { cache: null, context: ctx, dtype: 'f16' });
    try {
      // The stats hook reports the weights' GPU bytes by role; the Linear matrices are what q4 quantizes.
      const linearBytes = (m: typeof q4) => m.stats().weightBytesByRole.linear;
      expect(linearBytes(q4) / linearBytes(f16)).toBeLessThanOrEqual(0.32);
      const p = golden.prompts.find((q) => q.kind === 'text')!;
      const out = await q4.generate({ input_ids: [p.input_ids], max_new_tokens: 8, eos_token_id: [] });
      expect(out[0]).toHaveLength(p.input_ids.length + 8);
    } finally {
      q4.dispose();
      f16.dispose();
    }
  });
});
