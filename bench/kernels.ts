// Per-kernel micro-benchmark at the shapes of a 0.5B and a 1.5B model (Qwen2.5-0.5B / -1.5B), one decode token
// (M = 1) and one 128-token prefill chunk: ms, GB/s of bytes each kernel must read, GFLOP/s where it computes.
// These are baselines for tuning on real GPUs; on SwiftShader they only show that everything runs.
import type { GPUContext } from '../src/runtime/gpu-context.js';
import { COPY_DST, STORAGE, createBuffer, uploadBuffer } from '../src/runtime/buffers.js';
import { disposeDispatch, type KernelDispatch } from '../src/kernels/dispatch.js';
import { prepareLinear } from '../src/kernels/linear.js';
import { prepareRMSNorm } from '../src/kernels/norm.js';
import { prepareAttention } from '../src/kernels/attention.js';
import { prepareGated } from '../src/kernels/elementwise.js';
import { prepareSampling } from '../src/kernels/sampling.js';
import { packWeights, type WeightFormat } from '../src/kernels/weight-format.js';
import { timeDispatches } from './timing.js';

export interface ModelShape {
  name: string;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
}

export const MODEL_SHAPES: ModelShape[] = [
  { name: '0.5B', hidden: 896, intermediate: 4864, heads: 14, kvHeads: 2, headDim: 64, vocab: 151936 },
  { name: '1.5B', hidden: 1536, intermediate: 8960, heads: 12, kvHeads: 2, headDim: 128, vocab: 151936 },
];

export interface KernelBenchRow {
  model: string;
  kernel: string;
  shape: string;
  medianMs: number;
  gbps: number;
  gflops: number | null;
}

export async function benchKernels(ctx: GPUContext, models = MODEL_SHAPES, context = 512, runs = 3): Promise<KernelBenchRow[]> {
  const rows: KernelBenchRow[] = [];
  const owned: GPUBuffer[] = [];
  const f32 = (label: string, n: number, value = 0.01) => {
    const b = uploadBuffer(ctx, label, new Float32Array(n).fill(value));
    owned.push(b);
    return b;
  };
  const out = (label: string, bytes: number) => {
    const b = createBuffer(ctx, label, bytes, STORAGE | COPY_DST);
    owned.push(b);
    return b;
  };
  const measure = async (model: string, kernel: string, shape: string, d: KernelDispatch, bytes: number, flops: number | null) => {
    const t = await timeDispatches(ctx, [d], runs);
    rows.push({ model, kernel, shape, medianMs: t.medianMs, gbps: bytes / t.medianMs / 1e6, gflops: flops === null ? null : flops / t.medianMs / 1e6 });
    disposeDispatch(d);
  };

  for (const m of models) {
    const { hidden: H, intermediate: I } = m;
    // Linear layers: the MLP's gate projection (I × H) in each storage format, decode and prefill.
    for (const format of ['f32', 'bf16'] as WeightFormat[]) {
      const packed = packWeights(format, new Float32Array(I * H).fill(0.01));
      const w = uploadBuffer(ctx, `bench/w.${format}`, packed);
      owned.push(w);
      for (const M of [1, 128]) {
        const x = f32('bench/x', M * H);
        const y = out('bench/y', M * I * 4);
        const d = prepareLinear(ctx, { x, w, format, y, M, N: I, K: H });
        await measure(m.name, `linear.${format}`, `${M}×${H} · (${I}×${H})ᵀ`, d, packed.byteLength + M * H * 4, 2 * M * I * H);
      }
    }
    // RMSNorm of one token's hidden state.
    {
      const x = f32('bench/norm.x', H);
      const w = f32('bench/norm.w', H, 1);
      const y = out('bench/norm.y', H * 4);
      await measure(m.name, 'rmsnorm', `1×${H}`, prepareRMSNorm(ctx, { x, weight: w, y, rows: 1, dim: H, eps: 1e-6 }), 2 * H * 4, null);
    }
    // SwiGLU on one token.
    {
      const gate = f32('bench/gate', I);
      const up = f32('bench/up', I);
      const y = out('bench/act', I * 4);
      await measure(m.name, 'silu·mul', `1×${I}`, prepareGated(ctx, { activation: 'silu', gate, up, out: y, rows: 1, n: I }), 3 * I * 4, null);
    }
    // Decode attention over `context` cached positions.
    {
      const q = f32('bench/q', m.heads * m.headDim);
      const kv = context * m.kvHeads * m.headDim;
      const kCache = f32('bench/k', kv);
      const vCache = f32('bench/v', kv);
      const o = out('bench/attn', m.heads * m.headDim * 4);
      const d = prepareAttention(ctx, {
        q, kCache, vCache, out: o, tokens: 1, heads: m.heads, kvHeads: m.kvHeads, headDim: m.headDim,
        maxSeq: context, scaling: 1 / Math.sqrt(m.headDim), base: context - 1,
      });
      await measure(m.name, 'attention.decode', `${m.heads}/${m.kvHeads} heads × ${context} keys`, d, 2 * kv * 4, 4 * m.heads * context * m.headDim);
    }
    // Sampling over the vocabulary: top-p from one row of logits.
    {
      const logits = f32('bench/logits', m.vocab);
      const tokens = out('bench/tokens', 4);
      const d = prepareSampling(ctx, { logits, tokens, rows: 1, vocab: m.vocab, params: { temperature: 0.8, topP: 0.9, seed: 1 } });
      await measure(m.name, 'sampling.top_p', `1×${m.vocab}`, d, m.vocab * 4 * 2, null);
    }
  }
  for (const b of owned) b.destroy();
  return rows;
}

export function kernelTable(rows: KernelBenchRow[]): string {
  const lines = ['| model | kernel | shape | ms (median) | GB/s | GFLOP/s |', '|---|---|---|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(
      `| ${r.model} | ${r.kernel} | ${r.shape} | ${r.medianMs.toFixed(3)} | ${r.gbps.toPrecision(3)} | ${r.gflops === null ? '—' : r.gflops.toPrecision(3)} |`,
    );
  }
  return lines.join('\n');
}
