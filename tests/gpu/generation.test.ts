// generate() options on a real (tiny) model, in Chromium and Node + Dawn: seeded sampling, top-k/top-p over many
// draws, repetition penalty against a CPU reference on our own logits, EOS lists, max_length, stop strings,
// streamers, abort, queued concurrent calls, num_return_sequences and min_new_tokens / min_length.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AutoModelForCausalLM } from '../../src/api/auto-model.js';
import { AutoTokenizer } from '../../src/api/auto-tokenizer.js';
import { BaseStreamer, TextStreamer } from '../../src/api/streamers.js';
import { AbortError, ConfigError } from '../../src/errors.js';
import type { CausalLM } from '../../src/runtime/causal-lm.js';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import type { PreTrainedTokenizer } from '../../src/tokenizer/tokenizer.js';
import { argmax, fetchGolden, type Golden } from '../helpers/goldens.js';

const server = inject('faultServer');
const NAME = 'llama';

let ctx: GPUContext;
let model: CausalLM;
let tokenizer: PreTrainedTokenizer;
let golden: Golden;
let prompt: number[];
let lastLogits: Float32Array;

beforeAll(async () => {
  ctx = await GPUContext.create();
  golden = await fetchGolden(server, NAME);
  model = await AutoModelForCausalLM.from_pretrained(`${server}/${NAME}`, { cache: null, context: ctx });
  tokenizer = await AutoTokenizer.from_pretrained(`${server}/${NAME}`, { cache: null });
  prompt = golden.prompts.find((p) => p.name === 'genesis')!.input_ids;
  lastLogits = (await model({ input_ids: [prompt] })).logits.row(0, prompt.length - 1);
});
afterAll(() => {
  model?.dispose();
  ctx?.dispose();
});

function softmax(logits: ArrayLike<number>, temperature = 1): number[] {
  const max = Math.max(...Array.from(logits));
  const e = Array.from(logits, (x) => Math.exp((x - max) / temperature));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

describe('sampling', () => {
  it('is reproducible for a seed and changes with it', async () => {
    const opts = { input_ids: [prompt], max_new_tokens: 8, do_sample: true, temperature: 2, top_k: 0, eos_token_id: [] };
    const a = await model.generate({ ...opts, seed: 42 });
    const b = await model.generate({ ...opts, seed: 42 });
    const c = await model.generate({ ...opts, seed: 43 });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
  });

  it('draws only from the top-k tokens, and more than one of them', async () => {
    const order = Array.from(lastLogits.keys()).sort((i, j) => lastLogits[j]! - lastLogits[i]!);
    const allowed = new Set(order.slice(0, 4));
    const rows = await model.generate({ input_ids: [prompt], max_new_tokens: 1, do_sample: true, top_k: 4, temperature: 3, num_return_sequences: 48, seed: 7 });
    expect(rows).toHaveLength(48);
    const drawn = rows.map((r) => r[prompt.length]!);
    for (const t of drawn) expect(allowed.has(t), `token ${t} outside the top 4`).toBe(true);
    expect(new Set(drawn).size).toBeGreaterThan(1);
  });

  it('draws only from the top-p nucleus', async () => {
    const T = 2;
    const p = softmax(lastLogits, T);
    const order = Array.from(p.keys()).sort((i, j) => p[j]! - p[i]!);
    // HF keeps a token when the mass of the more probable tokens is below top_p.
    const allowed = new Set<number>();
    let mass = 0;
    for (const id of order) {
      if (mass >= 0.3) break;
      allowed.add(id);
      mass += p[id]!;
    }
    const rows = await model.generate({ input_ids: [prompt], max_new_tokens: 1, do_sample: true, top_k: 0, top_p: 0.3, temperature: T, num_return_sequences: 48, seed: 11 });
    for (const r of rows) expect(allowed.has(r[prompt.length]!), `token ${r[prompt.length]} outside the nucleus`).toBe(true);
  });

  it('applies repetition_penalty as transformers does (CPU reference over our logits)', async () => {
    const penalty = 1.8;
    const steps = 5;
    const out = (await model.generate({ input_ids: [prompt], max_new_tokens: steps, repetition_penalty: penalty, eos_token_id: [] }))[0]!;
    const ids = [...prompt];
    for (let s = 0; s < steps; s++) {
      const row = Array.from((await model({ input_ids: [ids] })).logits.row(0, ids.length - 1));
      for (const id of new Set(ids)) row[id] = row[id]! < 0 ? row[id]! * penalty : row[id]! / penalty;
      ids.push(argmax(row));
    }
    expect(out).toEqual(ids);
  });
});

describe('stopping', () => {
  it('stops at any id of an eos_token_id list, keeping it', async () => {
    const greedy = golden.prompts.find((p) => p.name === 'genesis')!.greedy.new_tokens;
    const out = (await model.generate({ input_ids: [prompt], max_new_tokens: 24, eos_token_id: [9999, greedy[2]!] }))[0]!;
    expect(out.slice(prompt.length)).toEqual(greedy.slice(0, 3));
  });

  it('min_new_tokens and min_length suppress EOS until enough new tokens (the first token becomes the second best)', async () => {
    const eos = argmax(lastLogits); // make the greedy first token an EOS id
    const second = argmax(lastLogits.map((x, i) => (i === eos ? -Infinity : x)));
    const plain = (await model.generate({ input_ids: [prompt], max_new_tokens: 8, eos_token_id: [eos] }))[0]!;
    expect(plain.slice(prompt.length)).toEqual([eos]);
    for (const opts of [{ min_new_tokens: 4 }, { min_length: prompt.length + 4 }]) {
      const out = (await model.generate({ input_ids: [prompt], max_new_tokens: 8, eos_token_id: [eos], ...opts }))[0]!;
      const news = out.slice(prompt.length);
      expect(news[0], JSON.stringify(opts)).toBe(second);
      expect(news.slice(0, 4), JSON.stringify(opts)).not.toContain(eos);
      expect(news.length).toBeGreaterThanOrEqual(4);
    }
  });

  it('honours max_length', async () => {
    const out = (await model.generate({ input_ids: [prompt], max_length: prompt.length + 3, eos_token_id: [] }))[0]!;
    expect(out).toHaveLength(prompt.length + 3);
  });

  it('stops once the text contains a stop string', async () => {
    const full = (await model.generate({ input_ids: [prompt], max_new_tokens: 16, eos_token_id: [] }))[0]!.slice(prompt.length);
    const text = tokenizer.decode(full, { skip_special_tokens: true });
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
    expect(stop.length).toBe(3);
    const out = (await model.generate({ input_ids: [prompt], max_new_tokens: 16, eos_token_id: [], stop_strings: stop, tokenizer }))[0]!.slice(prompt.length);
    expect(out.length).toBeLessThan(full.length);
    expect(out).toEqual(full.slice(0, out.length));
    expect(tokenizer.decode(out, { skip_special_tokens: true })).toContain(stop);
    expect(tokenizer.decode(out.slice(0, -1), { skip_special_tokens: true })).not.toContain(stop);
  });

  it('needs the tokenizer for stop strings', async () => {
    await expect(model.generate({ input_ids: [prompt], max_new_tokens: 2, stop_strings: ['x'] })).rejects.toThrow(ConfigError);
  });
});

describe('streaming, abort and queueing', () => {
  it('streams the prompt, then each token, then end()', async () => {
    const puts: number[][][] = [];
    let ends = 0;
    class Collect extends BaseStreamer {
      put(value: number[][]) {
        puts.push(value.map((r) => [...r]));
      }
      end() {
        ends++;
      }
    }
    const out = (await model.generate({ input_ids: [prompt], max_new_tokens: 6, eos_token_id: [], streamer: new Collect() }))[0]!;
    expect(puts[0]).toEqual([prompt]);
    expect(puts.slice(1).map((v) => v[0]![0])).toEqual(out.slice(prompt.length));
    expect(ends).toBe(1);

    let text = '';
    const streamer = new TextStreamer(tokenizer, { skip_prompt: true, callback_function: (t: string) => (text += t) });
    const again = (await model.generate({ input_ids: [prompt], max_new_tokens: 6, eos_token_id: [], streamer }))[0]!;
    expect(text).toBe(tokenizer.decode(again.slice(prompt.length), { skip_special_tokens: true }));
  });

  it('aborts with AbortError and stays usable', async () => {
    const controller = new AbortController();
    let seen = 0;
    const run = model.generate({
      input_ids: [prompt],
      max_new_tokens: 20,
      eos_token_id: [],
      signal: controller.signal,
      token_callback: () => {
        if (++seen === 3) controller.abort();
      },
    });
    await expect(run).rejects.toThrow(AbortError);
    expect(seen).toBe(3);
    const greedy = golden.prompts.find((p) => p.name === 'genesis')!.greedy.new_tokens;
    const out = (await model.generate({ input_ids: [prompt], max_new_tokens: 24 }))[0]!;
    expect(out.slice(prompt.length)).toEqual(greedy);
  });

  it('queues concurrent calls, each with its own result', async () => {
    const other = golden.prompts.find((p) => p.name === 'modern')!;
    const [a, b] = await Promise.all([
      model.generate({ input_ids: [prompt], max_new_tokens: 24 }),
      model.generate({ input_ids: [other.input_ids], max_new_tokens: 24 }),
    ]);
    expect(a[0]!.slice(prompt.length)).toEqual(golden.prompts.find((p) => p.name === 'genesis')!.greedy.new_tokens);
    expect(b[0]!.slice(other.input_ids.length)).toEqual(other.greedy.new_tokens);
  });

  it('returns num_return_sequences rows per prompt', async () => {
    const rows = await model.generate({ input_ids: [prompt], max_new_tokens: 3, do_sample: true, num_return_sequences: 3, seed: 5, eos_token_id: [] });
    expect(rows).toHaveLength(3);
    for (const r of rows) {
      expect(r.slice(0, prompt.length)).toEqual(prompt);
      expect(r).toHaveLength(prompt.length + 3);
    }
  });
});
