// GPUContext against fake GPU objects: the paths a real device cannot be made to take on demand.
import { describe, expect, it } from 'vitest';
import { GPUContext, toTypedGPUError } from '../../src/runtime/gpu-context.js';
import { GPUUnavailableError, GPUValidationError, OutOfMemoryError, WebSLMError } from '../../src/errors.js';

function fakeGPU(requestAdapter: () => Promise<unknown>): GPU {
  return { requestAdapter } as unknown as GPU;
}

describe('GPUContext.create without a usable GPU', () => {
  it('says how to get WebGPU when there is no GPU object at all', async () => {
    const g = globalThis as { navigator?: unknown };
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', { value: undefined, configurable: true });
    try {
      const err = await GPUContext.create().catch((e) => e);
      expect(err).toBeInstanceOf(GPUUnavailableError);
      // Under Node the advice is the `webgpu` package.
      expect(err.message).toMatch(/webgpu/);
      expect(g.navigator).toBeUndefined();
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete g.navigator;
    }
  });

  it('explains a null adapter', async () => {
    const err = await GPUContext.create({ gpu: fakeGPU(async () => null) }).catch((e) => e);
    expect(err).toBeInstanceOf(GPUUnavailableError);
    expect(err.message).toMatch(/no GPU adapter/);
    expect(err.message).toMatch(/wasm/);
  });

  it('wraps a throwing requestAdapter', async () => {
    const cause = new Error('driver exploded');
    const err = await GPUContext.create({ gpu: fakeGPU(async () => Promise.reject(cause)) }).catch((e) => e);
    expect(err).toBeInstanceOf(GPUUnavailableError);
    expect(err.cause).toBe(cause);
    expect(err.message).toMatch(/driver exploded/);
  });

  it('names the adapter when requestDevice fails', async () => {
    const adapter = {
      features: new Set<string>(['shader-f16']),
      limits: { maxBufferSize: 1024 },
      info: { vendor: 'acme', architecture: 'rocket', device: '', description: '' },
      requestDevice: async () => {
        throw new Error('limits too high');
      },
    };
    const err = await GPUContext.create({ gpu: fakeGPU(async () => adapter) }).catch((e) => e);
    expect(err).toBeInstanceOf(GPUUnavailableError);
    expect(err.message).toMatch(/acme rocket.*limits too high/);
  });
});

describe('toTypedGPUError', () => {
  class GPUOutOfMemoryError {
    constructor(readonly message: string) {}
  }
  class GPUValidationErrorFake {
    constructor(readonly message: string) {}
  }
  Object.defineProperty(GPUValidationErrorFake, 'name', { value: 'GPUValidationError' });

  it('maps out-of-memory, validation and other errors', () => {
    const oom = toTypedGPUError(new GPUOutOfMemoryError('no room') as unknown as GPUError, 'uploading q_proj');
    expect(oom).toBeInstanceOf(OutOfMemoryError);
    expect(oom.message).toMatch(/uploading q_proj.*no room/);
    const val = toTypedGPUError(new GPUValidationErrorFake('bad') as unknown as GPUError, 'x');
    expect(val).toBeInstanceOf(GPUValidationError);
    const other = toTypedGPUError({ message: 'internal' } as GPUError, 'x');
    expect(other).toBeInstanceOf(WebSLMError);
  });
});
