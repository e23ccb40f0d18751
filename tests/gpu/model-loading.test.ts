// Loading models: broken checkpoints and configs fail with typed errors that name the tensor or field and leave no
// GPU memory behind; the memory ledger returns to its baseline after load/dispose cycles; storage dtypes, split
// weights, prefill chunking and max_context against the hf-tiny goldens; bad inputs. Chromium and Node + Dawn.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AutoModelForCausalLM, type ModelLoadOptions } from '../../src/api/auto-model.js';
import { ConfigError, OutOfMemoryError, SafetensorsError } from '../../src/errors.js';
import { forgetModelFiles, modelFromFiles } from '../../src/hub/local-files.js';
import type { CausalLM } from '../../src/runtime/causal-lm.js';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { fetchCaseFiles, asFiles, mapTensor, retypeF32, withConfig, withTensors } from '../helpers/checkpoint-files.js';
import { cutAfterEos, fetchGolden, logitsClose, type Golden, type GoldenPrompt } from '../helpers/goldens.js';

const server = inject('faultServer');

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

function load(id: string, options: ModelLoadOptions = {}): Promise<CausalLM> {
  return AutoModelForCausalLM.from_pretrained(id, { cache: null, context: ctx, ...options });
}

function memory(): { bytes: number; buffers: number } {
  return { bytes: ctx.memory.bytes, buffers: ctx.memory.buffers };
}

/** Loads `id`, expects an error of `type` whose message contains every needle, and no GPU memory left behind. */
async function expectLoadError(
  id: string,
  options: ModelLoadOptions,
  type: abstract new (...args: never[]) => Error,
  needles: Array<string | RegExp>,
): Promise<Error> {
  const before = memory();
  let error: unknown = null;
  try {
    const model = await load(id, options);
    model.dispose();
  } catch (e) {
    error = e;
  }
  expect(error, `loading ${id} should fail`).toBeInstanceOf(type);
  const message = (error as Error).message;
  for (const n of needles) {
    if (typeof n === 'string') expect(message).toContain(n);
    else expect(message).toMatch(n);
  }
  expect(memory(), `GPU memory after the failed load (${message})`).toEqual(before);
  return error as Error;
}

/** Expects `promise` to reject with `type` and a message containing every needle. */
async function expectRejects(promise: Promise<unknown>, type: abstract new (...args: never[]) => Error, needles: Array<string | RegExp>): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  for (const n of needles) {
    if (typeof n === 'string') expect((error as Error).message).toContain(n);
    else expect((error as Error).message).toMatch(n);
  }
}

function worstAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** Logits at every stored position within the README bound (logitsClose). */
async function expectGoldenLogits(model: CausalLM, p: GoldenPrompt, what: string): Promise<void> {
  const { logits } = await model({ input_ids: [p.input_ids] });
  expect(logits.dims[1]).toBe(p.input_ids.length);
  p.logits_positions.forEach((pos, i) => {
    const r = logitsClose(logits.row(0, pos), p.logits[i]!);
    expect(r.ok, `${what}: ${p.name} position ${pos}: worst |diff| ${r.worst} at id ${r.at}`).toBe(true);
  });
}

/**
 * The first GREEDY_STEPS greedy tokens (a decode step costs ~0.5 s on SwiftShader, so not all 24; the goldens'
 * greedy runs never stop on EOS that early, and every step has a top-2 margin ≥ 1e-3).
 */
const GREEDY_STEPS = 8;

async function expectGoldenGreedy(model: CausalLM, golden: Golden, p: GoldenPrompt, what: string): Promise<void> {
  const out = await model.generate({ input_ids: [p.input_ids], max_new_tokens: GREEDY_STEPS, do_sample: false });
  const fresh = cutAfterEos(out[0]!.slice(p.input_ids.length), golden.generate_kwargs.eos_token_id);
  expect(fresh, `${what}: greedy tokens of ${p.name}`).toEqual(p.greedy.new_tokens.slice(0, GREEDY_STEPS));
}

/** The longest text prompt and the 40-token random one (covers prompts over several prefill chunks). */
function longPrompts(golden: Golden): GoldenPrompt[] {
  const text = golden.prompts.filter((p) => p.kind === 'text').sort((a, b) => b.input_ids.length - a.input_ids.length)[0]!;
  return [text, golden.prompts.find((p) => p.kind === 'random')!];
}

const CHECKPOINT_FILES = ['config.json', 'generation_config.json', 'model.safetensors'];

/** Loads `id`, which must take GPU memory and give all of it back on dispose. */
async function expectLoadsAndFrees(id: string, options: ModelLoadOptions): Promise<void> {
  const before = memory();
  const model = await load(id, options);
  expect(ctx.memory.bytes).toBeGreaterThan(before.bytes);
  model.dispose();
  expect(memory()).toEqual(before);
}

/** The files without tensor `name`. */
function without(files: Map<string, Uint8Array>, name: string): Map<string, Uint8Array> {
  return withTensors(files, (ts) => ts.filter((t) => t.name !== name));
}

/** The files with f32 matrix `name` one row short. */
function withoutLastRow(files: Map<string, Uint8Array>, name: string): Map<string, Uint8Array> {
  return withTensors(files, (ts) =>
    mapTensor(ts, name, (t) => ({ ...t, shape: [t.shape[0]! - 1, t.shape[1]!], bytes: t.bytes.slice(0, (t.shape[0]! - 1) * t.shape[1]! * 4) })),
  );
}

/** `register(files, name)` makes an id for edited files; every id is forgotten after the describe block. */
function fileIds(): (files: Map<string, Uint8Array>, name: string) => string {
  const ids: string[] = [];
  afterAll(() => {
    for (const id of ids) forgetModelFiles(id);
  });
  return (files, name) => {
    const id = modelFromFiles(asFiles(files, name), name);
    ids.push(id);
    return id;
  };
}

describe('broken checkpoints', () => {
  let mistral: Map<string, Uint8Array>;
  const register = fileIds();
  beforeAll(async () => {
    mistral = await fetchCaseFiles(server, 'mistral', CHECKPOINT_FILES);
  });

  it('the unedited files load from File objects (control)', async () => {
    await expectLoadsAndFrees(register(mistral, 'mistral'), {});
  });

  it('a missing tensor is a SafetensorsError naming it (f32 and converting to f16)', async () => {
    const name = 'model.layers.1.mlp.down_proj.weight';
    const id = register(without(mistral, name), 'missing');
    await expectLoadError(id, {}, SafetensorsError, [`"${name}"`]);
    // The conversion path (staging and converted buffers per tensor) cleans up the same way.
    await expectLoadError(id, { dtype: 'f16' }, SafetensorsError, [`"${name}"`]);
  });

  it('a tensor of the wrong shape is a SafetensorsError naming it and both shapes', async () => {
    const name = 'model.layers.0.self_attn.q_proj.weight';
    const id = register(
      withoutLastRow(mistral, name),
      'short-q',
    );
    await expectLoadError(id, {}, SafetensorsError, [`"${name}"`, '[63, 64]', '[64, 64]']);
  });

  it('a config with one layer fewer than the checkpoint names the first unexpected tensor', async () => {
    const id = register(
      withConfig(mistral, (c) => {
        c.num_hidden_layers = 1;
      }),
      'fewer-layers',
    );
    await expectLoadError(id, {}, SafetensorsError, [/unexpected tensor "model\.layers\.1\.[a-z_.]+weight"/, 'num_hidden_layers 1']);
  });

  it('a config with another hidden_size is a shape error naming the tensor and both shapes', async () => {
    const id = register(
      withConfig(mistral, (c) => {
        c.hidden_size = 96;
      }),
      'wider',
    );
    // lm_head.weight comes first in the file: [640, 64] stored, [640, 96] implied.
    await expectLoadError(id, {}, SafetensorsError, ['"lm_head.weight"', '[640, 64]', '[640, 96]', 'hidden_size 96']);
  });

  it('a config with more layers than the checkpoint names the first missing tensor', async () => {
    const id = register(
      withConfig(mistral, (c) => {
        c.num_hidden_layers = 3;
      }),
      'more-layers',
    );
    await expectLoadError(id, {}, SafetensorsError, [/no tensor "model\.layers\.2\./]);
  });

  it('an F64 or I32 tensor is a SafetensorsError naming it and its dtype', async () => {
    const f64 = 'model.layers.0.self_attn.k_proj.weight';
    const i32 = 'model.layers.1.mlp.up_proj.weight';
    await expectLoadError(register(withTensors(mistral, (ts) => mapTensor(ts, f64, (t) => retypeF32(t, 'F64'))), 'f64'), {}, SafetensorsError, [
      `"${f64}"`,
      'F64',
    ]);
    await expectLoadError(register(withTensors(mistral, (ts) => mapTensor(ts, i32, (t) => retypeF32(t, 'I32'))), 'i32'), {}, SafetensorsError, [
      `"${i32}"`,
      'I32',
    ]);
  });

  it('an unknown model_type is a ConfigError listing the supported types', async () => {
    const id = register(
      withConfig(mistral, (c) => {
        c.model_type = 'mamba9';
      }),
      'mamba9',
    );
    await expectLoadError(id, {}, ConfigError, ['model_type', 'mamba9', 'llama', 'mistral', 'qwen2', 'qwen3']);
  });

  it('a recognised model_type without a forward pass (gpt2) is a ConfigError', async () => {
    await expectLoadError(`${server}/gpt2`, {}, ConfigError, ['"gpt2"', 'llama']);
  });

  it('max_gpu_memory below the estimate is an OutOfMemoryError before any buffer exists', async () => {
    ctx.memory.resetPeak();
    const before = memory();
    const e = await expectLoadError(`${server}/mistral`, { max_gpu_memory: 1000 }, OutOfMemoryError, ['max_gpu_memory 1000 B', /needs about \d/, /weights \d/]);
    expect(e.message).toContain('mistral');
    expect(ctx.memory.peakBytes, 'nothing was allocated, not even for a moment').toBe(before.bytes);
  });
});

describe('fused checkpoint tensors (phi3: one qkv_proj fills the q, k and v slots)', () => {
  let phi3: Map<string, Uint8Array>;
  const register = fileIds();
  const qkv = 'model.layers.1.self_attn.qkv_proj.weight';
  beforeAll(async () => {
    phi3 = await fetchCaseFiles(server, 'phi3', CHECKPOINT_FILES);
  });

  it('the unedited files load, and dispose returns every byte (control, f32 and converting to f16)', async () => {
    for (const dtype of ['f32', 'f16'] as const) await expectLoadsAndFrees(register(phi3, `phi3-${dtype}`), { dtype });
  });

  it('a missing fused tensor is a SafetensorsError naming it, and frees the slots it would have filled', async () => {
    const id = register(without(phi3, qkv), 'phi3-missing-qkv');
    await expectLoadError(id, {}, SafetensorsError, [`"${qkv}"`]);
    await expectLoadError(id, { dtype: 'q8' }, SafetensorsError, [`"${qkv}"`]);
  });

  it('a fused tensor of the wrong shape names it with its whole shape ([q; k; v] rows)', async () => {
    const id = register(withoutLastRow(phi3, qkv), 'phi3-short-qkv');
    await expectLoadError(id, {}, SafetensorsError, [`"${qkv}"`, '[127, 64]', '[128, 64]']);
  });

  it('a fused tensor of another dtype is a SafetensorsError naming it', async () => {
    const id = register(withTensors(phi3, (ts) => mapTensor(ts, qkv, (t) => retypeF32(t, 'I32'))), 'phi3-i32-qkv');
    await expectLoadError(id, {}, SafetensorsError, [`"${qkv}"`, 'I32']);
  });
});

describe('load and dispose', () => {
  it('returns the memory ledger to its baseline, 10 times, with a generate in between', async () => {
    const golden = await fetchGolden(server, 'mistral');
    const p = golden.prompts.find((q) => q.kind === 'text')!;
    const baseline = memory();
    for (let i = 0; i < 10; i++) {
      const model = await load(`${server}/mistral`);
      expect(ctx.memory.buffers).toBeGreaterThan(baseline.buffers);
      if (i % 4 === 0) {
        const out = await model.generate({ input_ids: [p.input_ids], max_new_tokens: 2 });
        expect(out[0]!.slice(p.input_ids.length), `round ${i}`).toEqual(p.greedy.new_tokens.slice(0, 2));
      }
      model.dispose();
      expect(memory(), `after round ${i}`).toEqual(baseline);
    }
  });
});

describe('storage dtype', () => {
  it('qwen2 (stored f16) loaded as f32 gives bit-identical logits to auto', async () => {
    const golden = await fetchGolden(server, 'qwen2');
    const p = golden.prompts.find((q) => q.name === 'modern')!;
    const auto = await load(`${server}/qwen2`);
    const autoBytes = auto.stats().weightBytes;
    const a = (await auto({ input_ids: [p.input_ids] })).logits.data;
    auto.dispose();
    const f32 = await load(`${server}/qwen2`, { dtype: 'f32' });
    const f32Bytes = f32.stats().weightBytes;
    const b = (await f32({ input_ids: [p.input_ids] })).logits.data;
    f32.dispose();
    expect(f32Bytes).toBeGreaterThan(autoBytes);
    expect(a.length).toBe(b.length);
    let differ = 0;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) differ++;
    expect(differ, `logits that differ (worst |diff| ${worstAbs(a, b)})`).toBe(0);
  });

  it.each(['f16', 'bf16'] as const)('llama (stored f32) loaded as %s: about half the weight bytes, logits near the goldens', async (dtype) => {
    const golden = await fetchGolden(server, 'llama');
    const full = await load(`${server}/llama`);
    const fullBytes = full.stats().weightBytes;
    full.dispose();
    const model = await load(`${server}/llama`, { dtype });
    const bytes = model.stats().weightBytes;
    let worst = 0;
    for (const p of longPrompts(golden)) {
      const { logits } = await model({ input_ids: [p.input_ids] });
      p.logits_positions.forEach((pos, i) => {
        worst = Math.max(worst, worstAbs(logits.row(0, pos), p.logits[i]!));
      });
    }
    model.dispose();
    console.log(`llama as ${dtype}: weightBytes ${bytes} vs ${fullBytes} (f32); worst |logit − golden| ${worst.toExponential(3)}`);
    expect(bytes).toBeLessThan(fullBytes * 0.55);
    expect(bytes).toBeGreaterThan(fullBytes * 0.45);
    expect(worst).toBeGreaterThan(0); // rounded weights do change the numbers
    expect(worst).toBeLessThan(dtype === 'f16' ? 5e-2 : 1.5e-1);
  });
});

describe.each([
  ['llama', false],
  ['smollm-tied', true],
  ['qwen2', false], // f16 storage, q/k/v biases
] as const)('split weights: %s', (name, tied) => {
  let golden: Golden;
  let model: CausalLM;
  let maxBinding: number;
  beforeAll(async () => {
    golden = await fetchGolden(server, name);
    const vocab = golden.config.vocab_size as number;
    const hidden = golden.config.hidden_size as number;
    const inter = golden.config.intermediate_size as number;
    const el = golden.config.torch_dtype === 'float16' ? 2 : 4; // 'auto' keeps the stored dtype
    maxBinding = Math.ceil(vocab * hidden * el * 0.6);
    // The layers with a residual epilogue (o_proj, down_proj) or a bias must stay whole; gate_up may be split.
    expect(hidden * inter * el).toBeLessThan(maxBinding);
    expect(hidden * hidden * el).toBeLessThan(maxBinding);
    model = await load(`${server}/${name}`, { max_binding_bytes: maxBinding });
  });
  afterAll(() => model?.dispose());

  it('splits the embedding and the LM head into 2 chunks', () => {
    expect(golden.config.tie_word_embeddings ?? false).toBe(tied);
    const ledger = model.decodeLedger();
    const labels = ledger.map((l) => l.split('\t')[1]);
    expect(labels).toContain('embed_tokens[0]');
    expect(labels).toContain('embed_tokens[1]');
    expect(labels).not.toContain('embed_tokens[2]');
    expect(labels).toContain('lm_head[1]');
    expect(labels).not.toContain('lm_head[2]');
  });

  it('matches the golden logits at every position and the greedy tokens', async () => {
    const prompts = longPrompts(golden);
    for (const p of prompts) await expectGoldenLogits(model, p, `max_binding_bytes ${maxBinding}`);
    await expectGoldenGreedy(model, golden, prompts[0]!, `max_binding_bytes ${maxBinding}`);
  });
});

describe('split weights: more cases', () => {
  it('llama in f16, split (embedding, LM head and gate_up), gives the same logits as unsplit f16', async () => {
    const golden = await fetchGolden(server, 'llama');
    const p = longPrompts(golden)[1]!;
    const whole = await load(`${server}/llama`, { dtype: 'f16' });
    const a = (await whole({ input_ids: [p.input_ids] })).logits.data;
    whole.dispose();
    const split = await load(`${server}/llama`, { dtype: 'f16', max_binding_bytes: 40_000 });
    const labels = split.decodeLedger().map((l) => l.split('\t')[1]);
    expect(labels).toEqual(expect.arrayContaining(['embed_tokens[1]', 'lm_head[1]', 'layers.0.gate_up_proj[1]']));
    const b = (await split({ input_ids: [p.input_ids] })).logits.data;
    split.dispose();
    expect(worstAbs(a, b)).toBe(0);
  });

  it('a max_binding_bytes that would split a layer with a residual fails the load up front, naming it, and leaks nothing', async () => {
    // mistral down_proj: 64 × 192 f32 = 48 KiB > 20000 bytes; o_proj 16 KiB fits. down_proj's linear adds the
    // residual in its epilogue, so it cannot take its weight in row chunks: the load refuses before reading weights.
    const before = memory();
    let model: CausalLM | null = null;
    let error: unknown = null;
    try {
      model = await load(`${server}/mistral`, { max_binding_bytes: 20_000 });
    } catch (e) {
      error = e;
    }
    model?.dispose();
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect((error as Error).message).toContain('"layers.0.down"');
    expect((error as Error).message).toContain('model.layers.0.mlp.down_proj.weight');
    expect(memory()).toEqual(before);
  });
});

describe('max_gpu_memory', () => {
  // The estimate covers a forward call's logits (and their readback copy) for one prefill chunk, the heads'
  // final-norm rows and the plans' uniforms, so one sequence's forward and generate stay within it.
  it('a model loaded within max_gpu_memory stays within it while running a forward pass and generate', async () => {
    const golden = await fetchGolden(server, 'mistral');
    const p = golden.prompts.find((q) => q.kind === 'random')!; // 40 tokens: one prefill chunk
    // The load's own estimate, as its OutOfMemoryError states it (rounded to 0.1 MiB): a budget just above it loads.
    const e = await expectLoadError(`${server}/mistral`, { max_gpu_memory: 1000 }, OutOfMemoryError, [/needs about [\d.]+ [KM]iB/]);
    const [, value, unit] = /needs about ([\d.]+) ([KM]iB)/.exec(e.message)!;
    const budget = Math.ceil((Number(value) + 0.05) * (unit === 'MiB' ? 2 ** 20 : 2 ** 10));
    const base = ctx.memory.bytes;
    ctx.memory.resetPeak();
    const model = await load(`${server}/mistral`, { max_gpu_memory: budget });
    try {
      await model({ input_ids: [p.input_ids] });
      await model.generate({ input_ids: [p.input_ids], max_new_tokens: 2 });
      expect(ctx.memory.peakBytes - base, `peak GPU bytes of a model loaded with max_gpu_memory ${budget}`).toBeLessThanOrEqual(budget);
    } finally {
      model.dispose();
    }
  });
});

describe('llama with prefill_chunk_size 7 and max_context 64', () => {
  let golden: Golden;
  let model: CausalLM;
  beforeAll(async () => {
    golden = await fetchGolden(server, 'llama');
    model = await load(`${server}/llama`, { prefill_chunk_size: 7, max_context: 64 });
  });
  afterAll(() => model?.dispose());

  it('matches the golden logits at every position of 25-40 token prompts, and the greedy tokens', async () => {
    const prompts = longPrompts(golden);
    for (const p of prompts) expect(p.input_ids.length).toBeGreaterThanOrEqual(25);
    for (const p of prompts) await expectGoldenLogits(model, p, 'prefill_chunk_size 7');
    await expectGoldenGreedy(model, golden, prompts.find((q) => q.kind === 'text')!, 'prefill_chunk_size 7');
  });

  it('rejects bad inputs with ConfigErrors and keeps working', async () => {
    const p = golden.prompts.find((q) => q.name === 'genesis')!;
    const vocab = golden.config.vocab_size as number;
    const before = memory();
    await expectRejects(model({ input_ids: [[1, 5, vocab, 7]] }), ConfigError, ['input_ids[0][2]', String(vocab)]);
    await expectRejects(model.generate({ input_ids: [[1, 5, 6], [-1, 4, 3]], max_new_tokens: 2 }), ConfigError, ['input_ids[1][0]']);
    await expectRejects(model({ input_ids: [[1, 5, 6], [1, 5]] }), ConfigError, ['row 1 has 2']);
    await expectRejects(model({ input_ids: [[1, 5, 6, 7]], attention_mask: [[1, 0, 1, 1]] }), ConfigError, ['gap at position 1']);
    await expectRejects(model.generate({ input_ids: [[1, 5, 6, 7]], attention_mask: [[1, 1, 1, 0]], max_new_tokens: 2 }), ConfigError, [
      'left padding',
    ]);
    await expectRejects(model({ input_ids: [Array.from({ length: 65 }, () => 5)] }), ConfigError, ['max_context (64)']);
    expect(memory(), 'rejected inputs allocate nothing').toEqual(before);
    const out = await model.generate({ input_ids: [p.input_ids], max_new_tokens: 3 });
    expect(out[0]!.slice(p.input_ids.length)).toEqual(p.greedy.new_tokens.slice(0, 3));
  });
});

describe('max_context', () => {
  it('a prompt plus max_new_tokens beyond max_context is a ConfigError naming it; the model keeps working', async () => {
    const golden = await fetchGolden(server, 'llama');
    const p = golden.prompts.find((q) => q.name === 'genesis')!;
    expect(p.input_ids.length).toBe(25);
    const model = await load(`${server}/llama`, { max_context: 30 });
    try {
      await expectRejects(model.generate({ input_ids: [p.input_ids], max_new_tokens: 10 }), ConfigError, ['max_context (30)', '35']);
      // Exactly max_context positions is allowed.
      const out = await model.generate({ input_ids: [p.input_ids], max_new_tokens: 5 });
      expect(out[0]!.slice(25)).toEqual(p.greedy.new_tokens.slice(0, 5));
      await expectGoldenLogits(model, p, 'max_context 30');
    } finally {
      model.dispose();
    }
  });
});
