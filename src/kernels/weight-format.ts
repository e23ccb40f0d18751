/**
 * Weight storage formats as data: how many bytes an element takes, how a kernel declares the binding, and the
 * WGSL `load_w(i) -> f32` that reads element i. Kernels compute in f32 whatever the storage format is, so no
 * kernel needs the `shader-f16` feature.
 *
 *   f32   array<f32>, one element per word.
 *   f16   array<u32>, two IEEE half floats per word, element 2k in the low 16 bits, 2k+1 in the high 16 bits.
 *   bf16  array<u32>, two bfloat16 per word, same order.
 *
 * The 16-bit layouts are exactly the bytes of a safetensors F16/BF16 tensor (little-endian 16-bit values), so a
 * checkpoint's bytes upload unchanged; only the buffer size is rounded up to 4 bytes when the element count is
 * odd (`weightBufferBytes`). Host-side packers (`packF16`, `packBf16`) build the same layout from f32 values.
 *
 * Extension seam: block-quantised formats ('q8', 'q4') join `WeightFormat` later. They add an entry to
 * `FORMATS` with their own `bytesFor` (data plus per-block scales) and `loadWgsl`, and kernels that take a
 * `WeightFormat` pick them up through `weightBindingWgsl` / `loadWeightWgsl` without other changes.
 */
import { align4 } from '../runtime/buffers.js';

export type WeightFormat = 'f32' | 'f16' | 'bf16';

export const WEIGHT_FORMATS: readonly WeightFormat[] = ['f32', 'f16', 'bf16'];

interface FormatInfo {
  /** Bytes per element (whole elements; quantised formats will report a fraction). */
  readonly bytesPerElement: number;
  /** WGSL element type of the storage array. */
  readonly wgslArrayType: 'f32' | 'u32';
  /** Bytes of a tightly packed tensor of `count` elements, before rounding up to 4. */
  readonly bytesFor: (count: number) => number;
  /** Body of `fn NAME(i: u32) -> f32` reading element i from the storage array `array`. */
  readonly loadWgsl: (array: string) => string;
}

const FORMATS: Record<WeightFormat, FormatInfo> = {
  f32: {
    bytesPerElement: 4,
    wgslArrayType: 'f32',
    bytesFor: (count) => count * 4,
    loadWgsl: (a) => `return ${a}[i];`,
  },
  f16: {
    bytesPerElement: 2,
    wgslArrayType: 'u32',
    bytesFor: (count) => count * 2,
    loadWgsl: (a) => `let p = unpack2x16float(${a}[i >> 1u]);\n  return select(p.x, p.y, (i & 1u) == 1u);`,
  },
  bf16: {
    bytesPerElement: 2,
    wgslArrayType: 'u32',
    bytesFor: (count) => count * 2,
    // bf16 is the top half of an f32: shift the low element up, mask the high one in place.
    loadWgsl: (a) =>
      `let u = ${a}[i >> 1u];\n  if ((i & 1u) == 0u) { return bitcast<f32>(u << 16u); }\n  return bitcast<f32>(u & 0xffff0000u);`,
  },
};

export function isWeightFormat(value: unknown): value is WeightFormat {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(FORMATS, value);
}

export function bytesPerElement(format: WeightFormat): number {
  return FORMATS[format].bytesPerElement;
}

/** Bytes a buffer must hold for `count` elements in `format`: packed size rounded up to a multiple of 4. */
export function weightBufferBytes(format: WeightFormat, count: number): number {
  return align4(FORMATS[format].bytesFor(count));
}

/** WGSL element type of the storage array holding `format`. */
export function wgslArrayType(format: WeightFormat): 'f32' | 'u32' {
  return FORMATS[format].wgslArrayType;
}

/** `@group(group) @binding(binding) var<storage, read> name: array<f32|u32>;` for `format`. */
export function weightBindingWgsl(format: WeightFormat, binding: number, name: string, group = 0): string {
  return `@group(${group}) @binding(${binding}) var<storage, read> ${name}: array<${wgslArrayType(format)}>;`;
}

/** `fn fnName(i: u32) -> f32` reading element i of `format` from the storage array named `array`. */
export function loadWeightWgsl(format: WeightFormat, array: string, fnName = 'load_w'): string {
  return `fn ${fnName}(i: u32) -> f32 {\n  ${FORMATS[format].loadWgsl(array)}\n}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Host-side conversions (bit patterns as numbers in [0, 0xffff]), round to nearest, ties to even.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** IEEE binary16 bits of `x` (first rounded to f32, as a kernel input would be). */
export function f32ToF16Bits(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays inf; NaN stays a quiet NaN (top payload bits kept).
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // biased f16 exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal result (or zero): value = m · 2^(exp-150), in units of 2^-24 that is m / 2^(14-e).
    if (e < -10) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) === 1)) q++; // may carry into the smallest normal, correctly
    return sign | q;
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q++; // a carry into the exponent gives inf at the top
  return sign | q;
}

/** bfloat16 bits of `x` (first rounded to f32): the top 16 bits of the f32, rounded to nearest even. */
export function f32ToBf16Bits(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return (bits >>> 16) | 0x0040; // quiet NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function bf16BitsToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/**
 * `values` as 16-bit patterns in the packed layout kernels read (element 2k low half, 2k+1 high half of word k),
 * length rounded up to even so the bytes fill whole words; the pad element is zero.
 */
function pack16(values: ArrayLike<number>, convert: (x: number) => number): Uint16Array {
  const out = new Uint16Array(values.length + (values.length & 1));
  for (let i = 0; i < values.length; i++) out[i] = convert(values[i]);
  return out;
}

/** f32 values → packed f16 (upload the returned array's bytes as a `'f16'` weight). */
export function packF16(values: ArrayLike<number>): Uint16Array {
  return pack16(values, f32ToF16Bits);
}

/** f32 values → packed bf16 (upload the returned array's bytes as a `'bf16'` weight). */
export function packBf16(values: ArrayLike<number>): Uint16Array {
  return pack16(values, f32ToBf16Bits);
}

/** Packs f32 values into the bytes of `format` (f32 returned as a copy), ready to upload. */
export function packWeights(format: WeightFormat, values: ArrayLike<number>): Float32Array | Uint16Array {
  switch (format) {
    case 'f32':
      return Float32Array.from(values);
    case 'f16':
      return packF16(values);
    case 'bf16':
      return packBf16(values);
  }
}

/** The f32 values a kernel reads from `packed` (what `load_w` returns), for references in tests. */
export function unpackWeights(format: WeightFormat, packed: Float32Array | Uint16Array, count: number): Float32Array {
  const out = new Float32Array(count);
  if (format === 'f32') {
    out.set((packed as Float32Array).subarray(0, count));
    return out;
  }
  const decode = format === 'f16' ? f16BitsToF32 : bf16BitsToF32;
  for (let i = 0; i < count; i++) out[i] = decode(packed[i]);
  return out;
}
