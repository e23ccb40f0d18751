import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext, OPTIONAL_FEATURES } from '../../src/runtime/gpu-context.js';
import { DeviceLostError, GPUValidationError, OutOfMemoryError } from '../../src/errors.js';
import { createBuffer, STORAGE } from '../../src/runtime/buffers.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

describe('GPUContext on a real WebGPU device', () => {
  it('requests the adapter limits, not the WebGPU defaults', async () => {
    const adapter = await navigator.gpu.requestAdapter();
    expect(adapter).not.toBeNull();
    expect(ctx.limits.maxStorageBufferBindingSize).toBe(adapter!.limits.maxStorageBufferBindingSize);
    expect(ctx.limits.maxBufferSize).toBe(adapter!.limits.maxBufferSize);
    expect(ctx.limits.maxComputeWorkgroupStorageSize).toBe(adapter!.limits.maxComputeWorkgroupStorageSize);
  });

  it('enables exactly the optional features the adapter has', async () => {
    const adapter = (await navigator.gpu.requestAdapter())!;
    for (const f of OPTIONAL_FEATURES) {
      expect(ctx.features.has(f), f).toBe(adapter.features.has(f));
      expect(ctx.device.features.has(f), f).toBe(adapter.features.has(f));
    }
    const plain = await GPUContext.create({ disableFeatures: [...OPTIONAL_FEATURES] });
    try {
      expect(plain.features.size).toBe(0);
    } finally {
      plain.dispose();
    }
  });

  it('names the adapter', () => {
    expect(ctx.adapter.name.length).toBeGreaterThan(0);
  });

  it('turns a validation error into GPUValidationError naming the operation', async () => {
    const bad = ctx.checked('building a bad shader', () => {
      ctx.device.createShaderModule({ code: 'this is not wgsl' });
    });
    await expect(bad).rejects.toThrow(GPUValidationError);
    await expect(
      ctx.checked('building a bad shader', () => ctx.device.createShaderModule({ code: 'fn (' })),
    ).rejects.toThrow(/building a bad shader/);
    // The scopes were popped: a good call afterwards passes.
    await expect(ctx.checked('a good call', () => 42)).resolves.toBe(42);
  });

  it('refuses a buffer over maxBufferSize with OutOfMemoryError and the numbers', () => {
    const tooBig = ctx.limits.maxBufferSize + 4;
    expect(() => createBuffer(ctx, 'huge-embeddings', tooBig, STORAGE)).toThrow(OutOfMemoryError);
    expect(() => createBuffer(ctx, 'huge-embeddings', tooBig, STORAGE)).toThrow(/huge-embeddings.*maxBufferSize/);
  });

  it('reports a destroyed context as lost, without calling it a device loss', async () => {
    const other = await GPUContext.create();
    other.dispose();
    await expect(other.lost).resolves.toBeNull();
    expect(() => other.assertAlive()).toThrow(DeviceLostError);
  });
});
