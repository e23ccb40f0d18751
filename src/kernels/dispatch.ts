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
