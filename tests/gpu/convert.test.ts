import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { convertKey, prepareConvert } from '../../src/kernels/convert.js';
import {
  WEIGHT_FORMATS,
  packBf16,
  packF16,
  unpackWeights,
  weightBufferBytes,
  type WeightFormat,
} from '../../src/kernels/weight-format.js';
import { rng } from '../helpers/random.js';
import { guardIntact, input, poisonedU32, readU32, run } from '../helpers/gpu-run.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

const TIE_F16 = 2 ** -11; // half an f16 ulp at 1
const TIE_BF16 = 2 ** -8; // half a bf16 ulp at 1

/** f32 edge values (exactly representable in f32), first so small counts meet them. */
const F32_EDGES: number[] = [
  0, -0, 1, -1,
  2 ** -149, -(2 ** -149), 2 ** -130, 2 ** -126 - 2 ** -149, // f32 subnormals (min, max)
  2 ** -24, -(2 ** -24), 2 ** -25, 3 * 2 ** -25, 1.5 * 2 ** -24, 2 ** -26, 2 ** -25 + 2 ** -40, // f16 subnormal ties
  2 ** -14 - 2 ** -25, 2 ** -14 - 2 ** -24, 2 ** -14, 1023 * 2 ** -24, 1023.5 * 2 ** -24, // subnormal ↔ normal edge
  1 + TIE_F16, 1 + 3 * TIE_F16, -(1 + 3 * TIE_F16), 1 + TIE_F16 + 2 ** -23, 2049, 2051, 4097, 0.1, 1 / 3,
  65504, 65519, 65520, -65520, 65536, 1e6, -1e6, 1e-8, 3.4028234663852886e38, -3.4028234663852886e38,
  Infinity, -Infinity, NaN,
  1 + TIE_BF16, 1 + 3 * TIE_BF16, -(1 + 3 * TIE_BF16), 1 + TIE_BF16 + 2 ** -23, 3.3895313892515355e38, 3.3961775292304135e38,
  256.5, 257.5, 2 ** -133, // bf16 subnormal tie region
];
/** f32 bit patterns with NaN payloads (quiet, signalling, negative). */
const F32_NAN_BITS = [0x7f800001, 0xffc12345, 0x7fbfffff, 0x7fffffff];
/** f16 bit patterns: subnormals, max, inf, NaNs. */
const F16_EDGE_BITS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xffff, 0x3c01, 0x3c03, 0x3c07, 0x0155];
/** bf16 bit patterns: subnormals, max, inf, NaNs. */
const BF16_EDGE_BITS = [0x0000, 0x8000, 0x0001, 0x807f, 0x0080, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x7f81, 0xffc1, 0x7fc0, 0x3f81, 0x477f, 0x4780, 0x3380, 0x3300];

/** `count` source elements in `format`, as packed storage (16-bit: the pad half of an odd count is junk). */
function sourceData(format: WeightFormat, count: number, seed: number): Uint32Array | Uint16Array {
  const r = rng(seed);
  if (format === 'f32') {
    const f = new Float32Array(count);
    const bits = new Uint32Array(f.buffer);
    for (let i = 0; i < count; i++) {
      const k = i % 3;
      if (i < F32_EDGES.length) f[i] = F32_EDGES[i];
      else if (i < F32_EDGES.length + F32_NAN_BITS.length) bits[i] = F32_NAN_BITS[i - F32_EDGES.length];
      else if (k === 0) bits[i] = Math.floor(r() * 2 ** 32); // any pattern
      else f[i] = (r() * 2 - 1) * 2 ** Math.floor(r() * 50 - 30); // around the f16 range, subnormals included
    }
    return bits;
  }
  const edges = format === 'f16' ? F16_EDGE_BITS : BF16_EDGE_BITS;
  const out = new Uint16Array(count + (count & 1));
  for (let i = 0; i < count; i++) out[i] = i < edges.length ? edges[i] : Math.floor(r() * 0x10000);
  if (count & 1) out[count] = 0xabcd; // junk pad: must not reach the destination
  return out;
}

function isNaNBits(format: WeightFormat, b: number): boolean {
  switch (format) {
    case 'f32':
      return (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;
    case 'f16':
      return (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;
    case 'bf16':
      return (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
  }
}

/** The destination's packed storage by the host functions, as u32 words (16-bit: pad half 0). */
function expected(src: WeightFormat, dst: WeightFormat, data: Uint32Array | Uint16Array, count: number): Uint32Array {
  if (src === dst) {
    // A copy: bit-exact, NaN payloads included; the pad half of an odd 16-bit count becomes 0.
    const words = new Uint32Array(weightBufferBytes(dst, count) / 4);
    if (dst === 'f32') words.set(data.subarray(0, count));
    else new Uint16Array(words.buffer).set(data.subarray(0, count));
    return words;
  }
  const values =
    src === 'f32'
      ? new Float32Array(data.buffer, data.byteOffset, count)
      : unpackWeights(src, data as Uint16Array, count);
  if (dst === 'f32') return new Uint32Array(Float32Array.from(values).buffer);
  const packed = dst === 'f16' ? packF16(values) : packBf16(values);
  return new Uint32Array(packed.buffer);
}

/** Element `i` of packed words (16-bit formats: halves). */
function element(format: WeightFormat, words: Uint32Array, i: number): number {
  return format === 'f32' ? words[i] : (words[i >> 1] >>> ((i & 1) * 16)) & 0xffff;
}

const hex = (v: number) => `0x${v.toString(16)}`;

async function check(src: WeightFormat, dst: WeightFormat, count: number, seed: number, maxWg?: number) {
  const data = sourceData(src, count, seed);
  const want = expected(src, dst, data, count);
  const words = want.length;
  const srcBuf = input(ctx, data, 'test/src');
  const dstBuf = poisonedU32(ctx, words, 'test/dst');
  const what = `${src} → ${dst} count=${count}`;
  try {
    await run(ctx, () => [prepareConvert(ctx, { src: srcBuf, srcFormat: src, dst: dstBuf, dstFormat: dst, count, maxWorkgroupsPerDimension: maxWg })]);
    const got = await readU32(ctx, dstBuf);
    const srcWords = new Uint32Array(data.buffer, data.byteOffset, Math.ceil(data.byteLength / 4));
    const n16 = dst === 'f32' ? count : 2 * words; // pad half included: it must be 0
    for (let i = 0; i < n16; i++) {
      const g = element(dst, got, i);
      const w = element(dst, want, i);
      if (g === w) continue;
      const bothNaN = src !== dst && i < count && isNaNBits(dst, g) && isNaNBits(dst, w);
      if (bothNaN) continue;
      const from = i < count ? hex(element(src, srcWords, i)) : 'pad';
      expect(hex(g), `${what}: element ${i} (source ${from})`).toBe(hex(w));
    }
    expect(guardIntact(got, words), `wrote past dst (${what})`).toBe(true);
  } finally {
    srcBuf.destroy();
    dstBuf.destroy();
  }
}

describe('convert between weight formats, bit-exact against the host packers', () => {
  it('the f32 edge list itself rounds as expected on the host (sanity of the fixtures)', () => {
    const f16 = packF16([65504, 65519, 65520, 1 + TIE_F16, 1 + 3 * TIE_F16, 2 ** -25, 3 * 2 ** -25, 2 ** -14 - 2 ** -25]);
    expect([...f16].map(hex)).toEqual(['0x7bff', '0x7bff', '0x7c00', '0x3c00', '0x3c02', '0x0', '0x2', '0x400']);
    const bf16 = packBf16([1 + TIE_BF16, 1 + 3 * TIE_BF16, 3.3961775292304135e38, 2 ** -133]);
    expect([...bf16].map(hex)).toEqual(['0x3f80', '0x3f82', '0x7f80', '0x1']);
  });

  for (const src of WEIGHT_FORMATS) {
    for (const dst of WEIGHT_FORMATS) {
      it(`${src} → ${dst}: counts 1, 7, 65, 4097, edge cases and random values`, async () => {
        let seed = 100 * WEIGHT_FORMATS.indexOf(src) + 10 * WEIGHT_FORMATS.indexOf(dst);
        for (const count of [1, 7, 65, 4097]) await check(src, dst, count, seed++);
      });
    }
  }

  it('2-D grid: capped workgroups per dimension', async () => {
    await check('f32', 'f16', 4097, 7, 3); // 2049 words → 9 groups → 3 × 3
    await check('bf16', 'f32', 4097, 8, 5); // 4097 words → 17 groups → 5 × 4, last row partial
    await check('f16', 'bf16', 1025, 9, 2); // 513 words → 3 groups → 2 × 2, last row partial
    await expect(check('f32', 'f32', 4097, 10, 4)).rejects.toThrow(/17 workgroups, above 4²/);
  });

  it('one pipeline per (src, dst) pair', () => {
    expect(ctx.pipelines.size).toBe(WEIGHT_FORMATS.length ** 2);
    expect(convertKey('f16', 'bf16')).toBe('convert.f16.bf16');
  });
});

describe('convert validation', () => {
  it('rejects bad formats, counts and buffers too small for their shape, naming them', () => {
    const src = input(ctx, new Uint16Array(6), 'src-12-bytes'); // 6 f16 / bf16 elements, or 3 f32
    const dst = poisonedU32(ctx, 6, 'dst');
    const small = input(ctx, new Uint32Array(1), 'dst-4-bytes');
    const base = { src, srcFormat: 'f16' as WeightFormat, dst, dstFormat: 'f32' as WeightFormat, count: 6 };
    try {
      const ok = prepareConvert(ctx, base);
      for (const b of ok.owned) b.destroy();
      expect(() => prepareConvert(ctx, { ...base, count: 7 })).toThrow(/buffer src \("src-12-bytes"\) holds 12 bytes but 7 elements of count f16 need 16/);
      expect(() => prepareConvert(ctx, { ...base, srcFormat: 'f32' })).toThrow(/buffer src .*need 24/);
      expect(() => prepareConvert(ctx, { ...base, dst: small, dstFormat: 'bf16' })).toThrow(/buffer dst \("dst-4-bytes"\) holds 4 bytes .* need 12/);
      expect(() => prepareConvert(ctx, { ...base, count: 0 })).toThrow(/count must be a positive integer/);
      expect(() => prepareConvert(ctx, { ...base, count: 2.5 })).toThrow(GPUValidationError);
      expect(() => prepareConvert(ctx, { ...base, srcFormat: 'q8' as WeightFormat })).toThrow(/srcFormat must be one of/);
      expect(() => prepareConvert(ctx, { ...base, dstFormat: 'f64' as WeightFormat })).toThrow(/dstFormat must be one of/);
      expect(() => prepareConvert(ctx, { ...base, dst: src, dstFormat: 'f16' })).toThrow(/src and dst are the same buffer/);
      expect(() => prepareConvert(ctx, { ...base, label: 'emb' , count: 7 })).toThrow(/^convert "emb": /);
    } finally {
      for (const b of [src, dst, small]) b.destroy();
    }
  });
});
