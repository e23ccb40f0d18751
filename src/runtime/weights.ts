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
}

/** Bytes the slots take on the GPU in the format the load will use (for the up-front memory estimate). */
export function estimateWeightBytes(
  specs: readonly WeightSlotSpec[],
  options: Pick<WeightLoadOptions, 'dtype' | 'torchDtype' | 'quantGroup'>,
): number {
  const stored: WeightFormat = TORCH_FORMAT[options.torchDtype ?? ''] ?? 'f32';
  let total = 0;
  for (const s of specs) {
    if (s.kind === 'vector') {
      total += s.rows * 4;
      continue;
    }
    const format = slotFormat(s, options.dtype, stored);
    if (isQuantized(format)) {
      const b = quantizedBytes({ bits: bitsOf(format), N: s.rows, K: s.cols, group: options.quantGroup ?? DEFAULT_QUANT_GROUP });
      total += b.q + b.scales + b.zeros;
    } else {
      total += weightBufferBytes(format, s.rows * s.cols);
    }
  }
  return total;
}

/** The storage of a matrix slot for a load's dtype, given the dtype its first tensor arrives in. */
function slotFormat(spec: WeightSlotSpec, dtype: LoadDtype, stored: WeightFormat): SlotFormat {
  if (spec.kind === 'vector') return 'f32';
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

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.slots.values()) for (const c of s.chunks) destroyChunk(c);
    for (const s of this.pending.values()) for (const c of s.chunks) destroyChunk(c);
    this.slots.clear();
    this.pending.clear();
  }

  /**
   * Fills every slot from `tensors`. Throws SafetensorsError naming the tensor on a missing, unexpected, misshapen or
   * unsupported tensor, after destroying whatever it had allocated (the store is then empty).
   */
  async load(specs: readonly WeightSlotSpec[], tensors: AsyncIterable<ModelTensor>, options: WeightLoadOptions): Promise<void> {
    const ctx = this.ctx;
    const byName = new Map<string, { spec: WeightSlotSpec; part: WeightPart }>();
    for (const spec of specs) for (const part of spec.parts) byName.set(part.name, { spec, part });
    const seen = new Set<string>();
    const maxBinding = options.maxBindingBytes ?? Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
    let sinceSync = 0;
    // A matrix that would need splitting but cannot be split fails now, before anything is read or allocated.
    const stored: WeightFormat = TORCH_FORMAT[options.torchDtype ?? ''] ?? 'f32';
    for (const spec of specs) {
      const format = slotFormat(spec, options.dtype, stored);
      checkSplittable(spec, isQuantized(format) ? stored : format, maxBinding); // quantized slots are staged as stored
    }
    try {
      for await (const t of tensors) {
        const entry = byName.get(t.name);
        if (!entry) {
          if (options.ignore?.(t.name)) continue;
          throw new SafetensorsError(
            `${t.shard}: unexpected tensor "${t.name}"; the model built from config.json has no such weight` +
              (options.describeConfig ? ` (${options.describeConfig}).` : '.'),
          );
        }
        if (seen.has(t.name)) throw new SafetensorsError(`${t.shard}: tensor "${t.name}" appears twice in the checkpoint.`);
        seen.add(t.name);
        const { spec, part } = entry;
        const srcFormat = DTYPE_FORMAT[t.dtype];
        if (!srcFormat) {
          throw new SafetensorsError(
            `${t.shard}: tensor "${t.name}" is ${t.dtype}; weights must be F32, F16 or BF16 (quantized checkpoints need a quantization_config).`,
          );
        }
        if (t.shape.length !== part.shape.length || t.shape.some((d, i) => d !== part.shape[i])) {
          throw new SafetensorsError(
            `${t.shard}: tensor "${t.name}" has shape [${t.shape.join(', ')}], but config.json implies [${part.shape.join(', ')}] (${spec.origin}).`,
          );
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
        sinceSync += t.bytes.byteLength;
        if (sinceSync > 64 * 1024 * 1024) {
          // Bound the staging memory the queue holds for pending uploads.
          sinceSync = 0;
          await ctx.device.queue.onSubmittedWorkDone();
        }
      }
      for (const spec of specs) {
        for (const part of spec.parts) {
          if (!seen.has(part.name)) {
            throw new SafetensorsError(`The checkpoint has no tensor "${part.name}" (${spec.origin}).`);
          }
        }
      }
      await ctx.device.queue.onSubmittedWorkDone();
    } catch (e) {
      this.dispose();
      throw e;
    }
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
      const src = t.bytes.subarray((lo - part.rowOffset) * cols * srcEl, (hi - part.rowOffset) * cols * srcEl);
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

/** Throws when `spec` in `format` exceeds one binding and its kernel cannot take it in chunks. */
function checkSplittable(spec: WeightSlotSpec, format: WeightFormat, maxBinding: number): void {
  const bytes = spec.kind === 'vector' ? spec.rows * 4 : weightBufferBytes(format, spec.rows * spec.cols);
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
