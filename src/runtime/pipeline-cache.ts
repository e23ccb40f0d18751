/**
 * Compute pipelines cached per device by a kernel key. Kernels build the key from everything that changes
 * the generated WGSL or its constants, so one key is one shader; pipeline creation (a shader compile) happens
 * once per key, never per dispatch.
 */
export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  constructor(private readonly device: GPUDevice) {}

  get(key: string, makeCode: () => string, entryPoint = 'main'): GPUComputePipeline {
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.device.createShaderModule({ label: key, code: makeCode() });
      pipeline = this.device.createComputePipeline({
        label: key,
        layout: 'auto',
        compute: { module, entryPoint },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  get size(): number {
    return this.pipelines.size;
  }

  clear(): void {
    this.pipelines.clear();
  }
}
