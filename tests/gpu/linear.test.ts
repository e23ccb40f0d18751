import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { prepareLinear, linearKernelKind } from '../../src/kernels/linear.js';
import { WEIGHT_FORMATS, packWeights, unpackWeights, type WeightFormat } from '../../src/kernels/weight-format.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef, matmulRef } from '../helpers/reference.js';
import { guardIntact, input, poisonedF32, readF32, run } from '../helpers/gpu-run.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

interface Case {
  M: number;
  N: number;
  K: number;
  format: WeightFormat;
  bias: boolean;
  residual: boolean;
  seed: number;
}

async function check(c: Case): Promise<void> {
  const { M, N, K, format, seed } = c;
  const x = randomF32(M * K, seed);
  const packed = packWeights(format, randomF32(N * K, seed + 1, 0.5));
  const w = unpackWeights(format, packed, N * K); // exactly what the kernel reads
  const b = c.bias ? randomF32(N, seed + 2) : undefined;
  const r = c.residual ? randomF32(M * N, seed + 3, 2) : undefined;

  const { y, absSum } = matmulRef(x, w, M, N, K);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const i = m * N + n;
      if (b) {
        y[i] += b[n];
        absSum[i] += Math.abs(b[n]);
      }
      if (r) {
        y[i] += r[i];
        absSum[i] += Math.abs(r[i]);
      }
    }
  }

  const xb = input(ctx, x, 'test/x');
  const wb = input(ctx, packed, 'test/w');
  const bb = b ? input(ctx, b, 'test/bias') : undefined;
  const rb = r ? input(ctx, r, 'test/residual') : undefined;
  const yb = poisonedF32(ctx, M * N, 'test/y');
  try {
    await run(ctx, () => [prepareLinear(ctx, { x: xb, w: wb, format, y: yb, M, N, K, bias: bb, residual: rb })]);
    const got = await readF32(ctx, yb);
    const what = `M=${M} N=${N} K=${K} ${format} bias=${c.bias} residual=${c.residual}`;
    expect(compareToRef(got.subarray(0, M * N), y, absSum), what).toBeNull();
    expect(guardIntact(got, M * N), `wrote past y (${what})`).toBe(true);
  } finally {
    for (const buf of [xb, wb, bb, rb, yb]) buf?.destroy();
  }
}

describe('linear: y = x · Wᵀ (+ bias) (+ residual) against float64', () => {
  const sizes = [1, 7, 63, 65, 1000];
  for (const format of WEIGHT_FORMATS) {
    for (const M of [1, 3, 8, 9, 33]) {
      it(`${linearKernelKind(M)} ${format} M=${M}, N and K in {${sizes.join(', ')}}, epilogues cycled`, async () => {
        let seed = M * 1000 + WEIGHT_FORMATS.indexOf(format) * 100;
        let i = 0;
        for (const N of sizes) {
          for (const K of sizes) {
            // Cycle the four epilogues over the shape grid so each meets odd and even N and K.
            await check({ M, N, K, format, bias: (i & 1) === 1, residual: (i & 2) === 2, seed: seed++ });
            i++;
          }
        }
      });
    }
  }

  it('every epilogue on both kernels, every format', async () => {
    let seed = 77;
    for (const format of WEIGHT_FORMATS) {
      for (const M of [2, 17]) {
        for (const bias of [false, true]) {
          for (const residual of [false, true]) await check({ M, N: 37, K: 130, format, bias, residual, seed: seed++ });
        }
      }
    }
  });

  it('chooses GEMV up to M = 8 and the tiled GEMM above', () => {
    expect([1, 8, 9, 64].map(linearKernelKind)).toEqual(['gemv', 'gemv', 'gemm', 'gemm']);
  });

  it('reads W a vec4f (f32) or a u32 word (f16, bf16) at a time when K allows', () => {
    const kernelFor = (format: WeightFormat, M: number, K: number): string => {
      const x = input(ctx, new Float32Array(M * K), 'x');
      const w = input(ctx, packWeights(format, new Float32Array(3 * K)), 'w');
      const y = poisonedF32(ctx, M * 3, 'y');
      try {
        const d = prepareLinear(ctx, { x, w, format, y, M, N: 3, K });
        for (const b of d.owned) b.destroy();
        return d.kernel;
      } finally {
        for (const b of [x, w, y]) b.destroy();
      }
    };
    expect(kernelFor('f32', 1, 8)).toMatch(/^linear\.gemv\.f32\..*u4$/);
    expect(kernelFor('f32', 1, 6)).toMatch(/^linear\.gemv\.f32\..*u1$/);
    expect(kernelFor('f16', 2, 6)).toMatch(/^linear\.gemv\.f16\..*u2$/);
    expect(kernelFor('bf16', 2, 7)).toMatch(/^linear\.gemv\.bf16\..*u1$/);
    expect(kernelFor('bf16', 9, 8)).toMatch(/^linear\.gemm\.bf16\./);
  });

  it('validates arguments, naming the one at fault', () => {
    const x = input(ctx, new Float32Array(4 * 3), 'x');
    const w = input(ctx, new Float32Array(5 * 3), 'w');
    const wSmall = input(ctx, packWeights('f16', new Float32Array(5 * 3 - 2)), 'too-small-w');
    const y = poisonedF32(ctx, 4 * 5, 'y');
    const biasSmall = input(ctx, new Float32Array(4), 'too-small-bias');
    const resSmall = input(ctx, new Float32Array(4 * 5 - 1), 'too-small-residual');
    const base = { x, w, format: 'f32' as const, y, M: 4, N: 5, K: 3 };
    try {
      expect(() => prepareLinear(ctx, { ...base, w: wSmall, format: 'f16' })).toThrow(GPUValidationError);
      expect(() => prepareLinear(ctx, { ...base, w: wSmall, format: 'f16' })).toThrow(/too-small-w/);
      expect(() => prepareLinear(ctx, { ...base, bias: biasSmall })).toThrow(/bias .*too-small-bias/);
      expect(() => prepareLinear(ctx, { ...base, residual: resSmall })).toThrow(/residual .*too-small-residual/);
      expect(() => prepareLinear(ctx, { ...base, residual: y })).toThrow(/residual and y are the same buffer/);
      expect(() => prepareLinear(ctx, { ...base, M: 0 })).toThrow(/M must be a positive integer/);
      expect(() => prepareLinear(ctx, { ...base, K: 2.5 })).toThrow(/K must be a positive integer/);
      expect(() => prepareLinear(ctx, { ...base, format: 'q4' as WeightFormat })).toThrow(/format must be one of/);
    } finally {
      for (const b of [x, w, wSmall, y, biasSmall, resSmall]) b.destroy();
    }
  });
});
