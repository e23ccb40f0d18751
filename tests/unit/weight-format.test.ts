import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  bytesPerElement,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  loadWeightWgsl,
  packBf16,
  packF16,
  packWeights,
  unpackWeights,
  weightBufferBytes,
  WEIGHT_FORMATS,
} from '../../src/kernels/weight-format.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function fromBits(b: number): number {
  u32[0] = b >>> 0;
  return f32[0];
}
function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}

describe('f32 → f16 bits, round to nearest even', () => {
  it('exact and tricky values', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite
      [65519.99, 0x7bff], // just below the midpoint to inf
      [65520, 0x7c00], // midpoint, ties to even = inf
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // half of it: tie to even → 0
      [fromBits(bitsOf(2 ** -25) + 1), 0x0001], // just above the tie
      [3 * 2 ** -25, 0x0002], // 1.5 ulp → tie → 2
      [5 * 2 ** -25, 0x0002], // 2.5 ulp → tie → 2
      [2 ** -14 - 2 ** -25, 0x0400], // tie between largest subnormal and smallest normal → even (normal)
      [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
      [1 + 2 ** -11, 0x3c00], // tie → even
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
      [1 + 2 ** -11 + 2 ** -23, 0x3c01],
      [1e-10, 0x0000],
      [-1e-10, 0x8000],
      [0.1, 0x2e66],
      [Math.PI, 0x4248],
    ];
    for (const [x, bits] of cases) expect(f32ToF16Bits(x).toString(16), `${x}`).toBe(bits.toString(16));
  });

  it('NaN stays NaN (quiet, sign kept)', () => {
    const h = f32ToF16Bits(NaN);
    expect(h & 0x7c00).toBe(0x7c00);
    expect(h & 0x3ff).not.toBe(0);
    expect(Number.isNaN(f16BitsToF32(h))).toBe(true);
    const neg = f32ToF16Bits(fromBits(0xffc00001));
    expect(neg & 0x8000).toBe(0x8000);
    expect(Number.isNaN(f16BitsToF32(neg))).toBe(true);
    // A signalling NaN whose payload sits only in the low bits must not become inf.
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(fromBits(0x7f800001))))).toBe(true);
  });

  it('every finite f16 round-trips, and every midpoint rounds to even', () => {
    for (let h = 0; h < 0x10000; h++) {
      const e = (h >>> 10) & 0x1f;
      if (e === 31) continue;
      expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
      // Midpoint to the next magnitude (exactly representable in f32) and its two f32 neighbours.
      if ((h & 0x7fff) === 0x7bff) continue;
      const a = f16BitsToF32(h);
      const b = f16BitsToF32(h + 1);
      const mid = (a + b) / 2;
      const even = (h & 1) === 0 ? h : h + 1;
      if (f32ToF16Bits(mid) !== even) expect(f32ToF16Bits(mid), `mid of ${h.toString(16)}`).toBe(even);
      // f32 neighbours of the midpoint in magnitude (the sign bit is untouched).
      const below = fromBits(bitsOf(mid) - 1);
      const above = fromBits(bitsOf(mid) + 1);
      {
        if (f32ToF16Bits(below) !== h) expect(f32ToF16Bits(below), `below mid ${h.toString(16)}`).toBe(h);
        if (f32ToF16Bits(above) !== h + 1) expect(f32ToF16Bits(above), `above mid ${h.toString(16)}`).toBe(h + 1);
      }
    }
  });
});

describe('f32 → bf16 bits, round to nearest even', () => {
  it('exact and tricky values', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3f80],
      [fromBits(0x3f808000), 0x3f80], // tie → even (down)
      [fromBits(0x3f818000), 0x3f82], // tie → even (up)
      [fromBits(0x3f808001), 0x3f81],
      [fromBits(0x3f807fff), 0x3f80],
      [fromBits(0x7f7fffff), 0x7f80], // f32 max rounds to inf
      [fromBits(0x7f7f7fff), 0x7f7f], // stays the largest finite bf16
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [fromBits(0x00000001), 0x0000], // f32 subnormals round like any other value
      [fromBits(0x00008000), 0x0000], // tie → even
      [fromBits(0x00018000), 0x0002],
      [fromBits(0x00010000), 0x0001],
      [Math.PI, 0x4049],
    ];
    for (const [x, bits] of cases) expect(f32ToBf16Bits(x).toString(16), `${x}`).toBe(bits.toString(16));
  });

  it('NaN stays NaN, even one whose payload is only in the low 16 bits', () => {
    for (const b of [0x7fc00000, 0xffc00000, 0x7f800001, 0xff80ffff]) {
      const h = f32ToBf16Bits(fromBits(b));
      expect(Number.isNaN(bf16BitsToF32(h)), b.toString(16)).toBe(true);
      expect(h & 0x8000).toBe((b >>> 16) & 0x8000);
    }
  });

  it('every finite bf16 round-trips, and every midpoint rounds to even', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7f80) === 0x7f80) continue;
      expect(f32ToBf16Bits(bf16BitsToF32(h))).toBe(h);
      const mid = (h << 16) + 0x8000;
      const even = (h & 1) === 0 ? h : h + 1;
      if (f32ToBf16Bits(fromBits(mid)) !== even) expect(f32ToBf16Bits(fromBits(mid))).toBe(even);
      if (f32ToBf16Bits(fromBits(mid - 1)) !== h) expect(f32ToBf16Bits(fromBits(mid - 1))).toBe(h);
      if (f32ToBf16Bits(fromBits(mid + 1)) !== h + 1) expect(f32ToBf16Bits(fromBits(mid + 1))).toBe(h + 1);
    }
  });
});

describe('packing and sizes', () => {
  it('packs two per word, low half first, padded to whole words', () => {
    const p = packF16([1, -2, 0.5]);
    expect(p.length).toBe(4);
    const words = new Uint32Array(p.buffer);
    expect(words[0]).toBe(((0xc000 << 16) | 0x3c00) >>> 0);
    expect(words[1]).toBe(0x3800); // pad element is zero
    expect(packBf16([1, 2]).length).toBe(2);
    expect([...new Uint32Array(packBf16([1, 2]).buffer)]).toEqual([(0x4000 << 16) | 0x3f80]);
  });

  it('unpackWeights inverts packWeights up to the format’s rounding', () => {
    const values = [0.1, -3.75, 1e-6, 65504, 7];
    for (const format of WEIGHT_FORMATS) {
      const back = unpackWeights(format, packWeights(format, values), values.length);
      for (let i = 0; i < values.length; i++) {
        const tol = format === 'f32' ? 1e-7 : format === 'f16' ? 2 ** -11 : 2 ** -8;
        expect(Math.abs(back[i] - values[i]) <= tol * Math.abs(values[i]) + 1e-7, `${format} ${values[i]}`).toBe(true);
      }
    }
  });

  it('bytes per element and buffer sizes (odd counts round up to 4 bytes)', () => {
    expect(bytesPerElement('f32')).toBe(4);
    expect(bytesPerElement('f16')).toBe(2);
    expect(bytesPerElement('bf16')).toBe(2);
    expect(weightBufferBytes('f32', 7)).toBe(28);
    expect(weightBufferBytes('f16', 7)).toBe(16);
    expect(weightBufferBytes('bf16', 8)).toBe(16);
    expect(weightBufferBytes('bf16', 1)).toBe(4);
  });

  it('WGSL loaders name the caller’s binding and function', () => {
    expect(loadWeightWgsl('f32', 'emb')).toContain('return emb[i];');
    expect(loadWeightWgsl('f16', 'w', 'load_a')).toMatch(/^fn load_a\(i: u32\) -> f32 \{[\s\S]*unpack2x16float\(w\[i >> 1u\]\)/);
    expect(loadWeightWgsl('bf16', 'w')).toContain('bitcast<f32>(u & 0xffff0000u)');
  });
});
