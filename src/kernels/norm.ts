/**
 * Row normalizations, each row of x normalized independently over its `dim` elements.
 *
 *   x: (rows, dim) f32, row-major
 *   weight, bias: (dim) f32
 *   y: (rows, dim) f32, row-major
 *
 * RMSNorm (Llama, Mistral, Qwen…):
 *   variance = hidden_states.pow(2).mean(-1, keepdim=True)
 *   hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
 *   return self.weight * hidden_states
 * Gemma's RMSNorm stores the weight as an offset from one:
 *   output = output * (1.0 + self.weight.float())
 * LayerNorm (GPT-2, torch.nn.LayerNorm, biased variance):
 *   y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias
 *
 * Fused residual variant (`residual` given): the residual stream is updated in place and normalized in the same
 * pass, saving a dispatch and a read of the stream per layer:
 *   hidden_states = residual + hidden_states      (written back to `residual`)
 *   y = norm(hidden_states)
 *
 * One 256-thread workgroup per row; thread t handles elements t, t + 256, … so any dim works. Sums are reduced
 * in workgroup memory. LayerNorm uses a corrected two-pass variance: pass one finds the f32 mean m, pass two
 * sums d = x − m and d²; the small correction c = Σd / dim is kept apart from m, so x − m is exact for inputs
 * with a large common offset and the variance Σd²/dim − c² loses nothing to cancellation.
 *
 * The row count is read from a uniform: a dispatch prepared for `rows` rows can be re-aimed at any row count
 * 1..rows with `setRows` (workgroups past the count return at once), e.g. for prefill chunks of varying length.
 *
 * Bindings (group 0), plain: 0 x (storage, read) · 1 weight (storage, read) · 2 bias (LayerNorm only) ·
 * 3 y (storage, read_write) · 4 params (uniform).
 * Fused: 0 x (storage, read) · 1 weight · 2 bias (LayerNorm only) · 3 y (storage, read_write) · 4 params ·
 * 5 residual (storage, read_write; in: the stream, out: x + stream).
 */
import { GPUValidationError } from '../errors.js';
import { createBuffer, UNIFORM, COPY_DST, writeBuffer } from '../runtime/buffers.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import type { KernelDispatch } from './dispatch.js';

const WG = 256;
const SERIAL_WG = 64;
/** Largest row length the kernels accept. */
export const NORM_MAX_DIM = 65536;

export type NormKind = 'rms' | 'rms-gemma' | 'layer';

export interface NormVariant {
  kind: NormKind;
  /** Adds x into the residual stream in place and normalizes the sum. */
  fused: boolean;
  /**
   * One invocation per row, 64 rows per workgroup, no workgroup memory or barrier: for CPU adapters
   * (`ctx.adapter.cpu`), where a barrier costs a coroutine switch per invocation.
   */
  serial?: boolean;
}

export function normKey(v: NormVariant): string {
  return `norm.${v.kind}${v.fused ? '.residual' : ''}.f32.${v.serial ? `serial${SERIAL_WG}` : `wg${WG}`}`;
}

export function normSource(v: NormVariant): string {
  const layer = v.kind === 'layer';
  // Reads element i of the row's input: the residual sum in the fused kernel (written back first), else x.
  const load = v.fused ? 'residual[base + i]' : 'x[base + i]';
  const weightFactor = v.kind === 'rms-gemma' ? '(1.0 + weight[i])' : 'weight[i]';

  const fusedAdd = v.fused
    ? /* wgsl */ `
  // hidden_states = residual + hidden_states: each thread writes, then later re-reads, only its own elements.
  for (var i = t; i < dim; i += WG) {
    residual[base + i] = residual[base + i] + x[base + i];
  }`
    : '';

  const body = layer
    ? /* wgsl */ `
  // Pass one: E[x] in f32.
  var s = 0.0;
  for (var i = t; i < dim; i += WG) { s += ${load}; }
  let m = reduce(vec2f(s, 0.0), t).x / f32(dim);
  // Pass two: Σd and Σd² with d = x - m; c = Σd / dim corrects m without being folded into it.
  var acc = vec2f(0.0, 0.0);
  for (var i = t; i < dim; i += WG) {
    let d = ${load} - m;
    acc += vec2f(d, d * d);
  }
  let sums = reduce(acc, t);
  let c = sums.x / f32(dim);
  let variance = max(sums.y / f32(dim) - c * c, 0.0);
  // y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias
  let inv = 1.0 / sqrt(variance + params.eps);
  for (var i = t; i < dim; i += WG) {
    let xhat = ((${load} - m) - c) * inv;
    y[base + i] = fma(xhat, weight[i], bias[i]);
  }`
    : /* wgsl */ `
  // variance = hidden_states.pow(2).mean(-1, keepdim=True)
  var s = 0.0;
  for (var i = t; i < dim; i += WG) {
    let v = ${load};
    s = fma(v, v, s);
  }
  let variance = reduce(vec2f(s, 0.0), t).x / f32(dim);
  // hidden_states * torch.rsqrt(variance + eps), then ${v.kind === 'rms-gemma' ? '* (1.0 + self.weight)' : 'self.weight * hidden_states'}
  let inv = 1.0 / sqrt(variance + params.eps);
  for (var i = t; i < dim; i += WG) {
    y[base + i] = (${load} * inv) * ${weightFactor};
  }`;

  return /* wgsl */ `
struct Params { rows: u32, dim: u32, eps: f32, _pad: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;            // (rows, dim)
@group(0) @binding(1) var<storage, read> weight: array<f32>;       // (dim)
${layer ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;         // (dim)' : ''}
@group(0) @binding(3) var<storage, read_write> y: array<f32>;      // (rows, dim)
@group(0) @binding(4) var<uniform> params: Params;
${v.fused ? '@group(0) @binding(5) var<storage, read_write> residual: array<f32>; // (rows, dim), updated in place' : ''}

${v.serial ? serialPrelude() : parallelPrelude()}
${fusedAdd}
${body}
}
`;
}

interface NormCommon {
  /** (rows, dim) f32 input. In the fused form, the hidden state added into the residual stream. */
  x: GPUBuffer;
  /** (dim) f32 weight (Gemma: stored as an offset from 1). */
  weight: GPUBuffer;
  /** (rows, dim) f32 output; only its first rows·dim elements are written. Must not be x or residual. */
  y: GPUBuffer;
  /** Rows this dispatch is prepared for, the most `setRows` may later ask for. */
  rows: number;
  dim: number;
  /** The epsilon added to the variance (config `rms_norm_eps` / `layer_norm_epsilon`). */
  eps: number;
  /**
   * When given, the fused form: residual ← residual + x (in place, (rows, dim) f32), and y = norm(residual).
   */
  residual?: GPUBuffer;
  /** What this norm is, for the dispatch ledger and error messages. */
  label?: string;
  /** Force the one-invocation-per-row kernel (true) or the workgroup one (false); default: serial on CPU adapters. */
  serial?: boolean;
}

export interface RMSNormArgs extends NormCommon {
  /** Gemma's form: multiply by (1 + weight) instead of weight. */
  unitOffset?: boolean;
}

export interface LayerNormArgs extends NormCommon {
  /** (dim) f32 bias. */
  bias: GPUBuffer;
}

/** A prepared norm whose row count can be lowered (or raised back) up to the rows it was prepared for. */
export interface NormDispatch extends KernelDispatch {
  readonly maxRows: number;
  /**
   * Sets the rows processed by later submissions (1..maxRows). Goes through `queue.writeBuffer`, so it applies to
   * command buffers submitted after this call: record one row count per submission.
   */
  setRows(rows: number): void;
}

/** Prepares RMSNorm (optionally fused with the residual add); record it with `recordDispatches`. */
export function prepareRMSNorm(ctx: GPUContext, args: RMSNormArgs): NormDispatch {
  const kind: NormKind = args.unitOffset ? 'rms-gemma' : 'rms';
  return prepareNorm(ctx, kind, args, undefined);
}

/** Prepares LayerNorm (optionally fused with the residual add); record it with `recordDispatches`. */
export function prepareLayerNorm(ctx: GPUContext, args: LayerNormArgs): NormDispatch {
  return prepareNorm(ctx, 'layer', args, args.bias);
}

/** Workgroup reduction: thread t of WG handles elements t, t + WG, …; sums meet in workgroup memory. */
function parallelPrelude(): string {
  return /* wgsl */ `
const WG = ${WG}u;

var<workgroup> partial: array<vec2f, ${WG}>;

// Sum of \`v\` over the workgroup, returned to every thread.
fn reduce(v: vec2f, t: u32) -> vec2f {
  partial[t] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) { partial[t] = partial[t] + partial[t + stride]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();  // everyone has read partial[0] before a later reduce overwrites it
  return total;
}

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let row = wg.x;
  if (row >= params.rows) { return; }
  let dim = params.dim;
  let base = row * dim;`;
}

/** The same body run by one invocation per row: the strided loops cover the row, the "reduction" is the identity. */
function serialPrelude(): string {
  return /* wgsl */ `
const WG = 1u;

fn reduce(v: vec2f, t: u32) -> vec2f { return v; }

@compute @workgroup_size(${SERIAL_WG}, 1, 1)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let row = g.x;
  let t = 0u;
  if (row >= params.rows) { return; }
  let dim = params.dim;
  let base = row * dim;`;
}

function prepareNorm(ctx: GPUContext, kind: NormKind, args: NormCommon, bias: GPUBuffer | undefined): NormDispatch {
  const { rows, dim, eps } = args;
  const fused = args.residual !== undefined;
  const name = kind === 'layer' ? 'layernorm' : 'rmsnorm';
  const label = args.label ?? `${name}${fused ? '+residual' : ''} ${rows}x${dim}`;
  const fail = (message: string): never => {
    throw new GPUValidationError(`${name} "${label}": ${message}`);
  };

  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (!Number.isInteger(rows) || rows < 1) fail(`rows must be a positive integer, got ${rows}.`);
  if (rows > maxGroups) fail(`rows (${rows}) is above this GPU's limit of ${maxGroups} workgroups per dimension.`);
  if (!Number.isInteger(dim) || dim < 1 || dim > NORM_MAX_DIM) {
    fail(`dim must be an integer in 1..${NORM_MAX_DIM}, got ${dim}.`);
  }
  if (!Number.isFinite(eps) || eps < 0) fail(`eps must be a finite number ≥ 0, got ${eps}.`);
  if (rows * dim > 0xffffffff) fail(`rows·dim (${rows * dim}) does not fit a u32 index.`);

  const bindings: { binding: number; name: string; buffer: GPUBuffer; bytes: number; shape: string }[] = [
    { binding: 0, name: 'x', buffer: args.x, bytes: rows * dim * 4, shape: 'rows×dim' },
    { binding: 1, name: 'weight', buffer: args.weight, bytes: dim * 4, shape: 'dim' },
  ];
  if (bias) bindings.push({ binding: 2, name: 'bias', buffer: bias, bytes: dim * 4, shape: 'dim' });
  bindings.push({ binding: 3, name: 'y', buffer: args.y, bytes: rows * dim * 4, shape: 'rows×dim' });
  if (args.residual) {
    bindings.push({ binding: 5, name: 'residual', buffer: args.residual, bytes: rows * dim * 4, shape: 'rows×dim' });
  }

  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of bindings) {
    if (b.buffer.size < b.bytes) {
      fail(`buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} f32 needs ${b.bytes}.`);
    }
    if (b.bytes > maxBinding) {
      fail(`${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`);
    }
  }
  if (args.y === args.x) fail('y must not be the same buffer as x.');
  if (args.residual && (args.residual === args.x || args.residual === args.y)) {
    fail('residual must be a buffer of its own, not x or y.');
  }

  const variant: NormVariant = { kind, fused, serial: args.serial ?? ctx.adapter.cpu };
  const key = normKey(variant);
  const pipeline = ctx.pipelines.get(key, () => normSource(variant));
  const params = createBuffer(ctx, `${label}/params`, 16, UNIFORM | COPY_DST);
  const words = new ArrayBuffer(16);
  const u32 = new Uint32Array(words);
  u32[0] = rows;
  u32[1] = dim;
  new Float32Array(words)[2] = eps;
  writeBuffer(ctx, params, u32);

  const bindGroup = ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...bindings.map((b) => ({ binding: b.binding, resource: { buffer: b.buffer, offset: 0, size: b.bytes } })),
      { binding: 4, resource: { buffer: params } },
    ],
  });

  const setRows = (n: number): void => {
    if (!Number.isInteger(n) || n < 1 || n > rows) {
      fail(`setRows: rows must be an integer in 1..${rows} (the prepared rows), got ${n}.`);
    }
    writeBuffer(ctx, params, new Uint32Array([n]));
  };
  const workgroups: [number, number, number] = variant.serial ? [Math.ceil(rows / SERIAL_WG), 1, 1] : [rows, 1, 1];
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [params], maxRows: rows, setRows };
}
