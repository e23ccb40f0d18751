import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { prepareLinear, linearKernelKind, type LinearKernelKind } from '../../src/kernels/linear.js';
import { WEIGHT_FORMATS, packWeights, unpackWeights, type WeightFormat } from '../../src/kernels/weight-format.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef, matmulRef } from '../helpers/reference.js';
import { GUARD, guardIntact, input, poisonedF32, readF32, run } from '../helpers/gpu-run.js';

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
  /** Default: the GPU choice for M (every kernel is tested on every adapter). */
  kernel?: LinearKernelKind;
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
    const kernel = c.kernel ?? linearKernelKind(M);
    await run(ctx, () => [prepareLinear(ctx, { x: xb, w: wb, format, y: yb, M, N, K, bias: bb, residual: rb, kernel })]);
    const got = await readF32(ctx, yb);
    const what = `${kernel} M=${M} N=${N} K=${K} ${format} bias=${c.bias} residual=${c.residual}`;
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

  for (const format of WEIGHT_FORMATS) {
    it(`rows (CPU adapters) ${format} M in {1, 3, 9, 33}, N and K in {${sizes.join(', ')}}, epilogues cycled`, async () => {
      let seed = 31000 + WEIGHT_FORMATS.indexOf(format) * 100;
      let i = 0;
      for (const M of [1, 3, 9, 33]) {
        for (const N of sizes) {
          for (const K of sizes) {
            await check({ M, N, K, format, bias: (i & 1) === 1, residual: (i & 2) === 2, seed: seed++, kernel: 'rows' });
            i++;
          }
        }
      }
    });
  }

  it('every epilogue on all three kernels, every format', async () => {
    let seed = 77;
    for (const format of WEIGHT_FORMATS) {
      for (const M of [2, 17]) {
        for (const kernel of [linearKernelKind(M), 'rows'] as const) {
          for (const bias of [false, true]) {
            for (const residual of [false, true]) await check({ M, N: 37, K: 130, format, bias, residual, seed: seed++, kernel });
          }
        }
      }
    }
  });

  it('chooses GEMV up to M = 8 and the tiled GEMM above on GPUs, the rows kernel on CPU adapters', () => {
    expect([1, 8, 9, 64].map((M) => linearKernelKind(M))).toEqual(['gemv', 'gemv', 'gemm', 'gemm']);
    expect([1, 8, 9, 64].map((M) => linearKernelKind(M, true))).toEqual(['rows', 'rows', 'rows', 'rows']);
    expect(linearKernelKind(1, ctx.adapter.cpu)).toBe(ctx.adapter.cpu ? 'rows' : 'gemv');
  });

  it('reads W a vec4f (f32) or a u32 word (f16, bf16) at a time when K allows', () => {
    const kernelFor = (format: WeightFormat, M: number, K: number): string => {
      const x = input(ctx, new Float32Array(M * K), 'x');
      const w = input(ctx, packWeights(format, new Float32Array(3 * K)), 'w');
      const y = poisonedF32(ctx, M * 3, 'y');
      try {
        const d = prepareLinear(ctx, { x, w, format, y, M, N: 3, K, kernel: linearKernelKind(M) });
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

/**
 * W (N, K) split by rows into parts, each a linear writing its column range of one (M, N) y through yStride = N
 * and yOffset = the part's first row; the whole y must equal the unsplit float64 product.
 */
async function checkSplit(
  M: number,
  N: number,
  K: number,
  format: WeightFormat,
  parts: number[],
  bias: boolean,
  seed: number,
  kernel: LinearKernelKind = linearKernelKind(M),
) {
  const x = randomF32(M * K, seed);
  const values = randomF32(N * K, seed + 1, 0.5);
  const w = unpackWeights(format, packWeights(format, values), N * K); // per element, as each part stores it
  const b = bias ? randomF32(N, seed + 2) : undefined;
  const { y, absSum } = matmulRef(x, w, M, N, K);
  if (b) {
    for (let i = 0; i < M * N; i++) {
      y[i] += b[i % N];
      absSum[i] += Math.abs(b[i % N]);
    }
  }
  const xb = input(ctx, x, 'test/x');
  const yb = poisonedF32(ctx, M * N, 'test/y');
  const owned: GPUBuffer[] = [xb, yb];
  try {
    const dispatches: { wb: GPUBuffer; bb?: GPUBuffer; rows: number; first: number }[] = [];
    let first = 0;
    for (const rows of parts) {
      const wb = input(ctx, packWeights(format, values.subarray(first * K, (first + rows) * K)), `test/w${first}`);
      const bb = b ? input(ctx, b.subarray(first, first + rows), `test/bias${first}`) : undefined;
      owned.push(wb, ...(bb ? [bb] : []));
      dispatches.push({ wb, bb, rows, first });
      first += rows;
    }
    expect(first).toBe(N);
    await run(ctx, () =>
      dispatches.map((d) =>
        prepareLinear(ctx, { x: xb, w: d.wb, format, y: yb, M, N: d.rows, K, bias: d.bb, yStride: N, yOffset: d.first, kernel }),
      ),
    );
    const got = await readF32(ctx, yb);
    const what = `${kernel} split ${parts.join('+')} M=${M} K=${K} ${format} bias=${bias}`;
    expect(compareToRef(got.subarray(0, M * N), y, absSum), what).toBeNull();
    expect(guardIntact(got, M * N), `wrote past y (${what})`).toBe(true);
  } finally {
    for (const buf of owned) buf.destroy();
  }
}

describe('linear: W split by rows, each part writing its columns of one y (yStride, yOffset)', () => {
  for (const format of WEIGHT_FORMATS) {
    it(`${format}: N = 65 as 33 + 32 and N = 7 as 4 + 3, M in {1, 3, 9, 33}, K odd and even`, async () => {
      let seed = 5000 + WEIGHT_FORMATS.indexOf(format) * 100;
      let i = 0;
      for (const M of [1, 3, 9, 33]) {
        for (const [N, parts] of [[65, [33, 32]], [7, [4, 3]]] as const) {
          for (const K of [13, 16]) {
            for (const kernel of [linearKernelKind(M), 'rows'] as const) {
              await checkSplit(M, N, K, format, [...parts], (i++ & 1) === 1, seed++, kernel);
            }
          }
        }
      }
    });
  }

  it('leaves the columns of y outside the placed range untouched, on all three kernels', async () => {
    let seed = 900;
    for (const format of WEIGHT_FORMATS) {
      for (const [M, kernel] of [[2, 'gemv'], [10, 'gemm'], [2, 'rows'], [10, 'rows']] as const) {
        const [N, K, yStride, yOffset] = [5, 9, 12, 4];
        const x = randomF32(M * K, seed);
        const packed = packWeights(format, randomF32(N * K, seed + 1, 0.5));
        const { y, absSum } = matmulRef(x, unpackWeights(format, packed, N * K), M, N, K);
        const span = (M - 1) * yStride + yOffset + N;
        const xb = input(ctx, x, 'test/x');
        const wb = input(ctx, packed, 'test/w');
        const yb = poisonedF32(ctx, span, 'test/y');
        try {
          await run(ctx, () => [prepareLinear(ctx, { x: xb, w: wb, format, y: yb, M, N, K, yStride, yOffset, kernel })]);
          const got = await readF32(ctx, yb);
          const placed = new Float32Array(M * N);
          for (let m = 0; m < M; m++) {
            for (let c = 0; c < yStride; c++) {
              const e = m * yStride + c;
              if (e >= span) break;
              if (c >= yOffset && c < yOffset + N) placed[m * N + c - yOffset] = got[e];
              else expect(got[e], `${format} M=${M}: y[${e}] outside the placed columns`).toBeNaN();
            }
          }
          expect(compareToRef(placed, y, absSum), `${format} M=${M}`).toBeNull();
          expect(guardIntact(got, span), `wrote past y (${format} M=${M})`).toBe(true);
        } finally {
          for (const b of [xb, wb, yb]) b.destroy();
        }
        seed += 2;
      }
    }
  });

  it('validates yStride, yOffset, the placed y size, and refuses a residual with a placement', () => {
    const x = input(ctx, new Float32Array(3 * 4), 'x');
    const w = input(ctx, new Float32Array(2 * 4), 'w');
    const r = input(ctx, new Float32Array(3 * 2), 'r');
    const y = poisonedF32(ctx, 2 * 10 + 3 + 2 - GUARD, 'y-25'); // exactly (M−1)·10 + 3 + 2 = 25 elements
    const base = { x, w, format: 'f32' as const, y, M: 3, N: 2, K: 4 };
    try {
      const ok = prepareLinear(ctx, { ...base, yStride: 10, yOffset: 3 });
      for (const b of ok.owned) b.destroy();
      expect(() => prepareLinear(ctx, { ...base, yStride: 10, yOffset: 4 })).toThrow(/buffer y \("y-25"\) holds 100 bytes but .* needs 104/);
      expect(() => prepareLinear(ctx, { ...base, yStride: 4, yOffset: 3 })).toThrow(/yStride must be an integer ≥ yOffset \+ N = 5, got 4/);
      expect(() => prepareLinear(ctx, { ...base, yStride: 1 })).toThrow(/yStride/);
      expect(() => prepareLinear(ctx, { ...base, yOffset: -1 })).toThrow(/yOffset must be a non-negative integer/);
      expect(() => prepareLinear(ctx, { ...base, yStride: 6.5 })).toThrow(/yStride/);
      expect(() => prepareLinear(ctx, { ...base, yStride: 10, residual: r })).toThrow(/residual needs the default y placement/);
      expect(() => prepareLinear(ctx, { ...base, yOffset: 1, yStride: 10, residual: r })).toThrow(GPUValidationError);
      const def = prepareLinear(ctx, { ...base, yStride: 2, yOffset: 0, residual: r }); // the default, spelled out
      for (const b of def.owned) b.destroy();
    } finally {
      for (const b of [x, w, r, y]) b.destroy();
    }
  });
});
