import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { uploadBuffer } from '../../src/runtime/buffers.js';
import { prepareMatmulF32 } from '../../src/kernels/matmul.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef, matmulRef } from '../helpers/reference.js';
import { GUARD, runMatmul } from '../helpers/run-matmul.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

async function check(M: number, N: number, K: number, seed: number) {
  const x = randomF32(M * K, seed);
  const w = randomF32(N * K, seed + 1, 0.5);
  const got = await runMatmul(ctx, x, w, M, N, K);
  const { y, absSum } = matmulRef(x, w, M, N, K);
  expect(compareToRef(got.subarray(0, M * N), y, absSum), `M=${M} N=${N} K=${K}`).toBeNull();
  const guard = got.subarray(M * N);
  expect(guard.length).toBe(GUARD);
  expect([...guard].every(Number.isNaN), `wrote past y (M=${M} N=${N} K=${K})`).toBe(true);
}

describe('matmul f32: y = x · Wᵀ against float64', () => {
  const sizes = [1, 7, 64, 65, 1000];
  for (const M of [1, 3, 64]) {
    it(`M=${M}, N and K in {${sizes.join(', ')}}`, async () => {
      let seed = M * 1000;
      for (const N of sizes) for (const K of sizes) await check(M, N, K, seed++);
    });
  }

  it('long and odd shapes: K=4097, N=4097, M=65', async () => {
    await check(1, 7, 4097, 7);
    await check(3, 4097, 65, 8);
    await check(65, 33, 31, 9);
  });

  it('reuses one pipeline for every shape', () => {
    expect(ctx.pipelines.size).toBe(1);
  });

  it('rejects a buffer too small for its shape, naming it', () => {
    const small = uploadBuffer(ctx, 'too-small-w', new Float32Array(10));
    const x = uploadBuffer(ctx, 'x', new Float32Array(4 * 3));
    const y = uploadBuffer(ctx, 'y', new Float32Array(4 * 5));
    try {
      expect(() => prepareMatmulF32(ctx, { x, w: small, y, M: 4, N: 5, K: 3 })).toThrow(GPUValidationError);
      expect(() => prepareMatmulF32(ctx, { x, w: small, y, M: 4, N: 5, K: 3 })).toThrow(/too-small-w/);
      expect(() => prepareMatmulF32(ctx, { x, w: small, y, M: 0, N: 5, K: 3 })).toThrow(/M must be a positive integer/);
    } finally {
      small.destroy();
      x.destroy();
      y.destroy();
    }
  });
});
