/**
 * Weight storage format conversion on the GPU: dst = convert(src), element by element, for every pair of
 * f32 / f16 / bf16 (the same format on both sides is a bit-exact copy).
 *
 *   src: (count) in srcFormat, packed as in weight-format.ts (f16/bf16: two per u32, element 2k low half)
 *   dst: (count) in dstFormat, same packing; when dstFormat is 16-bit and count is odd, the high half of the
 *        last word is written 0 (the pad element of packF16 / packBf16)
 *
 * Rounding is bit-for-bit the host packers' (`f32ToF16Bits`, `f32ToBf16Bits`): round to nearest, ties to even,
 * f16 subnormals produced exactly, overflow to ±inf, NaN stays NaN (quiet, top payload bits kept), done in
 * integer arithmetic rather than through pack2x16float, whose rounding WGSL leaves to the implementation.
 * Widening (f16/bf16 → f32) is exact, f16 subnormals included. f16 ↔ bf16 goes through the exact f32 value,
 * so it equals packing the unpacked values on the host. Every value is handled as raw u32 bits (all three
 * bindings are array<u32>), so no float flushing or NaN canonicalisation can touch it.
 *
 * One thread per destination word (two elements when dstFormat is 16-bit), 256 per workgroup, on the 2-D grid
 * of the element-wise kernels (x up to the device's per-dimension limit, then y) so any count fits.
 * Bindings (group 0): 0 src (storage, read) · 1 dst (storage, read_write) · 2 params (uniform: count, words, pad).
 */
import { GPUValidationError } from '../errors.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, grid2d, type KernelDispatch } from './dispatch.js';
import { bytesPerElement, isWeightFormat, weightBufferBytes, type WeightFormat } from './weight-format.js';

export const CONVERT_WORKGROUP_SIZE = 256;

export function convertKey(srcFormat: WeightFormat, dstFormat: WeightFormat): string {
  return `convert.${srcFormat}.${dstFormat}`;
}

/** WGSL bit conversions between the three formats' raw patterns (16-bit ones in the low half of a u32). */
const BITS_WGSL = /* wgsl */ `
// f16 bits -> f32 bits, exact (subnormals normalised, NaN payload shifted into place).
fn f16_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); }
  if (e == 0u) {
    if (m == 0u) { return sign; }
    // m · 2^-24 with the leading bit of m at position p: 2^(p - 24) · 1.f
    let p = firstLeadingBit(m);
    return sign | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7fffffu);
  }
  return sign | ((e + 112u) << 23u) | (m << 13u);
}

// bf16 bits -> f32 bits, exact: bf16 is the top half of an f32.
fn bf16_to_f32(b: u32) -> u32 {
  return b << 16u;
}

// f32 bits -> f16 bits, round to nearest even; f32ToF16Bits of weight-format.ts step by step.
fn f32_to_f16(bits: u32) -> u32 {
  let sign = (bits >> 16u) & 0x8000u;
  let exp = (bits >> 23u) & 0xffu;
  let mant = bits & 0x7fffffu;
  if (exp == 0xffu) {
    // Inf stays inf; NaN stays a quiet NaN (top payload bits kept).
    if (mant == 0u) { return sign | 0x7c00u; }
    return sign | 0x7e00u | (mant >> 13u);
  }
  let e = i32(exp) - 112;  // biased f16 exponent
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    // Subnormal result (or zero): in units of 2^-24 the value is m / 2^(14 - e).
    if (e < -10) { return sign; }  // below half the smallest subnormal
    let m = mant | 0x800000u;
    let shift = u32(14 - e);  // 14..24
    var q = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u) == 1u)) { q += 1u; }  // may carry into the smallest normal
    return sign | q;
  }
  var q = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u) == 1u)) { q += 1u; }  // a carry at the top gives inf
  return sign | q;
}

// f32 bits -> bf16 bits, round to nearest even (f32ToBf16Bits); NaN made quiet. No overflow: the largest
// non-NaN pattern, 0xff800000 (-inf), plus 0x8000 stays below 2^32.
fn f32_to_bf16(bits: u32) -> u32 {
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x7fffffu) != 0u) { return (bits >> 16u) | 0x0040u; }
  return ((bits + 0x7fffu + ((bits >> 16u) & 1u)) >> 16u) & 0xffffu;
}
`;

/** WGSL expression converting the raw source bits `raw` to the destination format's bits. */
function convertExpr(src: WeightFormat, dst: WeightFormat, raw: string): string {
  if (src === dst) return raw;
  const toF32 = src === 'f32' ? raw : `${src}_to_f32(${raw})`;
  return dst === 'f32' ? toF32 : `f32_to_${dst}(${toF32})`;
}

/** WGSL expression: raw bits of source element `i` (16-bit formats in the low half). */
function loadExpr(src: WeightFormat, i: string): string {
  return bytesPerElement(src) === 4 ? `src[${i}]` : `((src[(${i}) >> 1u] >> (((${i}) & 1u) * 16u)) & 0xffffu)`;
}

export function convertSource(srcFormat: WeightFormat, dstFormat: WeightFormat): string {
  const wide = bytesPerElement(dstFormat) === 4;
  const body = wide
    ? `dst[w] = ${convertExpr(srcFormat, dstFormat, loadExpr(srcFormat, 'w'))};`
    : `let i = 2u * w;
  let lo = ${convertExpr(srcFormat, dstFormat, loadExpr(srcFormat, 'i'))};
  var hi = 0u;  // the pad element when count is odd
  if (i + 1u < params.count) { hi = ${convertExpr(srcFormat, dstFormat, loadExpr(srcFormat, 'i + 1u'))}; }
  dst[w] = lo | (hi << 16u);`;
  return /* wgsl */ `
struct Params { count: u32, words: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> src: array<u32>;        // (count) ${srcFormat}
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;  // (count) ${dstFormat}
@group(0) @binding(2) var<uniform> params: Params;
${BITS_WGSL}
@compute @workgroup_size(${CONVERT_WORKGROUP_SIZE}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u,
        @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let w = (wg.y * nwg.x + wg.x) * ${CONVERT_WORKGROUP_SIZE}u + lid.x;  // destination word
  if (w >= params.words) { return; }
  ${body}
}
`;
}

export interface ConvertArgs {
  /** (count) elements in `srcFormat`. */
  src: GPUBuffer;
  srcFormat: WeightFormat;
  /** (count) elements in `dstFormat`; only its first weightBufferBytes(dstFormat, count) bytes are written. */
  dst: GPUBuffer;
  dstFormat: WeightFormat;
  count: number;
  label?: string;
  /** Caps workgroups per grid dimension below the device's limit (to exercise the 2-D grid on small inputs). */
  maxWorkgroupsPerDimension?: number;
}

/** Prepares dst = src converted to dstFormat; record it with `recordDispatches`. Owns a small uniform buffer. */
export function prepareConvert(ctx: GPUContext, args: ConvertArgs): KernelDispatch {
  const { srcFormat, dstFormat, count } = args;
  const label = args.label ?? `convert ${count} ${String(srcFormat)} → ${String(dstFormat)}`;
  const fail = (msg: string): never => {
    throw new GPUValidationError(`convert "${label}": ${msg}`);
  };
  if (!isWeightFormat(srcFormat)) fail(`srcFormat must be one of f32, f16, bf16, got ${String(srcFormat)}.`);
  if (!isWeightFormat(dstFormat)) fail(`dstFormat must be one of f32, f16, bf16, got ${String(dstFormat)}.`);
  if (!Number.isInteger(count) || count < 1 || count > 0xffffffff) fail(`count must be a positive integer, got ${count}.`);
  if (args.src === args.dst) fail(`src and dst are the same buffer ("${args.src.label}"); convert into a separate one.`);

  const words = bytesPerElement(dstFormat) === 4 ? count : Math.ceil(count / 2);
  const bindings = [
    { name: 'src', buffer: args.src, bytes: weightBufferBytes(srcFormat, count), shape: `count ${srcFormat}` },
    { name: 'dst', buffer: args.dst, bytes: weightBufferBytes(dstFormat, count), shape: `count ${dstFormat}` },
  ];
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of bindings) {
    if (b.buffer.size < b.bytes) {
      fail(`buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${count} elements of ${b.shape} need ${b.bytes}.`);
    }
    if (b.bytes > maxBinding) {
      fail(`${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`);
    }
  }
  let workgroups: [number, number, number] = [1, 1, 1];
  try {
    workgroups = grid2d(words, CONVERT_WORKGROUP_SIZE, args.maxWorkgroupsPerDimension ?? ctx.limits.maxComputeWorkgroupsPerDimension);
  } catch (e) {
    fail((e as Error).message);
  }

  const key = convertKey(srcFormat, dstFormat);
  const pipeline = ctx.pipelines.get(key, () => convertSource(srcFormat, dstFormat));
  const { bindGroup, uniform } = bindWithUniform(ctx, pipeline, label, bindings, new Uint32Array([count, words, 0, 0]));
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [uniform] };
}
