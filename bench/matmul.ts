// Matmul throughput: y = x · Wᵀ (f32) at decode-like (M = 1) and prefill-like (M = 128) shapes.
// Wall time over many dispatches recorded into one command buffer, median of several runs.
import { GPUContext } from '../src/runtime/gpu-context.js';
import { STORAGE, COPY_DST, createBuffer, uploadBuffer } from '../src/runtime/buffers.js';
import { disposeDispatch, recordDispatches, type KernelDispatch } from '../src/kernels/dispatch.js';
import { prepareMatmulF32 } from '../src/kernels/matmul.js';

export interface MatmulBenchRow {
  M: number;
  N: number;
  K: number;
  iterations: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  gflops: number;
  /** Weight bytes read per product over the time: the figure that bounds decode speed. */
  weightGBps: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function benchMatmul(
  ctx: GPUContext,
  shapes: Array<[number, number, number]>,
  runs = 5,
): Promise<MatmulBenchRow[]> {
  const rows: MatmulBenchRow[] = [];
  for (const [M, N, K] of shapes) {
    const x = uploadBuffer(ctx, 'bench/x', new Float32Array(M * K).fill(0.5));
    const w = uploadBuffer(ctx, 'bench/w', new Float32Array(N * K).fill(0.25));
    const y = createBuffer(ctx, 'bench/y', M * N * 4, STORAGE | COPY_DST);
    const dispatch = prepareMatmulF32(ctx, { x, w, y, M, N, K });
    const flops = 2 * M * N * K;
    const time = async (iterations: number) => {
      const encoder = ctx.device.createCommandEncoder();
      recordDispatches(encoder, Array<KernelDispatch>(iterations).fill(dispatch));
      const t0 = performance.now();
      ctx.device.queue.submit([encoder.finish()]);
      await ctx.device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    // Warm-up (pipeline compile, first touch) also calibrates: ~100 ms of work per timed run, 1 to 500 products.
    await time(1);
    const iterations = Math.max(1, Math.min(500, Math.round(100 / Math.max(1e-3, await time(1)))));
    const times: number[] = [];
    for (let r = 0; r < runs; r++) times.push((await time(iterations)) / iterations);
    const med = median(times);
    rows.push({
      M,
      N,
      K,
      iterations,
      medianMs: med,
      minMs: Math.min(...times),
      maxMs: Math.max(...times),
      gflops: flops / med / 1e6, // FLOP per ms / 1e6 = GFLOP/s
      weightGBps: (N * K * 4) / med / 1e6,
    });
    disposeDispatch(dispatch);
    x.destroy();
    w.destroy();
    y.destroy();
  }
  return rows;
}

export function matmulTable(rows: MatmulBenchRow[]): string {
  const lines = [
    '| M | N | K | ms (median) | min–max ms | GFLOP/s | weight GB/s |',
    '|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.M} | ${r.N} | ${r.K} | ${r.medianMs.toFixed(3)} | ${r.minMs.toFixed(3)}–${r.maxMs.toFixed(3)} | ${r.gflops.toPrecision(3)} | ${r.weightGBps.toPrecision(3)} |`,
    );
  }
  return lines.join('\n');
}
