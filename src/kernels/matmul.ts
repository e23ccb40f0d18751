/**
 * Matrix product in the Hugging Face Linear layout: y = x · Wᵀ.
 *
 *   x: (M, K) f32, row-major      activations, one row per token
 *   W: (N, K) f32, row-major      nn.Linear.weight as stored in the checkpoint ([out_features, in_features])
 *   y: (M, N) f32, row-major
 *
 * Tiled GEMM: each 8×8 workgroup computes a 32×32 tile of y; each thread a 4×4 block (rows lid.y + 8i, columns
 * lid.x + 8j, strided so neighbouring threads read neighbouring shared-memory words). x and W tiles of 32 along K
 * are staged in workgroup memory, both read along K, so no transpose of W is ever needed. Accumulates in f32.
 *
 * Bindings (group 0): 0 x (storage, read) · 1 W (storage, read) · 2 y (storage, read_write) · 3 dims (uniform).
 */
import { GPUValidationError } from '../errors.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, type KernelDispatch } from './dispatch.js';

const TILE_M = 32;
const TILE_N = 32;

export const MATMUL_F32_KEY = 'matmul.f32.tiled32';

export function matmulF32Source(): string {
  return /* wgsl */ `
struct Dims { M: u32, N: u32, K: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;        // (M, K)
@group(0) @binding(1) var<storage, read> w: array<f32>;        // (N, K)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // (M, N)
@group(0) @binding(3) var<uniform> dims: Dims;

const TM = 32u;
const TN = 32u;
const TK = 32u;
const THREADS = 64u;

var<workgroup> xs: array<f32, 1024>;  // (TM, TK) tile of x
var<workgroup> ws: array<f32, 1024>;  // (TN, TK) tile of W

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wg: vec3u,
        @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let M = dims.M;
  let N = dims.N;
  let K = dims.K;
  let m0 = wg.y * TM;
  let n0 = wg.x * TN;

  var acc: array<array<f32, 4>, 4>;  // acc[i][j] = y[m0 + lid.y + 8i, n0 + lid.x + 8j]
  for (var k0 = 0u; k0 < K; k0 += TK) {
    // Stage the tiles; out-of-range elements are zero so they add nothing.
    for (var e = li; e < TM * TK; e += THREADS) {
      let r = e / TK;
      let c = e % TK;
      let k = k0 + c;
      var xv = 0.0;
      if (m0 + r < M && k < K) { xv = x[(m0 + r) * K + k]; }
      xs[e] = xv;
      var wv = 0.0;
      if (n0 + r < N && k < K) { wv = w[(n0 + r) * K + k]; }
      ws[e] = wv;
    }
    workgroupBarrier();
    for (var c = 0u; c < TK; c++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = xs[(lid.y + 8u * i) * TK + c]; }
      for (var j = 0u; j < 4u; j++) { b[j] = ws[(lid.x + 8u * j) * TK + c]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + 8u * i;
    if (m >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + 8u * j;
      if (n < N) { y[m * N + n] = acc[i][j]; }
    }
  }
}
`;
}

export interface MatmulArgs {
  /** (M, K) f32 activations. */
  x: GPUBuffer;
  /** (N, K) f32 weight, Hugging Face Linear layout. */
  w: GPUBuffer;
  /** (M, N) f32 output; only its first M·N elements are written. */
  y: GPUBuffer;
  M: number;
  N: number;
  K: number;
  /** What this product is, for the dispatch ledger and error messages. */
  label?: string;
}

/** Prepares y = x · Wᵀ; record it with `recordDispatches`. The dispatch owns a small uniform buffer. */
export function prepareMatmulF32(ctx: GPUContext, args: MatmulArgs): KernelDispatch {
  const { M, N, K } = args;
  const label = args.label ?? `matmul ${M}x${K} · (${N}x${K})ᵀ`;
  for (const [name, v] of [['M', M], ['N', N], ['K', K]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) {
      throw new GPUValidationError(`matmul "${label}": ${name} must be a positive integer, got ${v}.`);
    }
  }
  const bindings = [
    { name: 'x', buffer: args.x, bytes: M * K * 4, shape: 'M×K' },
    { name: 'W', buffer: args.w, bytes: N * K * 4, shape: 'N×K' },
    { name: 'y', buffer: args.y, bytes: M * N * 4, shape: 'M×N' },
  ];
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of bindings) {
    if (b.buffer.size < b.bytes) {
      throw new GPUValidationError(
        `matmul "${label}": buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} f32 needs ${b.bytes}.`,
      );
    }
    if (b.bytes > maxBinding) {
      throw new GPUValidationError(
        `matmul "${label}": ${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`,
      );
    }
  }
  const workgroups: [number, number, number] = [Math.ceil(N / TILE_N), Math.ceil(M / TILE_M), 1];
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups[0] > maxGroups || workgroups[1] > maxGroups) {
    throw new GPUValidationError(
      `matmul "${label}": a ${M}×${N} output needs ${workgroups[0]}×${workgroups[1]} workgroups, above this GPU's limit of ${maxGroups} per dimension.`,
    );
  }

  const pipeline = ctx.pipelines.get(MATMUL_F32_KEY, matmulF32Source);
  const { bindGroup, uniform } = bindWithUniform(ctx, pipeline, label, bindings, new Uint32Array([M, N, K, 0]));
  return { kernel: MATMUL_F32_KEY, label, pipeline, bindGroup, workgroups, owned: [uniform] };
}
