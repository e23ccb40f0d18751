/**
 * Element-wise kernels, f32 in and out:
 *
 *   gated     out = act(gate) * up             SwiGLU / GeGLU MLPs
 *               LlamaMLP:  down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))
 *               Phi3MLP:   gate, up_states = up_states.chunk(2, dim=-1); up_states = up_states * self.activation_fn(gate)
 *   activation out = act(x)                    GPT-2 `gelu_new`, plain GELU MLPs
 *   add        out = a + b                     residual connections: hidden_states = residual + hidden_states
 *   scale      out = x * s
 *   softcap    x = tanh(x / cap) * cap, in place    Gemma-2's final logit soft-capping:
 *               logits = logits / self.config.final_logit_softcapping
 *               logits = torch.tanh(logits)
 *               logits = logits * self.config.final_logit_softcapping
 *
 * Activations (`Activation`):
 *   'silu'       x * sigmoid(x)                                          nn.SiLU
 *   'gelu_tanh'  0.5 * x * (1.0 + tanh(sqrt(2.0 / pi) * (x + 0.044715 * x^3)))   NewGELUActivation / gelu_pytorch_tanh
 *   'gelu_erf'   0.5 * x * (1.0 + erf(x / sqrt(2.0)))                    nn.GELU() / GELUActivation
 * evaluated in forms without cancellation: 0.5·(1 + tanh u) = 1 / (1 + exp(−2u)); 1 + erf z = erfc(−z), with our
 * own erfc (relative error ≈ 1e-7).
 *
 * Gate and up come either as two (rows·n) buffers or as one fused (rows, 2n) buffer, gate in the first n columns
 * of each row and up in the last n (Phi-3's `gate_up_proj` output).
 *
 * Every kernel takes one thread per output element, 256 per workgroup, on a 2-D grid (x up to the device's
 * per-dimension limit, then y) so any count fits; the flat index is (wg.y · num_workgroups.x + wg.x) · 256 + lid.x.
 * Outputs must be separate buffers from the inputs (WebGPU forbids binding one buffer writable and read-only in
 * the same dispatch).
 *
 * Bindings (group 0), in order: the inputs (storage, read) · the output (storage, read_write) · params (uniform).
 * The in-place soft-cap: 0 x (storage, read_write) · 1 params (uniform).
 */
import { GPUValidationError } from '../errors.js';
import { createBuffer, UNIFORM, COPY_DST, writeBuffer } from '../runtime/buffers.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { grid2d, type KernelDispatch } from './dispatch.js';

export { grid2d };

export type Activation = 'silu' | 'gelu_tanh' | 'gelu_erf';
export const ACTIVATIONS: readonly Activation[] = ['silu', 'gelu_tanh', 'gelu_erf'];

export const WORKGROUP_SIZE = 256;

/**
 * WGSL `erfc_pos(z)` = erfc(z) for z ≥ 0 in f32, the Chebyshev-fitted form of Numerical Recipes (erfcc,
 * fractional error < 1.2e-7 for all z ≥ 0): erfc(z) = t·exp(−z² − 1.26551223 + t·P(t)), t = 1/(1 + z/2).
 * Negative arguments use erfc(−z) = 2 − erfc(z).
 */
export const ERFC_WGSL = /* wgsl */ `
fn erfc_pos(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
          t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(p - z * z);
}
`;

/** WGSL `fn act(x: f32) -> f32` for `activation`. */
function activationWgsl(activation: Activation): string {
  switch (activation) {
    case 'silu':
      // return x * torch.sigmoid(x)
      return `fn act(x: f32) -> f32 { return x / (1.0 + exp(-x)); }`;
    case 'gelu_tanh':
      // 0.5 * input * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (input + 0.044715 * torch.pow(input, 3.0))))
      // = x · sigmoid(2u): the same value without cancellation when tanh(u) is near −1.
      return `fn act(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return x / (1.0 + exp(-2.0 * u));
}`;
    case 'gelu_erf':
      // 0.5 * input * (1.0 + torch.erf(input / math.sqrt(2.0)))
      // 1 + erf(z) = erfc(−z): 2 − erfc(z) for z ≥ 0, erfc(|z|) for z < 0, never a small difference of large terms.
      return `${ERFC_WGSL}
fn act(x: f32) -> f32 {
  let z = x * 0.7071067811865476;
  let r = erfc_pos(abs(z));
  return 0.5 * x * select(2.0 - r, r, z < 0.0);
}`;
  }
}

const PARAMS_WGSL = `struct Params { count: u32, n: u32, scale: f32, _pad: u32 }`;

/** Flat element index of this thread on the 2-D grid. */
const INDEX_WGSL = `
@compute @workgroup_size(${WORKGROUP_SIZE}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u,
        @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let e = (wg.y * nwg.x + wg.x) * ${WORKGROUP_SIZE}u + lid.x;
  if (e >= params.count) { return; }`;

type GateLayout = 'split' | 'fused';

function gatedKey(activation: Activation, layout: GateLayout): string {
  return `elementwise.gated.${activation}.${layout}`;
}

export function gatedSource(activation: Activation, layout: GateLayout): string {
  const io =
    layout === 'split'
      ? `@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;`
      : `@group(0) @binding(0) var<storage, read> gate_up: array<f32>;  // (rows, 2n): gate | up
@group(0) @binding(1) var<storage, read_write> out: array<f32>;     // (rows, n)
@group(0) @binding(2) var<uniform> params: Params;`;
  const body =
    layout === 'split'
      ? `  out[e] = act(gate[e]) * up[e];`
      : `  let n = params.n;
  let row = e / n;
  let g = row * 2u * n + (e - row * n);
  out[e] = act(gate_up[g]) * gate_up[g + n];`;
  return `${PARAMS_WGSL}
${io}
${activationWgsl(activation)}
${INDEX_WGSL}
${body}
}
`;
}

export function activationSource(activation: Activation): string {
  return `${PARAMS_WGSL}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
${activationWgsl(activation)}
${INDEX_WGSL}
  out[e] = act(x[e]);
}
`;
}

export const ADD_KEY = 'elementwise.add';
export function addSource(): string {
  return `${PARAMS_WGSL}
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
${INDEX_WGSL}
  out[e] = a[e] + b[e];
}
`;
}

export const SCALE_KEY = 'elementwise.scale';
export function scaleSource(): string {
  return `${PARAMS_WGSL}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
${INDEX_WGSL}
  out[e] = x[e] * params.scale;
}
`;
}

export const SOFTCAP_KEY = 'elementwise.softcap.inplace';
/** tanh(x / cap) * cap over x in place; the argument of tanh is clamped to ±20, where tanh is ±1 in f32. */
export function softCapSource(): string {
  return `${PARAMS_WGSL}
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
${INDEX_WGSL}
  x[e] = tanh(clamp(x[e] / params.scale, -20.0, 20.0)) * params.scale;
}
`;
}

// ---------------------------------------------------------------------------------------------------------------
// Launchers


interface BufferNeed {
  name: string;
  buffer: GPUBuffer;
  bytes: number;
  shape: string;
}

function checkCount(kernel: string, label: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) {
    throw new GPUValidationError(`${kernel} "${label}": ${name} must be a positive integer, got ${v}.`);
  }
}

function checkBuffers(ctx: GPUContext, kernel: string, label: string, needs: readonly BufferNeed[]): void {
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of needs) {
    if (b.buffer.size < b.bytes) {
      throw new GPUValidationError(
        `${kernel} "${label}": buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} f32 needs ${b.bytes}.`,
      );
    }
    if (b.bytes > maxBinding) {
      throw new GPUValidationError(
        `${kernel} "${label}": ${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`,
      );
    }
  }
  const out = needs[needs.length - 1];
  for (const b of needs.slice(0, -1)) {
    if (b.buffer === out.buffer) {
      throw new GPUValidationError(
        `${kernel} "${label}": output ${out.name} is the same buffer as input ${b.name} ("${b.buffer.label}"); use a separate output buffer.`,
      );
    }
  }
}

/** Builds the dispatch: bindings in `needs` order then the params uniform. */
function finish(
  ctx: GPUContext,
  kernel: string,
  label: string,
  makeSource: () => string,
  needs: readonly BufferNeed[],
  count: number,
  n: number,
  scale: number,
  maxPerDimension?: number,
): KernelDispatch {
  let workgroups: [number, number, number];
  try {
    workgroups = grid2d(count, WORKGROUP_SIZE, maxPerDimension ?? ctx.limits.maxComputeWorkgroupsPerDimension);
  } catch (e) {
    throw new GPUValidationError(`${kernel} "${label}": ${(e as Error).message}`);
  }
  const pipeline = ctx.pipelines.get(kernel, makeSource);
  const params = createBuffer(ctx, `${label}/params`, 16, UNIFORM | COPY_DST);
  const data = new ArrayBuffer(16);
  new Uint32Array(data, 0, 2).set([count, n]);
  new Float32Array(data, 8, 1)[0] = scale;
  writeBuffer(ctx, params, new Uint8Array(data));
  const bindGroup = ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...needs.map((b, binding) => ({ binding, resource: { buffer: b.buffer, offset: 0, size: b.bytes } })),
      { binding: needs.length, resource: { buffer: params } },
    ],
  });
  return { kernel, label, pipeline, bindGroup, workgroups, owned: [params] };
}

interface CommonArgs {
  /** What this dispatch is, for the dispatch ledger and error messages. */
  label?: string;
  /** Caps workgroups per grid dimension below the device's limit (to exercise the 2-D grid on small inputs). */
  maxWorkgroupsPerDimension?: number;
}

/** Gate and up as two buffers of rows·n f32 each. */
export interface SplitGateUp {
  gate: GPUBuffer;
  up: GPUBuffer;
}
/** Gate and up fused in one (rows, 2n) f32 buffer: each row is [gate (n) | up (n)]. */
export interface FusedGateUp {
  gateUp: GPUBuffer;
}

export type GatedArgs = CommonArgs &
  (SplitGateUp | FusedGateUp) & {
    activation: Activation;
    /** (rows, n) f32 output; only its first rows·n elements are written. */
    out: GPUBuffer;
    rows: number;
    /** Width of gate, up and out (intermediate_size). */
    n: number;
  };

/** Prepares out = act(gate) * up (SwiGLU with 'silu', GeGLU with a GELU). */
export function prepareGated(ctx: GPUContext, args: GatedArgs): KernelDispatch {
  const { activation, rows, n } = args;
  const fused = 'gateUp' in args;
  const label = args.label ?? `${activation}(gate) * up ${rows}x${n}${fused ? ' fused' : ''}`;
  const kernelName = 'gated';
  if (!ACTIVATIONS.includes(activation)) {
    throw new GPUValidationError(`${kernelName} "${label}": unknown activation ${JSON.stringify(activation)}.`);
  }
  checkCount(kernelName, label, 'rows', rows);
  checkCount(kernelName, label, 'n', n);
  const count = rows * n;
  if (2 * count > 0xffffffff) {
    throw new GPUValidationError(`${kernelName} "${label}": ${rows}×${n} is too many elements for u32 indexing.`);
  }
  const outNeed = { name: 'out', buffer: args.out, bytes: count * 4, shape: 'rows×n' };
  const needs: BufferNeed[] = fused
    ? [{ name: 'gateUp', buffer: (args as FusedGateUp).gateUp, bytes: count * 8, shape: 'rows×2n' }, outNeed]
    : [
        { name: 'gate', buffer: (args as SplitGateUp).gate, bytes: count * 4, shape: 'rows×n' },
        { name: 'up', buffer: (args as SplitGateUp).up, bytes: count * 4, shape: 'rows×n' },
        outNeed,
      ];
  checkBuffers(ctx, kernelName, label, needs);
  const layout: GateLayout = fused ? 'fused' : 'split';
  return finish(
    ctx,
    gatedKey(activation, layout),
    label,
    () => gatedSource(activation, layout),
    needs,
    count,
    n,
    0,
    args.maxWorkgroupsPerDimension,
  );
}

export interface ActivationArgs extends CommonArgs {
  activation: Activation;
  x: GPUBuffer;
  out: GPUBuffer;
  /** Number of elements. */
  count: number;
}

/** Prepares out = act(x). */
export function prepareActivation(ctx: GPUContext, args: ActivationArgs): KernelDispatch {
  const { activation, count } = args;
  const label = args.label ?? `${activation} ${count}`;
  if (!ACTIVATIONS.includes(activation)) {
    throw new GPUValidationError(`activation "${label}": unknown activation ${JSON.stringify(activation)}.`);
  }
  checkCount('activation', label, 'count', count);
  const needs: BufferNeed[] = [
    { name: 'x', buffer: args.x, bytes: count * 4, shape: 'count' },
    { name: 'out', buffer: args.out, bytes: count * 4, shape: 'count' },
  ];
  checkBuffers(ctx, 'activation', label, needs);
  return finish(
    ctx,
    `elementwise.activation.${activation}`,
    label,
    () => activationSource(activation),
    needs,
    count,
    0,
    0,
    args.maxWorkgroupsPerDimension,
  );
}

export interface AddArgs extends CommonArgs {
  a: GPUBuffer;
  b: GPUBuffer;
  out: GPUBuffer;
  count: number;
}

/** Prepares out = a + b. */
export function prepareAdd(ctx: GPUContext, args: AddArgs): KernelDispatch {
  const { count } = args;
  const label = args.label ?? `add ${count}`;
  checkCount('add', label, 'count', count);
  const needs: BufferNeed[] = [
    { name: 'a', buffer: args.a, bytes: count * 4, shape: 'count' },
    { name: 'b', buffer: args.b, bytes: count * 4, shape: 'count' },
    { name: 'out', buffer: args.out, bytes: count * 4, shape: 'count' },
  ];
  checkBuffers(ctx, 'add', label, needs);
  return finish(ctx, ADD_KEY, label, addSource, needs, count, 0, 0, args.maxWorkgroupsPerDimension);
}

export interface ScaleArgs extends CommonArgs {
  x: GPUBuffer;
  out: GPUBuffer;
  count: number;
  /** The factor, rounded to f32. */
  scale: number;
}

/** Prepares out = x * scale. */
export function prepareScale(ctx: GPUContext, args: ScaleArgs): KernelDispatch {
  const out = (count: number): BufferNeed => ({ name: 'out', buffer: args.out, bytes: count * 4, shape: 'count' });
  const factor = { name: 'scale', value: args.scale, bad: Number.isNaN, must: 'a number' };
  return prepareWithFactor(ctx, args, 'scale', SCALE_KEY, scaleSource, factor, out);
}

/**
 * The launchers of the one-factor kernels (scale, softcap): x and, unless the kernel works in place, `out`, with the
 * factor in the params uniform, rejected when `factor.bad(value)` with the requirement `factor.must` names.
 */
function prepareWithFactor(
  ctx: GPUContext,
  args: CommonArgs & { x: GPUBuffer; count: number },
  kernelName: string,
  key: string,
  source: () => string,
  factor: { name: string; value: number; bad: (value: number) => boolean; must: string },
  out?: (count: number) => BufferNeed,
): KernelDispatch {
  const { count } = args;
  const label = args.label ?? `${kernelName} ${count}`;
  checkCount(kernelName, label, 'count', count);
  if (typeof factor.value !== 'number' || factor.bad(factor.value)) {
    throw new GPUValidationError(`${kernelName} "${label}": ${factor.name} must be ${factor.must}, got ${factor.value}.`);
  }
  const needs: BufferNeed[] = [{ name: 'x', buffer: args.x, bytes: count * 4, shape: 'count' }];
  if (out) needs.push(out(count));
  checkBuffers(ctx, kernelName, label, needs);
  return finish(ctx, key, label, source, needs, count, 0, factor.value, args.maxWorkgroupsPerDimension);
}

export interface SoftCapArgs extends CommonArgs {
  /** f32 values capped in place; only the first `count` are touched. */
  x: GPUBuffer;
  count: number;
  /** The cap (> 0, rounded to f32): values map to tanh(x / cap) · cap, within (−cap, cap). */
  cap: number;
}

/** Prepares x = tanh(x / cap) * cap in place (Gemma-2's `final_logit_softcapping` on the LM head output). */
export function prepareSoftCap(ctx: GPUContext, args: SoftCapArgs): KernelDispatch {
  const factor = { name: 'cap', value: args.cap, bad: (cap: number) => !Number.isFinite(cap) || cap <= 0, must: 'a finite number > 0' };
  return prepareWithFactor(ctx, args, 'softcap', SOFTCAP_KEY, softCapSource, factor);
}
