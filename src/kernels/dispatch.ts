import { GPUValidationError } from '../errors.js';
import { COPY_DST, UNIFORM, createBuffer, writeBuffer } from '../runtime/buffers.js';
import type { GPUContext } from '../runtime/gpu-context.js';

/**
 * A prepared dispatch: pipeline, bind group and grid built once, recorded as often as needed. Models prepare
 * their dispatches when they load and record them each step, so a decode step creates no GPU objects. The
 * `kernel` and `label` fields make the dispatch ledger: the list of what one step runs.
 */
export interface KernelDispatch {
  /** Pipeline cache key of the kernel (names the shader variant). */
  readonly kernel: string;
  /** What this dispatch computes, e.g. `layers.3.mlp.down_proj`. */
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
  /** Buffers owned by this dispatch (its uniforms), destroyed by `dispose()`. */
  readonly owned: readonly GPUBuffer[];
}

/** Records `dispatches` in order into one compute pass of `encoder`. */
export function recordDispatches(
  encoder: GPUCommandEncoder,
  dispatches: readonly KernelDispatch[],
  label = 'webslm',
): void {
  const pass = encoder.beginComputePass({ label });
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
  }
  pass.end();
}

export function disposeDispatch(dispatch: KernelDispatch): void {
  for (const buffer of dispatch.owned) buffer.destroy();
}

/** One line per dispatch: `kernel  label  [x, y, z]`, for logs and tests that keep dispatch counts honest. */
export function ledger(dispatches: readonly KernelDispatch[]): string[] {
  return dispatches.map((d) => `${d.kernel}\t${d.label}\t[${d.workgroups.join(', ')}]`);
}

/** A storage binding: the first `bytes` of `buffer`. */
export interface StorageBinding {
  buffer: GPUBuffer;
  bytes: number;
}

/**
 * The bind group most kernels use: storage bindings 0..n-1 in order, then a uniform buffer at binding n holding
 * `uniform` (written now when bytes are given; a size leaves it for the caller to write). The uniform belongs to
 * the dispatch (put it in `owned`).
 */
export function bindWithUniform(
  ctx: GPUContext,
  pipeline: GPUComputePipeline,
  label: string,
  bindings: readonly StorageBinding[],
  uniform: ArrayBufferView | number,
): { bindGroup: GPUBindGroup; uniform: GPUBuffer } {
  const size = typeof uniform === 'number' ? uniform : uniform.byteLength;
  const buffer = createBuffer(ctx, `${label}/params`, size, UNIFORM | COPY_DST);
  if (typeof uniform !== 'number') writeBuffer(ctx, buffer, uniform);
  const bindGroup = ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...bindings.map((b, binding) => ({ binding, resource: { buffer: b.buffer, offset: 0, size: b.bytes } })),
      { binding: bindings.length, resource: { buffer } },
    ],
  });
  return { bindGroup, uniform: buffer };
}

/**
 * Grid for `count` threads of `perGroup`: x up to `maxPerDimension` workgroups, then y. Throws past
 * maxPerDimension² groups.
 */
export function grid2d(count: number, perGroup: number, maxPerDimension: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(count / perGroup));
  const x = Math.min(groups, maxPerDimension);
  const y = Math.ceil(groups / x);
  if (y > maxPerDimension) {
    throw new GPUValidationError(
      `${count} elements need ${groups} workgroups, above ${maxPerDimension}² for a 2-D grid.`,
    );
  }
  return [x, y, 1];
}

/** A binding with what its size check reports: its name in the kernel and the shape it must hold. */
export interface CheckedBinding extends StorageBinding {
  name: string;
  shape: string;
}

/** Each buffer holds its binding's bytes, and no binding exceeds the device's maxStorageBufferBindingSize. */
export function checkBindings(ctx: GPUContext, fail: (msg: string) => never, bindings: readonly CheckedBinding[]): void {
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of bindings) {
    if (b.buffer.size < b.bytes) {
      fail(`buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} needs ${b.bytes}.`);
    }
    if (b.bytes > maxBinding) {
      fail(`${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`);
    }
  }
}
