/**
 * Block-quantised weights: 4-bit asymmetric ('q4') and 8-bit symmetric ('q8'), quantised on the GPU from an
 * f32/f16/bf16 weight, dequantised on the GPU for tests and debugging. The fused matmuls live in quant-linear.ts.
 *
 * Weight W is (N, K) row-major (nn.Linear.weight). Each row is cut into `blocks = ceil(K / G)` groups of G
 * consecutive elements along K (G = 32 by default, 64 and 128 selectable). When G does not divide K the last group
 * of each row is padded with zeros: a padding element is quantised as w = 0 (q4: q = z, q8: q = 0), so it
 * dequantises to exactly 0, and kernels never read x past K anyway: padding never changes a result.
 *
 * Buffers (all u32 arrays, little-endian, sizes from `quantizedBytes`):
 *
 *   q4 — exactly the bytes of onnxruntime's MatMulNBits (com.microsoft) with bits = 4, block_size = G:
 *     q       [N][blocks][G/2] bytes: element k of a row is nibble k % 2 (low nibble first) of byte k / 2 of its
 *             group, i.e. 8 elements per u32, element 8j in the low nibble of word j. A row is blocks·G/8 words.
 *     scales  (N, blocks) f16, two per u32 (group n·blocks + b in the low half when even); MatMulNBits takes the
 *             same values as its f32 `scales` input [N·blocks].
 *     zeros   [N][ceil(blocks/2)] bytes of uint4 zero points, two groups per byte, low nibble first, each row
 *             starting on a byte (MatMulNBits' `zero_points` [N·ceil(blocks/2)]); a row with an odd number of
 *             groups leaves its last high nibble 0. Buffer length rounded up to 4 bytes.
 *     w ≈ (q − z)·s.
 *   q8 — symmetric, our own format (no zero points):
 *     q       [N][blocks][G] int8, 4 per u32, first element in the low byte. A row is blocks·G/4 words.
 *     scales  (N, blocks) f16 as for q4.
 *     w ≈ q·s. (MatMulNBits with bits = 8 and no zero points reads the same bytes XOR 0x80: uint8 q + 128 with its
 *     default zero point 128.)
 *
 * Quantisation rules, per group (every step in f32, as onnxruntime's MLAS quantizer `MlasQuantizeBlockwise`,
 * `BlockwiseQuantizer<T, G, 4, columnwise>::quantizeAndTranspose` + `range2scalezp` in
 * onnxruntime/core/mlas/lib/q4_dq.cpp, which onnxruntime's `quantize_matmul_4bits` / MatMulNBitsQuantizer use,
 * instantiated with T = MLFloat16 since our scales are f16):
 *
 *   q4:  lo = min(0, min w), hi = max(0, max w)                      (NaN elements are skipped, as `v < min`)
 *        s32 = (hi − lo) / 15                                        f32, correctly rounded division
 *        zf  = s32 ≠ 0 ? −lo / s32 : lo;  z = zf < 0 ? 0 : zf > 15 ? 15 : roundf(zf)
 *        s   = f16(s32) (round to nearest even), the stored scale
 *        r   = s ≠ 0 ? 1 / s : 0                                      reciprocal of the *stored* (f16) scale, f32
 *        q   = clamp(roundf(f32(f32(w·r) + z)), 0, 15)                two roundings, no fma
 *   q8:  a = max |w|;  s32 = a / 127;  s = f16(s32);  r = s ≠ 0 ? 1 / s : 0;  q = clamp(roundf(f32(w·r)), −127, 127)
 *
 *   roundf rounds halves away from zero (C's roundf, which MLAS calls; not round-half-to-even). An all-zero
 *   group gets s = 0 and z = 0 (MLAS' behaviour, not s = 1), which still dequantises to 0. A group whose f32
 *   scale exceeds the f16 range (q4: range above 15·65504) stores s = ∞, r = 0, so q = z.
 *   (An older onnxruntime quantizer, `BlockwiseQuantBlock<T, G, 4>::quant` in
 *   contrib_ops/cpu/quantization/blockwise_quant_block.h, takes r from the unrounded f32 scale; MLAS, which the
 *   current tools call, and we use the stored scale.)
 *
 * Bit-exactness on every WebGPU implementation: WGSL only promises 2.5 ulp for `/` and leaves the rounding of
 * f32 → f16 conversions open, so the kernel divides and converts with integer arithmetic (correctly rounded); `*`,
 * `+` and `-` are correctly rounded in WGSL. Subnormal f32 intermediates (weights below ~1e-37) are flushed to zero,
 * as GPUs may do anyway. The product w·r goes through a bit-or with a uniform zero before the add, so no compiler can
 * contract it with + z into an fma. (onnxruntime built for ARM64 by GCC may contract that expression, so its
 * bytes can differ from these in rare ties; x86-64 builds do not.) Differences from the MLAS quantizer, neither
 * read by MatMulNBits: MLAS leaves the q bytes of a padding element 0 (or stale) and writes 8 into the unused
 * high zero-point nibble of a row with an odd number of groups; we write z and 0.
 *
 * Why rows of W contiguous (MatMulNBits' order) rather than interleaved across rows: the GEMV kernel gives a
 * workgroup a few output columns (rows of W) and lets its threads stride along K, thread t reading u32 word t of
 * the row, so 64 threads read 256 consecutive bytes per row in one coalesced sweep (8 q4 or 4 q8 weights per thread
 * per load), and the group's f16 scale (and nibble zero) sits at one address shared by the G/8 (or G/4) adjacent
 * threads of a group, which real GPUs serve as one broadcast. The tiled GEMM stages 32 × 32 tiles, reading 16
 * consecutive bytes of a row per tile row, and the CPU 'rows' kernel walks one row linearly.
 *
 * Kernels here: `prepareQuantize` (one invocation per (row, group) writing that group's q words, plus one per u32
 * word of scales and of zeros, so no two invocations write one word) and `prepareDequantize` (q → f32, one
 * invocation per element).
 */
import { GPUValidationError } from '../errors.js';
import { align4 } from '../runtime/buffers.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, checkBindings, grid2d, type CheckedBinding as Binding, type KernelDispatch } from './dispatch.js';
import { weightBufferBytes, type WeightFormat } from './weight-format.js';

export type QuantBits = 4 | 8;
export type QuantGroup = 32 | 64 | 128;
export const QUANT_GROUPS: readonly QuantGroup[] = [32, 64, 128];
export const DEFAULT_QUANT_GROUP: QuantGroup = 32;

export interface QuantShape {
  bits: QuantBits;
  N: number;
  K: number;
  /** Group size G along K; default 32. */
  group?: QuantGroup;
}

export interface QuantizedBytes {
  /** Bytes of the packed values, N·blocks·G·bits/8. */
  q: number;
  /** Bytes of the f16 scales, N·blocks·2 rounded up to 4. */
  scales: number;
  /** Bytes of the packed zero points (q4: N·ceil(blocks/2) rounded up to 4; q8: 0). */
  zeros: number;
  /** Groups per row, ceil(K / G). */
  blocks: number;
  /** u32 words per row of q. */
  rowWords: number;
}

/** Byte sizes of the q, scales and zeros buffers of an (N, K) weight. */
export function quantizedBytes(shape: QuantShape): QuantizedBytes {
  const G = shape.group ?? DEFAULT_QUANT_GROUP;
  const blocks = Math.ceil(shape.K / G);
  const rowWords = (blocks * G * shape.bits) / 32;
  return {
    q: shape.N * rowWords * 4,
    scales: align4(shape.N * blocks * 2),
    zeros: shape.bits === 4 ? align4(shape.N * Math.ceil(blocks / 2)) : 0,
    blocks,
    rowWords,
  };
}

/** Validates bits, group, N and K, throwing GPUValidationError through `fail`. */
export function checkQuantShape(
  fail: (msg: string) => never,
  bits: unknown,
  group: unknown,
  dims: readonly (readonly [string, number])[],
): void {
  if (bits !== 4 && bits !== 8) fail(`bits must be 4 or 8, got ${String(bits)}.`);
  if (!QUANT_GROUPS.includes(group as QuantGroup)) fail(`group must be one of ${QUANT_GROUPS.join(', ')}, got ${String(group)}.`);
  for (const [name, v] of dims) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) fail(`${name} must be a positive integer, got ${v}.`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// WGSL helpers shared with quant-linear.ts.

/** `fn f16_to_f32(h: u32) -> f32`: exact, by integer ops (subnormal halves become normal f32s, never flushed). */
export const F16_TO_F32_WGSL = /* wgsl */ `
fn f16_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) { return bitcast<f32>(sign | bitcast<u32>(f32(m) * 5.9604644775390625e-8)); }  // m · 2^-24
  if (e == 31u) { return bitcast<f32>(sign | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}`;

/** WGSL reading the (n, b) group's f16 scale and (q4) zero point from `scales` / `zeros` (dims.blocks, dims.zb). */
export function groupParamsWgsl(bits: QuantBits): string {
  const scale = /* wgsl */ `
fn scale_of(n: u32, b: u32) -> f32 {
  let i = n * dims.blocks + b;
  return f16_to_f32((scales[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu);
}`;
  const zero =
    bits === 4
      ? /* wgsl */ `
fn zero_of(n: u32, b: u32) -> f32 {
  let byte = n * dims.zb + (b >> 1u);
  return f32((zeros[byte >> 2u] >> ((byte & 3u) * 8u + (b & 1u) * 4u)) & 0xfu);
}`
      : `fn zero_of(n: u32, b: u32) -> f32 { return 0.0; }`;
  return `${F16_TO_F32_WGSL}\n${scale}\n${zero}`;
}

/** WGSL `fn qval(word: u32, j: u32) -> f32`: the j-th packed value of a word (q4: 0..15, q8: −127..127). */
export function qvalWgsl(bits: QuantBits): string {
  return bits === 4
    ? `fn qval(word: u32, j: u32) -> f32 { return f32((word >> (j * 4u)) & 0xfu); }`
    : `fn qval(word: u32, j: u32) -> f32 { return f32(bitcast<i32>(word << (24u - j * 8u)) >> 24u); }`;
}

const QUANTIZE_ARITH_WGSL = /* wgsl */ `
// f32 → IEEE binary16 bits, round to nearest even (weight-format.ts f32ToF16Bits, in integer ops).
fn f32_to_f16_bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let sign = (bits >> 16u) & 0x8000u;
  let exp = i32((bits >> 23u) & 0xffu);
  let mant = bits & 0x7fffffu;
  if (exp == 255) { return select(sign | 0x7e00u | (mant >> 13u), sign | 0x7c00u, mant == 0u); }
  let e = exp - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    let m = mant | 0x800000u;
    let shift = u32(14 - e);
    var q = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u) == 1u)) { q += 1u; }
    return sign | q;
  }
  var q = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u) == 1u)) { q += 1u; }
  return sign | q;
}

// a / b correctly rounded (nearest even) for finite a and b ≠ 0 by integer long division (WGSL's / promises only
// 2.5 ulp). Zero or subnormal a, or infinite b, gives a signed zero; infinite a or zero b an infinity; results
// below the normal range flush to zero.
fn div_rn(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let sign = (ua ^ ub) & 0x80000000u;
  let ea = (ua >> 23u) & 0xffu;
  let eb = (ub >> 23u) & 0xffu;
  if (ea == 0u || eb == 255u) { return bitcast<f32>(sign); }
  if (eb == 0u || ea == 255u) { return bitcast<f32>(sign | 0x7f800000u); }
  var r = (ua & 0x7fffffu) | 0x800000u;
  let mb = (ub & 0x7fffffu) | 0x800000u;
  var e = i32(ea) - i32(eb) + 127;
  if (r < mb) { r <<= 1u; e -= 1; }
  var q = 0u;  // 24 quotient bits then a round bit
  for (var i = 0u; i < 25u; i++) {
    q <<= 1u;
    if (r >= mb) { r -= mb; q |= 1u; }
    r <<= 1u;
  }
  var m = q >> 1u;
  if ((q & 1u) == 1u && (r != 0u || (m & 1u) == 1u)) { m += 1u; }
  if (m == 0x1000000u) { m >>= 1u; e += 1; }
  if (e <= 0) { return bitcast<f32>(sign); }
  if (e >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
  return bitcast<f32>(sign | (u32(e) << 23u) | (m & 0x7fffffu));
}

// C's roundf: halves away from zero.
fn round_away(x: f32) -> f32 {
  let t = trunc(x);
  return select(t, t + sign(x), abs(x - t) >= 0.5);
}`;

function loadSrcWgsl(format: WeightFormat): string {
  switch (format) {
    case 'f32':
      return `fn load_src(i: u32) -> f32 { return bitcast<f32>(src[i]); }`;
    case 'f16':
      return `fn load_src(i: u32) -> f32 { return f16_to_f32((src[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu); }`;
    case 'bf16':
      return `fn load_src(i: u32) -> f32 { return bitcast<f32>(((src[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu) << 16u); }`;
  }
}

const QUANTIZE_WG = 64;

interface QuantizeVariant {
  format: WeightFormat;
  bits: QuantBits;
  group: QuantGroup;
}

export function quantizeKey(v: QuantizeVariant): string {
  return `quantize.${v.format}.q${v.bits}g${v.group}.wg${QUANTIZE_WG}`;
}

export function quantizeSource(v: QuantizeVariant): string {
  const { bits, group: G } = v;
  const perWord = 32 / bits;
  const groupWords = G / perWord;
  const params =
    bits === 4
      ? /* wgsl */ `
struct Params { h: u32, zp: u32, recip: f32 }

// Scale bits, zero point and reciprocal of the stored scale of group b of row n (the rules in quant.ts).
fn params(n: u32, b: u32) -> Params {
  let base = n * dims.K;
  let k1 = min(b * G + G, dims.K);
  var lo = 0.0;
  var hi = 0.0;
  for (var k = b * G; k < k1; k++) {
    let v = load_src(base + k);
    if (v < lo) { lo = v; }
    if (v > hi) { hi = v; }
  }
  let s32 = div_rn(hi - lo, 15.0);
  var zf = lo;
  if (s32 != 0.0) { zf = -div_rn(lo, s32); }
  var zp = 0u;
  if (zf > 15.0) { zp = 15u; } else if (zf >= 0.0) { zp = u32(round_away(zf)); }
  let h = f32_to_f16_bits(s32);
  let s = f16_to_f32(h);
  return Params(h, zp, select(0.0, div_rn(1.0, s), s != 0.0));
}

fn quant(v: f32, p: Params) -> u32 {
  let prod = bitcast<f32>(bitcast<u32>(v * p.recip) | dims.zero);  // opaque: never fused with the add
  return u32(clamp(round_away(prod + f32(p.zp)), 0.0, 15.0));
}`
      : /* wgsl */ `
struct Params { h: u32, zp: u32, recip: f32 }

fn params(n: u32, b: u32) -> Params {
  let base = n * dims.K;
  let k1 = min(b * G + G, dims.K);
  var a = 0.0;
  for (var k = b * G; k < k1; k++) {
    let v = abs(load_src(base + k));
    if (v > a) { a = v; }
  }
  let h = f32_to_f16_bits(div_rn(a, 127.0));
  let s = f16_to_f32(h);
  return Params(h, 0u, select(0.0, div_rn(1.0, s), s != 0.0));
}

fn quant(v: f32, p: Params) -> u32 {
  return bitcast<u32>(i32(clamp(round_away(v * p.recip), -127.0, 127.0))) & 0xffu;
}`;

  const zeroRole =
    bits === 4
      ? /* wgsl */ `
  // Role 3: one u32 of zero points = 4 bytes, each two groups of one row.
  j -= dims.S;
  if (j >= dims.Z) { return; }
  var word = 0u;
  for (var c = 0u; c < 4u; c++) {
    let byte = j * 4u + c;
    if (byte >= dims.N * dims.zb) { break; }
    let n = byte / dims.zb;
    let b = (byte % dims.zb) * 2u;
    var v = params(n, b).zp;
    if (b + 1u < dims.blocks) { v |= params(n, b + 1u).zp << 4u; }
    word |= v << (c * 8u);
  }
  zeros[j] = word;`
      : `  return;`;

  return /* wgsl */ `
struct Dims { N: u32, K: u32, blocks: u32, zb: u32, T: u32, S: u32, Z: u32, rowStride: u32, zero: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> src: array<u32>;         // (N, K) ${v.format}
@group(0) @binding(1) var<storage, read_write> q: array<u32>;     // [N][blocks][G·bits/8] bytes
@group(0) @binding(2) var<storage, read_write> scales: array<u32>; // (N, blocks) f16
${bits === 4 ? '@group(0) @binding(3) var<storage, read_write> zeros: array<u32>;  // [N][ceil(blocks/2)] bytes\n@group(0) @binding(4) var<uniform> dims: Dims;' : '@group(0) @binding(3) var<uniform> dims: Dims;'}

const G = ${G}u;
const PER_WORD = ${perWord}u;
const GROUP_WORDS = ${groupWords}u;
const BITS = ${bits}u;

${F16_TO_F32_WGSL}
${QUANTIZE_ARITH_WGSL}
${loadSrcWgsl(v.format)}
${params}

@compute @workgroup_size(${QUANTIZE_WG}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  var j = gid.y * dims.rowStride + gid.x;
  if (j < dims.T) {
    // Role 1: the q words of group j (= n·blocks + b; a group's words are contiguous, rows follow each other).
    let n = j / dims.blocks;
    let b = j % dims.blocks;
    let p = params(n, b);
    let base = n * dims.K;
    for (var w = 0u; w < GROUP_WORDS; w++) {
      var word = 0u;
      for (var e = 0u; e < PER_WORD; e++) {
        let k = b * G + w * PER_WORD + e;
        var v = 0.0;
        if (k < dims.K) { v = load_src(base + k); }
        word |= quant(v, p) << (e * BITS);
      }
      q[j * GROUP_WORDS + w] = word;
    }
    return;
  }
  j -= dims.T;
  if (j < dims.S) {
    // Role 2: one u32 of scales, groups 2j and 2j + 1.
    let g0 = 2u * j;
    var word = params(g0 / dims.blocks, g0 % dims.blocks).h;
    let g1 = g0 + 1u;
    if (g1 < dims.T) { word |= params(g1 / dims.blocks, g1 % dims.blocks).h << 16u; }
    scales[j] = word;
    return;
  }
${zeroRole}
}
`;
}

export interface QuantizeArgs {
  /** (N, K) weight in `srcFormat` (the packing of weight-format.ts). */
  src: GPUBuffer;
  srcFormat: WeightFormat;
  N: number;
  K: number;
  bits: QuantBits;
  /** Group size along K; default 32. */
  group?: QuantGroup;
  /** Output: packed values, `quantizedBytes(...).q` bytes. */
  q: GPUBuffer;
  /** Output: f16 scales, `quantizedBytes(...).scales` bytes. */
  scales: GPUBuffer;
  /** Output, q4 only: packed zero points, `quantizedBytes(...).zeros` bytes. */
  zeros?: GPUBuffer;
  label?: string;
}



/**
 * Prepares the quantisation of an (N, K) weight into q / scales / zeros (the format in this file's header);
 * record it with `recordDispatches`. Owns a small uniform buffer.
 */
export function prepareQuantize(ctx: GPUContext, args: QuantizeArgs): KernelDispatch {
  const { N, K, bits, srcFormat } = args;
  const group = args.group ?? DEFAULT_QUANT_GROUP;
  const label = args.label ?? `quantize ${N}x${K} ${String(srcFormat)} → q${bits}g${group}`;
  const fail = (msg: string): never => {
    throw new GPUValidationError(`quantize "${label}": ${msg}`);
  };
  if (srcFormat !== 'f32' && srcFormat !== 'f16' && srcFormat !== 'bf16') {
    fail(`srcFormat must be one of f32, f16, bf16, got ${String(srcFormat)}.`);
  }
  checkQuantShape(fail, bits, group, [['N', N], ['K', K]]);
  if (bits === 4 && !args.zeros) fail('q4 needs a zeros buffer.');
  if (bits === 8 && args.zeros) fail('q8 is symmetric and takes no zeros buffer.');
  const sizes = quantizedBytes({ bits, N, K, group });
  const T = N * sizes.blocks;
  const zb = Math.ceil(sizes.blocks / 2);
  const S = Math.ceil(T / 2);
  const Z = bits === 4 ? Math.ceil((N * zb) / 4) : 0;
  if (N * K > 0xffffffff || sizes.q / 4 > 0xffffffff) fail(`an ${N}×${K} weight is too large for u32 indexing.`);
  for (const [name, b] of [['q', args.q], ['scales', args.scales], ['zeros', args.zeros]] as const) {
    if (b !== undefined && b === args.src) fail(`${name} and src are the same buffer ("${b.label}").`);
  }
  const bindings: Binding[] = [
    { name: 'src', buffer: args.src, bytes: weightBufferBytes(srcFormat, N * K), shape: `N×K ${srcFormat}` },
    { name: 'q', buffer: args.q, bytes: sizes.q, shape: `N×K q${bits} (group ${group})` },
    { name: 'scales', buffer: args.scales, bytes: sizes.scales, shape: `N×${sizes.blocks} f16 scales` },
  ];
  if (args.zeros) bindings.push({ name: 'zeros', buffer: args.zeros, bytes: sizes.zeros, shape: `N×${zb} bytes of zero points` });
  checkBindings(ctx, fail, bindings);

  const threads = T + S + Z;
  const workgroups = grid2d(threads, QUANTIZE_WG, ctx.limits.maxComputeWorkgroupsPerDimension);
  const variant: QuantizeVariant = { format: srcFormat, bits, group };
  const key = quantizeKey(variant);
  const pipeline = ctx.pipelines.get(key, () => quantizeSource(variant));
  const uniform = new Uint32Array([N, K, sizes.blocks, zb, T, S, Z, workgroups[0] * QUANTIZE_WG, 0, 0, 0, 0]);
  const { bindGroup, uniform: ub } = bindWithUniform(ctx, pipeline, label, bindings, uniform);
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [ub] };
}

export interface DequantizeArgs {
  q: GPUBuffer;
  scales: GPUBuffer;
  /** q4 only. */
  zeros?: GPUBuffer;
  bits: QuantBits;
  group?: QuantGroup;
  N: number;
  K: number;
  /** Output: (N, K) f32, the first N·K elements written. */
  out: GPUBuffer;
  label?: string;
}

const DEQUANT_WG = 64;

export function dequantizeSource(bits: QuantBits, G: QuantGroup): string {
  const perWord = 32 / bits;
  return /* wgsl */ `
struct Dims { N: u32, K: u32, blocks: u32, zb: u32, rowWords: u32, rowStride: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> q: array<u32>;
@group(0) @binding(1) var<storage, read> scales: array<u32>;
${bits === 4 ? '@group(0) @binding(2) var<storage, read> zeros: array<u32>;\n@group(0) @binding(3) var<storage, read_write> out: array<f32>;\n@group(0) @binding(4) var<uniform> dims: Dims;' : '@group(0) @binding(2) var<storage, read_write> out: array<f32>;\n@group(0) @binding(3) var<uniform> dims: Dims;'}

const G = ${G}u;
const PER_WORD = ${perWord}u;

${groupParamsWgsl(bits)}
${qvalWgsl(bits)}

@compute @workgroup_size(${DEQUANT_WG}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * dims.rowStride + gid.x;
  if (i >= dims.N * dims.K) { return; }
  let n = i / dims.K;
  let k = i % dims.K;
  let b = k / G;
  let v = qval(q[n * dims.rowWords + k / PER_WORD], k % PER_WORD);
  out[i] = (v - zero_of(n, b)) * scale_of(n, b);
}
`;
}

/** Prepares q → (N, K) f32 (exact: (q − z)·s needs at most 19 significant bits). For tests and debugging. */
export function prepareDequantize(ctx: GPUContext, args: DequantizeArgs): KernelDispatch {
  const { N, K, bits } = args;
  const group = args.group ?? DEFAULT_QUANT_GROUP;
  const label = args.label ?? `dequantize ${N}x${K} q${bits}g${group}`;
  const fail = (msg: string): never => {
    throw new GPUValidationError(`dequantize "${label}": ${msg}`);
  };
  checkQuantShape(fail, bits, group, [['N', N], ['K', K]]);
  if (bits === 4 && !args.zeros) fail('q4 needs a zeros buffer.');
  if (bits === 8 && args.zeros) fail('q8 is symmetric and takes no zeros buffer.');
  if (N * K > 0xffffffff) fail(`an ${N}×${K} weight is too large for u32 indexing.`);
  const sizes = quantizedBytes({ bits, N, K, group });
  for (const [name, b] of [['q', args.q], ['scales', args.scales], ['zeros', args.zeros]] as const) {
    if (b !== undefined && b === args.out) fail(`${name} and out are the same buffer ("${b.label}").`);
  }
  const bindings: Binding[] = [
    { name: 'q', buffer: args.q, bytes: sizes.q, shape: `N×K q${bits} (group ${group})` },
    { name: 'scales', buffer: args.scales, bytes: sizes.scales, shape: `N×${sizes.blocks} f16 scales` },
  ];
  if (args.zeros) {
    bindings.push({ name: 'zeros', buffer: args.zeros, bytes: sizes.zeros, shape: `N×${Math.ceil(sizes.blocks / 2)} bytes of zero points` });
  }
  bindings.push({ name: 'out', buffer: args.out, bytes: N * K * 4, shape: 'N×K f32' });
  checkBindings(ctx, fail, bindings);
  const workgroups = grid2d(N * K, DEQUANT_WG, ctx.limits.maxComputeWorkgroupsPerDimension);
  const key = `dequantize.q${bits}g${group}.wg${DEQUANT_WG}`;
  const pipeline = ctx.pipelines.get(key, () => dequantizeSource(bits, group));
  const uniform = new Uint32Array([N, K, sizes.blocks, Math.ceil(sizes.blocks / 2), sizes.rowWords, workgroups[0] * DEQUANT_WG, 0, 0]);
  const { bindGroup, uniform: ub } = bindWithUniform(ctx, pipeline, label, bindings, uniform);
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [ub] };
}
