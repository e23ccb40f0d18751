import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { COPY_DST, COPY_SRC, STORAGE, uploadBuffer } from '../../src/runtime/buffers.js';
import { prepareRopeF32 } from '../../src/kernels/rope.js';
import { ropeInvFreq } from '../../src/kernels/rope-scaling.js';
import { randomF32, rng } from '../helpers/random.js';
import { compareToRef } from '../helpers/reference.js';
import { GUARD, guardIntact, input, readF32, run } from '../helpers/gpu-run.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

/**
 * Tolerance. The angle is f32(pos) · invFreq rounded to f32, exactly as PyTorch forms `freqs` (and as the
 * reference below does), so GPU and reference start from the same f32 angle even at positions like 4097, where
 * that angle is itself ~2⁻¹² rad off the real-valued one: that difference is part of the model's behaviour, not
 * an error here. What remains is the shader's range reduction and cos/sin polynomials (a few f32 ulps) and the
 * two products and one sum per output: together a few times 2⁻²⁴ ≈ 6e-8 relative to scale = (|x1| + |x2|) ·
 * attentionScaling. We allow 1e-6 of that scale (plus 1e-7 absolute): every case here also passes at 1e-7, so
 * this is a 10× margin, yet far below the 2⁻¹¹ ≈ 5e-4 that WGSL's builtin cos/sin alone would be allowed.
 */
const REL = 1e-6;
const ABS = 1e-7;

/** float64 reference: rotate_half RoPE of one (T, H, D) tensor. Returns the result and per-element error scale. */
function ropeRef(
  x: Float32Array,
  positions: Uint32Array,
  invFreq: Float32Array,
  T: number,
  H: number,
  D: number,
  R: number,
  scale: number,
) {
  const out = Float64Array.from(x);
  const errScale = new Float64Array(x.length);
  const half = R / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const base = (t * H + h) * D;
      for (let d = 0; d < D; d++) {
        if (d >= R) {
          errScale[base + d] = Math.abs(x[base + d]); // passed through untouched: must be exact
          continue;
        }
        const i = d % half;
        // freqs in f32, like PyTorch: position_ids.float() @ inv_freq.float()
        const angle = Math.fround(Math.fround(positions[t]) * invFreq[i]);
        const cos = Math.cos(angle) * scale;
        const sin = Math.sin(angle) * scale;
        // rotate_half(x)[d] = -x[d + half] for d < half, x[d - half] otherwise
        const rot = d < half ? -x[base + d + half] : x[base + d - half];
        out[base + d] = x[base + d] * cos + rot * sin;
        errScale[base + d] = (Math.abs(x[base + d]) + Math.abs(rot)) * Math.abs(scale);
      }
    }
  }
  return { out, errScale };
}

interface Case {
  T: number;
  Hq: number;
  Hk: number;
  D: number;
  R?: number;
  positions?: number[];
  invFreq?: Float32Array;
  scale?: number;
}

async function check(c: Case, seed: number) {
  const { T, Hq, Hk, D } = c;
  const R = c.R ?? D;
  const scale = c.scale ?? 1;
  const r = rng(seed);
  const positions = Uint32Array.from(c.positions ?? Array.from({ length: T }, () => Math.floor(r() * 5000)));
  expect(positions.length).toBe(T);
  const invFreq = c.invFreq ?? ropeInvFreq({ rope_theta: 10000, head_dim: R }).invFreq;
  expect(invFreq.length).toBe(R / 2);
  const q = randomF32(T * Hq * D, seed + 1);
  const k = randomF32(T * Hk * D, seed + 2, 2);
  const withGuard = (x: Float32Array) => {
    const g = new Float32Array(x.length + GUARD).fill(NaN);
    g.set(x);
    return g;
  };
  const qBuf = uploadBuffer(ctx, 'test/q', withGuard(q), STORAGE | COPY_DST | COPY_SRC);
  const kBuf = uploadBuffer(ctx, 'test/k', withGuard(k), STORAGE | COPY_DST | COPY_SRC);
  const posBuf = input(ctx, positions, 'test/positions');
  const freqBuf = input(ctx, invFreq, 'test/invFreq');
  try {
    await run(ctx, () => [
      prepareRopeF32(ctx, {
        q: qBuf,
        k: kBuf,
        positions: posBuf,
        invFreq: freqBuf,
        tokens: T,
        qHeads: Hq,
        kHeads: Hk,
        headDim: D,
        rotaryDim: R,
        attentionScaling: scale,
      }),
    ]);
    const what = `T=${T} Hq=${Hq} Hk=${Hk} D=${D} R=${R} scale=${scale}`;
    for (const [name, x, H, buf] of [
      ['q', q, Hq, qBuf],
      ['k', k, Hk, kBuf],
    ] as const) {
      const got = await readF32(ctx, buf);
      const { out, errScale } = ropeRef(x, positions, invFreq, T, H, D, R, scale);
      expect(compareToRef(got.subarray(0, x.length), out, errScale, REL, ABS), `${name}: ${what}`).toBeNull();
      expect(guardIntact(got, x.length), `${name}: wrote past the tensor (${what})`).toBe(true);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) {
          for (let d = R; d < D; d++) {
            const e = (t * H + h) * D + d;
            if (got[e] !== x[e]) throw new Error(`${name}: pass-through dim ${d} changed at token ${t} head ${h} (${what})`);
          }
        }
      }
    }
  } finally {
    qBuf.destroy();
    kBuf.destroy();
    posBuf.destroy();
    freqBuf.destroy();
  }
}

describe('rope f32: rotate_half layout against float64', () => {
  it('tokens {1, 7, 65} × heads {1, 3, 8} / kv {1, 2} × headDim {2, 16, 64, 80, 128}', async () => {
    let seed = 100;
    for (const T of [1, 7, 65]) {
      for (const [Hq, Hk] of [
        [1, 1],
        [3, 1],
        [8, 2],
      ] as const) {
        for (const D of [2, 16, 64, 80, 128]) {
          // Keep SwiftShader's work modest: the largest shapes only once.
          if (T === 65 && Hq === 8 && D > 64) continue;
          await check({ T, Hq, Hk, D }, seed++);
        }
      }
    }
    await check({ T: 65, Hq: 8, Hk: 2, D: 128 }, 999);
  });

  it('partial rotary: headDim 96 with rotaryDim 32, and headDim 80 with rotaryDim 20', async () => {
    await check({ T: 7, Hq: 3, Hk: 1, D: 96, R: 32 }, 11);
    await check({ T: 65, Hq: 8, Hk: 2, D: 96, R: 32 }, 12);
    await check({ T: 7, Hq: 3, Hk: 2, D: 80, R: 20 }, 13);
  });

  it('positions 0, large and non-monotonic', async () => {
    const positions = [0, 4097, 3, 65535, 1, 4096, 2, 100000, 0, 31];
    await check({ T: positions.length, Hq: 3, Hk: 1, D: 64, positions }, 21);
    await check({ T: 3, Hq: 8, Hk: 2, D: 128, positions: [4097, 0, 4097] }, 22);
  });

  it('scaled frequencies and attentionScaling (llama3 and yarn inverse frequencies)', async () => {
    const llama3 = ropeInvFreq({
      rope_theta: 500000,
      head_dim: 64,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 64,
      },
    });
    await check({ T: 7, Hq: 3, Hk: 1, D: 64, invFreq: llama3.invFreq, scale: llama3.attentionScaling }, 31);
    const yarn = ropeInvFreq({
      rope_theta: 10000,
      head_dim: 64,
      max_position_embeddings: 4096,
      rope_scaling: { rope_type: 'yarn', factor: 4 },
    });
    expect(yarn.attentionScaling).toBeGreaterThan(1);
    await check(
      { T: 7, Hq: 3, Hk: 1, D: 64, invFreq: yarn.invFreq, scale: yarn.attentionScaling, positions: [0, 1, 2, 5000, 9, 16000, 3] },
      32,
    );
  });

  it('more rotations than one grid row of workgroups holds (2-D grid)', async () => {
    // 2100 · (24 + 8) · 64 = 4.3M rotations = 67200 workgroups of 64, past the 65535-per-dimension default limit.
    const T = 2100;
    const positions = Array.from({ length: T }, (_, t) => (t * 7919) % 5003);
    await check({ T, Hq: 24, Hk: 8, D: 128, positions }, 41);
  });

  it('reuses one pipeline for every shape', () => {
    expect(ctx.pipelines.size).toBe(1);
  });

  it('rejects bad shapes and short buffers, naming them', () => {
    const q = uploadBuffer(ctx, 'q', new Float32Array(2 * 3 * 16));
    const k = uploadBuffer(ctx, 'k', new Float32Array(2 * 1 * 16));
    const shortK = uploadBuffer(ctx, 'too-small-k', new Float32Array(16));
    const pos = uploadBuffer(ctx, 'pos', new Uint32Array(2));
    const freq = uploadBuffer(ctx, 'freq', new Float32Array(8));
    const args = { q, k, positions: pos, invFreq: freq, tokens: 2, qHeads: 3, kHeads: 1, headDim: 16 };
    try {
      expect(() => prepareRopeF32(ctx, { ...args, k: shortK })).toThrow(GPUValidationError);
      expect(() => prepareRopeF32(ctx, { ...args, k: shortK })).toThrow(/too-small-k/);
      const shortPos = uploadBuffer(ctx, 'too-few-positions', new Uint32Array(1));
      try {
        expect(() => prepareRopeF32(ctx, { ...args, positions: shortPos })).toThrow(/too-few-positions/);
      } finally {
        shortPos.destroy();
      }
      expect(() => prepareRopeF32(ctx, { ...args, invFreq: pos })).toThrow(/invFreq/);
      expect(() => prepareRopeF32(ctx, { ...args, tokens: 0 })).toThrow(/tokens must be a positive integer/);
      expect(() => prepareRopeF32(ctx, { ...args, rotaryDim: 15 })).toThrow(/rotaryDim must be even/);
      expect(() => prepareRopeF32(ctx, { ...args, rotaryDim: 18 })).toThrow(/rotaryDim must be even/);
      expect(() => prepareRopeF32(ctx, { ...args, headDim: 32, rotaryDim: 32 })).toThrow(GPUValidationError);
      expect(() => prepareRopeF32(ctx, { ...args, k: q })).toThrow(/different buffers/);
      expect(() => prepareRopeF32(ctx, { ...args, attentionScaling: NaN })).toThrow(/attentionScaling/);
    } finally {
      for (const b of [q, k, shortK, pos, freq]) b.destroy();
    }
  });
});
