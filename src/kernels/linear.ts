/**
 * Linear layer in the Hugging Face layout with optional fused epilogue:
 *
 *   y = x · Wᵀ (+ bias) (+ residual)
 *
 *   x:        (M, K) f32, row-major      activations, one row per token
 *   W:        (N, K) in any WeightFormat  nn.Linear.weight ([out_features, in_features]), packed as in weight-format.ts
 *   bias:     (N) f32, optional
 *   residual: (M, N) f32, optional, a separate read-only buffer (WebGPU cannot bind one buffer both read and
 *             read_write in a dispatch, so `residual` must not be `y`; a residual stream is updated by writing
 *             y into a second buffer and swapping the two between layers)
 *   y:        (M, N) f32 placed at y[m·yStride + yOffset + n] (default yStride = N, yOffset = 0: row-major,
 *             only the first M·N elements written). Other placements let a weight split by rows (an lm_head of
 *             150k rows held in two buffers) write each part's column range of one (M, vocab) logits buffer:
 *             part j is a linear with N = its rows, yStride = vocab, yOffset = its first row. Elements of y
 *             outside the placed columns are left untouched. Residual needs the default placement.
 *
 * Accumulates in f32 whatever the storage format of W. Three kernels, chosen by M and the adapter (`linearKernelKind`):
 *
 *   'gemv' (M ≤ 8, decode): each 64-thread workgroup computes COLS = 4 output columns n for all M rows. Threads
 *     stride K reading W a unit at a time (a vec4f when W is f32 and K % 4 = 0, one u32 word = two elements
 *     when W is f16/bf16 and K is even, else one element through the format loader), and every loaded unit is
 *     used for all M rows. Partial sums are reduced in workgroup memory.
 *   'gemm' (M > 8, prefill): the tiled GEMM of matmul.ts (32×32 tiles, 4×4 per thread) with W staged through
 *     the format loader.
 *   'rows' (any M, on CPU adapters such as SwiftShader): one invocation per output element, walking its row of W
 *     and of x a unit at a time; no workgroup memory and no barrier. A CPU runs each invocation's loop over
 *     contiguous memory, while the barriers of the other two kernels cost a coroutine switch per invocation
 *     (measured on SwiftShader, 1×256 · (4096×256)ᵀ: 610 ms for 'gemv', 10 ms for 'rows'). On a GPU its reads are
 *     uncoalesced, so GPUs never get it.
 *
 * Bindings (group 0): 0 x (storage, read) · 1 W (storage, read) · 2 y (storage, read_write) · 3 dims (uniform:
 * M, N, K, yStride, yOffset, 3 × pad; 32 bytes) · 4 bias (storage, read; when fused) · 5 residual (storage, read;
 * when fused).
 */
import { GPUValidationError } from '../errors.js';
import { createBuffer, UNIFORM, COPY_DST, writeBuffer } from '../runtime/buffers.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { checkBindings, grid2d, type CheckedBinding, type KernelDispatch } from './dispatch.js';
import { isWeightFormat, loadWeightWgsl, weightBindingWgsl, weightBufferBytes, type WeightFormat } from './weight-format.js';

/** Largest M served by the GEMV kernel. */
export const LINEAR_GEMV_MAX_M = 8;
// The tiling, shared with quant-linear.ts (linearWorkgroups sizes both kernels' grids from it).
export const GEMV_WG = 64;
export const GEMV_COLS = 4;
export const TILE = 32;
export const ROWS_WG = 64;

export type LinearKernelKind = 'gemv' | 'gemm' | 'rows';

/** How the GEMV kernel reads W: elements per unit. */
type GemvUnit = 1 | 2 | 4;

export interface LinearVariant {
  kind: LinearKernelKind;
  format: WeightFormat;
  bias: boolean;
  residual: boolean;
  /** GEMV and rows: elements of W read per load (depends on format and whether K is a multiple of it). */
  unit?: GemvUnit;
}

/** The kernel for an M-row product; `cpu`: the adapter is a CPU implementation (`ctx.adapter.cpu`). */
export function linearKernelKind(M: number, cpu = false): LinearKernelKind {
  if (cpu) return 'rows';
  return M <= LINEAR_GEMV_MAX_M ? 'gemv' : 'gemm';
}

function gemvUnit(format: WeightFormat, K: number): GemvUnit {
  switch (format) {
    case 'f32':
      return K % 4 === 0 ? 4 : 1;
    case 'f16':
    case 'bf16':
      return K % 2 === 0 ? 2 : 1;
  }
}

export function linearKey(v: LinearVariant): string {
  const epilogue = `${v.bias ? '.bias' : ''}${v.residual ? '.residual' : ''}`;
  const shape =
    v.kind === 'gemv' ? `wg${GEMV_WG}c${GEMV_COLS}u${v.unit ?? 1}` : v.kind === 'rows' ? `wg${ROWS_WG}u${v.unit ?? 1}.chain` : `tiled${TILE}`;
  // `yplaced`: y is written at m·yStride + yOffset + n (the dims uniform carries both).
  return `linear.${v.kind}.${v.format}${epilogue}.yplaced.${shape}`;
}

function epilogueBindings(v: LinearVariant): string {
  return [
    v.bias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;      // (N)' : '',
    v.residual ? '@group(0) @binding(5) var<storage, read> residual: array<f32>;  // (M, N)' : '',
  ].join('\n');
}

/** WGSL expression: the finished value of y[m, n] from the accumulated product `acc`. */
function epilogue(v: LinearVariant, acc: string): string {
  return `${acc}${v.bias ? ' + bias[n]' : ''}${v.residual ? ' + residual[m * N + n]' : ''}`;
}

function weightDecl(v: LinearVariant): string {
  if (v.kind !== 'gemm' && v.unit === 4) {
    return '@group(0) @binding(1) var<storage, read> w: array<vec4f>;  // (N, K/4)';
  }
  return `${weightBindingWgsl(v.format, 1, 'w')}  // (N, K) ${v.format}`;
}

/** WGSL `fn w_unit(n: u32, u: u32) -> vec4f`: unit u of W's row n, padded with zeros. */
function loadUnitWgsl(v: LinearVariant): string {
  switch (v.unit) {
    case 4:
      return `fn w_unit(n: u32, u: u32) -> vec4f { return w[n * (dims.K / 4u) + u]; }`;
    case 2: {
      const body =
        v.format === 'f16'
          ? 'return vec4f(unpack2x16float(p), 0.0, 0.0);'
          : 'return vec4f(bitcast<f32>(p << 16u), bitcast<f32>(p & 0xffff0000u), 0.0, 0.0);';
      return `fn w_unit(n: u32, u: u32) -> vec4f {\n  let p = w[n * (dims.K / 2u) + u];\n  ${body}\n}`;
    }
    default:
      return `${loadWeightWgsl(v.format, 'w')}\nfn w_unit(n: u32, u: u32) -> vec4f { return vec4f(load_w(n * dims.K + u), 0.0, 0.0, 0.0); }`;
  }
}

function xUnitWgsl(unit: GemvUnit): string {
  const parts = ['x[b]', 'x[b + 1u]', 'x[b + 2u]', 'x[b + 3u]'].slice(0, unit);
  while (parts.length < 4) parts.push('0.0');
  return `fn x_unit(m: u32, u: u32) -> vec4f {\n  let b = m * dims.K + u * ${unit}u;\n  return vec4f(${parts.join(', ')});\n}`;
}

/** The dims uniform and bindings every linear kernel shares (rowStride: the 'rows' kernel's 2-D grid width). */
function linearHeader(v: LinearVariant): string {
  return /* wgsl */ `struct Dims { M: u32, N: u32, K: u32, yStride: u32, yOffset: u32, rowStride: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;        // (M, K)
${weightDecl(v)}
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // (M, N) at m * yStride + yOffset + n
@group(0) @binding(3) var<uniform> dims: Dims;
${epilogueBindings(v)}`;
}

/**
 * The GEMV kernel's shared part (float and quantized weights): workgroup memory, constants and the entry point. A
 * workgroup computes COLS output columns for all M ≤ MAXM rows; thread t takes units t, t + WG, … of the row (a unit:
 * a few consecutive weights read together). The caller defines `x_unit(m, u)`, `w_unit(n, u)` (both of `unitType`)
 * and `dot_unit(a, b)`.
 */
export function gemvMainWgsl(o: { units: string; unitType: string; epilogue: (acc: string) => string }): string {
  const slots = GEMV_COLS * LINEAR_GEMV_MAX_M;
  return /* wgsl */ `
const WG = ${GEMV_WG}u;
const COLS = ${GEMV_COLS}u;
const MAXM = ${LINEAR_GEMV_MAX_M}u;
const SLOTS = ${slots}u;  // COLS × MAXM partial sums per thread

var<workgroup> red: array<f32, ${GEMV_WG * slots}>;  // red[t * SLOTS + c * MAXM + m]

@compute @workgroup_size(${GEMV_WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let M = dims.M;
  let N = dims.N;
  let units = ${o.units};
  let n0 = wg.x * COLS;

  var acc: array<f32, ${slots}>;  // acc[c * MAXM + m]
  for (var u = t; u < units; u += WG) {
    var xs: array<${o.unitType}, ${LINEAR_GEMV_MAX_M}>;
    for (var m = 0u; m < M; m++) { xs[m] = x_unit(m, u); }
    for (var c = 0u; c < COLS; c++) {
      let n = n0 + c;
      if (n >= N) { break; }
      let wv = w_unit(n, u);
      for (var m = 0u; m < M; m++) { acc[c * MAXM + m] += dot_unit(xs[m], wv); }
    }
  }

  for (var e = 0u; e < SLOTS; e++) { red[t * SLOTS + e] = acc[e]; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      for (var e = 0u; e < SLOTS; e++) { red[t * SLOTS + e] += red[(t + s) * SLOTS + e]; }
    }
    workgroupBarrier();
  }

  if (t < SLOTS) {
    let c = t / MAXM;
    let m = t % MAXM;
    let n = n0 + c;
    if (m < M && n < N) { y[m * dims.yStride + dims.yOffset + n] = ${o.epilogue('red[t]')}; }
  }
}
`;
}

function gemvSource(v: LinearVariant): string {
  const unit = v.unit ?? 1;
  return /* wgsl */ `
${linearHeader(v)}

${loadUnitWgsl(v)}
${xUnitWgsl(unit)}
fn dot_unit(a: vec4f, b: vec4f) -> f32 { return dot(a, b); }
${gemvMainWgsl({ units: `dims.K / ${unit}u`, unitType: 'vec4f', epilogue: (acc) => epilogue(v, acc) })}`;
}

/**
 * The tiled GEMM's shared part: 32 × 32 tiles of x and W staged in workgroup memory, 8 × 8 threads each computing
 * 4 × 4 outputs. `weight(n, k)` is the WGSL expression of W[n, k] as f32 (a float load, or a dequantisation).
 */
export function gemmMainWgsl(o: { weight: (n: string, k: string) => string; epilogue: (acc: string) => string }): string {
  return /* wgsl */ `
const TM = ${TILE}u;
const TN = ${TILE}u;
const TK = ${TILE}u;
const THREADS = 64u;

var<workgroup> xs: array<f32, ${TILE * TILE}>;  // (TM, TK) tile of x
var<workgroup> ws: array<f32, ${TILE * TILE}>;  // (TN, TK) tile of W

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
    for (var e = li; e < TM * TK; e += THREADS) {
      let r = e / TK;
      let c = e % TK;
      let k = k0 + c;
      var xv = 0.0;
      if (m0 + r < M && k < K) { xv = x[(m0 + r) * K + k]; }
      xs[e] = xv;
      var wv = 0.0;
      if (n0 + r < N && k < K) { wv = ${o.weight('n0 + r', 'k')}; }
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
      if (n < N) { y[m * dims.yStride + dims.yOffset + n] = ${o.epilogue('acc[i][j]')}; }
    }
  }
}
`;
}

function gemmSource(v: LinearVariant): string {
  return /* wgsl */ `
${linearHeader(v)}

${loadWeightWgsl(v.format, 'w')}
${gemmMainWgsl({ weight: (n, k) => `load_w((${n}) * K + ${k})`, epilogue: (acc) => epilogue(v, acc) })}`;
}

function rowsSource(v: LinearVariant): string {
  const unit = v.unit ?? 1;
  return /* wgsl */ `
${linearHeader(v)}

${loadUnitWgsl(v)}
${xUnitWgsl(unit)}

@compute @workgroup_size(${ROWS_WG}, 1, 1)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let N = dims.N;
  let i = g.y * dims.rowStride + g.x;   // one invocation per output element, n fastest
  if (i >= dims.M * N) { return; }
  let m = i / N;
  let n = i % N;
  let units = dims.K / ${unit}u;
  // One fma chain in k order whatever the unit, so a weight gives the same sum stored as f32, f16 or bf16.
  var acc = 0.0;
  for (var u = 0u; u < units; u++) {
    let xv = x_unit(m, u);
    let wv = w_unit(n, u);
    ${['acc = fma(xv.x, wv.x, acc);', 'acc = fma(xv.y, wv.y, acc);', 'acc = fma(xv.z, wv.z, acc);', 'acc = fma(xv.w, wv.w, acc);'].slice(0, unit).join('\n    ')}
  }
  y[m * dims.yStride + dims.yOffset + n] = ${epilogue(v, 'acc')};
}
`;
}

export function linearSource(v: LinearVariant): string {
  switch (v.kind) {
    case 'gemv':
      return gemvSource(v);
    case 'rows':
      return rowsSource(v);
    case 'gemm':
      return gemmSource(v);
  }
}

/** What every linear dispatch (float or quantized) shares: activations, output placement, bias and residual. */
export interface LinearIO {
  /** (M, K) f32 activations. */
  x: GPUBuffer;
  /**
   * f32 output: element (m, n) goes to y[m·yStride + yOffset + n]; by default (M, N) row-major, only its first
   * M·N elements written. Must not be `x`, a weight, `bias` or `residual`.
   */
  y: GPUBuffer;
  M: number;
  N: number;
  K: number;
  /** (N) f32, added to every row. */
  bias?: GPUBuffer;
  /** (M, N) f32, added element-wise; a buffer other than `y`. Only with the default y placement. */
  residual?: GPUBuffer;
  /** Elements between consecutive rows of y; default N, at least yOffset + N. */
  yStride?: number;
  /** Element offset in y of column 0 of every row; default 0. */
  yOffset?: number;
}

export interface LinearArgs extends LinearIO {
  /** (N, K) weight in `format`, Hugging Face Linear layout. */
  w: GPUBuffer;
  format: WeightFormat;
  /** What this layer is, for the dispatch ledger and error messages. */
  label?: string;
  /** Force a kernel (tests run every kernel on every adapter); default `linearKernelKind(M, ctx.adapter.cpu)`. */
  kernel?: LinearKernelKind;
}

/** A binding of a linear dispatch (by binding number), with what its size check reports. */
export interface LinearBinding extends CheckedBinding {
  binding: number;
}


/**
 * Checks a linear dispatch's y placement and aliasing (`weights` are the other buffers it reads) and returns the
 * bindings of x (0), y (2), bias (4) and residual (5), with yStride and yOffset. Throws through `fail`.
 */
export function linearIO(
  fail: (msg: string) => never,
  args: LinearIO,
  weights: ReadonlyArray<readonly [string, GPUBuffer | undefined]>,
): { yStride: number; yOffset: number; bindings: LinearBinding[] } {
  const { M, N, K } = args;
  const yStride = args.yStride ?? N;
  const yOffset = args.yOffset ?? 0;
  if (!Number.isInteger(yOffset) || yOffset < 0 || yOffset > 0xffffffff) {
    fail(`yOffset must be a non-negative integer, got ${yOffset}.`);
  }
  if (!Number.isInteger(yStride) || yStride < yOffset + N || yStride > 0xffffffff) {
    fail(`yStride must be an integer ≥ yOffset + N = ${yOffset + N}, got ${yStride}.`);
  }
  const placed = yStride !== N || yOffset !== 0;
  if (placed && args.residual) {
    fail(`residual needs the default y placement (yStride = N = ${N}, yOffset = 0), got yStride ${yStride}, yOffset ${yOffset}.`);
  }
  const yElements = (M - 1) * yStride + yOffset + N;
  if (yElements > 0xffffffff) fail(`y spans ${yElements} elements, too many for u32 indexing.`);
  if (M * K > 0xffffffff) fail(`x has ${M * K} elements, too many for u32 indexing.`);
  for (const [name, b] of [['x', args.x], ...weights, ['bias', args.bias], ['residual', args.residual]] as const) {
    if (b !== undefined && b === args.y) {
      fail(`${name} and y are the same buffer ("${b.label}"); a dispatch cannot read and write one buffer.`);
    }
  }
  const bindings: LinearBinding[] = [
    { name: 'x', binding: 0, buffer: args.x, bytes: M * K * 4, shape: 'M×K f32' },
    { name: 'y', binding: 2, buffer: args.y, bytes: yElements * 4, shape: placed ? `M×N f32 at row stride ${yStride}, offset ${yOffset}` : 'M×N f32' },
  ];
  if (args.bias) bindings.push({ name: 'bias', binding: 4, buffer: args.bias, bytes: N * 4, shape: 'N f32' });
  if (args.residual) bindings.push({ name: 'residual', binding: 5, buffer: args.residual, bytes: M * N * 4, shape: 'M×N f32' });
  return { yStride, yOffset, bindings };
}

/** The grid of a linear kernel for an (M, N) output; the same tiling for float and quantized weights. */
export function linearWorkgroups(ctx: GPUContext, fail: (msg: string) => never, kind: LinearKernelKind, M: number, N: number): [number, number, number] {
  let workgroups: [number, number, number];
  switch (kind) {
    case 'gemv':
      if (M > LINEAR_GEMV_MAX_M) fail(`the gemv kernel serves M ≤ ${LINEAR_GEMV_MAX_M}, got M = ${M}.`);
      workgroups = [Math.ceil(N / GEMV_COLS), 1, 1];
      break;
    case 'gemm':
      workgroups = [Math.ceil(N / TILE), Math.ceil(M / TILE), 1];
      break;
    case 'rows':
      if (M * N > 0xffffffff) fail(`M·N (${M * N}) does not fit a u32 index.`);
      workgroups = grid2d(M * N, ROWS_WG, ctx.limits.maxComputeWorkgroupsPerDimension);
      break;
    default:
      return fail(`unknown kernel ${JSON.stringify(kind)}.`);
  }
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups[0] > maxGroups || workgroups[1] > maxGroups) {
    fail(`a ${M}×${N} output needs ${workgroups[0]}×${workgroups[1]} workgroups, above this GPU's limit of ${maxGroups} per dimension.`);
  }
  return workgroups;
}

/** The dispatch of a linear kernel: its bindings by number, the uniform `dims` at binding 3 (owned). */
export function linearDispatch(
  ctx: GPUContext,
  key: string,
  pipeline: GPUComputePipeline,
  label: string,
  bindings: readonly LinearBinding[],
  dims: Uint32Array,
  workgroups: [number, number, number],
): KernelDispatch {
  const uniform = createBuffer(ctx, `${label}/dims`, dims.byteLength, UNIFORM | COPY_DST);
  writeBuffer(ctx, uniform, dims);
  const bindGroup = ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...bindings.map((b) => ({ binding: b.binding, resource: { buffer: b.buffer, offset: 0, size: b.bytes } })),
      { binding: 3, resource: { buffer: uniform } },
    ],
  });
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [uniform] };
}

/** Prepares y = x · Wᵀ (+ bias) (+ residual); record it with `recordDispatches`. Owns a small uniform buffer. */
export function prepareLinear(ctx: GPUContext, args: LinearArgs): KernelDispatch {
  const { M, N, K, format } = args;
  const label = args.label ?? `linear ${M}x${K} · (${N}x${K} ${String(format)})ᵀ`;
  const fail = (msg: string): never => {
    throw new GPUValidationError(`linear "${label}": ${msg}`);
  };
  if (!isWeightFormat(format)) fail(`format must be one of f32, f16, bf16, got ${String(format)}.`);
  for (const [name, v] of [['M', M], ['N', N], ['K', K]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) fail(`${name} must be a positive integer, got ${v}.`);
  }
  const { yStride, yOffset, bindings } = linearIO(fail, args, []);
  bindings.push({ name: 'W', binding: 1, buffer: args.w, bytes: weightBufferBytes(format, N * K), shape: `N×K ${format}` });
  checkBindings(ctx, fail, bindings);

  const kind = args.kernel ?? linearKernelKind(M, ctx.adapter.cpu);
  const workgroups = linearWorkgroups(ctx, fail, kind, M, N);
  const epilogue = { bias: !!args.bias, residual: !!args.residual };
  const variant: LinearVariant = kind === 'gemm' ? { kind, format, ...epilogue } : { kind, format, ...epilogue, unit: gemvUnit(format, K) };
  const key = linearKey(variant);
  const pipeline = ctx.pipelines.get(key, () => linearSource(variant));
  // rowStride: invocations per grid row of the 'rows' kernel (its 2-D grid), unused by the others.
  const dims = new Uint32Array([M, N, K, yStride, yOffset, workgroups[0] * ROWS_WG, 0, 0]);
  return linearDispatch(ctx, key, pipeline, label, bindings, dims, workgroups);
}
