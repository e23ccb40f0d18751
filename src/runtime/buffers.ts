/**
 * GPU buffer helpers. Every buffer gets a label (it shows in WebGPU errors and in the dispatch ledger), sizes
 * are checked against the device's limits before allocation so an oversized tensor is a typed error with the
 * numbers rather than a validation failure later.
 */
import { OutOfMemoryError } from '../errors.js';
import type { GPUContext } from './gpu-context.js';

export const STORAGE = 0x80; // GPUBufferUsage.STORAGE (the constant object is not defined in every JS realm)
export const COPY_SRC = 0x04;
export const COPY_DST = 0x08;
export const MAP_READ = 0x01;
export const UNIFORM = 0x40;

/** Rounds up to a multiple of 4 bytes, as buffer sizes and copies require. */
export function align4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

export function createBuffer(ctx: GPUContext, label: string, byteLength: number, usage: number): GPUBuffer {
  const size = Math.max(4, align4(byteLength));
  const max = ctx.limits.maxBufferSize;
  if (size > max) {
    throw new OutOfMemoryError(
      `Buffer "${label}" needs ${formatBytes(size)}, more than this GPU's maxBufferSize of ${formatBytes(max)}.`,
    );
  }
  const buffer = ctx.device.createBuffer({ label, size, usage });
  ctx.memory.track(buffer);
  return buffer;
}

/** A storage buffer holding `data` (copied now). */
export function uploadBuffer(
  ctx: GPUContext,
  label: string,
  data: ArrayBufferView,
  usage: number = STORAGE | COPY_DST | COPY_SRC,
): GPUBuffer {
  const buffer = createBuffer(ctx, label, data.byteLength, usage | COPY_DST);
  writeBuffer(ctx, buffer, data);
  return buffer;
}

/** `queue.writeBuffer` with the 4-byte size rule handled (a tail of 1-3 bytes is zero-padded). */
export function writeBuffer(ctx: GPUContext, buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
  // Typed as ArrayBuffer-backed: WebGPU copies the bytes, so a SharedArrayBuffer view works too.
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength) as Uint8Array<ArrayBuffer>;
  const whole = bytes.byteLength & ~3;
  if (whole > 0) ctx.device.queue.writeBuffer(buffer, byteOffset, bytes, 0, whole);
  if (whole < bytes.byteLength) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(whole));
    ctx.device.queue.writeBuffer(buffer, byteOffset + whole, tail);
  }
}

/** Copies `byteLength` bytes of `buffer` to the CPU. For tests, debugging and the sampled-token readback. */
export async function readBuffer(
  ctx: GPUContext,
  buffer: GPUBuffer,
  byteLength = buffer.size,
  byteOffset = 0,
): Promise<ArrayBuffer> {
  const size = align4(byteLength);
  const staging = ctx.device.createBuffer({ label: `${buffer.label}/readback`, size, usage: MAP_READ | COPY_DST });
  try {
    const encoder = ctx.device.createCommandEncoder({ label: `${buffer.label}/readback` });
    encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
    ctx.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ);
    return staging.getMappedRange(0, size).slice(0, byteLength);
  } finally {
    staging.destroy();
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
