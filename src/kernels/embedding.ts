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
 * A table split by rows (a vocabulary too large for one binding) is gathered by one dispatch per part, all into
 * the same `out`: the part bound as `table` holds rows firstRow .. firstRow + tableRows − 1, and its dispatch
 * writes the output rows of the ids in that range and leaves every other output row untouched. Ids ≥ vocab get
 * their NaN row from the dispatch whose range ends at vocab (the last part), so each output row is written by
 * exactly one of the parts. The default (firstRow 0, tableRows vocab) is the whole table.
 *
 * One thread per output element, 256 per workgroup, on the same 2-D grid as the element-wise kernels.
 * Bindings (group 0): 0 table (storage, read) · 1 ids (storage, read) · 2 out (storage, read_write) · 3 params
 * (uniform: count, hidden, vocab, scale, firstRow, rowEnd = firstRow + tableRows, nanRows (1 when rowEnd = vocab),
 * pad; 32 bytes).
 */
import { GPUValidationError } from '../errors.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, grid2d, type KernelDispatch } from './dispatch.js';
import { WORKGROUP_SIZE } from './elementwise.js';
import { isWeightFormat, loadWeightWgsl, weightBindingWgsl, weightBufferBytes, type WeightFormat } from './weight-format.js';

export function embeddingKey(format: WeightFormat): string {
  return `embedding.${format}.rows`; // `.rows`: the table may be a row range of the vocabulary
}

export function embeddingSource(format: WeightFormat): string {
  return /* wgsl */ `
struct Params { count: u32, hidden: u32, vocab: u32, scale: f32, firstRow: u32, rowEnd: u32, nanRows: u32, _pad: u32 }

${weightBindingWgsl(format, 0, 'table')}  // (tableRows, hidden): rows firstRow .. rowEnd - 1
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
    // Only the dispatch holding the last rows writes the NaN row (one writer per output row).
    if (params.nanRows == 0u) { return; }
    // NaN, built at run time (a constant NaN is not a valid WGSL value).
    var nan_bits = 0x7fc00000u;
    out[e] = bitcast<f32>(nan_bits);
    return;
  }
  if (id < params.firstRow || id >= params.rowEnd) { return; }  // another part's row
  out[e] = load_w((id - params.firstRow) * hidden + c) * params.scale;
}
`;
}

export interface EmbeddingArgs {
  /** (tableRows, hidden) table in `format`: rows firstRow .. firstRow + tableRows − 1 of the (vocab, hidden) one. */
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
  /** First vocabulary row held by `table`; default 0. Output rows of ids outside the held rows are left untouched. */
  firstRow?: number;
  /** Rows held by `table`; default vocab − firstRow. Ids ≥ vocab get NaN rows only when firstRow + tableRows = vocab. */
  tableRows?: number;
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
  const firstRow = args.firstRow ?? 0;
  if (!Number.isInteger(firstRow) || firstRow < 0 || firstRow >= vocab) {
    throw new GPUValidationError(`embedding "${label}": firstRow must be an integer in [0, vocab = ${vocab}), got ${firstRow}.`);
  }
  const tableRows = args.tableRows ?? vocab - firstRow;
  if (!Number.isInteger(tableRows) || tableRows < 1 || firstRow + tableRows > vocab) {
    throw new GPUValidationError(
      `embedding "${label}": tableRows must be an integer in [1, vocab − firstRow = ${vocab - firstRow}], got ${tableRows}.`,
    );
  }
  if (vocab * hidden > 0xffffffff || tokens * hidden > 0xffffffff) {
    throw new GPUValidationError(`embedding "${label}": too many elements for u32 indexing.`);
  }
  if (typeof scale !== 'number' || Number.isNaN(scale)) {
    throw new GPUValidationError(`embedding "${label}": scale must be a number, got ${scale}.`);
  }
  const bindings = [
    {
      name: 'table',
      buffer: args.table,
      bytes: weightBufferBytes(format, tableRows * hidden),
      shape: tableRows === vocab ? `vocab×hidden ${format}` : `tableRows×hidden ${format} (${tableRows} rows)`,
    },
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
  const rowEnd = firstRow + tableRows;
  const data = new ArrayBuffer(32);
  new Uint32Array(data, 0, 3).set([count, hidden, vocab]);
  new Float32Array(data, 12, 1)[0] = scale;
  new Uint32Array(data, 16, 4).set([firstRow, rowEnd, rowEnd === vocab ? 1 : 0, 0]);
  const { bindGroup, uniform } = bindWithUniform(ctx, pipeline, label, bindings, new Uint8Array(data));
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [uniform] };
}
