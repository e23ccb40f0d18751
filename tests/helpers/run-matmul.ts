import { GPUContext } from '../../src/runtime/gpu-context.js';
import { STORAGE, COPY_DST, COPY_SRC, readBuffer, uploadBuffer } from '../../src/runtime/buffers.js';
import { disposeDispatch, recordDispatches } from '../../src/kernels/dispatch.js';
import { prepareMatmulF32 } from '../../src/kernels/matmul.js';

/** Extra output elements past M·N, poisoned like the rest, that the kernel must leave alone. */
export const GUARD = 13;

/**
 * Runs y = x · Wᵀ on the GPU with y pre-filled with NaN (plus GUARD poisoned elements past its end), and
 * returns all M·N + GUARD elements so a test sees unwritten outputs and out-of-bounds writes.
 */
export async function runMatmul(
  ctx: GPUContext,
  x: Float32Array,
  w: Float32Array,
  M: number,
  N: number,
  K: number,
): Promise<Float32Array> {
  const xb = uploadBuffer(ctx, 'test/x', x);
  const wb = uploadBuffer(ctx, 'test/w', w);
  const yb = uploadBuffer(ctx, 'test/y', new Float32Array(M * N + GUARD).fill(NaN), STORAGE | COPY_DST | COPY_SRC);
  try {
    const dispatch = await ctx.checked('running matmul', () => {
      const d = prepareMatmulF32(ctx, { x: xb, w: wb, y: yb, M, N, K });
      const encoder = ctx.device.createCommandEncoder({ label: 'test/matmul' });
      recordDispatches(encoder, [d]);
      ctx.device.queue.submit([encoder.finish()]);
      return d;
    });
    const out = new Float32Array(await readBuffer(ctx, yb));
    disposeDispatch(dispatch);
    return out;
  } finally {
    xb.destroy();
    wb.destroy();
    yb.destroy();
  }
}
