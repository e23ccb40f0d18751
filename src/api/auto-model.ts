/**
 * `AutoModelForCausalLM.from_pretrained(id, options)`: config.json → family, generation_config.json, a memory
 * estimate, then the weights streamed shard by shard onto the GPU (load-model.ts).
 *
 * In a browser page with `env.useWorker` (the default there), the model, its GPU device and the generation loop
 * live in a dedicated module Worker and the call returns a `RemoteCausalLM`, a thin proxy with the API of
 * `CausalLM`. The model runs in the calling thread instead in Node, in a Worker, with `env.useWorker = false`,
 * and when a `context` or `gpu` option is given (a GPU context or entry point of this thread means "run here"). A
 * folder picked with `modelFromFiles` goes to the worker as its `File`s (cloned handles, not bytes).
 */
import type { CausalLM } from '../runtime/causal-lm.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { loadRemoteCausalLM, type RemoteCausalLM } from '../runtime/worker/remote-model.js';
import { env } from './env.js';
import { loadCausalLM, type ModelLoadOptions } from './load-model.js';

export type { ModelDtype, ModelLoadOptions } from './load-model.js';

/** Whether `from_pretrained(model, options)` runs the model in the Worker engine. */
export function loadsInWorker(options: ModelLoadOptions = {}): boolean {
  const page = typeof window !== 'undefined' && typeof document !== 'undefined' && typeof Worker !== 'undefined';
  return env.useWorker && page && options.context === undefined && options.gpu === undefined;
}

export class AutoModelForCausalLM {
  /** With a `context` or `gpu` of this thread, the model always runs here. */
  static from_pretrained(model: string, options: ModelLoadOptions & ({ context: GPUContext } | { gpu: GPU })): Promise<CausalLM>;
  /** A `CausalLM`, or in a browser page with `env.useWorker` a `RemoteCausalLM` with the same API. */
  static from_pretrained(model: string, options?: ModelLoadOptions): Promise<CausalLM | RemoteCausalLM>;
  static async from_pretrained(model: string, options: ModelLoadOptions = {}): Promise<CausalLM | RemoteCausalLM> {
    if (loadsInWorker(options)) return loadRemoteCausalLM(model, options);
    return loadCausalLM(model, options);
  }
}
