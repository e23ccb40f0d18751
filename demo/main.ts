import { GPUContext, GPUUnavailableError } from '../src/index.js';

const $ = (id: string) => document.getElementById(id)!;

async function showGPU(): Promise<void> {
  const status = $('status');
  try {
    const ctx = await GPUContext.create();
    status.textContent = `WebGPU ready on ${ctx.adapter.name}`;
    status.dataset.state = 'ready';
    $('adapter').textContent = ctx.adapter.name + (ctx.adapter.isFallbackAdapter ? ' (software fallback)' : '');
    $('features').textContent = [...ctx.features].join(', ') || 'none of shader-f16, subgroups, timestamp-query';
    $('max-binding').textContent = `${(ctx.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`;
    $('max-buffer').textContent = `${(ctx.limits.maxBufferSize / 2 ** 20).toFixed(0)} MiB`;
    $('details').hidden = false;
  } catch (e) {
    status.dataset.state = e instanceof GPUUnavailableError ? 'unavailable' : 'error';
    status.textContent = e instanceof Error ? e.message : String(e);
  }
}

void showGPU();
