import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { COPY_DST, COPY_SRC, STORAGE, uploadBuffer } from '../../src/runtime/buffers.js';
import { prepareDequantize, prepareQuantize, quantizedBytes, type QuantBits, type QuantGroup } from '../../src/kernels/quant.js';
import { prepareQuantLinear, quantLinearKernelKind, type QuantLinearKernelKind } from '../../src/kernels/quant-linear.js';
import { WEIGHT_FORMATS, packWeights, unpackWeights, type WeightFormat } from '../../src/kernels/weight-format.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef, matmulRef } from '../helpers/reference.js';
import { GUARD, guardIntact, input, poisonedF32, readF32, readU32, run } from '../helpers/gpu-run.js';
import { dequantizeRef, matmulNBitsModel, quantizeRef, scalesAsF32 } from '../helpers/quant-reference.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

/** A u32 output of `bytes` bytes (+ GUARD words), every word 0xFFFFFFFF. */
function poisonedWords(bytes: number, label: string): GPUBuffer {
  return uploadBuffer(ctx, label, new Uint32Array(bytes / 4 + GUARD).fill(0xffffffff), STORAGE | COPY_DST | COPY_SRC);
}

function hex(a: Uint32Array, i: number): string {
  return `0x${(a[i] ?? 0).toString(16).padStart(8, '0')}`;
}

/** First index where `got` and `want` differ, or -1. */
function firstDiff(got: Uint32Array, want: Uint32Array): number {
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return i;
  return -1;
}

/** Quantises `w` (N×K, f32) on the GPU and runs the default quant-linear kernel on x (M×K): y and the packed words. */
async function quantizeAndMultiply(w: Float32Array, x: Float32Array, M: number, N: number, K: number, bits: QuantBits, group: QuantGroup) {
  const sizes = quantizedBytes({ bits, N, K, group });
  const src = input(ctx, w, 'test/src');
  const xb = input(ctx, x, 'test/x');
  const q = poisonedWords(sizes.q, 'test/q');
  const scales = poisonedWords(sizes.scales, 'test/scales');
  const zeros = bits === 4 ? poisonedWords(sizes.zeros, 'test/zeros') : undefined;
  const yb = poisonedF32(ctx, M * N, 'test/y');
  try {
    await run(ctx, () => [
      prepareQuantize(ctx, { src, srcFormat: 'f32', N, K, bits, group, q, scales, zeros }),
      prepareQuantLinear(ctx, { x: xb, q, scales, zeros, bits, group, y: yb, M, N, K }),
    ]);
    const yAll = await readF32(ctx, yb);
    expect(guardIntact(yAll, M * N), 'wrote past y').toBe(true);
    return {
      y: yAll.slice(0, M * N),
      qWords: (await readU32(ctx, q)).slice(0, sizes.q / 4),
      sWords: (await readU32(ctx, scales)).slice(0, sizes.scales / 4),
      zWords: zeros ? (await readU32(ctx, zeros)).slice(0, sizes.zeros / 4) : new Uint32Array(0),
    };
  } finally {
    for (const b of [src, xb, q, scales, zeros, yb]) b?.destroy();
  }
}

interface Quantized {
  q: GPUBuffer;
  scales: GPUBuffer;
  zeros?: GPUBuffer;
}

/** Quantises `values` (stored as `format`) on the GPU and checks every word against the reference. */
async function checkQuantize(values: Float32Array, N: number, K: number, format: WeightFormat, bits: QuantBits, group: QuantGroup): Promise<void> {
  const packed = packWeights(format, values);
  const w = unpackWeights(format, packed, N * K); // what the kernel reads
  const ref = quantizeRef(w, N, K, bits, group);
  const sizes = quantizedBytes({ bits, N, K, group });
  expect([sizes.q, sizes.scales, sizes.zeros]).toEqual([ref.q.byteLength, ref.scales.byteLength, ref.zeros.byteLength]);
  const src = input(ctx, packed, 'test/src');
  const q = poisonedWords(sizes.q, 'test/q');
  const scales = poisonedWords(sizes.scales, 'test/scales');
  const zeros = bits === 4 ? poisonedWords(sizes.zeros, 'test/zeros') : undefined;
  const what = `${format} q${bits} G=${group} N=${N} K=${K}`;
  try {
    await run(ctx, () => [prepareQuantize(ctx, { src, srcFormat: format, N, K, bits, group, q, scales, zeros })]);
    const outs: [string, GPUBuffer | undefined, Uint32Array][] = [
      ['q', q, ref.q],
      ['scales', scales, ref.scales],
      ['zeros', zeros, ref.zeros],
    ];
    for (const [name, buf, want] of outs) {
      if (!buf) continue;
      const got = await readU32(ctx, buf);
      const i = firstDiff(got, want);
      expect(i, `${name} word ${i}: got ${hex(got, i)}, expected ${hex(want, i)} (${what})`).toBe(-1);
      expect(guardIntact(got, want.length), `wrote past ${name} (${what})`).toBe(true);
    }
  } finally {
    for (const b of [src, q, scales, zeros]) b?.destroy();
  }
}

describe('quantize: GPU = reference quantizer, word for word', () => {
  const formats = WEIGHT_FORMATS;
  for (const bits of [4, 8] as const) {
    for (const format of formats) {
      it(`q${bits} from ${format}: N in {1, 7, 65}, K in {1, 7, 32, 65}, G in {32, 64, 128}`, async () => {
        let seed = bits * 1000 + formats.indexOf(format) * 100;
        for (const group of [32, 64, 128] as const) {
          for (const N of [1, 7, 65]) {
            for (const K of [1, 7, 32, 65]) {
              // Shift some rows so groups are all-positive or all-negative (zero point 0 or 15).
              const v = randomF32(N * K, seed++, 0.5);
              for (let n = 0; n < N; n += 3) for (let k = 0; k < K; k++) v[n * K + k] += n % 2 === 0 ? 0.6 : -0.6;
              // Row 1: weights ~1e-4, whose scales are subnormal halves.
              if (N > 1) for (let k = 0; k < K; k++) v[K + k] *= 1e-4;
              await checkQuantize(v, N, K, format, bits, group);
            }
          }
        }
      });
    }
  }

  it('K = 4097 (a long row, a one-element last group), q4 and q8', async () => {
    for (const bits of [4, 8] as const) await checkQuantize(randomF32(3 * 4097, 4097 + bits, 2), 3, 4097, 'f32', bits, 32);
  });

  it('ties round half away from zero (C roundf, as MLAS), in q and in the zero point; zero and constant groups', async () => {
    // Group 0: lo = −1.75, hi = 2 → s = 0.25, z = 7; (2j+1)/8 lands on q = 7.5 + 2j·0.5… exactly halfway.
    // Group 1: lo = −1.125, hi = 2.625 → s = 0.25, zf = 4.5 → z = 5 (half-to-even would give 4).
    // Group 2: all zero (s = 0, z = 0). Group 3: constant positive. Group 4: q8 ties at (j + 0.5)·s.
    const G = 32;
    const groups: number[][] = [
      [-1.75, 2, ...Array.from({ length: 30 }, (_, j) => (2 * (j % 15) + 1) / 8 - 1.75)],
      [-1.125, 2.625, ...Array.from({ length: 30 }, (_, j) => (2 * (j % 15) + 1) / 8 - 1.125)],
      new Array(32).fill(0),
      new Array(32).fill(0.3),
      [127 * 0.0625, ...Array.from({ length: 31 }, (_, j) => (j - 15 + 0.5) * 0.0625)],
    ];
    const values = new Float32Array(groups.flat());
    const K = groups.length * G;
    for (const bits of [4, 8] as const) {
      const ref = quantizeRef(values, 1, K, bits, G);
      if (bits === 4) {
        expect([ref.s[0], ref.z[0], ref.s[1], ref.z[1], ref.s[2], ref.z[2]]).toEqual([0.25, 7, 0.25, 5, 0, 0]);
        // 0.375·4 + 7 = 8.5 → 9 (away from zero), not 8.
        const qb = new Uint8Array(ref.q.buffer);
        const j = values.indexOf(0.375);
        expect(j).toBeLessThan(32);
        expect((qb[j >> 1] >> ((j & 1) * 4)) & 15).toBe(9);
      } else {
        expect(ref.s[4]).toBe(0.0625);
      }
      for (const format of WEIGHT_FORMATS) await checkQuantize(values, 1, K, format, bits, G);
    }
  });
});

describe('dequantize and the per-group error bound', () => {
  for (const bits of [4, 8] as const) {
    it(`q${bits}: GPU dequant = reference, |w − dequant(w)| within s/2 (+ the f16 rounding of s)`, async () => {
      let seed = 300 + bits;
      for (const group of [32, 64, 128] as const) {
        for (const [N, K] of [[7, 65], [5, 200], [1, 7]] as const) {
          const w = randomF32(N * K, seed++, 1.5);
          for (let k = 0; k < K; k++) w[k] *= 1e-4; // a row of small weights (subnormal f16 scales)
          const sizes = quantizedBytes({ bits, N, K, group });
          const src = input(ctx, w, 'test/src');
          const q = poisonedWords(sizes.q, 'test/q');
          const scales = poisonedWords(sizes.scales, 'test/scales');
          const zeros = bits === 4 ? poisonedWords(sizes.zeros, 'test/zeros') : undefined;
          const out = poisonedF32(ctx, N * K, 'test/out');
          try {
            await run(ctx, () => [
              prepareQuantize(ctx, { src, srcFormat: 'f32', N, K, bits, group, q, scales, zeros }),
              prepareDequantize(ctx, { q, scales, zeros, bits, group, N, K, out }),
            ]);
            const got = await readF32(ctx, out);
            const ref = quantizeRef(w, N, K, bits, group);
            const want = dequantizeRef(ref.q, ref.scales, ref.zeros, N, K, bits, group);
            const what = `q${bits} G=${group} N=${N} K=${K}`;
            for (let i = 0; i < N * K; i++) {
              if (got[i] !== want[i]) expect.fail(`dequant element ${i}: got ${got[i]}, expected ${want[i]} (${what})`);
            }
            expect(guardIntact(got, N * K), `wrote past out (${what})`).toBe(true);
            for (let n = 0; n < N; n++) {
              for (let k = 0; k < K; k++) {
                const g = n * ref.blocks + Math.floor(k / group);
                const s = ref.s[g];
                const f16err = Math.abs(ref.s32[g] - s);
                const bound = s / 2 + (bits === 4 ? 15 : 127) * f16err + s * 1e-5 + 1e-30;
                const err = Math.abs(w[n * K + k] - got[n * K + k]);
                if (!(err <= bound)) expect.fail(`|w − dequant| = ${err} > ${bound} at (${n}, ${k}) (${what}, s = ${s})`);
              }
            }
          } finally {
            for (const b of [src, q, scales, zeros, out]) b?.destroy();
          }
        }
      }
    });
  }
});

interface LinearCase {
  M: number;
  N: number;
  K: number;
  bits: QuantBits;
  group: QuantGroup;
  kernel: QuantLinearKernelKind;
  bias: boolean;
  residual: boolean;
  /** Placement: write y with yStride = N + 3, yOffset = 2 (no residual). */
  placed: boolean;
  seed: number;
}

async function checkLinear(c: LinearCase): Promise<void> {
  const { M, N, K, bits, group, seed } = c;
  const x = randomF32(M * K, seed);
  const ref = quantizeRef(randomF32(N * K, seed + 1, 0.5), N, K, bits, group);
  const w = dequantizeRef(ref.q, ref.scales, ref.zeros, N, K, bits, group);
  const b = c.bias ? randomF32(N, seed + 2) : undefined;
  const r = c.residual ? randomF32(M * N, seed + 3, 2) : undefined;
  const { y, absSum } = matmulRef(x, w, M, N, K);
  for (let i = 0; i < M * N; i++) {
    if (b) {
      y[i] += b[i % N];
      absSum[i] += Math.abs(b[i % N]);
    }
    if (r) {
      y[i] += r[i];
      absSum[i] += Math.abs(r[i]);
    }
  }
  const [yStride, yOffset] = c.placed ? [N + 3, 2] : [N, 0];
  const span = (M - 1) * yStride + yOffset + N;
  const xb = input(ctx, x, 'test/x');
  const qb = input(ctx, ref.q, 'test/q');
  const sb = input(ctx, ref.scales, 'test/scales');
  const zb = bits === 4 ? input(ctx, ref.zeros, 'test/zeros') : undefined;
  const bb = b ? input(ctx, b, 'test/bias') : undefined;
  const rb = r ? input(ctx, r, 'test/residual') : undefined;
  const yb = poisonedF32(ctx, span, 'test/y');
  const what = `${c.kernel} q${bits} G=${group} M=${M} N=${N} K=${K} bias=${c.bias} residual=${c.residual} placed=${c.placed}`;
  try {
    await run(ctx, () => [
      prepareQuantLinear(ctx, {
        x: xb, q: qb, scales: sb, zeros: zb, bits, group, y: yb, M, N, K, bias: bb, residual: rb,
        ...(c.placed ? { yStride, yOffset } : {}), kernel: c.kernel,
      }),
    ]);
    const got = await readF32(ctx, yb);
    const placedOut = new Float32Array(M * N);
    for (let m = 0; m < M; m++) {
      for (let col = 0; col < yStride; col++) {
        const v = got[m * yStride + col];
        if (m * yStride + col >= span) break;
        if (col >= yOffset && col < yOffset + N) placedOut[m * N + col - yOffset] = v;
        else expect(Number.isNaN(v), `wrote outside the placed columns (${what})`).toBe(true);
      }
    }
    expect(compareToRef(placedOut, y, absSum), what).toBeNull();
    expect(guardIntact(got, span), `wrote past y (${what})`).toBe(true);
  } finally {
    for (const buf of [xb, qb, sb, zb, bb, rb, yb]) buf?.destroy();
  }
}

describe('quant-linear: y = x · dequant(W)ᵀ (+ bias) (+ residual) against float64 on the dequantised weights', () => {
  const shapes = [[7, 65], [65, 7], [13, 129], [1, 33]] as const;
  for (const kernel of ['gemv', 'gemm', 'rows'] as const) {
    for (const bits of [4, 8] as const) {
      const Ms = kernel === 'gemv' ? [1, 3, 8] : [1, 3, 9, 33];
      it(`${kernel} q${bits}: M in {${Ms.join(', ')}}, odd N and K, G and epilogues cycled`, async () => {
        let seed = 7000 + bits * 100 + ['gemv', 'gemm', 'rows'].indexOf(kernel) * 1000;
        let i = 0;
        for (const M of Ms) {
          for (const [N, K] of shapes) {
            const group = ([32, 64, 128] as const)[i % 3];
            const placed = i % 4 === 3;
            await checkLinear({ M, N, K, bits, group, kernel, bias: (i & 1) === 1, residual: !placed && (i & 2) === 2, placed, seed: seed++ });
            i++;
          }
        }
      });
    }
  }

  it('chooses the kernel as linear does (rows on CPU adapters)', () => {
    expect([1, 8, 9, 64].map((M) => quantLinearKernelKind(M))).toEqual(['gemv', 'gemv', 'gemm', 'gemm']);
    expect([1, 8, 9, 64].map((M) => quantLinearKernelKind(M, true))).toEqual(['rows', 'rows', 'rows', 'rows']);
  });

  it('quantize → quant-linear on the GPU, default kernel', async () => {
    const [M, N, K, group] = [2, 9, 100, 64 as const];
    for (const bits of [4, 8] as const) {
      const w = randomF32(N * K, 11 + bits, 0.5);
      const x = randomF32(M * K, 12 + bits);
      const ref = quantizeRef(w, N, K, bits, group);
      const { y, absSum } = matmulRef(x, dequantizeRef(ref.q, ref.scales, ref.zeros, N, K, bits, group), M, N, K);
      const { y: got } = await quantizeAndMultiply(w, x, M, N, K, bits, group);
      expect(compareToRef(got, y, absSum), `q${bits}`).toBeNull();
    }
  });

  it('validates arguments, naming the one at fault', () => {
    const [M, N, K] = [2, 5, 40];
    const sizes = quantizedBytes({ bits: 4, N, K });
    const x = input(ctx, new Float32Array(9 * K), 'x');
    const q = input(ctx, new Uint32Array(sizes.q / 4), 'q');
    const qSmall = input(ctx, new Uint32Array(sizes.q / 4 - 1), 'too-small-q');
    const scales = input(ctx, new Uint32Array(sizes.scales / 4), 'scales');
    const scalesSmall = input(ctx, new Uint32Array(1), 'too-small-scales');
    const zeros = input(ctx, new Uint32Array(sizes.zeros / 4), 'zeros');
    const y = poisonedF32(ctx, 9 * N, 'y');
    const base = { x, q, scales, zeros, bits: 4 as const, y, M, N, K, label: 'layers.0.q_proj' };
    try {
      expect(() => prepareQuantLinear(ctx, { ...base, q: qSmall })).toThrow(GPUValidationError);
      expect(() => prepareQuantLinear(ctx, { ...base, q: qSmall })).toThrow(/layers\.0\.q_proj.*buffer q .*too-small-q/);
      expect(() => prepareQuantLinear(ctx, { ...base, scales: scalesSmall })).toThrow(/scales .*too-small-scales/);
      expect(() => prepareQuantLinear(ctx, { ...base, zeros: undefined })).toThrow(/q4 needs a zeros buffer/);
      expect(() => prepareQuantLinear(ctx, { ...base, bits: 8, zeros })).toThrow(/takes no zeros/);
      expect(() => prepareQuantLinear(ctx, { ...base, residual: y })).toThrow(/residual and y are the same buffer/);
      expect(() => prepareQuantLinear(ctx, { ...base, group: 16 as QuantGroup })).toThrow(/group must be one of/);
      expect(() => prepareQuantLinear(ctx, { ...base, bits: 3 as QuantBits })).toThrow(/bits must be 4 or 8/);
      expect(() => prepareQuantLinear(ctx, { ...base, M: 9, kernel: 'gemv' })).toThrow(/gemv kernel serves M ≤ 8/);
      expect(() => prepareQuantize(ctx, { src: x, srcFormat: 'f32', N: 20, K, bits: 4, q: qSmall, scales, zeros })).toThrow(
        /quantize .*buffer src .*"x"/,
      );
    } finally {
      for (const b of [x, q, qSmall, scales, scalesSmall, zeros, y]) b.destroy();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// onnxruntime's MatMulNBits (WASM CPU execution provider of onnxruntime-web) on the same packed bytes.

type Ort = typeof import('onnxruntime-web');

/**
 * onnxruntime-web's WASM build. Node: the package (its `node` export). Chromium: the unbundled ESM file straight
 * from node_modules with the .wasm beside it, imported by a path Vite does not pre-bundle (a dependency that Vite
 * discovers mid-run makes it reload the test page).
 */
async function loadOrt(): Promise<Ort> {
  const browser = typeof window !== 'undefined';
  const dist = '/node_modules/onnxruntime-web/dist/';
  const specifier = browser ? `${dist}ort.wasm.min.mjs` : 'onnxruntime-web';
  const ort = (await import(/* @vite-ignore */ specifier)) as Ort;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  if (browser) ort.env.wasm.wasmPaths = dist;
  return ort;
}

describe('onnxruntime MatMulNBits computes the same product from the same bytes', () => {
  const cases = [
    { M: 3, N: 7, K: 65, group: 32 as const }, // 3 groups per row: an odd count, so zero points pad each row
    { M: 1, N: 5, K: 256, group: 64 as const },
    { M: 9, N: 4, K: 130, group: 128 as const },
  ];
  for (const bits of [4, 8] as const) {
    it(`bits = ${bits}: ${cases.map((c) => `${c.M}×${c.K}·(${c.N}×${c.K})ᵀ G=${c.group}`).join(', ')}`, async () => {
      const ort = await loadOrt();
      let seed = 9100 + bits;
      for (const { M, N, K, group } of cases) {
        const w = randomF32(N * K, seed++, 0.5);
        const x = randomF32(M * K, seed++);
        const sizes = quantizedBytes({ bits, N, K, group });
        // Quantise on the GPU; its bytes go to onnxruntime unchanged (q8: XOR 0x80, uint8 with zero point 128).
        const { y: ours, qWords, sWords, zWords } = await quantizeAndMultiply(w, x, M, N, K, bits, group);
        const bBytes = new Uint8Array(qWords.buffer, qWords.byteOffset, sizes.q).slice();
        if (bits === 8) for (let i = 0; i < bBytes.length; i++) bBytes[i] ^= 0x80;
        const blocks = sizes.blocks;
        const feeds: Record<string, InstanceType<Ort['Tensor']>> = {
          A: new ort.Tensor('float32', x, [M, K]),
          B: new ort.Tensor('uint8', bBytes, [N, blocks, (group * bits) / 8]),
          scales: new ort.Tensor('float32', scalesAsF32(sWords, N * blocks), [N * blocks]),
        };
        const zpBytes = N * Math.ceil(blocks / 2);
        if (bits === 4) feeds.zero_points = new ort.Tensor('uint8', new Uint8Array(zWords.buffer, zWords.byteOffset, zpBytes).slice(), [zpBytes]);
        const session = await ort.InferenceSession.create(matmulNBitsModel({ M, N, K, bits, block: group, zeroPoints: bits === 4 }));
        const result = await session.run(feeds);
        const theirs = result.Y.data as Float32Array;
        await session.release();

        const { y, absSum } = matmulRef(x, dequantizeRef(qWords, sWords, zWords, N, K, bits, group), M, N, K);
        const what = `bits=${bits} M=${M} N=${N} K=${K} G=${group}`;
        expect(compareToRef(theirs, y, absSum), `onnxruntime vs float64 (${what})`).toBeNull();
        expect(compareToRef(ours, theirs, absSum), `ours vs onnxruntime (${what})`).toBeNull();
      }
    });
  }
});

