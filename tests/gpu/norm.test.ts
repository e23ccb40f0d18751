import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { prepareLayerNorm, prepareRMSNorm, type NormDispatch } from '../../src/kernels/norm.js';
import { disposeDispatch, recordDispatches } from '../../src/kernels/dispatch.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef } from '../helpers/reference.js';
import { guardIntact, input, poisonedF32, readF32, run } from '../helpers/gpu-run.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

type Kind = 'rms' | 'gemma' | 'layer';

/**
 * float64 reference of one norm over rows of h, with a per-element error scale: |ref| plus the size of the
 * weight factor (an error of ~1e-5 in the normalized value shows up multiplied by it).
 */
function normRef(kind: Kind, h: ArrayLike<number>, w: Float32Array, b: Float32Array, rows: number, dim: number, eps: number) {
  const y = new Float64Array(rows * dim);
  const scale = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let inv: number;
    let mean = 0;
    if (kind === 'layer') {
      for (let i = 0; i < dim; i++) mean += h[o + i];
      mean /= dim;
      let v = 0;
      for (let i = 0; i < dim; i++) v += (h[o + i] - mean) ** 2;
      inv = 1 / Math.sqrt(v / dim + eps);
    } else {
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += h[o + i] ** 2;
      inv = 1 / Math.sqrt(ss / dim + eps);
    }
    for (let i = 0; i < dim; i++) {
      const factor = kind === 'gemma' ? 1 + w[i] : w[i];
      const xhat = (h[o + i] - mean) * inv;
      y[o + i] = kind === 'layer' ? xhat * factor + b[i] : xhat * factor;
      scale[o + i] = Math.abs(y[o + i]) + Math.abs(factor);
    }
  }
  return { y, scale };
}

interface Case {
  kind: Kind;
  rows: number;
  dim: number;
  seed: number;
  fused?: boolean;
  offset?: number;
  amplitude?: number;
  eps?: number;
  serial?: boolean;
}

async function check(c: Case): Promise<void> {
  const { kind, rows, dim, seed, fused = false, offset = 0, amplitude = 1, eps = 1e-5, serial = false } = c;
  const n = rows * dim;
  const what = `${kind}${fused ? '+residual' : ''}${serial ? ' serial' : ''} rows=${rows} dim=${dim} offset=${offset} amplitude=${amplitude}`;
  const xs = randomF32(n, seed, amplitude).map((v) => v + offset);
  const rs = fused ? randomF32(n, seed + 1, amplitude).map((v) => v - offset / 2) : new Float32Array(0);
  const ws = randomF32(dim, seed + 2, 1).map((v) => (kind === 'gemma' ? v * 0.5 : 1 + v * 0.5));
  const bs = randomF32(dim, seed + 3, 0.5);

  const x = input(ctx, xs, 'test/x');
  const w = input(ctx, ws, 'test/weight');
  const b = input(ctx, bs, 'test/bias');
  const y = poisonedF32(ctx, n, 'test/y');
  let residual: GPUBuffer | undefined;
  if (fused) {
    residual = input(ctx, new Float32Array(n + 13).fill(NaN).map((v, i) => (i < n ? rs[i] : v)), 'test/residual');
  }
  try {
    await run(ctx, () => [
      kind === 'layer'
        ? prepareLayerNorm(ctx, { x, weight: w, bias: b, y, rows, dim, eps, residual, serial })
        : prepareRMSNorm(ctx, { x, weight: w, y, rows, dim, eps, residual, unitOffset: kind === 'gemma', serial }),
    ]);
    // The summed stream, rounded to f32 as the GPU adds it.
    const h = fused ? Float32Array.from(xs, (v, i) => v + rs[i]) : xs;
    const got = await readF32(ctx, y);
    const ref = normRef(kind, h, ws, bs, rows, dim, eps);
    expect(compareToRef(got.subarray(0, n), ref.y, ref.scale), what).toBeNull();
    expect(guardIntact(got, n), `wrote past y (${what})`).toBe(true);
    if (residual) {
      const back = await readF32(ctx, residual);
      let bad = -1;
      for (let i = 0; i < n; i++) {
        if (back[i] !== h[i]) {
          bad = i;
          break;
        }
      }
      expect(bad, `residual written back (${what}): element ${bad}`).toBe(-1);
      expect(guardIntact(back, n), `wrote past residual (${what})`).toBe(true);
    }
  } finally {
    for (const buf of [x, w, b, y, residual]) buf?.destroy();
  }
}

const ROWS = [1, 3, 7, 65];
const DIMS = [1, 7, 63, 64, 65, 257, 1000, 2048];

describe.each([false, true])('norms against float64 (serial kernel: %s)', (serial) => {
  for (const kind of ['rms', 'gemma', 'layer'] as const) {
    for (const fused of [false, true]) {
      it(`${kind}${fused ? ' + residual add' : ''}: rows in {${ROWS.join(', ')}}, dim in {${DIMS.join(', ')}}`, async () => {
        let seed = (kind === 'rms' ? 1 : kind === 'gemma' ? 2 : 3) * 100_000 + (fused ? 50_000 : 0) + (serial ? 7 : 0);
        for (const rows of ROWS) for (const dim of DIMS) await check({ kind, rows, dim, fused, serial, seed: (seed += 10) });
      });
    }
  }

  it('large offsets and scales (variance must not cancel): offset 100 and 1000, amplitude 1e-3 and 1e3', async () => {
    let seed = 900_000;
    for (const kind of ['rms', 'gemma', 'layer'] as const) {
      for (const fused of [false, true]) {
        for (const dim of [7, 257, 2048]) {
          await check({ kind, rows: 3, dim, fused, serial, offset: 100, seed: (seed += 10) });
          await check({ kind, rows: 2, dim, fused, serial, offset: 1000, amplitude: 10, seed: (seed += 10) });
          await check({ kind, rows: 2, dim, fused, serial, amplitude: 1e-3, eps: 1e-12, seed: (seed += 10) });
          await check({ kind, rows: 2, dim, fused, serial, amplitude: 1e3, seed: (seed += 10) });
        }
      }
    }
  });

  it('long rows: dim 4097 and 8192', async () => {
    await check({ kind: 'rms', rows: 2, dim: 8192, serial, seed: 1 });
    await check({ kind: 'gemma', rows: 1, dim: 4097, fused: true, serial, seed: 2 });
    await check({ kind: 'layer', rows: 2, dim: 8192, fused: true, serial, offset: 100, seed: 3 });
    await check({ kind: 'layer', rows: 1, dim: 4097, serial, seed: 4 });
  });

  it('one pipeline per variant', () => {
    expect(ctx.pipelines.size).toBe(serial ? 12 : 6);
  });
});

describe('row count from a uniform', () => {
  it('one prepared dispatch serves 1..maxRows rows, leaving later rows untouched', async () => {
    const maxRows = 9;
    const dim = 65;
    const n = maxRows * dim;
    const xs = randomF32(n, 42, 2);
    const ws = randomF32(dim, 43);
    const bs = randomF32(dim, 44);
    const x = input(ctx, xs, 'test/x');
    const w = input(ctx, ws, 'test/weight');
    const b = input(ctx, bs, 'test/bias');
    const y = poisonedF32(ctx, n, 'test/y');
    const residual = input(ctx, new Float32Array(n), 'test/residual');
    const d: NormDispatch = prepareLayerNorm(ctx, { x, weight: w, bias: b, y, rows: maxRows, dim, eps: 1e-5, residual });
    try {
      expect(d.maxRows).toBe(maxRows);
      for (const rows of [4, 1, maxRows]) {
        ctx.device.queue.writeBuffer(y, 0, new Float32Array(n + 13).fill(NaN));
        ctx.device.queue.writeBuffer(residual, 0, new Float32Array(n));
        d.setRows(rows);
        const encoder = ctx.device.createCommandEncoder();
        recordDispatches(encoder, [d]);
        ctx.device.queue.submit([encoder.finish()]);
        const got = await readF32(ctx, y);
        const ref = normRef('layer', xs, ws, bs, rows, dim, 1e-5);
        expect(compareToRef(got.subarray(0, rows * dim), ref.y, ref.scale), `rows=${rows}`).toBeNull();
        expect([...got.subarray(rows * dim)].every(Number.isNaN), `rows=${rows}: wrote past row ${rows}`).toBe(true);
        const back = await readF32(ctx, residual);
        expect([...back.subarray(0, rows * dim)]).toEqual([...xs.subarray(0, rows * dim)]);
        expect([...back.subarray(rows * dim)].every((v) => v === 0), `rows=${rows}: residual past row ${rows}`).toBe(true);
      }
      expect(() => d.setRows(maxRows + 1)).toThrow(GPUValidationError);
      expect(() => d.setRows(0)).toThrow(/setRows: rows must be an integer in 1\.\.9/);
    } finally {
      disposeDispatch(d);
      for (const buf of [x, w, b, y, residual]) buf.destroy();
    }
  });
});

describe('validation', () => {
  it('rejects bad shapes, sizes and aliasing, naming the argument', () => {
    const x = input(ctx, new Float32Array(4 * 8), 'x');
    const w = input(ctx, new Float32Array(8), 'w');
    const shortW = input(ctx, new Float32Array(7), 'short-weight');
    const shortB = input(ctx, new Float32Array(3), 'short-bias');
    const y = input(ctx, new Float32Array(4 * 8), 'y');
    const shortY = input(ctx, new Float32Array(4 * 8 - 1), 'short-y');
    const shortR = input(ctx, new Float32Array(8), 'short-residual');
    const base = { x, weight: w, y, rows: 4, dim: 8, eps: 1e-6 };
    try {
      const err = (f: () => unknown, re: RegExp) => {
        expect(f).toThrow(GPUValidationError);
        expect(f).toThrow(re);
      };
      err(() => prepareRMSNorm(ctx, { ...base, rows: 0 }), /rows must be a positive integer, got 0/);
      err(() => prepareRMSNorm(ctx, { ...base, rows: 2.5 }), /rows must be a positive integer/);
      err(() => prepareRMSNorm(ctx, { ...base, dim: 0 }), /dim must be an integer/);
      err(() => prepareRMSNorm(ctx, { ...base, dim: 70000 }), /dim must be an integer in 1\.\.65536/);
      err(() => prepareRMSNorm(ctx, { ...base, eps: NaN }), /eps must be a finite number/);
      err(() => prepareRMSNorm(ctx, { ...base, eps: -1 }), /eps must be/);
      err(() => prepareRMSNorm(ctx, { ...base, rows: 5 }), /buffer x \("x"\) holds 128 bytes but rows×dim f32 needs 160/);
      err(() => prepareRMSNorm(ctx, { ...base, weight: shortW }), /buffer weight \("short-weight"\)/);
      err(() => prepareRMSNorm(ctx, { ...base, y: shortY }), /buffer y \("short-y"\)/);
      err(() => prepareRMSNorm(ctx, { ...base, residual: shortR }), /buffer residual \("short-residual"\)/);
      err(() => prepareRMSNorm(ctx, { ...base, y: x }), /y must not be the same buffer as x/);
      err(() => prepareRMSNorm(ctx, { ...base, residual: x }), /residual must be a buffer of its own/);
      err(() => prepareLayerNorm(ctx, { ...base, bias: shortB }), /layernorm .*buffer bias \("short-bias"\)/);
      err(
        () => prepareRMSNorm(ctx, { ...base, rows: ctx.limits.maxComputeWorkgroupsPerDimension + 1 }),
        /workgroups per dimension/,
      );
    } finally {
      for (const buf of [x, w, shortW, shortB, y, shortY, shortR]) buf.destroy();
    }
  });
});
