import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import {
  ACTIVATIONS,
  grid2d,
  prepareActivation,
  prepareAdd,
  prepareGated,
  prepareScale,
  prepareSoftCap,
  type Activation,
} from '../../src/kernels/elementwise.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef } from '../helpers/reference.js';
import { GUARD, guardIntact, input, poisonedF32, readF32, run } from '../helpers/gpu-run.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

// ---- float64 references ----------------------------------------------------------------------------------------

/** erfc in float64: Taylor series of erf below 1.5, continued fraction (200 terms) above; ≈1e-15 relative. */
function erfc64(z: number): number {
  if (z < 0) return 2 - erfc64(-z);
  if (z < 1.5) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = z;
  for (let k = 200; k >= 1; k--) f = z + k / 2 / f;
  return Math.exp(-z * z) / (Math.sqrt(Math.PI) * f);
}

function act64(activation: Activation, x: number): number {
  switch (activation) {
    case 'silu':
      return x / (1 + Math.exp(-x));
    case 'gelu_tanh': {
      // 0.5·x·(1 + tanh u) written as x·sigmoid(2u), the same value without float64 cancellation.
      const u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3);
      return x / (1 + Math.exp(-2 * u));
    }
    case 'gelu_erf':
      return 0.5 * x * erfc64(-x / Math.SQRT2);
  }
}

/** Relative comparison: |got − ref| ≤ rel·|ref| + abs. */
function compareRel(got: Float32Array, ref: Float64Array, rel = 1e-5, abs = 1e-30): string | null {
  return compareToRef(got, ref, Float64Array.from(ref, Math.abs), rel, abs);
}

const SIZES = [1, 7, 63, 65, 4097];

// ---- runners ---------------------------------------------------------------------------------------------------

async function runGated(activation: Activation, rows: number, n: number, fused: boolean, seed: number, maxWg?: number) {
  const count = rows * n;
  const gate = randomF32(count, seed, 8);
  const up = randomF32(count, seed + 1, 2);
  const out = poisonedF32(ctx, count);
  const bufs: GPUBuffer[] = [out];
  try {
    if (fused) {
      const gu = new Float32Array(2 * count);
      for (let r = 0; r < rows; r++) {
        gu.set(gate.subarray(r * n, (r + 1) * n), r * 2 * n);
        gu.set(up.subarray(r * n, (r + 1) * n), r * 2 * n + n);
      }
      const gateUp = input(ctx, gu, 'gateUp');
      bufs.push(gateUp);
      await run(ctx, () => [prepareGated(ctx, { activation, gateUp, out, rows, n, maxWorkgroupsPerDimension: maxWg })]);
    } else {
      const g = input(ctx, gate, 'gate');
      const u = input(ctx, up, 'up');
      bufs.push(g, u);
      await run(ctx, () => [prepareGated(ctx, { activation, gate: g, up: u, out, rows, n, maxWorkgroupsPerDimension: maxWg })]);
    }
    const got = await readF32(ctx, out);
    const ref = Float64Array.from(gate, (g, i) => act64(activation, g) * up[i]);
    const what = `${activation} rows=${rows} n=${n} ${fused ? 'fused' : 'split'}`;
    expect(compareRel(got.subarray(0, count), ref), what).toBeNull();
    expect(guardIntact(got, count), `wrote past out (${what})`).toBe(true);
  } finally {
    for (const b of bufs) b.destroy();
  }
}

async function runUnary(count: number, seed: number, kind: Activation | 'scale', scale = 1, maxWg?: number) {
  const x = randomF32(count, seed, 8);
  const xb = input(ctx, x, 'x');
  const out = poisonedF32(ctx, count);
  try {
    await run(ctx, () => [
      kind === 'scale'
        ? prepareScale(ctx, { x: xb, out, count, scale, maxWorkgroupsPerDimension: maxWg })
        : prepareActivation(ctx, { activation: kind, x: xb, out, count, maxWorkgroupsPerDimension: maxWg }),
    ]);
    const got = await readF32(ctx, out);
    const s = Math.fround(scale);
    const ref = Float64Array.from(x, (v) => (kind === 'scale' ? v * s : act64(kind, v)));
    expect(compareRel(got.subarray(0, count), ref, kind === 'scale' ? 6e-8 : 1e-5), `${kind} count=${count}`).toBeNull();
    expect(guardIntact(got, count), `wrote past out (${kind} count=${count})`).toBe(true);
  } finally {
    xb.destroy();
    out.destroy();
  }
}

async function runAdd(count: number, seed: number, maxWg?: number) {
  const a = randomF32(count, seed);
  const b = randomF32(count, seed + 1, 3);
  const ab = input(ctx, a, 'a');
  const bb = input(ctx, b, 'b');
  const out = poisonedF32(ctx, count);
  try {
    await run(ctx, () => [prepareAdd(ctx, { a: ab, b: bb, out, count, maxWorkgroupsPerDimension: maxWg })]);
    const got = await readF32(ctx, out);
    // f32 addition is correctly rounded: the result must be exactly fround(a + b).
    const ref = Float64Array.from(a, (v, i) => Math.fround(v + b[i]));
    expect(compareToRef(got.subarray(0, count), ref, new Float64Array(count), 0, 0), `add count=${count}`).toBeNull();
    expect(guardIntact(got, count), `wrote past out (add count=${count})`).toBe(true);
  } finally {
    ab.destroy();
    bb.destroy();
    out.destroy();
  }
}

/** x = tanh(x / cap) * cap in place; the NaN-poisoned tail past `count` must stay as it was. */
async function runSoftCap(count: number, seed: number, cap: number, amplitude: number, maxWg?: number) {
  const x = randomF32(count, seed, amplitude);
  const xb = input(ctx, Float32Array.from({ length: count + GUARD }, (_, i) => (i < count ? x[i]! : NaN)), 'x');
  try {
    await run(ctx, () => [prepareSoftCap(ctx, { x: xb, count, cap, maxWorkgroupsPerDimension: maxWg })]);
    const got = await readF32(ctx, xb);
    const c = Math.fround(cap);
    const ref = Float64Array.from(x, (v) => Math.tanh(v / c) * c);
    // Error relative to the cap (the size of the outputs), as a correctly rounded tanh scaled by cap would have.
    const what = `softcap ${cap} count=${count} amplitude=${amplitude}`;
    expect(compareToRef(got.subarray(0, count), ref, new Float64Array(count).fill(c), 2e-6, 0), what).toBeNull();
    expect(guardIntact(got, count), `wrote past x (${what})`).toBe(true);
  } finally {
    xb.destroy();
  }
}

// ---- tests -----------------------------------------------------------------------------------------------------

describe('float64 erfc reference', () => {
  it('matches known values (Python math.erfc)', () => {
    const known: [number, number][] = [
      [0, 1.0],
      [0.5, 0.4795001221869535],
      [1, 0.15729920705028513],
      [1.5, 0.033894853524689274],
      [2.5, 0.0004069520174449589],
      [2.9, 4.109787809945886e-05],
      [2.99, 2.3525603080640195e-05],
      [3, 2.2090496998585438e-05],
      [3.01, 2.073896363713263e-05],
      [4, 1.541725790028002e-08],
      [5, 1.5374597944280351e-12],
      [7, 4.183825607779414e-23],
      [10, 2.088487583762545e-45],
      [-1, 1.842700792949715],
      [-2.5, 1.999593047982555],
    ];
    for (const [z, v] of known) expect(Math.abs(erfc64(z) - v) / v, `erfc(${z})`).toBeLessThan(1e-12);
  });
});

describe('gated activations: act(gate) * up against float64', () => {
  for (const activation of ACTIVATIONS) {
    it(`${activation}: split and fused, sizes ${SIZES.join(', ')}`, async () => {
      let seed = 100 * ACTIVATIONS.indexOf(activation);
      for (const n of SIZES) {
        await runGated(activation, 1, n, false, seed++);
        await runGated(activation, 3, n, false, seed++);
        await runGated(activation, 1, n, true, seed++);
        await runGated(activation, 3, n, true, seed++);
      }
    });
  }

  it('fused with many rows and a 2-D grid', async () => {
    await runGated('silu', 65, 63, true, 900, 4);
    await runGated('gelu_erf', 7, 4097, true, 901, 11); // 113 groups → 11 × 11, last row partial
    await runGated('gelu_tanh', 7, 65, false, 902, 2);
  });
});

describe('plain activations, add and scale', () => {
  for (const activation of ACTIVATIONS) {
    it(`${activation}(x), sizes ${SIZES.join(', ')}`, async () => {
      for (const count of SIZES) await runUnary(count, count + 7, activation);
    });
  }

  it('GELU and SiLU at edge inputs: 0, ±tiny, large magnitudes, no NaN', async () => {
    const x = new Float32Array([0, -0, 1e-30, -1e-30, 1e-7, -1e-7, 10, -10, 20, -20, 50, -50, 88, -88, 1e4, -1e4, 1e30, -1e30]);
    for (const activation of ACTIVATIONS) {
      const xb = input(ctx, x, 'x');
      const out = poisonedF32(ctx, x.length);
      try {
        await run(ctx, () => [prepareActivation(ctx, { activation, x: xb, out, count: x.length })]);
        const got = await readF32(ctx, out);
        for (let i = 0; i < x.length; i++) {
          const ref = act64(activation, x[i]);
          const err = Math.abs(got[i] - ref);
          // Relative 1e-5, or an absolute 1e-30 for results that underflow f32's normal range.
          expect(err <= 1e-5 * Math.abs(ref) + 1e-30, `${activation}(${x[i]}) = ${got[i]}, expected ${ref}`).toBe(true);
        }
        expect(guardIntact(got, x.length)).toBe(true);
      } finally {
        xb.destroy();
        out.destroy();
      }
    }
  });

  it(`add, sizes ${SIZES.join(', ')}`, async () => {
    for (const count of SIZES) await runAdd(count, count);
  });

  it(`scale, sizes ${SIZES.join(', ')}`, async () => {
    for (const count of SIZES) await runUnary(count, count + 3, 'scale', 0.1234567);
  });

  it(`softcap in place (final_logit_softcapping), sizes ${SIZES.join(', ')}; saturated and tiny inputs`, async () => {
    for (const count of SIZES) await runSoftCap(count, count + 11, 2, 4);
    await runSoftCap(1000, 17, 30, 100); // |x| up to several caps: saturation
    await runSoftCap(65, 19, 50, 1e-3); // x ≪ cap: tanh(x / cap) · cap ≈ x
    await runSoftCap(999, 23, 0.75, 1e6); // x / cap far past tanh's range: clamped, no NaN
  });

  it('2-D grid: capped workgroups per dimension', async () => {
    await runAdd(4097, 1, 5); // 17 groups → 5 × 4, last row partial
    await runUnary(4097, 2, 'scale', -3, 5);
    await runUnary(65 * 256 + 1, 3, 'gelu_erf', 1, 9); // 66 groups → 9 × 8
  });

  it('more than 65535 workgroups in one dimension (real device limit)', async () => {
    const max = ctx.limits.maxComputeWorkgroupsPerDimension;
    const count = max * 256 + 7;
    expect(grid2d(count, 256, max)).toEqual([max, 2, 1]);
    await runUnary(count, 5, 'scale', 2.5);
  });
});

describe('grid2d', () => {
  it('fills x first, then y', () => {
    expect(grid2d(1, 256, 65535)).toEqual([1, 1, 1]);
    expect(grid2d(257, 256, 65535)).toEqual([2, 1, 1]);
    expect(grid2d(256 * 65536, 256, 65535)).toEqual([65535, 2, 1]);
    expect(grid2d(100, 1, 10)).toEqual([10, 10, 1]);
    expect(() => grid2d(101, 1, 10)).toThrow(GPUValidationError);
  });
});

describe('validation', () => {
  it('rejects bad sizes, small buffers (naming them) and aliased outputs', () => {
    const a = input(ctx, new Float32Array(8), 'a8');
    const b = input(ctx, new Float32Array(8), 'b8');
    const small = input(ctx, new Float32Array(3), 'too-small');
    const out = poisonedF32(ctx, 8);
    try {
      expect(() => prepareAdd(ctx, { a, b, out, count: 0 })).toThrow(/count must be a positive integer/);
      expect(() => prepareAdd(ctx, { a, b, out, count: 2.5 })).toThrow(GPUValidationError);
      expect(() => prepareAdd(ctx, { a, b: small, out, count: 8 })).toThrow(/buffer b \("too-small"\)/);
      expect(() => prepareAdd(ctx, { a, b, out: a, count: 8 })).toThrow(/same buffer/);
      expect(() => prepareScale(ctx, { x: a, out, count: 8, scale: NaN })).toThrow(/scale must be a number/);
      for (const cap of [0, -1, NaN, Infinity]) expect(() => prepareSoftCap(ctx, { x: a, count: 8, cap })).toThrow(/cap must be a finite number > 0/);
      expect(() => prepareSoftCap(ctx, { x: small, count: 8, cap: 2 })).toThrow(/buffer x \("too-small"\)/);
      expect(() => prepareSoftCap(ctx, { x: a, count: 0, cap: 2 })).toThrow(/count must be a positive integer/);
      expect(() => prepareActivation(ctx, { activation: 'relu' as Activation, x: a, out, count: 8 })).toThrow(/unknown activation/);
      expect(() => prepareActivation(ctx, { activation: 'silu', x: small, out, count: 8 })).toThrow(/too-small/);
      expect(() => prepareGated(ctx, { activation: 'silu', gate: a, up: small, out, rows: 2, n: 4 })).toThrow(/buffer up \("too-small"\)/);
      // Fused needs rows·2n: 8 floats hold rows=1, n=4 but not rows=2, n=4.
      expect(() => prepareGated(ctx, { activation: 'silu', gateUp: a, out, rows: 2, n: 4 })).toThrow(/buffer gateUp \("a8"\).*rows×2n/);
      expect(() => prepareGated(ctx, { activation: 'silu', gateUp: a, out, rows: 1, n: 0 })).toThrow(/n must be a positive integer/);
      expect(() => prepareGated(ctx, { activation: 'gelu_erf', gateUp: a, out: a, rows: 1, n: 4 })).toThrow(/same buffer/);
    } finally {
      for (const buf of [a, b, small, out]) buf.destroy();
    }
  });
});
