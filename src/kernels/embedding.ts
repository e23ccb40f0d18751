/**
 * Embedding lookup: out[t, :] = table[ids[t], :] * scale.
 *
 *   inputs_embeds = self.embed_tokens(input_ids)                               nn.Embedding
 *   hidden_states = hidden_states * normalizer                                 Gemma, with
 *   normalizer = torch.tensor(self.config.hidden_size**0.5, dtype=hidden_states.dtype)
 *
 *   table: (vocab, hidden) in any WeightFormat, row-major (model.embed_tokens.weight as stored)
 *   ids:   (tokens) u32
 *   out:   (tokens, hidden) f32
 *
 * `scale` is taken as given and rounded to f32; for Gemma pass sqrt(hidden) already rounded to the checkpoint's
 * dtype (in bf16, sqrt(640) = 25.298… becomes 25.25), as PyTorch does.
 *
 * Out-of-range ids (≥ vocab) never read the table: their whole output row is NaN, so a bad id shows up in the
 * logits instead of silently embedding some other token.
 *
 * One thread per output element, 256 per workgroup, on the same 2-D grid as the element-wise kernels.
 * Bindings (group 0): 0 table (storage, read) · 1 ids (storage, read) · 2 out (storage, read_write) · 3 params (uniform).
 */
import { GPUValidationError } from '../errors.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, grid2d, type KernelDispatch } from './dispatch.js';
import { WORKGROUP_SIZE } from './elementwise.js';
import { isWeightFormat, loadWeightWgsl, weightBindingWgsl, weightBufferBytes, type WeightFormat } from './weight-format.js';

export function embeddingKey(format: WeightFormat): string {
  return `embedding.${format}`;
}

export function embeddingSource(format: WeightFormat): string {
  return /* wgsl */ `
struct Params { count: u32, hidden: u32, vocab: u32, scale: f32 }

${weightBindingWgsl(format, 0, 'table')}  // (vocab, hidden)
@group(0) @binding(1) var<storage, read> ids: array<u32>;         // (tokens)
@group(0) @binding(2) var<storage, read_write> out: array<f32>;   // (tokens, hidden)
@group(0) @binding(3) var<uniform> params: Params;

${loadWeightWgsl(format, 'table')}

@compute @workgroup_size(${WORKGROUP_SIZE}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u,
        @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let e = (wg.y * nwg.x + wg.x) * ${WORKGROUP_SIZE}u + lid.x;
  if (e >= params.count) { return; }
  let hidden = params.hidden;
  let t = e / hidden;
  let c = e - t * hidden;
  let id = ids[t];
  if (id >= params.vocab) {
    // NaN, built at run time (a constant NaN is not a valid WGSL value).
    var nan_bits = 0x7fc00000u;
    out[e] = bitcast<f32>(nan_bits);
    return;
  }
  out[e] = load_w(id * hidden + c) * params.scale;
}
`;
}

export interface EmbeddingArgs {
  /** (vocab, hidden) table in `format`. */
  table: GPUBuffer;
  format: WeightFormat;
  /** (tokens) u32 token ids. */
  ids: GPUBuffer;
  /** (tokens, hidden) f32 output; only its first tokens·hidden elements are written. */
  out: GPUBuffer;
  tokens: number;
  vocab: number;
  hidden: number;
  /** Multiplies every output element (rounded to f32); default 1. */
  scale?: number;
  label?: string;
  /** Caps workgroups per grid dimension below the device's limit (to exercise the 2-D grid on small inputs). */
  maxWorkgroupsPerDimension?: number;
}

/** Prepares the embedding gather; record it with `recordDispatches`. The dispatch owns a small uniform buffer. */
export function prepareEmbedding(ctx: GPUContext, args: EmbeddingArgs): KernelDispatch {
  const { format, tokens, vocab, hidden } = args;
  const scale = args.scale ?? 1;
  const label = args.label ?? `embedding ${tokens} of (${vocab}x${hidden}) ${format}`;
  if (!isWeightFormat(format)) {
    throw new GPUValidationError(`embedding "${label}": unknown weight format ${JSON.stringify(format)}.`);
  }
  for (const [name, v] of [['tokens', tokens], ['vocab', vocab], ['hidden', hidden]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) {
      throw new GPUValidationError(`embedding "${label}": ${name} must be a positive integer, got ${v}.`);
    }
  }
  if (vocab * hidden > 0xffffffff || tokens * hidden > 0xffffffff) {
    throw new GPUValidationError(`embedding "${label}": too many elements for u32 indexing.`);
  }
  if (typeof scale !== 'number' || Number.isNaN(scale)) {
    throw new GPUValidationError(`embedding "${label}": scale must be a number, got ${scale}.`);
  }
  const bindings = [
    { name: 'table', buffer: args.table, bytes: weightBufferBytes(format, vocab * hidden), shape: `vocab×hidden ${format}` },
    { name: 'ids', buffer: args.ids, bytes: tokens * 4, shape: 'tokens u32' },
    { name: 'out', buffer: args.out, bytes: tokens * hidden * 4, shape: 'tokens×hidden f32' },
  ];
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of bindings) {
    if (b.buffer.size < b.bytes) {
      throw new GPUValidationError(
        `embedding "${label}": buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} needs ${b.bytes}.`,
      );
    }
    if (b.bytes > maxBinding) {
      throw new GPUValidationError(
        `embedding "${label}": ${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`,
      );
    }
  }
  if (args.out === args.table || args.out === args.ids) {
    throw new GPUValidationError(`embedding "${label}": out must be a separate buffer from table and ids.`);
  }
  const count = tokens * hidden;
  let workgroups: [number, number, number];
  try {
    workgroups = grid2d(count, WORKGROUP_SIZE, args.maxWorkgroupsPerDimension ?? ctx.limits.maxComputeWorkgroupsPerDimension);
  } catch (e) {
    throw new GPUValidationError(`embedding "${label}": ${(e as Error).message}`);
  }

  const key = embeddingKey(format);
  const pipeline = ctx.pipelines.get(key, () => embeddingSource(format));
  const data = new ArrayBuffer(16);
  new Uint32Array(data, 0, 3).set([count, hidden, vocab]);
  new Float32Array(data, 12, 1)[0] = scale;
  const { bindGroup, uniform } = bindWithUniform(ctx, pipeline, label, bindings, new Uint8Array(data));
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [uniform] };
}
