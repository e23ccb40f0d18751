// Timing prepared dispatches: many copies recorded into one command buffer, wall time to completion, median of runs.
import type { GPUContext } from '../src/runtime/gpu-context.js';
import { recordDispatches, type KernelDispatch } from '../src/kernels/dispatch.js';

export interface Timing {
  iterations: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** ms per execution of `step` (a list of dispatches), calibrated to ~`targetMs` of work per timed run. */
export async function timeDispatches(ctx: GPUContext, step: KernelDispatch[], runs = 5, targetMs = 100): Promise<Timing> {
  const time = async (iterations: number) => {
    const encoder = ctx.device.createCommandEncoder();
    const list: KernelDispatch[] = [];
    for (let i = 0; i < iterations; i++) list.push(...step);
    recordDispatches(encoder, list);
    const t0 = performance.now();
    ctx.device.queue.submit([encoder.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await time(1); // warm-up: pipeline compile, first touch
  const iterations = Math.max(1, Math.min(500, Math.round(targetMs / Math.max(1e-3, await time(1)))));
  const times: number[] = [];
  for (let r = 0; r < runs; r++) times.push((await time(iterations)) / iterations);
  return { iterations, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times) };
}
