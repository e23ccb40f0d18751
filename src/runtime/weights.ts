/**
 * Model weights on the GPU, filled from the hub's tensor stream.
 *
 * A model family describes the weights it needs as slots: a matrix (rows × cols, e.g. a Linear weight, or gate and
 * up stacked into one matrix) or a vector (a norm weight or a bias), each filled by one or more checkpoint tensors
 * at row offsets. Tensors arrive in file order; each is checked against its slot (name, shape, dtype), uploaded,
 * converted on the GPU when the stored dtype is not the slot's format, and dropped before the next one, so the CPU
 * holds one tensor at a time.
 *
 * Formats: matrices keep the checkpoint's dtype (f32, f16 or bf16) unless the load asks for another; vectors are
 * always f32 (the norm and bias kernels read f32). A matrix larger than the device's binding limit is split by
 * rows into chunks that each fit one binding; kernels take the chunks one by one (linear: a column range of the
 * output; embedding: a row range of the table).
 */
import { ConfigError, OutOfMemoryError, SafetensorsError } from '../errors.js';
import type { ModelTensor } from '../hub/load-weights.js';
import type { SafetensorsDtype } from '../hub/safetensors.js';
import { prepareConvert } from '../kernels/convert.js';
import { preparePackGroupParams, prepareRepack } from '../kernels/repack.js';
import type { PrequantizedConfig } from '../models/quantization-config.js';
import { DEFAULT_QUANT_GROUP, prepareQuantize, quantizedBytes, type QuantBits, type QuantGroup } from '../kernels/quant.js';
import { disposeDispatch, recordDispatches, type KernelDispatch } from '../kernels/dispatch.js';
import { bytesPerElement, weightBufferBytes, type WeightFormat } from '../kernels/weight-format.js';
import { COPY_DST, COPY_SRC, STORAGE, createBuffer, formatBytes, writeBuffer } from './buffers.js';
import type { GPUContext } from './gpu-context.js';

/** One checkpoint tensor and where it goes in its slot. */
export interface WeightPart {
  /** Tensor name in the checkpoint, e.g. `model.layers.0.mlp.up_proj.weight`. */
  name: string;
  /** Expected shape: [rows, cols] for a matrix part, [n] for a vector. */
  shape: readonly number[];
  /** First row of the slot this tensor fills (matrices stacked by rows); 0 for a vector. */
  rowOffset: number;
  /**
   * When the part is a row range of a larger (fused) checkpoint tensor, e.g. Phi-3's `qkv_proj` filling the q, k and v
   * slots: the tensor's row count and the first of its rows this part takes. Several parts may then name one tensor.
   */
  source?: { rows: number; rowStart: number };
}

/** The shape the checkpoint tensor of `part` has: the part's own, or the whole fused tensor's. */
function tensorShape(part: WeightPart): readonly number[] {
  return part.source ? [part.source.rows, ...part.shape.slice(1)] : part.shape;
}

export interface WeightSlotSpec {
  /** Our name for it, e.g. `layers.0.mlp.gate_up`. */
  key: string;
  kind: 'matrix' | 'vector';
  /** Matrix: rows (output features) × cols (input features). Vector: rows = length, cols = 1. */
  rows: number;
  cols: number;
  parts: WeightPart[];
  /** Why the slot has this shape, quoted in shape errors (e.g. `hidden_size 64 × num_attention_heads 4 …`). */
  origin: string;
  /**
   * What the matrix is for, which decides its storage when the load quantizes (`dtype` 'q4' / 'q8'): a 'linear'
   * weight takes the load's dtype, the LM 'head' q8 (its errors land directly on the logits), an 'embedding' table
   * stays 16-bit (f16, or bf16 when stored so) because it is gathered row by row. Default 'linear'.
   */
  role?: 'linear' | 'head' | 'embedding';
  /**
   * Whether the kernels can take this matrix in row chunks when it exceeds one binding (a plain linear or an
   * embedding table can; a linear with a fused bias or residual cannot). Default false.
   */
  splittable?: boolean;
}

/** A row range of a matrix slot in one GPU buffer (q4/q8: the packed values, with their scales and zero points). */
export interface WeightChunk {
  buffer: GPUBuffer;
  /** First slot row in this chunk. */
  firstRow: number;
  rows: number;
  /** q4/q8: f16 scales (rows, blocks). */
  scales?: GPUBuffer;
  /** q4: packed uint4 zero points. */
  zeros?: GPUBuffer;
}

/** How a slot is stored: a float format, or block-quantized (kernels/quant.ts). */
export type SlotFormat = WeightFormat | 'q4' | 'q8';

export interface WeightSlot {
  spec: WeightSlotSpec;
  format: SlotFormat;
  /** q4/q8: the group size along K. */
  group?: QuantGroup;
  chunks: WeightChunk[];
}

export interface WeightBytesByRole {
  linear: number;
  head: number;
  embedding: number;
  vector: number;
}

/** The storage dtypes a load can ask for. */
export type LoadDtype = 'auto' | WeightFormat | 'q4' | 'q8';

export function isQuantized(format: SlotFormat): format is 'q4' | 'q8' {
  return format === 'q4' || format === 'q8';
}

function bitsOf(format: 'q4' | 'q8'): QuantBits {
  return format === 'q4' ? 4 : 8;
}

const DTYPE_FORMAT: Partial<Record<SafetensorsDtype, WeightFormat>> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const TORCH_FORMAT: Record<string, WeightFormat> = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' };

export interface WeightLoadOptions {
  dtype: LoadDtype;
  /** `config.json`'s torch_dtype, for estimating 'auto' before the first tensor arrives. */
  torchDtype: string | null;
  /** Largest bytes in one binding (default: the device's maxStorageBufferBindingSize and maxBufferSize). */
  maxBindingBytes?: number;
  /** q4/q8: group size along K (default 32). */
  quantGroup?: QuantGroup;
  /** Ignore a checkpoint tensor the family does not use (e.g. `rotary_emb.inv_freq` buffers). */
  ignore?: (name: string) => boolean;
  /** How the config explains an unexpected tensor, e.g. `config.json has num_hidden_layers 2`. */
  describeConfig?: string;
  /**
   * A pre-quantized AWQ / GPTQ checkpoint: its Linears arrive as `qweight` / `qzeros` / `scales` (/ `g_idx`) in place
   * of `weight` and are repacked on the GPU into q4 slots; everything else loads as with dtype 'auto'.
   */
  prequantized?: PrequantizedConfig;
}

/** The tensors of one pre-quantized Linear, in place of its `weight`. `g_idx` (GPTQ) is checked, not stored. */
type Piece = 'qweight' | 'qzeros' | 'scales' | 'g_idx' | 'bias';
const REQUIRED_PIECES: readonly Piece[] = ['qweight', 'qzeros', 'scales'];

/** A q4 slot filling from pre-quantized tensors: staged per-group params per chunk, and the parts' uploads. */
interface PackedPending {
  slot: WeightSlot;
  staging: { scaleEl: GPUBuffer; zeroEl: GPUBuffer }[];
  parts: Map<string, Partial<Record<Piece, GPUBuffer>>>;
  done: number;
}

/** Bytes the slots take on the GPU in the format the load will use (for the up-front memory estimate). */
export function estimateWeightBytes(
  specs: readonly WeightSlotSpec[],
  options: Pick<WeightLoadOptions, 'dtype' | 'torchDtype' | 'quantGroup' | 'prequantized'>,
): number {
  const stored: WeightFormat = TORCH_FORMAT[options.torchDtype ?? ''] ?? 'f32';
  const group = options.prequantized?.group ?? options.quantGroup ?? DEFAULT_QUANT_GROUP;
  let total = 0;
  for (const s of specs) {
    if (s.kind === 'vector') {
      total += s.rows * 4;
      continue;
    }
    const format = slotFormat(s, options.dtype, stored, options.prequantized);
    if (isQuantized(format)) {
      const b = quantizedBytes({ bits: bitsOf(format), N: s.rows, K: s.cols, group });
      total += b.q + b.scales + b.zeros;
    } else {
      total += weightBufferBytes(format, s.rows * s.cols);
    }
  }
  return total;
}

/**
 * The storage of a matrix slot for a load's dtype, given the dtype its first tensor arrives in. A pre-quantized
 * checkpoint's linears are q4 (the embedding and an unquantized head keep their dtype).
 */
function slotFormat(spec: WeightSlotSpec, dtype: LoadDtype, stored: WeightFormat, prequantized?: PrequantizedConfig): SlotFormat {
  if (spec.kind === 'vector') return 'f32';
  if (prequantized && (spec.role ?? 'linear') === 'linear') return 'q4';
  if (dtype === 'auto') return stored;
  if (!isQuantized(dtype)) return dtype;
  switch (spec.role ?? 'linear') {
    case 'embedding':
      return stored === 'f32' ? 'f16' : stored;
    case 'head':
      return 'q8';
    case 'linear':
      return dtype;
  }
}

/** The weights of one model, by slot key. */
export class WeightStore {
  readonly slots = new Map<string, WeightSlot>();
  /** Slots to quantize once all their tensors are in: staged in a float format, keyed as `slots`. */
  private readonly pending = new Map<string, WeightSlot & { target: 'q4' | 'q8'; seen: number }>();
  /** Slots filling from a pre-quantized checkpoint's tensors, keyed as `slots`. */
  private readonly packed = new Map<string, PackedPending>();
  private readonly ctx: GPUContext;
  private disposed = false;

  constructor(ctx: GPUContext) {
    this.ctx = ctx;
  }

  get(key: string): WeightSlot {
    const slot = this.slots.get(key);
    if (!slot) throw new ConfigError(`Internal: weight slot "${key}" was not loaded.`);
    return slot;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  /** The slot as one buffer (throws when it had to be split: use `chunks` for those). */
  single(key: string): GPUBuffer {
    const slot = this.get(key);
    if (slot.chunks.length !== 1) {
      throw new ConfigError(`Internal: weight "${key}" is split in ${slot.chunks.length} chunks; this kernel needs it whole.`);
    }
    return slot.chunks[0]!.buffer;
  }

  get bytes(): number {
    let n = 0;
    for (const s of this.slots.values()) for (const c of s.chunks) n += chunkBytes(c);
    return n;
  }

  /** GPU bytes by what the weights are for: Linear matrices, the LM head, the embedding table, vectors (norms, biases). */
  bytesByRole(): WeightBytesByRole {
    const out: WeightBytesByRole = { linear: 0, head: 0, embedding: 0, vector: 0 };
    for (const s of this.slots.values()) {
      const role = s.spec.kind === 'vector' ? 'vector' : (s.spec.role ?? 'linear');
      for (const c of s.chunks) out[role] += chunkBytes(c);
    }
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.slots.values()) for (const c of s.chunks) destroyChunk(c);
    for (const s of this.pending.values()) for (const c of s.chunks) destroyChunk(c);
    for (const p of this.packed.values()) destroyPacked(p);
    this.slots.clear();
    this.pending.clear();
    this.packed.clear();
  }

  /**
   * Fills every slot from `tensors`. Throws SafetensorsError naming the tensor on a missing, unexpected, misshapen or
   * unsupported tensor, after destroying whatever it had allocated (the store is then empty).
   */
  async load(specs: readonly WeightSlotSpec[], tensors: AsyncIterable<ModelTensor>, options: WeightLoadOptions): Promise<void> {
    const ctx = this.ctx;
    // A fused tensor fills several parts (each a row range of it); any other tensor exactly one.
    const byName = new Map<string, { spec: WeightSlotSpec; part: WeightPart }[]>();
    for (const spec of specs) {
      for (const part of spec.parts) {
        if (part.source && options.prequantized) {
          throw new ConfigError(`Weight "${spec.key}" takes rows of the fused tensor "${part.name}", which a pre-quantized checkpoint cannot give yet.`);
        }
        const list = byName.get(part.name) ?? [];
        list.push({ spec, part });
        byName.set(part.name, list);
      }
    }
    const seen = new Set<string>();
    const maxBinding = options.maxBindingBytes ?? Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
    let sinceSync = 0;
    // A matrix that would need splitting but cannot be split fails now, before anything is read or allocated.
    const stored: WeightFormat = TORCH_FORMAT[options.torchDtype ?? ''] ?? 'f32';
    const pq = options.prequantized;
    for (const spec of specs) {
      const format = slotFormat(spec, options.dtype, stored, pq);
      if (pq && format === 'q4') checkSplittableBytes(spec, 'q4', packedBytes(spec, pq).q, maxBinding);
      else checkSplittable(spec, isQuantized(format) ? stored : format, maxBinding); // quantized slots are staged as stored
    }
    // A pre-quantized checkpoint's Linears: `<name>.qweight` etc. in place of `<name>.weight`.
    const pieceOf = new Map<string, { spec: WeightSlotSpec; part: WeightPart; piece: Piece }>();
    if (pq) {
      for (const spec of specs) {
        if (spec.kind !== 'matrix' || spec.role === 'embedding') continue;
        for (const part of spec.parts) {
          if (!part.name.endsWith('.weight')) continue;
          const base = part.name.slice(0, -'.weight'.length);
          for (const piece of [...REQUIRED_PIECES, 'g_idx'] as const) pieceOf.set(`${base}.${piece}`, { spec, part, piece });
          // Older AutoGPTQ wrote a zero `bias` for every quantized Linear, with or without one in the model.
          if (!byName.has(`${base}.bias`)) pieceOf.set(`${base}.bias`, { spec, part, piece: 'bias' });
        }
      }
    }
    try {
      for await (const t of tensors) {
        const entries = byName.get(t.name);
        if (!entries && !pieceOf.has(t.name)) {
          if (options.ignore?.(t.name)) continue;
          throw new SafetensorsError(
            `${t.shard}: unexpected tensor "${t.name}"; the model built from config.json has no such weight` +
              (options.describeConfig ? ` (${options.describeConfig}).` : '.'),
          );
        }
        if (seen.has(t.name)) throw new SafetensorsError(`${t.shard}: tensor "${t.name}" appears twice in the checkpoint.`);
        seen.add(t.name);
        if (entries) for (const entry of entries) this.loadPart(entry.spec, entry.part, t, options, maxBinding);
        else this.loadPiece(pieceOf.get(t.name)!, t, pq!, maxBinding);
        sinceSync += t.bytes.byteLength;
        if (sinceSync > 64 * 1024 * 1024) {
          // Bound the staging memory the queue holds for pending uploads.
          sinceSync = 0;
          await ctx.device.queue.onSubmittedWorkDone();
        }
      }
      for (const spec of specs) {
        for (const part of spec.parts) {
          if (seen.has(part.name)) continue;
          const base = part.name.slice(0, -'.weight'.length);
          if (pieceOf.has(`${base}.qweight`)) {
            const missing = REQUIRED_PIECES.filter((p) => !seen.has(`${base}.${p}`));
            if (missing.length === 0) continue;
            if (missing.length < REQUIRED_PIECES.length) {
              throw new SafetensorsError(`The checkpoint has no tensor "${base}.${missing[0]}" (${pq!.describe}; ${spec.origin}).`);
            }
            throw new SafetensorsError(
              `The checkpoint has no tensor "${part.name}", nor its ${pq!.describe} tensors "${base}.qweight", "${base}.qzeros", "${base}.scales" (${spec.origin}).`,
            );
          }
          throw new SafetensorsError(`The checkpoint has no tensor "${part.name}" (${spec.origin}).`);
        }
      }
      await ctx.device.queue.onSubmittedWorkDone();
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /**
   * One tensor of a pre-quantized Linear: checked (dtype, shape, g_idx, zero points), uploaded, and once the Linear's
   * qweight, qzeros and scales are all in, repacked into its rows of the q4 slot; once every part of the slot is in,
   * the slot's scales and zero points are packed and the slot is ready.
   */
  private loadPiece(entry: { spec: WeightSlotSpec; part: WeightPart; piece: Piece }, t: ModelTensor, pq: PrequantizedConfig, maxBinding: number): void {
    const ctx = this.ctx;
    const { spec, part, piece } = entry;
    const N = part.shape[0]!;
    if (piece === 'bias') {
      if (t.shape.length !== 1 || t.shape[0] !== N || !t.bytes.every((b, i) => b === 0 || (i % 2 === 1 && b === 0x80 && t.dtype !== 'F32'))) {
        throw new SafetensorsError(
          `${t.shard}: unexpected tensor "${t.name}": config.json gives this Linear no bias (only an all-zero one, as older GPTQ tools write, is accepted).`,
        );
      }
      return;
    }
    const K = spec.cols;
    const G = pq.group;
    const blocks = Math.ceil(K / G);
    const method = pq.method === 'awq' ? 'AWQ' : 'GPTQ';
    if (N % 8 !== 0 || (pq.method === 'gptq' && K % 8 !== 0)) {
      throw new SafetensorsError(
        `${t.shard}: "${t.name}": a ${N}×${K} Linear cannot be ${method}-packed (outputs${pq.method === 'gptq' ? ' and inputs' : ''} must be multiples of 8).`,
      );
    }
    const expected: Record<Exclude<Piece, 'bias'>, { dtype: SafetensorsDtype; shape: number[] }> =
      pq.method === 'gptq'
        ? {
            qweight: { dtype: 'I32', shape: [K / 8, N] },
            qzeros: { dtype: 'I32', shape: [blocks, N / 8] },
            scales: { dtype: 'F16', shape: [blocks, N] },
            g_idx: { dtype: 'I32', shape: [K] },
          }
        : {
            qweight: { dtype: 'I32', shape: [K, N / 8] },
            qzeros: { dtype: 'I32', shape: [blocks, N / 8] },
            scales: { dtype: 'F16', shape: [blocks, N] },
            g_idx: { dtype: 'I32', shape: [K] },
          };
    const want = expected[piece];
    if (pq.method === 'awq' && piece === 'g_idx') {
      throw new SafetensorsError(`${t.shard}: unexpected tensor "${t.name}": AWQ checkpoints have no g_idx.`);
    }
    if (t.dtype !== want.dtype) {
      throw new SafetensorsError(`${t.shard}: tensor "${t.name}" is ${t.dtype}; ${method} ${piece} must be ${want.dtype}.`);
    }
    if (t.shape.length !== want.shape.length || t.shape.some((d, i) => d !== want.shape[i])) {
      throw new SafetensorsError(
        `${t.shard}: tensor "${t.name}" has shape [${t.shape.join(', ')}], but a ${method} ${piece} of this ${N}×${K} Linear with group ` +
          `${G} is [${want.shape.join(', ')}] (${spec.origin}).`,
      );
    }
    const words =
      t.bytes.byteOffset % 4 === 0 ? new Int32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4) : new Int32Array(t.bytes.slice().buffer);
    if (piece === 'g_idx') {
      // desc_act false: input k is in group k / G. Anything else is an act-order permutation we do not run.
      for (let k = 0; k < K; k++) {
        if (words[k] !== Math.floor(k / G)) {
          throw new SafetensorsError(
            `${t.shard}: tensor "${t.name}" puts input ${k} in group ${words[k]}, not ${Math.floor(k / G)} (k / group_size): act-order (desc_act) ` +
              `checkpoints are not supported.`,
          );
        }
      }
      return;
    }
    if (piece === 'qzeros' && pq.zeroOffset === 1) {
      // v1 stores z − 1; a stored 15 means z = 16 (v1's packing of z = 0 wraps), which 4 bits cannot hold.
      for (let i = 0; i < words.length; i++) {
        const w = words[i]! >>> 0;
        for (let j = 0; j < 8; j++) {
          if (((w >>> (4 * j)) & 15) === 15) {
            throw new SafetensorsError(
              `${t.shard}: tensor "${t.name}" stores a zero point of 15 (group ${Math.floor(i / (N / 8))}, output ${8 * (i % (N / 8)) + j}), ` +
                `i.e. z = 16 in the GPTQ v1 format, which 4-bit zero points cannot hold (v1's packing of z = 0 wraps); re-save it as gptq_v2.`,
            );
          }
        }
      }
    }
    if (this.slots.has(spec.key) || this.pending.has(spec.key)) {
      throw new SafetensorsError(`${t.shard}: tensor "${t.name}" is ${pq.describe}-quantized, but the other parts of "${spec.key}" arrived as float weights.`);
    }
    let pending = this.packed.get(spec.key);
    if (!pending) {
      pending = this.allocatePacked(spec, pq, maxBinding);
      this.packed.set(spec.key, pending);
    }
    let pieces = pending.parts.get(part.name);
    if (!pieces) pending.parts.set(part.name, (pieces = {}));
    const buffer = createBuffer(ctx, t.name, t.bytes.byteLength, STORAGE | COPY_DST);
    pieces[piece] = buffer;
    writeBuffer(ctx, buffer, t.bytes);
    if (!REQUIRED_PIECES.every((p) => pieces[p])) return;

    // The Linear is complete: repack it into every chunk its rows fall in.
    const dispatches: KernelDispatch[] = [];
    const encoder = ctx.device.createCommandEncoder({ label: `repack ${part.name}` });
    try {
      pending.slot.chunks.forEach((chunk, c) => {
        const lo = Math.max(part.rowOffset, chunk.firstRow);
        const hi = Math.min(part.rowOffset + N, chunk.firstRow + chunk.rows);
        if (lo >= hi) return;
        dispatches.push(
          prepareRepack(ctx, {
            method: pq.method,
            group: G,
            partRows: N,
            K,
            zeroOffset: pq.zeroOffset,
            qweight: pieces.qweight!,
            qzeros: pieces.qzeros!,
            scales: pieces.scales!,
            srcRow0: lo - part.rowOffset,
            rows: hi - lo,
            dstRow0: lo - chunk.firstRow,
            chunkRows: chunk.rows,
            q: chunk.buffer,
            scaleEl: pending.staging[c]!.scaleEl,
            zeroEl: pending.staging[c]!.zeroEl,
            label: `repack ${part.name}`,
          }),
        );
      });
      recordDispatches(encoder, dispatches, `repack ${part.name}`);
      ctx.device.queue.submit([encoder.finish()]);
    } finally {
      for (const d of dispatches) disposeDispatch(d);
      for (const b of Object.values(pieces)) b.destroy();
      pending.parts.set(part.name, {});
    }
    if (++pending.done < spec.parts.length) return;

    // Every part is in: pack each chunk's scales and zero points into our layout.
    const packs: KernelDispatch[] = [];
    const packEncoder = ctx.device.createCommandEncoder({ label: `pack ${spec.key}` });
    try {
      pending.slot.chunks.forEach((chunk, c) => {
        packs.push(
          preparePackGroupParams(ctx, {
            rows: chunk.rows,
            K,
            group: G,
            scaleEl: pending.staging[c]!.scaleEl,
            zeroEl: pending.staging[c]!.zeroEl,
            scales: chunk.scales!,
            zeros: chunk.zeros!,
            label: `pack ${spec.key}`,
          }),
        );
      });
      recordDispatches(packEncoder, packs, `pack ${spec.key}`);
      ctx.device.queue.submit([packEncoder.finish()]);
    } finally {
      for (const d of packs) disposeDispatch(d);
    }
    for (const s of pending.staging) {
      s.scaleEl.destroy();
      s.zeroEl.destroy();
    }
    pending.staging = [];
    this.packed.delete(spec.key);
    this.slots.set(spec.key, pending.slot);
  }

  /** A q4 slot (split by rows when its packed values exceed one binding) and its per-chunk staging. */
  private allocatePacked(spec: WeightSlotSpec, pq: PrequantizedConfig, maxBinding: number): PackedPending {
    const sizes = packedBytes(spec, pq);
    const rowBytes = sizes.rowWords * 4;
    const chunkRows = sizes.q > maxBinding ? Math.floor(maxBinding / rowBytes) : spec.rows;
    if (chunkRows < 1) {
      throw new OutOfMemoryError(`One row of weight "${spec.key}" (${formatBytes(rowBytes)}) is above this GPU's binding limit of ${formatBytes(maxBinding)}.`);
    }
    const pending: PackedPending = { slot: { spec, format: 'q4', group: pq.group, chunks: [] }, staging: [], parts: new Map(), done: 0 };
    try {
      for (let first = 0; first < spec.rows; first += chunkRows) {
        const rows = Math.min(chunkRows, spec.rows - first);
        const b = quantizedBytes({ bits: 4, N: rows, K: spec.cols, group: pq.group });
        const name = first === 0 && rows === spec.rows ? spec.key : `${spec.key}[${first}:${first + rows}]`;
        pending.slot.chunks.push({
          firstRow: first,
          rows,
          buffer: createBuffer(this.ctx, `${name}.q4`, b.q, STORAGE | COPY_DST),
          scales: createBuffer(this.ctx, `${name}.scales`, b.scales, STORAGE | COPY_DST),
          zeros: createBuffer(this.ctx, `${name}.zeros`, b.zeros, STORAGE | COPY_DST),
        });
        pending.staging.push({
          scaleEl: createBuffer(this.ctx, `${name}.scales/staging`, rows * b.blocks * 4, STORAGE),
          zeroEl: createBuffer(this.ctx, `${name}.zeros/staging`, rows * b.blocks * 4, STORAGE),
        });
      }
    } catch (e) {
      destroyPacked(pending);
      throw e;
    }
    return pending;
  }

  /** Quantizes a staged slot chunk by chunk on the GPU, then frees the staging buffers. */
  private quantize(staged: WeightSlot, target: 'q4' | 'q8', group: QuantGroup): WeightSlot {
    const ctx = this.ctx;
    const bits = bitsOf(target);
    const K = staged.spec.cols;
    const chunks: WeightChunk[] = [];
    const encoder = ctx.device.createCommandEncoder({ label: `quantize ${staged.spec.key}` });
    const dispatches: KernelDispatch[] = [];
    try {
      for (const c of staged.chunks) {
        const sizes = quantizedBytes({ bits, N: c.rows, K, group });
        const name = staged.chunks.length === 1 ? staged.spec.key : `${staged.spec.key}[${c.firstRow}:${c.firstRow + c.rows}]`;
        const chunk: WeightChunk = {
          firstRow: c.firstRow,
          rows: c.rows,
          buffer: createBuffer(ctx, `${name}.q${bits}`, sizes.q, STORAGE | COPY_DST),
          scales: createBuffer(ctx, `${name}.scales`, sizes.scales, STORAGE | COPY_DST),
          zeros: bits === 4 ? createBuffer(ctx, `${name}.zeros`, sizes.zeros, STORAGE | COPY_DST) : undefined,
        };
        chunks.push(chunk);
        const d = prepareQuantize(ctx, {
          src: c.buffer,
          srcFormat: staged.format as WeightFormat,
          N: c.rows,
          K,
          bits,
          group,
          q: chunk.buffer,
          scales: chunk.scales!,
          zeros: chunk.zeros,
          label: `quantize ${name}`,
        });
        dispatches.push(d);
      }
      recordDispatches(encoder, dispatches, `quantize ${staged.spec.key}`);
      ctx.device.queue.submit([encoder.finish()]);
    } catch (e) {
      for (const c of chunks) destroyChunk(c);
      throw e;
    } finally {
      for (const d of dispatches) disposeDispatch(d);
      for (const c of staged.chunks) c.buffer.destroy();
    }
    return { spec: staged.spec, format: target, group, chunks };
  }

  /** Buffers for a slot, split by rows when it exceeds one binding. */
  private allocate(spec: WeightSlotSpec, wanted: WeightFormat, maxBinding: number): WeightSlot {
    let format = wanted;
    // 16-bit formats pack two elements per u32: every part and chunk must start on a whole word.
    if (bytesPerElement(format) === 2 && !wordAligned(spec)) format = 'f32';
    const rowBytes = spec.kind === 'vector' ? 4 : spec.cols * bytesPerElement(format);
    const totalBytes = spec.kind === 'vector' ? spec.rows * 4 : weightBufferBytes(format, spec.rows * spec.cols);
    let chunkRows = spec.rows;
    if (totalBytes > maxBinding) {
      checkSplittable(spec, format, maxBinding);
      chunkRows = Math.floor(maxBinding / rowBytes);
      if (bytesPerElement(format) === 2 && spec.cols % 2 === 1) chunkRows -= chunkRows % 2;
      if (chunkRows < 1) {
        throw new OutOfMemoryError(`One row of weight "${spec.key}" (${formatBytes(rowBytes)}) is above this GPU's binding limit of ${formatBytes(maxBinding)}.`);
      }
    }
    const chunks: WeightChunk[] = [];
    for (let first = 0; first < spec.rows; first += chunkRows) {
      const rows = Math.min(chunkRows, spec.rows - first);
      const count = spec.kind === 'vector' ? rows : rows * spec.cols;
      const bytes = spec.kind === 'vector' ? rows * 4 : weightBufferBytes(format, count);
      const label = chunks.length === 0 && first + rows === spec.rows ? spec.key : `${spec.key}[${first}:${first + rows}]`;
      chunks.push({ buffer: createBuffer(this.ctx, label, bytes, STORAGE | COPY_DST | COPY_SRC), firstRow: first, rows });
    }
    return { spec, format, chunks };
  }

  /** One part of a checkpoint tensor: checked (dtype, shape), then written into its slot (staged when it quantizes). */
  private loadPart(spec: WeightSlotSpec, part: WeightPart, t: ModelTensor, options: WeightLoadOptions, maxBinding: number): void {
    const pq = options.prequantized;
    const want = tensorShape(part);
    const srcFormat = DTYPE_FORMAT[t.dtype];
    if (!srcFormat) {
      throw new SafetensorsError(
        `${t.shard}: tensor "${t.name}" is ${t.dtype}; weights must be F32, F16 or BF16 (quantized checkpoints need a quantization_config).`,
      );
    }
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new SafetensorsError(
        `${t.shard}: tensor "${t.name}" has shape [${t.shape.join(', ')}], but config.json implies [${want.join(', ')}] (${spec.origin}).`,
      );
    }
    if (this.packed.has(spec.key)) {
      throw new SafetensorsError(`${t.shard}: tensor "${t.name}" is a float weight, but the other parts of "${spec.key}" arrived ${pq!.describe}-quantized.`);
    }
    let slot = this.slots.get(spec.key) ?? this.pending.get(spec.key);
    if (!slot) {
      const wanted = slotFormat(spec, options.dtype, srcFormat);
      if (isQuantized(wanted)) {
        // Staged in the tensor's own format, quantized when the slot's last tensor has arrived.
        const staged = this.allocate(spec, srcFormat, maxBinding);
        this.pending.set(spec.key, { ...staged, target: wanted, seen: 0 });
        slot = staged;
      } else {
        slot = this.allocate(spec, wanted, maxBinding);
        this.slots.set(spec.key, slot);
      }
    }
    const staged = this.pending.get(spec.key);
    this.upload(staged ?? slot, part, t, srcFormat);
    if (staged && ++staged.seen === spec.parts.length) {
      this.pending.delete(spec.key);
      this.slots.set(spec.key, this.quantize(staged, staged.target, options.quantGroup ?? DEFAULT_QUANT_GROUP));
    }
  }

  /** Writes tensor `t` into its rows of `slot`, converting on the GPU when the formats differ. */
  private upload(slot: WeightSlot, part: WeightPart, t: ModelTensor, srcFormat: WeightFormat): void {
    const ctx = this.ctx;
    if (isQuantized(slot.format)) throw new ConfigError(`Internal: "${slot.spec.key}" is uploaded staged, not quantized.`);
    const format: WeightFormat = slot.format;
    const cols = slot.spec.kind === 'vector' ? 1 : slot.spec.cols;
    const partRows = part.shape[0]!; // a vector part's length, or a matrix part's rows
    const srcEl = bytesPerElement(srcFormat);
    const dstEl = bytesPerElement(format);
    const temps: GPUBuffer[] = [];
    const dispatches: KernelDispatch[] = [];
    const encoder = ctx.device.createCommandEncoder({ label: `upload ${t.name}` });
    let used = false;
    for (const chunk of slot.chunks) {
      const lo = Math.max(part.rowOffset, chunk.firstRow);
      const hi = Math.min(part.rowOffset + partRows, chunk.firstRow + chunk.rows);
      if (lo >= hi) continue;
      const count = (hi - lo) * cols;
      const from = lo - part.rowOffset + (part.source?.rowStart ?? 0); // the tensor's row that lands on slot row lo
      const src = t.bytes.subarray(from * cols * srcEl, (from + hi - lo) * cols * srcEl);
      const dstOffset = (lo - chunk.firstRow) * cols * dstEl;
      if (srcFormat === format) {
        writeBuffer(ctx, chunk.buffer, src, dstOffset);
        continue;
      }
      const staging = createBuffer(ctx, `${t.name}/staging`, src.byteLength, STORAGE | COPY_DST);
      writeBuffer(ctx, staging, src);
      const convertedBytes = weightBufferBytes(format, count);
      const converted = createBuffer(ctx, `${t.name}/converted`, convertedBytes, STORAGE | COPY_SRC);
      temps.push(staging, converted);
      const d = prepareConvert(ctx, { src: staging, srcFormat, dst: converted, dstFormat: format, count, label: `convert ${t.name}` });
      dispatches.push(d);
      recordDispatches(encoder, [d], `convert ${t.name}`);
      // A 16-bit odd tail was zero-padded to a whole word; copy only the tensor's own bytes, rounded to the word.
      encoder.copyBufferToBuffer(converted, 0, chunk.buffer, dstOffset, Math.ceil((count * dstEl) / 4) * 4);
      used = true;
    }
    if (used) ctx.device.queue.submit([encoder.finish()]);
    for (const d of dispatches) disposeDispatch(d);
    for (const b of temps) b.destroy();
  }
}

function chunkBytes(c: WeightChunk): number {
  return c.buffer.size + (c.scales?.size ?? 0) + (c.zeros?.size ?? 0);
}

function destroyChunk(c: WeightChunk): void {
  c.buffer.destroy();
  c.scales?.destroy();
  c.zeros?.destroy();
}

function destroyPacked(p: PackedPending): void {
  for (const c of p.slot.chunks) destroyChunk(c);
  for (const s of p.staging) {
    s.scaleEl.destroy();
    s.zeroEl.destroy();
  }
  for (const pieces of p.parts.values()) for (const b of Object.values(pieces)) b.destroy();
}

/** Our q4 sizes of a pre-quantized matrix slot. */
function packedBytes(spec: WeightSlotSpec, pq: PrequantizedConfig) {
  return quantizedBytes({ bits: 4, N: spec.rows, K: spec.cols, group: pq.group });
}

/** Throws when `spec` in `format` exceeds one binding and its kernel cannot take it in chunks. */
function checkSplittable(spec: WeightSlotSpec, format: WeightFormat, maxBinding: number): void {
  const bytes = spec.kind === 'vector' ? spec.rows * 4 : weightBufferBytes(format, spec.rows * spec.cols);
  checkSplittableBytes(spec, format, bytes, maxBinding);
}

function checkSplittableBytes(spec: WeightSlotSpec, format: SlotFormat, bytes: number, maxBinding: number): void {
  if (bytes <= maxBinding || (spec.kind === 'matrix' && spec.splittable)) return;
  throw new OutOfMemoryError(
    `Weight "${spec.key}" (${spec.parts.map((p) => p.name).join(' + ')}) needs ${formatBytes(bytes)} in one binding as ${format}, above ` +
      `this GPU's limit of ${formatBytes(maxBinding)}, and its layer cannot be split; load with a smaller dtype if the checkpoint allows.`,
  );
}

/** Whether every part boundary of a matrix slot falls on a whole u32 word in a 16-bit format. */
function wordAligned(spec: WeightSlotSpec): boolean {
  if (spec.kind === 'vector') return true;
  if (spec.cols % 2 === 0) return true;
  // Odd rows: a part starting or ending on an odd row splits a word.
  return spec.parts.every((p) => p.rowOffset % 2 === 0 && ((p.shape[0] ?? 0) % 2 === 0 || p.rowOffset + p.shape[0]! === spec.rows));
}
