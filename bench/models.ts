// End-to-end generation benchmark: the Llama-family hf-tiny fixtures and synthetic ~125M- and ~0.5B-parameter Llamas with
// random f16 weights (written to a temporary folder as config.json + model.safetensors, removed afterwards).
// Per model: load time, prefill tokens/s, time to first token, decode tokens/s, GB/s of weights streamed per
// decode step, GPU memory held, and the dispatches, submits and bytes read back per decode step.
// Imports only Node built-ins and webslm sources, so it bundles into dist-bench/bench.mjs.
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GPUContext } from '../src/runtime/gpu-context.js';
import { AutoModelForCausalLM, type ModelDtype } from '../src/api/auto-model.js';
import { parseSafetensorsHeader, readHeaderLength, type SafetensorsTensor } from '../src/hub/safetensors.js';

/** The Llama-family fixtures under tests/fixtures/hf-tiny (relative to the working directory). */
export const FIXTURES = ['llama', 'llama3-rope', 'mistral', 'qwen2', 'qwen3', 'smollm-tied'];
export const SYNTHETIC = 'synthetic-125m';
/** A Qwen2.5-0.5B-shaped Llama (494M parameters, tied 151,936-token embedding), for the memory table. */
export const SYNTHETIC_05B = 'synthetic-0.5b';
export const FIXTURE_DIR = 'tests/fixtures/hf-tiny';
/** The embedded model (models/), benchmarked like a fixture. */
export const EMBEDDED = 'kjv-llama-tiny';
export const EMBEDDED_DIR = 'models';

export interface ModelBenchOptions {
  /** Case names (fixture names and/or SYNTHETIC); default: all. */
  cases?: string[];
  /** New tokens per generate(); default 32 for fixtures, 4 for the synthetic model. */
  tokens?: number;
  /** Prompt tokens; default 32 for fixtures, 16 for the synthetic model. */
  prompt?: number;
  dtype?: ModelDtype;
  /** Several storage dtypes side by side (each case is run once per dtype); overrides `dtype`. */
  dtypes?: ModelDtype[];
  /**
   * Runs generate() once (same prompt, 2 new tokens) before the timed run so pipelines are compiled. Default: for
   * the fixtures only (a warm-up of the synthetic model costs a whole extra prefill, over a minute on SwiftShader).
   */
  warmup?: boolean;
  log?: (line: string) => void;
}

export interface ModelBenchRow {
  model: string;
  params: number;
  dtype: string;
  weightBytes: number;
  /** GPU bytes of the Linear matrices (what q4/q8 quantize), of the embedding table and of an untied LM head. */
  linearBytes: number;
  embeddingBytes: number;
  headBytes: number;
  gpuMemoryBytes: number;
  deviceMemoryBytes: number;
  maxContext: number;
  loadMs: number;
  promptTokens: number;
  newTokens: number;
  /** Whether a warm-up generate() ran first; without one the timed call is the cold one. */
  warm: boolean;
  /** Time from generate() to the first new token, first (cold: pipelines compiled) call. */
  firstTtftMs: number;
  /** Time from generate() to the first new token, timed call (the cold call when `warm` is false). */
  ttftMs: number;
  prefillMs: number;
  prefillTokensPerSecond: number;
  decodeSteps: number;
  decodeMs: number;
  decodeTokensPerSecond: number;
  weightBytesPerStep: number;
  /** weightBytesPerStep × decode steps per second, in GB/s. */
  weightGBps: number;
  dispatchesPerStep: number;
  submitsPerStep: number;
  bytesReadBackPerStep: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Parameter count from the safetensors headers of a folder.

/** The tensors of a safetensors file, from its header (read with the loader's own parser). */
function readHeader(file: string): SafetensorsTensor[] {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const first = Buffer.alloc(8);
    readSync(fd, first, 0, 8, 0);
    const headerLength = readHeaderLength(first, file, size);
    const bytes = Buffer.alloc(8 + headerLength);
    readSync(fd, bytes, 0, bytes.length, 0);
    return parseSafetensorsHeader(bytes, size, file).tensors;
  } finally {
    closeSync(fd);
  }
}

export function countParameters(folder: string): number {
  let n = 0;
  for (const f of readdirSync(folder)) {
    if (!f.endsWith('.safetensors')) continue;
    for (const t of readHeader(path.join(folder, f))) n += t.shape.reduce((a, b) => a * b, 1);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Synthetic Llama: config.json, generation_config.json and one model.safetensors of random f16 weights.

export const SYNTHETIC_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 768,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_key_value_heads: 4,
  head_dim: 64,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  hidden_act: 'silu',
  attention_bias: false,
  mlp_bias: false,
  tie_word_embeddings: false,
  torch_dtype: 'float16',
  bos_token_id: 1,
  eos_token_id: 2,
  initializer_range: 0.02,
  use_cache: true,
};

const F16_BUF = new Float32Array(1);
const F16_BITS = new Uint32Array(F16_BUF.buffer);

export const SYNTHETIC_05B_CONFIG = {
  ...SYNTHETIC_CONFIG,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  head_dim: 64,
  vocab_size: 151936,
  max_position_embeddings: 4096,
  tie_word_embeddings: true,
};

const SYNTHETIC_CONFIGS: Record<string, typeof SYNTHETIC_CONFIG> = { [SYNTHETIC]: SYNTHETIC_CONFIG, [SYNTHETIC_05B]: SYNTHETIC_05B_CONFIG };

/** float32 → IEEE half bits, round to nearest even (normal range only; enough for N(0, 0.02) and ~1). */
export function toHalf(x: number): number {
  F16_BUF[0] = x;
  const f = F16_BITS[0];
  const sign = (f >>> 16) & 0x8000;
  const exp = ((f >>> 23) & 0xff) - 127 + 15;
  let mant = f & 0x7fffff;
  if (exp <= 0) {
    if (exp < -10) return sign; // too small: ±0
    mant = (mant | 0x800000) >>> (1 - exp);
    return sign | ((mant + 0x1000) >>> 13);
  }
  if (exp >= 31) return sign | 0x7c00;
  const half = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? half + 1 : half;
}

/** xorshift32. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** 65536 halves drawn from N(mean, std) (Box–Muller); weights are picked from it by a 16-bit random index. */
function normalTable(next: () => number, mean: number, std: number): Uint16Array {
  const t = new Uint16Array(65536);
  for (let i = 0; i < t.length; i += 2) {
    const u1 = (next() + 1) / 4294967297;
    const u2 = next() / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    t[i] = toHalf(mean + std * r * Math.cos(2 * Math.PI * u2));
    t[i + 1] = toHalf(mean + std * r * Math.sin(2 * Math.PI * u2));
  }
  return t;
}

export function syntheticTensors(c = SYNTHETIC_CONFIG): Array<{ name: string; shape: number[]; norm: boolean }> {
  const H = c.hidden_size;
  const I = c.intermediate_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const list: Array<{ name: string; shape: number[]; norm: boolean }> = [{ name: 'model.embed_tokens.weight', shape: [c.vocab_size, H], norm: false }];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    list.push(
      { name: `${p}.input_layernorm.weight`, shape: [H], norm: true },
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, H], norm: false },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, H], norm: false },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, H], norm: false },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, q], norm: false },
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], norm: true },
      { name: `${p}.mlp.gate_proj.weight`, shape: [I, H], norm: false },
      { name: `${p}.mlp.up_proj.weight`, shape: [I, H], norm: false },
      { name: `${p}.mlp.down_proj.weight`, shape: [H, I], norm: false },
    );
  }
  list.push({ name: 'model.norm.weight', shape: [H], norm: true });
  if (!c.tie_word_embeddings) list.push({ name: 'lm_head.weight', shape: [c.vocab_size, H], norm: false });
  return list;
}

/** Writes the synthetic model into a new temporary folder; returns the folder and its parameter count. */
export function writeSyntheticModel(seed = 1234, config = SYNTHETIC_CONFIG): { folder: string; params: number; bytes: number } {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'webslm-bench-'));
  writeFileSync(path.join(folder, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(
    path.join(folder, 'generation_config.json'),
    JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, do_sample: false }, null, 2),
  );
  const tensors = syntheticTensors(config);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  let params = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = { dtype: 'F16', shape: t.shape, data_offsets: [offset, offset + 2 * n] };
    offset += 2 * n;
    params += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const next = prng(seed);
  const weights = normalTable(next, 0, 0.02);
  const norms = normalTable(next, 1, 0.02);
  const chunk = new Uint16Array(1 << 20); // 2 MB written at a time
  const file = path.join(folder, 'model.safetensors');
  const fd = openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(headerBytes.length));
    writeSync(fd, len);
    writeSync(fd, headerBytes);
    for (const t of tensors) {
      const table = t.norm ? norms : weights;
      let left = t.shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        for (let i = 0; i < n; i += 2) {
          const r = next();
          chunk[i] = table[r & 0xffff];
          chunk[i + 1] = table[r >>> 16];
        }
        writeSync(fd, new Uint8Array(chunk.buffer, 0, 2 * n));
        left -= n;
      }
    }
  } finally {
    closeSync(fd);
  }
  return { folder, params, bytes: 8 + headerBytes.length + offset };
}

// ---------------------------------------------------------------------------------------------------------------

function promptIds(n: number, vocab: number): number[] {
  // Deterministic, spread over the vocabulary, never 0.
  return Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + 13) % (vocab - 1)));
}

async function benchOne(
  ctx: GPUContext,
  name: string,
  folder: string,
  params: number,
  promptTokens: number,
  newTokens: number,
  warm: boolean,
  opts: ModelBenchOptions,
): Promise<ModelBenchRow> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const model = await AutoModelForCausalLM.from_pretrained(folder, { cache: null, context: ctx, dtype: opts.dtype ?? 'auto' });
  const loadMs = performance.now() - t0;
  try {
    const ids = promptIds(promptTokens, model.config.vocabSize);
    const run = async (max: number) => {
      const start = performance.now();
      let first = 0;
      await model.generate({
        input_ids: [ids],
        max_new_tokens: max,
        do_sample: false,
        eos_token_id: [],
        token_callback: () => {
          if (first === 0) first = performance.now() - start;
        },
      });
      return { ttft: first, total: performance.now() - start };
    };
    log(`  ${name}: loaded in ${loadMs.toFixed(0)} ms; generating ${promptTokens} + ${newTokens} tokens`);
    let firstTtftMs: number;
    let ttftMs: number;
    if (warm) {
      firstTtftMs = (await run(Math.min(2, newTokens))).ttft;
      ttftMs = (await run(newTokens)).ttft;
    } else {
      ttftMs = firstTtftMs = (await run(newTokens)).ttft;
    }
    const s = model.stats();
    const stepsPerSecond = s.decode.ms > 0 ? s.decode.steps / (s.decode.ms / 1000) : 0;
    const torch = model.config.torchDtype;
    const row: ModelBenchRow = {
      model: name,
      params,
      dtype: `${opts.dtype ?? 'auto'}${(opts.dtype ?? 'auto') === 'auto' && torch ? ` (${torch})` : ''}`,
      weightBytes: s.weightBytes,
      linearBytes: s.weightBytesByRole.linear,
      embeddingBytes: s.weightBytesByRole.embedding,
      headBytes: s.weightBytesByRole.head,
      gpuMemoryBytes: s.gpuMemoryBytes,
      deviceMemoryBytes: s.deviceMemoryBytes,
      maxContext: model.maxContext,
      warm,
      loadMs,
      promptTokens,
      newTokens,
      firstTtftMs,
      ttftMs,
      prefillMs: s.prefill.ms,
      prefillTokensPerSecond: s.prefill.tokensPerSecond,
      decodeSteps: s.decode.steps,
      decodeMs: s.decode.ms,
      decodeTokensPerSecond: s.decode.tokensPerSecond,
      weightBytesPerStep: s.weightBytesPerStep,
      weightGBps: (s.weightBytesPerStep * stepsPerSecond) / 1e9,
      dispatchesPerStep: s.decodeStep.dispatches,
      submitsPerStep: s.decodeStep.submits,
      bytesReadBackPerStep: s.decodeStep.bytesReadBack,
    };
    log(
      `  ${name}: prefill ${row.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${row.decodeTokensPerSecond.toFixed(2)} tok/s ` +
        `(${row.decodeSteps} steps in ${row.decodeMs.toFixed(0)} ms)`,
    );
    return row;
  } finally {
    model.dispose();
  }
}

export async function benchModels(ctx: GPUContext, opts: ModelBenchOptions = {}): Promise<ModelBenchRow[]> {
  const log = opts.log ?? (() => {});
  const all = [EMBEDDED, ...FIXTURES, ...Object.keys(SYNTHETIC_CONFIGS)];
  const cases = opts.cases && opts.cases.length > 0 ? opts.cases : all;
  for (const c of cases) if (!all.includes(c)) throw new Error(`unknown model case "${c}"; one of ${all.join(', ')}`);
  const dtypes = opts.dtypes && opts.dtypes.length > 0 ? opts.dtypes : [opts.dtype];
  const rows: ModelBenchRow[] = [];
  for (const name of [EMBEDDED, ...FIXTURES]) {
    if (!cases.includes(name)) continue;
    const folder = path.resolve(name === EMBEDDED ? EMBEDDED_DIR : FIXTURE_DIR, name);
    if (!existsSync(folder)) throw new Error(`model folder ${folder} not found: run the bench from the repository root`);
    for (const dtype of dtypes) {
      const o = { ...opts, dtype };
      rows.push(await benchOne(ctx, name, folder, countParameters(folder), opts.prompt ?? 32, opts.tokens ?? 32, opts.warmup ?? true, o));
    }
  }
  for (const [synthetic, config] of Object.entries(SYNTHETIC_CONFIGS)) {
    if (!cases.includes(synthetic)) continue;
    const t0 = performance.now();
    const { folder, params, bytes } = writeSyntheticModel(1234, config);
    // A stopped run (Ctrl-C) still removes the folder (250 MB / 1 GB).
    const onSignal = (signal: NodeJS.Signals) => {
      rmSync(folder, { recursive: true, force: true });
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      log(
        `  ${synthetic}: ${params.toLocaleString('en-US')} parameters, ${(bytes / 1e6).toFixed(1)} MB of f16 written to ${folder} ` +
          `in ${(performance.now() - t0).toFixed(0)} ms`,
      );
      for (const dtype of dtypes) {
        rows.push(await benchOne(ctx, synthetic, folder, params, opts.prompt ?? 16, opts.tokens ?? 4, opts.warmup ?? false, { ...opts, dtype }));
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      rmSync(folder, { recursive: true, force: true });
    }
  }
  return rows;
}

function fmtParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toPrecision(3)}B`;
  if (n >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (n >= 1e3) return `${(n / 1e3).toPrecision(3)}K`;
  return String(n);
}

const mb = (b: number) => (b / 1e6).toFixed(2); // decimal MB, as GB/s
const sig = (x: number) => (x === 0 ? '—' : x >= 100 ? x.toFixed(0) : x.toPrecision(3));

export function modelTable(rows: ModelBenchRow[]): string {
  const lines = [
    '| model | params | dtype | weight MB | linear MB | GPU MB | load ms | prompt | prefill tok/s | TTFT ms (cold) | new | decode tok/s | GB/s | dispatches/step | submits/step | read back B/step |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.model} | ${fmtParams(r.params)} | ${r.dtype} | ${mb(r.weightBytes)} | ${mb(r.linearBytes)} | ${mb(r.gpuMemoryBytes)} | ${r.loadMs.toFixed(0)} | ` +
        `${r.promptTokens} | ${sig(r.prefillTokensPerSecond)} | ${r.warm ? r.ttftMs.toFixed(0) : '—'} (${r.firstTtftMs.toFixed(0)}) | ${r.newTokens} | ` +
        `${sig(r.decodeTokensPerSecond)} | ${r.weightGBps.toPrecision(3)} | ${r.dispatchesPerStep} | ${r.submitsPerStep} | ${r.bytesReadBackPerStep} |`,
    );
  }
  return lines.join('\n');
}

/** One line per synthetic model. */
export function describeSynthetic(): string {
  return Object.entries(SYNTHETIC_CONFIGS)
    .map(
      ([name, c]) =>
        `${name}: llama, hidden ${c.hidden_size}, intermediate ${c.intermediate_size}, ${c.num_hidden_layers} layers, ` +
        `${c.num_attention_heads}/${c.num_key_value_heads} heads, vocab ${c.vocab_size}${c.tie_word_embeddings ? ' (tied)' : ''}, f16 random weights`,
    )
    .join('; ');
}
