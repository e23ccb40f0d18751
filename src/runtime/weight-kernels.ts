/**
 * Kernels over weight slots as the loader stored them (runtime/weights.ts): split by rows across bindings, float or
 * q4/q8. Families call these instead of the kernels directly, so every family handles every storage form.
 */
import { ConfigError } from '../errors.js';
import type { KernelDispatch } from '../kernels/dispatch.js';
import { prepareEmbedding } from '../kernels/embedding.js';
import { prepareLinear } from '../kernels/linear.js';
import { prepareQuantLinear } from '../kernels/quant-linear.js';
import type { GPUContext } from './gpu-context.js';
import { isQuantized, type WeightStore } from './weights.js';

/**
 * The linear layer over a weight slot, in whatever form it was loaded: one dispatch per row chunk (a chunk writes
 * its column range of y), with the float kernels or, for q4/q8 slots, the fused dequant ones. A fused bias or
 * residual needs the slot whole (the loader refuses to split such slots).
 */
export function prepareChunkedLinear(
  ctx: GPUContext,
  weights: WeightStore,
  key: string,
  args: { x: GPUBuffer; y: GPUBuffer; M: number; K: number; bias?: GPUBuffer; residual?: GPUBuffer; label: string },
): KernelDispatch[] {
  const slot = weights.get(key);
  const N = slot.spec.rows;
  const format = slot.format;
  const whole = slot.chunks.length === 1;
  if (!whole && (args.bias || args.residual)) {
    throw new ConfigError(`Weight "${key}" had to be split across bindings; a split layer with a bias or residual is not supported.`);
  }
  return slot.chunks.map((chunk, i) => {
    const common = {
      x: args.x,
      y: args.y,
      M: args.M,
      N: chunk.rows,
      K: args.K,
      bias: args.bias,
      residual: args.residual,
      yStride: whole ? undefined : N,
      yOffset: whole ? undefined : chunk.firstRow,
      label: whole ? args.label : `${args.label}[${i}]`,
    };
    return isQuantized(format)
      ? prepareQuantLinear(ctx, {
          ...common,
          q: chunk.buffer,
          scales: chunk.scales!,
          zeros: chunk.zeros,
          bits: format === 'q4' ? 4 : 8,
          group: slot.group,
        })
      : prepareLinear(ctx, { ...common, w: chunk.buffer, format });
  });
}

/** The embedding gather over a table that may be split by rows. */
export function prepareChunkedEmbedding(
  ctx: GPUContext,
  weights: WeightStore,
  key: string,
  args: { ids: GPUBuffer; out: GPUBuffer; tokens: number; scale?: number; label: string },
): KernelDispatch[] {
  const slot = weights.get(key);
  const vocab = slot.spec.rows;
  const hidden = slot.spec.cols;
  const format = slot.format;
  if (isQuantized(format)) throw new ConfigError(`Internal: the embedding table "${key}" is never quantized.`);
  return slot.chunks.map((chunk, i) =>
    prepareEmbedding(ctx, {
      table: chunk.buffer,
      format,
      ids: args.ids,
      out: args.out,
      tokens: args.tokens,
      vocab,
      hidden,
      scale: args.scale,
      firstRow: chunk.firstRow,
      tableRows: chunk.rows,
      label: slot.chunks.length === 1 ? args.label : `${args.label}[${i}]`,
    }),
  );
}
