// Matmul throughput: y = x · Wᵀ (f32) at decode-like (M = 1) and prefill-like (M = 128) shapes.
// Wall time over many dispatches recorded into one command buffer, median of several runs.
import { GPUContext } from '../src/runtime/gpu-context.js';
import { STORAGE, COPY_DST, createBuffer, uploadBuffer } from '../src/runtime/buffers.js';
import { disposeDispatch } from '../src/kernels/dispatch.js';
import { timeDispatches } from './timing.js';
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
    const t = await timeDispatches(ctx, [dispatch], runs);
    rows.push({
      M,
      N,
      K,
      ...t,
      gflops: flops / t.medianMs / 1e6, // FLOP per ms / 1e6 = GFLOP/s
      weightGBps: (N * K * 4) / t.medianMs / 1e6,
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
