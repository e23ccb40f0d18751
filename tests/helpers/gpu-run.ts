// Running prepared kernels in tests: upload inputs, poison outputs, submit, read back. Works in Chromium and Node + Dawn.
import type { GPUContext } from '../../src/runtime/gpu-context.js';
import { COPY_DST, COPY_SRC, STORAGE, readBuffer, uploadBuffer } from '../../src/runtime/buffers.js';
import { disposeDispatch, recordDispatches, type KernelDispatch } from '../../src/kernels/dispatch.js';

/** Extra poisoned elements after every output, which a kernel must leave alone. */
export const GUARD = 13;

/** A storage buffer holding `data`. */
export function input(ctx: GPUContext, data: ArrayBufferView, label = 'test/input'): GPUBuffer {
  return uploadBuffer(ctx, label, data);
}

/** An f32 output buffer of `n` elements (+ GUARD), every element NaN. */
export function poisonedF32(ctx: GPUContext, n: number, label = 'test/output'): GPUBuffer {
  return uploadBuffer(ctx, label, new Float32Array(n + GUARD).fill(NaN), STORAGE | COPY_DST | COPY_SRC);
}

/** A u32 output buffer of `n` elements (+ GUARD), every element 0xFFFFFFFF. */
export function poisonedU32(ctx: GPUContext, n: number, label = 'test/output'): GPUBuffer {
  return uploadBuffer(ctx, label, new Uint32Array(n + GUARD).fill(0xffffffff), STORAGE | COPY_DST | COPY_SRC);
}

/** Prepares (inside WebGPU error scopes), records in one pass, submits, and disposes the dispatches. */
export async function run(ctx: GPUContext, prepare: () => KernelDispatch[]): Promise<void> {
  const dispatches = await ctx.checked('running test kernels', () => {
    const list = prepare();
    const encoder = ctx.device.createCommandEncoder({ label: 'test' });
    recordDispatches(encoder, list);
    ctx.device.queue.submit([encoder.finish()]);
    return list;
  });
  await ctx.device.queue.onSubmittedWorkDone();
  for (const d of dispatches) disposeDispatch(d);
}

export async function readF32(ctx: GPUContext, buffer: GPUBuffer): Promise<Float32Array> {
  return new Float32Array(await readBuffer(ctx, buffer));
}

export async function readU32(ctx: GPUContext, buffer: GPUBuffer): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(ctx, buffer));
}

/** True when every element after the first `n` is still the poison (NaN or 0xFFFFFFFF). */
export function guardIntact(out: Float32Array | Uint32Array, n: number): boolean {
  const tail = out.subarray(n);
  return tail.length === GUARD && [...tail].every((v) => (out instanceof Float32Array ? Number.isNaN(v) : v === 0xffffffff));
}
