/**
 * The worker side of the Worker engine: holds the loaded models (by handle) on one shared GPU device and runs
 * their calls. Exposed to the page over comlink by engine-worker.ts; every method answers with a `Reply`.
 *
 * - One GPU device for every model of the worker, created with the first load. When it is lost, calls of the
 *   models on it fail with its `DeviceLostError`, and the next load creates a new device.
 * - A generate call gets its own MessagePort: the worker posts `prompt` / each step's new ids / `end` there (no
 *   copies of the whole sequence), then `done`; the page posts `abort` or `stop` back.
 */
import * as Comlink from 'comlink';
import { env } from '../../api/env.js';
import { loadCausalLM, type ModelLoadOptions } from '../../api/load-model.js';
import { BaseStreamer } from '../../api/streamers.js';
import { DeviceLostError } from '../../errors.js';
import type { ProgressInfo } from '../../hub/model-files.js';
import { forgetModelFiles, modelFromFileMap } from '../../hub/local-files.js';
import type { CausalLM, ModelStats } from '../causal-lm.js';
import { GPUContext } from '../gpu-context.js';
import {
  fail,
  ok,
  type ControlMessage,
  type EnvSnapshot,
  type ForwardReply,
  type GenerateReply,
  type LoadReply,
  type PlainIds,
  type Reply,
  type StepMessage,
  type WorkerGenerateRequest,
  type WorkerLoadOptions,
} from './protocol.js';

interface Loaded {
  lm: CausalLM;
  ctx: GPUContext;
}

/** Forwards a generation's prompt and end to the page (each step's ids go through `token_callback`). */
class PortStreamer extends BaseStreamer {
  constructor(private readonly post: (m: StepMessage) => void) {
    super();
  }
  private prompted = false;
  put(): void {
    if (this.prompted) return;
    this.prompted = true;
    this.post({ t: 'prompt' });
  }
  end(): void {
    this.post({ t: 'end' });
  }
}

/** Aborts a controller when the page posts on `port` (its caller's signal fired, or it stopped listening). */
function controlled(port: MessagePort, alreadyAborted: boolean | undefined): AbortController {
  const controller = new AbortController();
  if (alreadyAborted) controller.abort();
  port.onmessage = (e: MessageEvent<ControlMessage>) => {
    if (e.data.t === 'abort' || e.data.t === 'stop') controller.abort();
  };
  return controller;
}

export class Engine {
  private readonly models = new Map<number, Loaded>();
  private nextHandle = 1;
  private context: Promise<GPUContext> | null = null;
  /** Loads in progress per device (a device is kept while one is). */
  private readonly loading = new Map<GPUContext, number>();
  /** Devices that were lost, with their error. */
  private readonly lost = new WeakMap<GPUContext, DeviceLostError>();

  /** Loads a model; `progress` receives the load's progress events before the reply is sent. */
  async load(
    model: string,
    options: WorkerLoadOptions,
    settings: EnvSnapshot,
    control: MessagePort,
    progress?: ((info: ProgressInfo) => unknown) & Partial<Comlink.ProxyMethods>,
  ): Promise<Reply<LoadReply>> {
    Object.assign(env, settings, { useWorker: false });
    const controller = controlled(control, options.aborted);
    const delivered: Promise<unknown>[] = [];
    let ctx: GPUContext | null = null;
    let local: string | null = null;
    try {
      ctx = await this.sharedContext();
      this.loading.set(ctx, (this.loading.get(ctx) ?? 0) + 1);
      const { aborted: _aborted, localFiles, ...rest } = options;
      // A folder picked on the page: its Files, registered here under an id of this worker for the load.
      if (localFiles) local = modelFromFileMap(localFiles.files, localFiles.name);
      const loadOptions: ModelLoadOptions = {
        ...(rest as ModelLoadOptions),
        context: ctx,
        signal: controller.signal,
        progress_callback: progress ? (info) => void delivered.push(Promise.resolve(progress(info))) : undefined,
      };
      const lm = await loadCausalLM(local ?? model, loadOptions);
      const handle = this.nextHandle++;
      this.models.set(handle, { lm, ctx });
      await Promise.allSettled(delivered);
      return ok({ handle, config: lm.config, generation_config: lm.generation_config, maxContext: lm.maxContext, stats: lm.stats() });
    } catch (e) {
      await Promise.allSettled(delivered);
      return fail(await this.explain(e, ctx));
    } finally {
      if (local) forgetModelFiles(local); // the weights are on the GPU: the Files are not read again
      control.close();
      progress?.[Comlink.releaseProxy]?.();
      if (ctx) {
        const n = this.loading.get(ctx)! - 1;
        if (n > 0) this.loading.set(ctx, n);
        else this.loading.delete(ctx);
        this.releaseIfUnused(ctx);
      }
    }
  }

  async generate(handle: number, request: WorkerGenerateRequest, port: MessagePort): Promise<Reply<GenerateReply>> {
    const post = (m: StepMessage) => port.postMessage(m);
    const controller = controlled(port, request.aborted);
    const entry = this.models.get(handle);
    try {
      const { lm } = this.entry(handle);
      const rows = await lm.generate({
        ...request.options,
        signal: controller.signal,
        streamer: request.streamer ? new PortStreamer(post) : undefined,
        // postMessage clones the step's ids; no copy here.
        token_callback: request.steps ? (ids) => post({ t: 'step', ids: ids as number[] }) : undefined,
      });
      return ok({ rows, stats: lm.stats() });
    } catch (e) {
      return fail(await this.explain(e, entry?.ctx ?? null));
    } finally {
      post({ t: 'done' });
      port.close();
    }
  }

  async forward(handle: number, inputs: { input_ids: PlainIds; attention_mask?: PlainIds; position_ids?: PlainIds }): Promise<Reply<ForwardReply>> {
    const entry = this.models.get(handle);
    try {
      const { lm } = this.entry(handle);
      const { logits } = await lm.forward(inputs);
      return Comlink.transfer(ok({ data: logits.data, dims: [...logits.dims], stats: lm.stats() }), [logits.data.buffer]);
    } catch (e) {
      return fail(await this.explain(e, entry?.ctx ?? null));
    }
  }

  stats(handle: number): Reply<ModelStats> {
    try {
      return ok(this.entry(handle).lm.stats());
    } catch (e) {
      return fail(e);
    }
  }

  decodeLedger(handle: number, batch: number): Reply<string[]> {
    try {
      return ok(this.entry(handle).lm.decodeLedger(batch));
    } catch (e) {
      return fail(e);
    }
  }

  /** Frees the model's GPU memory (and the device, once no model is on it). */
  dispose(handle: number): void {
    const entry = this.models.get(handle);
    if (!entry) return;
    this.models.delete(handle);
    entry.lm.dispose();
    this.releaseIfUnused(entry.ctx);
  }

  /** For tests: destroys the GPU device a model runs on, as a driver reset would lose it. */
  loseDevice(handle: number): void {
    this.entry(handle).ctx.device.destroy();
  }

  // ——— internals ———

  private entry(handle: number): Loaded {
    const entry = this.models.get(handle);
    if (!entry) throw new DeviceLostError('This model has been disposed; load it again.', 'destroyed');
    return entry;
  }

  private sharedContext(): Promise<GPUContext> {
    if (!this.context) {
      const made = GPUContext.create().then((ctx) => {
        this.devices.set(made, ctx);
        void ctx.lost.then((error) => {
          if (!error) return;
          this.lost.set(ctx, error);
          this.forget(ctx);
        });
        return ctx;
      });
      this.context = made;
      made.catch(() => {
        if (this.context === made) this.context = null;
      });
    }
    return this.context;
  }

  /** The device of each `context` promise, once created. */
  private readonly devices = new WeakMap<Promise<GPUContext>, GPUContext>();

  /** The next load creates a new device instead of using `ctx`. */
  private forget(ctx: GPUContext): void {
    if (this.context && this.devices.get(this.context) === ctx) this.context = null;
  }

  /** Disposes `ctx` when no model is left on it and no load is using it (the next load creates a new device). */
  private releaseIfUnused(ctx: GPUContext): void {
    if (this.loading.has(ctx)) return;
    for (const m of this.models.values()) if (m.ctx === ctx) return;
    this.forget(ctx);
    ctx.dispose();
  }

  /**
   * The error to report: a lost device's `DeviceLostError` when the device went away under the call (WebGPU then
   * fails pending work with its own errors, sometimes just before `device.lost` resolves).
   */
  private async explain(e: unknown, ctx: GPUContext | null): Promise<unknown> {
    if (!ctx || e instanceof DeviceLostError) return e;
    const known = this.lost.get(ctx);
    if (known) return known;
    const error = await Promise.race([ctx.lost, new Promise<null>((resolve) => setTimeout(() => resolve(null), 100))]);
    return error ?? e;
  }
}
