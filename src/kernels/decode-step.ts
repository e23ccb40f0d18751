/**
 * Decode-step bookkeeping, run after the sampling kernel in every decode step so the step's state stays on the
 * GPU (no readback between steps):
 *
 *   history.ids[r, counts[r]] = tokens[r]; counts[r] += 1     when counts[r] < stride (else neither happens)
 *   positions[r] += 1
 *
 *   tokens:      (rows) u32, the ids just sampled (read)
 *   history.ids: (rows, stride) u32, row r's generated ids so far (read_write; only the appended element written)
 *   counts:      (rows) u32, how many ids each history row holds (read_write)
 *   positions:   (rows) u32, the position of each row's next token (read_write)
 *
 * A full history row (counts[r] ≥ stride) is left as it is: the token is dropped and counts[r] stays, so a
 * caller that generated past the history's capacity sees counts[r] = stride rather than memory overwritten.
 * The position still advances.
 *
 * One thread per row, 64 per workgroup, on the 2-D grid of the element-wise kernels.
 * Bindings (group 0): 0 tokens (storage, read) · 1 history ids (storage, read_write) · 2 counts (storage,
 * read_write) · 3 positions (storage, read_write) · 4 params (uniform: rows, stride, pad).
 */
import { GPUValidationError } from '../errors.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, checkBindings, grid2d, type KernelDispatch } from './dispatch.js';

const WG = 64;

export const DECODE_STEP_KEY = `decode-step.wg${WG}`;

export function decodeStepSource(): string {
  return /* wgsl */ `
struct Params { rows: u32, stride: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> tokens: array<u32>;             // (rows)
@group(0) @binding(1) var<storage, read_write> history: array<u32>;      // (rows, stride)
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;       // (rows)
@group(0) @binding(3) var<storage, read_write> positions: array<u32>;    // (rows)
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u,
        @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.y * nwg.x + wg.x) * ${WG}u + lid.x;
  if (r >= params.rows) { return; }
  let n = counts[r];
  if (n < params.stride) {
    history[r * params.stride + n] = tokens[r];
    counts[r] = n + 1u;
  }
  positions[r] = positions[r] + 1u;
}
`;
}

export interface DecodeStepArgs {
  /** (rows) u32: the ids the sampling kernel just wrote. */
  tokens: GPUBuffer;
  history: {
    /** (rows, stride) u32 generated ids, row-major. */
    ids: GPUBuffer;
    /** (rows) u32 ids held per history row. */
    counts: GPUBuffer;
    /** Capacity of a history row (elements between rows). */
    stride: number;
  };
  /** (rows) u32 next position of each row, incremented. */
  positions: GPUBuffer;
  rows: number;
  label?: string;
  /** Caps workgroups per grid dimension below the device's limit (to exercise the 2-D grid on small inputs). */
  maxWorkgroupsPerDimension?: number;
}

/** Prepares the decode-step bookkeeping; record it after sampling with `recordDispatches`. Owns a small uniform. */
export function prepareDecodeStep(ctx: GPUContext, args: DecodeStepArgs): KernelDispatch {
  const { rows } = args;
  const stride = args.history?.stride;
  const label = args.label ?? `decode-step ${rows} rows`;
  const fail = (msg: string): never => {
    throw new GPUValidationError(`decode-step "${label}": ${msg}`);
  };
  if (!Number.isInteger(rows) || rows < 1 || rows > 0xffffffff) fail(`rows must be a positive integer, got ${rows}.`);
  if (!Number.isInteger(stride) || stride < 1 || stride > 0xffffffff) {
    fail(`history.stride must be a positive integer, got ${stride}.`);
  }
  if (rows * stride > 0xffffffff) fail(`history of ${rows}×${stride} ids is too large for u32 indexing.`);

  const bindings = [
    { name: 'tokens', buffer: args.tokens, bytes: rows * 4, shape: 'rows u32' },
    { name: 'history.ids', buffer: args.history.ids, bytes: rows * stride * 4, shape: 'rows×stride u32' },
    { name: 'history.counts', buffer: args.history.counts, bytes: rows * 4, shape: 'rows u32' },
    { name: 'positions', buffer: args.positions, bytes: rows * 4, shape: 'rows u32' },
  ];
  // WebGPU forbids a writable binding to share a buffer with any other binding of the dispatch.
  for (let i = 0; i < bindings.length; i++) {
    for (let j = i + 1; j < bindings.length; j++) {
      if (bindings[i].buffer === bindings[j].buffer) {
        fail(`${bindings[i].name} and ${bindings[j].name} are the same buffer ("${bindings[i].buffer.label}"); each needs its own.`);
      }
    }
  }
  checkBindings(ctx, fail, bindings);
  let workgroups: [number, number, number] = [1, 1, 1];
  try {
    workgroups = grid2d(rows, WG, args.maxWorkgroupsPerDimension ?? ctx.limits.maxComputeWorkgroupsPerDimension);
  } catch (e) {
    fail((e as Error).message);
  }

  const pipeline = ctx.pipelines.get(DECODE_STEP_KEY, decodeStepSource);
  const { bindGroup, uniform } = bindWithUniform(ctx, pipeline, label, bindings, new Uint32Array([rows, stride, 0, 0]));
  return { kernel: DECODE_STEP_KEY, label, pipeline, bindGroup, workgroups, owned: [uniform] };
}
