/**
 * GPU context: one adapter + device, acquired from whatever `GPU` object the caller has (`navigator.gpu` in a
 * page or worker, `create([])` from the `webgpu` package in Node). Requests the adapter's real limits (the
 * WebGPU defaults are far below what a 1B-parameter model needs) and the optional features webslm can use, and
 * turns WebGPU's error reporting into typed errors.
 */
import {
  DeviceLostError,
  GPUUnavailableError,
  GPUValidationError,
  OutOfMemoryError,
  WebSLMError,
} from '../errors.js';
import { PipelineCache } from './pipeline-cache.js';

/** Optional features we enable when the adapter has them; every kernel has a path without them. */
export const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
export type OptionalFeature = (typeof OPTIONAL_FEATURES)[number];

export interface GPUContextOptions {
  /** The WebGPU entry point. Defaults to `navigator.gpu`. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Optional features to leave off even when available (e.g. to test the f32-only paths). */
  disableFeatures?: readonly OptionalFeature[];
  /** Device label, shown in WebGPU error messages. */
  label?: string;
}

/** What the adapter says about itself; strings may be empty where the browser hides them. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /**
   * A CPU implementation of WebGPU (SwiftShader, llvmpipe/lavapipe, WARP): workgroup barriers are expensive there
   * (each one switches every invocation's coroutine), so kernels pick barrier-free variants.
   */
  cpu: boolean;
  /** A one-line name for people: description, or vendor/architecture/device. */
  name: string;
}

/**
 * GPU memory held through `createBuffer`: bytes and buffer count, up on creation, down on `destroy()`. WebGPU has
 * no memory query, so this ledger is what the stats report and what tests check for leaks.
 */
export class MemoryLedger {
  bytes = 0;
  buffers = 0;
  /** Highest `bytes` seen since the last `resetPeak()`. */
  peakBytes = 0;

  track(buffer: GPUBuffer): void {
    const size = buffer.size;
    this.bytes += size;
    this.buffers++;
    if (this.bytes > this.peakBytes) this.peakBytes = this.bytes;
    const destroy = buffer.destroy.bind(buffer);
    let alive = true;
    buffer.destroy = () => {
      if (alive) {
        alive = false;
        this.bytes -= size;
        this.buffers--;
      }
      destroy();
    };
  }

  resetPeak(): void {
    this.peakBytes = this.bytes;
  }
}

export class GPUContext {
  readonly device: GPUDevice;
  readonly adapter: AdapterSummary;
  /** The optional features enabled on this device. */
  readonly features: ReadonlySet<OptionalFeature>;
  readonly pipelines: PipelineCache;
  /** Bytes and buffers held through `createBuffer`. */
  readonly memory = new MemoryLedger();
  /** Resolves (never rejects) when the device is lost; `null` when it was destroyed through `dispose()`. */
  readonly lost: Promise<DeviceLostError | null>;
  private lostError: DeviceLostError | null = null;
  private disposed = false;
  /**
   * The GPU entry point and adapter the device came from. Held so they live as long as the device: in Node,
   * Dawn's instance is destroyed when its `GPU` object is garbage-collected, which crashes the process if a
   * device made from it is still in use.
   */
  private readonly owners: readonly [GPU, GPUAdapter];

  private constructor(
    device: GPUDevice,
    adapter: AdapterSummary,
    features: Set<OptionalFeature>,
    owners: readonly [GPU, GPUAdapter],
  ) {
    this.device = device;
    this.owners = owners;
    this.adapter = adapter;
    this.features = features;
    this.pipelines = new PipelineCache(device);
    this.lost = device.lost.then((info) => {
      if (this.disposed && info.reason === 'destroyed') return null;
      this.lostError = new DeviceLostError(
        `The GPU device was lost (${info.reason}): ${info.message || 'no message'}. Load the model again.`,
        info.reason,
      );
      return this.lostError;
    });
  }

  static async create(options: GPUContextOptions = {}): Promise<GPUContext> {
    const gpu = options.gpu ?? defaultGPU();
    if (!gpu) throw new GPUUnavailableError(noWebGPUMessage());

    let adapter: GPUAdapter | null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
    } catch (cause) {
      throw new GPUUnavailableError(`WebGPU could not provide a GPU adapter: ${errorText(cause)}`, { cause });
    }
    if (!adapter) throw new GPUUnavailableError(noAdapterMessage());

    const disabled = new Set<string>(options.disableFeatures ?? []);
    const features = new Set<OptionalFeature>(
      OPTIONAL_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f)),
    );
    const summary = summarizeAdapter(adapter);
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({
        label: options.label ?? 'webslm',
        requiredFeatures: [...features] as GPUFeatureName[],
        requiredLimits: adapterLimits(adapter),
      });
    } catch (cause) {
      throw new GPUUnavailableError(
        `The GPU adapter "${summary.name}" refused to create a device: ${errorText(cause)}`,
        { cause },
      );
    }
    return new GPUContext(device, summary, features, [gpu, adapter]);
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Throws the `DeviceLostError` if the device has been lost; call before starting GPU work. */
  assertAlive(): void {
    if (this.lostError) throw this.lostError;
    if (this.disposed) throw new DeviceLostError('This GPU context has been disposed.', 'destroyed');
  }

  /**
   * Runs `fn` (which must issue its GPU calls synchronously: error scopes are a per-device stack, so awaiting
   * inside would capture other callers' errors) inside out-of-memory and validation error scopes, and throws the
   * first error as `OutOfMemoryError` / `GPUValidationError` with `what` in the message.
   */
  async checked<T>(what: string, fn: () => T): Promise<T> {
    this.assertAlive();
    const device = this.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let result: T;
    try {
      result = fn();
    } finally {
      // Pop both scopes even when `fn` threw, so the stack stays balanced.
      const validation = device.popErrorScope();
      const oom = device.popErrorScope();
      const [v, o] = await Promise.all([validation, oom]);
      const first = o ?? v;
      if (first) throw toTypedGPUError(first, what);
    }
    return result;
  }

  /** Destroys the device, freeing every buffer made on it. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pipelines.clear();
    this.device.destroy();
  }
}

/** Maps a WebGPU `GPUError` to our typed error, naming the operation that failed. */
export function toTypedGPUError(error: GPUError, what: string): WebSLMError {
  const kind = error.constructor?.name ?? '';
  if (kind === 'GPUOutOfMemoryError') {
    return new OutOfMemoryError(`Out of GPU memory while ${what}: ${error.message}`);
  }
  if (kind === 'GPUValidationError') {
    return new GPUValidationError(`WebGPU rejected ${what}: ${error.message}`);
  }
  return new WebSLMError(`GPU error while ${what}: ${error.message}`);
}

function defaultGPU(): GPU | undefined {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

function noWebGPUMessage(): string {
  if (isNode()) {
    return (
      'WebGPU is not available in this Node.js process. Install the `webgpu` package and pass its GPU: ' +
      "`import { create, globals } from 'webgpu'; Object.assign(globalThis, globals); " +
      'await GPUContext.create({ gpu: create([]) })`.'
    );
  }
  return (
    'WebGPU is not available in this browser (navigator.gpu is undefined). Use a browser with WebGPU: ' +
    'Chrome or Edge 113+, Safari 26+, or Firefox 141+ (Windows); on Linux, Chrome needs ' +
    'chrome://flags/#enable-unsafe-webgpu. The page must be served over HTTPS or from localhost. ' +
    "Without WebGPU, load ONNX models with { device: 'wasm' }."
  );
}

function noAdapterMessage(): string {
  return (
    'WebGPU is present but no GPU adapter is available (requestAdapter returned null). The GPU may be ' +
    'blocklisted or hardware acceleration turned off: check chrome://gpu (or about:support in Firefox), turn ' +
    "hardware acceleration on, update the GPU driver, or load ONNX models with { device: 'wasm' }."
  );
}

/** Every numeric limit the adapter reports, to request the device with the adapter's real limits. */
function adapterLimits(adapter: GPUAdapter): Record<string, number> {
  const limits: Record<string, number> = {};
  // WebIDL attributes live on the prototype as getters, so walk the prototype chain with for...in.
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === 'number') limits[key] = value;
  }
  return limits;
}

function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = (adapter as { info?: GPUAdapterInfo }).info;
  const vendor = info?.vendor ?? '';
  const architecture = info?.architecture ?? '';
  const device = info?.device ?? '';
  const description = info?.description ?? '';
  const isFallbackAdapter = Boolean(
    (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );
  const parts = [vendor, architecture, device].filter(Boolean).join(' ');
  const name = description || parts || 'unknown GPU adapter';
  const cpu = isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|microsoft basic render|\bwarp\b/i.test(`${parts} ${description}`);
  return { vendor, architecture, device, description, isFallbackAdapter, cpu, name };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
