// The Llama family (and Gemma, Gemma-2, Phi-3, which run its body) against Python transformers' goldens (tests/fixtures/hf-tiny), in Chromium and Node + Dawn:
// logits at every prompt position, 24 greedy tokens, the left-padded batch, cached = recomputed generation, and
// the decode step's submit/readback budget.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AutoModelForCausalLM } from '../../src/api/auto-model.js';
import type { CausalLM } from '../../src/runtime/causal-lm.js';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { argmax, cutAfterEos, fetchGolden, logitsClose, type Golden } from '../helpers/goldens.js';

const server = inject('faultServer');
const CASES = ['llama', 'llama3-rope', 'mistral', 'qwen2', 'qwen3', 'smollm-tied', 'gemma', 'gemma2', 'phi3'];

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

describe.each(CASES)('%s', (name) => {
  let model: CausalLM;
  let golden: Golden;
  beforeAll(async () => {
    golden = await fetchGolden(server, name);
    model = await AutoModelForCausalLM.from_pretrained(`${server}/${name}`, { cache: null, context: ctx });
  });
  afterAll(() => model?.dispose());

  it('matches the logits at every prompt position', async () => {
    for (const p of golden.prompts) {
      const { logits } = await model({ input_ids: [p.input_ids] });
      expect(logits.dims).toEqual([1, p.input_ids.length, golden.config.vocab_size]);
      p.logits_positions.forEach((pos, i) => {
        const r = logitsClose(logits.row(0, pos), p.logits[i]!);
        expect(r.ok, `${p.name} position ${pos}: worst |diff| ${r.worst} at id ${r.at}`).toBe(true);
      });
    }
  });

  it('generates the 24 greedy tokens, with one submit and 4 bytes read back per decode step', async () => {
    const max = golden.generate_kwargs.max_new_tokens;
    const eos = golden.generate_kwargs.eos_token_id;
    // One prompt alone (the step budget is per sequence) …
    const [first, ...others] = golden.prompts;
    const out = await model.generate({ input_ids: [first!.input_ids], max_new_tokens: max, do_sample: false });
    expect(out[0]!.slice(0, first!.input_ids.length)).toEqual(first!.input_ids);
    expect(cutAfterEos(out[0]!.slice(first!.input_ids.length), eos), first!.name).toEqual(first!.greedy.new_tokens);
    const stats = model.stats();
    if (stats.decode.steps > 0) {
      expect(stats.decodeStep.submits).toBe(1);
      expect(stats.decodeStep.bytesReadBack).toBe(4);
    }
    // … and the others in one left-padded batch (batched = unbatched is checked against transformers below).
    const width = Math.max(...others.map((p) => p.input_ids.length));
    const pad = golden.generate_kwargs.pad_token_id;
    const input_ids = others.map((p) => [...new Array<number>(width - p.input_ids.length).fill(pad), ...p.input_ids]);
    const attention_mask = others.map((p) => [...new Array<number>(width - p.input_ids.length).fill(0), ...p.input_ids.map(() => 1)]);
    const rows = await model.generate({ input_ids, attention_mask, max_new_tokens: max });
    others.forEach((p, i) => expect(cutAfterEos(rows[i]!.slice(width), eos), p.name).toEqual(p.greedy.new_tokens));
  });

  it('runs the left-padded batch like the single sequences', async () => {
    const b = golden.batch;
    if (!b) return;
    const { logits } = await model({ input_ids: b.input_ids, attention_mask: b.attention_mask, position_ids: b.position_ids });
    b.rows.forEach((row, i) => {
      row.logits_positions.forEach((pos, j) => {
        const r = logitsClose(logits.row(i, pos), row.logits[j]!);
        expect(r.ok, `row ${i} position ${pos}: worst |diff| ${r.worst}`).toBe(true);
      });
    });
    const out = await model.generate({ input_ids: b.input_ids, attention_mask: b.attention_mask, max_new_tokens: golden.generate_kwargs.max_new_tokens });
    b.rows.forEach((row, i) => {
      const fresh = out[i]!.slice(b.input_ids[0]!.length);
      expect(cutAfterEos(fresh, golden.generate_kwargs.eos_token_id), `row ${i}`).toEqual(row.greedy_new_tokens);
    });
    const stats = model.stats();
    if (stats.decode.steps > 0) {
      expect(stats.decodeStep.submits).toBe(1);
      expect(stats.decodeStep.bytesReadBack).toBe(4 * b.input_ids.length);
    }
  });

  it('generates with the KV cache what recomputing from scratch generates', async () => {
    const p = golden.prompts.find((q) => q.kind === 'text')!;
    const steps = 8;
    const cached = (await model.generate({ input_ids: [p.input_ids], max_new_tokens: steps, eos_token_id: [] }))[0]!;
    const ids = [...p.input_ids];
    for (let s = 0; s < steps; s++) {
      const { logits } = await model({ input_ids: [ids] });
      ids.push(argmax(logits.row(0, ids.length - 1)));
    }
    expect(cached).toEqual(ids);
  });
});
