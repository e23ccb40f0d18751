/**
 * Linear layer on a block-quantised weight (the q4 / q8 format of quant.ts), dequantised on the fly:
 *
 *   y = x · dequant(W)ᵀ (+ bias) (+ residual)
 *
 * The contract is prepareLinear's (linear.ts): x (M, K) f32; W (N, K) as q + scales (+ zeros for q4); bias (N) f32;
 * residual (M, N) f32, a buffer other than y, default placement only; y[m·yStride + yOffset + n], default
 * yStride = N, yOffset = 0, elements outside the placed columns untouched. Every weight is dequantised exactly
 * ((q − z)·s is exact in f32) and products are accumulated in f32.
 *
 * Kernels, chosen as linear's (`quantLinearKernelKind`): one unit = one u32 word of q (8 q4 or 4 q8 weights, all in
 * one group since G is a multiple of 8), with the group's f16 scale and zero point looked up per word.
 *
 *   'gemv' (M ≤ 8, decode on GPUs): a 64-thread workgroup computes COLS = 4 output columns for all M rows; thread t
 *     reads words t, t + 64, … of each of the 4 rows of W (coalesced: 64 threads read 256 consecutive bytes of a
 *     row) and uses each dequantised word for all M rows; partial sums are reduced in workgroup memory.
 *   'gemm' (M > 8, prefill on GPUs): the 32 × 32-tiled GEMM of linear.ts with W dequantised as it is staged.
 *   'rows' (CPU adapters such as SwiftShader, `ctx.adapter.cpu`): one invocation per output element walking its
 *     row of q; no workgroup memory, no barrier.
 *
 * Bindings (group 0): 0 x · 1 q · 2 y · 3 dims (uniform) · 4 bias (when fused) · 5 residual (when fused) ·
 * 6 scales · 7 zeros (q4).
 */
import { GPUValidationError } from '../errors.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { checkBindings, type KernelDispatch } from './dispatch.js';
import {
  GEMV_COLS,
  GEMV_WG,
  ROWS_WG,
  TILE,
  gemmMainWgsl,
  gemvMainWgsl,
  linearDispatch,
  linearIO,
  linearKernelKind,
  linearWorkgroups,
  type LinearIO,
  type LinearKernelKind,
} from './linear.js';
import {
  DEFAULT_QUANT_GROUP,
  checkQuantShape,
  groupParamsWgsl,
  qvalWgsl,
  quantizedBytes,
  type QuantBits,
  type QuantGroup,
} from './quant.js';


export type QuantLinearKernelKind = LinearKernelKind;

/** The kernel for an M-row product, as `linearKernelKind`. */
export function quantLinearKernelKind(M: number, cpu = false): QuantLinearKernelKind {
  return linearKernelKind(M, cpu);
}

export interface QuantLinearVariant {
  kind: QuantLinearKernelKind;
  bits: QuantBits;
  group: QuantGroup;
  bias: boolean;
  residual: boolean;
}

export function quantLinearKey(v: QuantLinearVariant): string {
  const epilogue = `${v.bias ? '.bias' : ''}${v.residual ? '.residual' : ''}`;
  const shape = v.kind === 'gemv' ? `wg${GEMV_WG}c${GEMV_COLS}` : v.kind === 'rows' ? `wg${ROWS_WG}` : `tiled${TILE}`;
  return `quant-linear.${v.kind}.q${v.bits}g${v.group}${epilogue}.yplaced.${shape}`;
}

function epilogue(v: QuantLinearVariant, acc: string): string {
  return `${acc}${v.bias ? ' + bias[n]' : ''}${v.residual ? ' + residual[m * N + n]' : ''}`;
}

function header(v: QuantLinearVariant): string {
  return /* wgsl */ `struct Dims { M: u32, N: u32, K: u32, yStride: u32, yOffset: u32, rowStride: u32, blocks: u32, zb: u32, rowWords: u32, units: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;        // (M, K)
@group(0) @binding(1) var<storage, read> q: array<u32>;        // (N, rowWords) packed q${v.bits}
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // (M, N) at m * yStride + yOffset + n
@group(0) @binding(3) var<uniform> dims: Dims;
${v.bias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;      // (N)' : ''}
${v.residual ? '@group(0) @binding(5) var<storage, read> residual: array<f32>;  // (M, N)' : ''}
@group(0) @binding(6) var<storage, read> scales: array<u32>;   // (N, blocks) f16
${v.bits === 4 ? '@group(0) @binding(7) var<storage, read> zeros: array<u32>;    // [N][ceil(blocks/2)] uint4' : ''}

const G = ${v.group}u;
const PER_WORD = ${32 / v.bits}u;          // weights per u32 word
const GROUP_WORDS = ${v.group / (32 / v.bits)}u;  // words per group

${groupParamsWgsl(v.bits)}
${qvalWgsl(v.bits)}`;
}

/** WGSL: `struct U` (one word's worth of values) with `w_unit(n, u)`, `x_unit(m, u)` and `dot_unit(a, b)`. */
function unitWgsl(bits: QuantBits): string {
  if (bits === 4) {
    return /* wgsl */ `
struct U { a: vec4f, b: vec4f }

fn w_unit(n: u32, u: u32) -> U {
  let word = q[n * dims.rowWords + u];
  let g = u / GROUP_WORDS;
  let s = scale_of(n, g);
  let z = vec4f(zero_of(n, g));
  let a = vec4f(qval(word, 0u), qval(word, 1u), qval(word, 2u), qval(word, 3u));
  let b = vec4f(qval(word, 4u), qval(word, 5u), qval(word, 6u), qval(word, 7u));
  return U((a - z) * s, (b - z) * s);
}

fn x_unit(m: u32, u: u32) -> U {
  let k = u * 8u;
  let base = m * dims.K + k;
  if (k + 8u <= dims.K) {
    return U(vec4f(x[base], x[base + 1u], x[base + 2u], x[base + 3u]),
             vec4f(x[base + 4u], x[base + 5u], x[base + 6u], x[base + 7u]));
  }
  var v: array<f32, 8>;
  for (var j = 0u; j < 8u; j++) { if (k + j < dims.K) { v[j] = x[base + j]; } }
  return U(vec4f(v[0], v[1], v[2], v[3]), vec4f(v[4], v[5], v[6], v[7]));
}

fn dot_unit(p: U, r: U) -> f32 { return dot(p.a, r.a) + dot(p.b, r.b); }`;
  }
  return /* wgsl */ `
struct U { a: vec4f }

fn w_unit(n: u32, u: u32) -> U {
  let word = q[n * dims.rowWords + u];
  let s = scale_of(n, u / GROUP_WORDS);
  return U(vec4f(qval(word, 0u), qval(word, 1u), qval(word, 2u), qval(word, 3u)) * s);
}

fn x_unit(m: u32, u: u32) -> U {
  let k = u * 4u;
  let base = m * dims.K + k;
  if (k + 4u <= dims.K) { return U(vec4f(x[base], x[base + 1u], x[base + 2u], x[base + 3u])); }
  var v = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) { if (k + j < dims.K) { v[j] = x[base + j]; } }
  return U(v);
}

fn dot_unit(p: U, r: U) -> f32 { return dot(p.a, r.a); }`;
}

function gemvSource(v: QuantLinearVariant): string {
  return /* wgsl */ `
${header(v)}
${unitWgsl(v.bits)}
${gemvMainWgsl({ units: 'dims.units', unitType: 'U', epilogue: (acc) => epilogue(v, acc) })}`;
}

function gemmSource(v: QuantLinearVariant): string {
  return /* wgsl */ `
${header(v)}

fn load_w(n: u32, k: u32) -> f32 {
  let g = k / G;
  return (qval(q[n * dims.rowWords + k / PER_WORD], k % PER_WORD) - zero_of(n, g)) * scale_of(n, g);
}
${gemmMainWgsl({ weight: (n, k) => `load_w(${n}, ${k})`, epilogue: (acc) => epilogue(v, acc) })}`;
}

function rowsSource(v: QuantLinearVariant): string {
  return /* wgsl */ `
${header(v)}
${unitWgsl(v.bits)}

@compute @workgroup_size(${ROWS_WG}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let N = dims.N;
  let i = gid.y * dims.rowStride + gid.x;  // one invocation per output element, n fastest
  if (i >= dims.M * N) { return; }
  let m = i / N;
  let n = i % N;
  var acc = 0.0;
  for (var u = 0u; u < dims.units; u++) { acc += dot_unit(x_unit(m, u), w_unit(n, u)); }
  y[m * dims.yStride + dims.yOffset + n] = ${epilogue(v, 'acc')};
}
`;
}

export function quantLinearSource(v: QuantLinearVariant): string {
  switch (v.kind) {
    case 'gemv':
      return gemvSource(v);
    case 'gemm':
      return gemmSource(v);
    case 'rows':
      return rowsSource(v);
  }
}

export interface QuantLinearArgs extends LinearIO {
  /** Packed values of the (N, K) weight (quant.ts), `quantizedBytes(...).q` bytes. */
  q: GPUBuffer;
  /** f16 scales (N, blocks). */
  scales: GPUBuffer;
  /** q4 only: packed uint4 zero points. */
  zeros?: GPUBuffer;
  bits: QuantBits;
  /** Group size along K; default 32. */
  group?: QuantGroup;
  label?: string;
  /** Force a kernel; default `quantLinearKernelKind(M, ctx.adapter.cpu)`. */
  kernel?: QuantLinearKernelKind;
}

/** Prepares y = x · dequant(W)ᵀ (+ bias) (+ residual); record it with `recordDispatches`. Owns a small uniform. */
export function prepareQuantLinear(ctx: GPUContext, args: QuantLinearArgs): KernelDispatch {
  const { M, N, K, bits } = args;
  const group = args.group ?? DEFAULT_QUANT_GROUP;
  const label = args.label ?? `quant-linear ${M}x${K} · (${N}x${K} q${String(bits)}g${String(group)})ᵀ`;
  const fail = (msg: string): never => {
    throw new GPUValidationError(`quant-linear "${label}": ${msg}`);
  };
  checkQuantShape(fail, bits, group, [['M', M], ['N', N], ['K', K]]);
  if (bits === 4 && !args.zeros) fail('q4 needs a zeros buffer.');
  if (bits === 8 && args.zeros) fail('q8 is symmetric and takes no zeros buffer.');
  const { yStride, yOffset, bindings } = linearIO(fail, args, [
    ['q', args.q],
    ['scales', args.scales],
    ['zeros', args.zeros],
  ]);
  const sizes = quantizedBytes({ bits, N, K, group });
  const zb = Math.ceil(sizes.blocks / 2);
  bindings.push({ name: 'q', binding: 1, buffer: args.q, bytes: sizes.q, shape: `N×K q${bits} (group ${group})` });
  bindings.push({ name: 'scales', binding: 6, buffer: args.scales, bytes: sizes.scales, shape: `N×${sizes.blocks} f16 scales` });
  if (args.zeros) bindings.push({ name: 'zeros', binding: 7, buffer: args.zeros, bytes: sizes.zeros, shape: `N×${zb} bytes of zero points` });
  checkBindings(ctx, fail, bindings);

  const kind = args.kernel ?? quantLinearKernelKind(M, ctx.adapter.cpu);
  const workgroups = linearWorkgroups(ctx, fail, kind, M, N);
  const variant: QuantLinearVariant = { kind, bits, group, bias: !!args.bias, residual: !!args.residual };
  const key = quantLinearKey(variant);
  const pipeline = ctx.pipelines.get(key, () => quantLinearSource(variant));
  const perWord = 32 / bits;
  const dims = new Uint32Array([M, N, K, yStride, yOffset, workgroups[0] * ROWS_WG, sizes.blocks, zb, sizes.rowWords, Math.ceil(K / perWord), 0, 0]);
  return linearDispatch(ctx, key, pipeline, label, bindings, dims, workgroups);
}
