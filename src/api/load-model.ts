/**
 * Loading a causal LM in the calling thread: config.json → family, generation_config.json, a memory estimate, then the
 * weights streamed shard by shard onto the GPU. `AutoModelForCausalLM.from_pretrained` (auto-model.ts) calls it
 * directly or, in a browser page, through the Worker engine, which calls it inside the Worker.
 */
import { ConfigError, DownloadError, OutOfMemoryError } from '../errors.js';
import { streamModelTensors } from '../hub/load-weights.js';
import { readModelFileText, type ModelFileOptions } from '../hub/model-files.js';
import type { DecoderConfig } from '../models/config.js';
import type { ModelFamily } from '../models/family.js';
import { familyFor } from '../models/registry.js';
import { DEFAULT_QUANT_GROUP, QUANT_GROUPS, type QuantGroup } from '../kernels/quant.js';
import { formatBytes } from '../runtime/buffers.js';
import { CausalLM } from '../runtime/causal-lm.js';
import { GPUContext } from '../runtime/gpu-context.js';
import { estimateWeightBytes, WeightStore, type LoadDtype } from '../runtime/weights.js';
import { parseModelConfig } from './auto-config.js';
import { parseGenerationConfigJson, type GenerationOptions } from './generation-config.js';

export type ModelDtype = 'auto' | 'f32' | 'fp32' | 'f16' | 'fp16' | 'bf16' | 'q8' | 'q4';

export interface ModelLoadOptions extends ModelFileOptions {
  /**
   * Storage of the weights on the GPU: 'auto' keeps the checkpoint's dtype; 'f32'/'f16'/'bf16' convert on the GPU;
   * 'q8'/'q4' quantize every linear weight on the GPU as it loads (group-wise, kernels/quant.ts; the LM head q8, the
   * embedding table 16-bit). Compute is f32 either way.
   */
  dtype?: ModelDtype;
  /** q4/q8: weights per quantization group along the input dimension (32, 64 or 128; default 32). */
  group_size?: QuantGroup;
  device?: 'webgpu';
  /** Positions the KV cache holds per sequence. Default: the smaller of max_position_embeddings and 4096. */
  max_context?: number;
  /** Prompt tokens per sequence per prefill submit (bounds activation memory). Default 128. */
  prefill_chunk_size?: number;
  /** Run on this GPU context (shared with other models); by default the model creates and owns one. */
  context?: GPUContext;
  /** The WebGPU entry point when there is no `navigator.gpu` (Node: `create([])` from the `webgpu` package). */
  gpu?: GPU;
  /** GPU bytes the model may take; the load fails up front (OutOfMemoryError) when the estimate is larger. */
  max_gpu_memory?: number;
  /** Largest bytes per binding for weights (default: the device limit); lower it to exercise split weights. */
  max_binding_bytes?: number;
}

const DTYPES: Record<ModelDtype, LoadDtype> = { auto: 'auto', f32: 'f32', fp32: 'f32', f16: 'f16', fp16: 'f16', bf16: 'bf16', q8: 'q8', q4: 'q4' };

async function optionalText(model: string, file: string, options: ModelFileOptions): Promise<string | null> {
  try {
    return await readModelFileText(model, file, options);
  } catch (e) {
    if (e instanceof DownloadError && e.status === 404) return null;
    throw e;
  }
}

function positiveInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${name} must be a positive integer, got ${JSON.stringify(value)}.`);
  }
  return value;
}

/** Loads the model in the calling thread (what `AutoModelForCausalLM.from_pretrained` does outside the Worker engine). */
export async function loadCausalLM(model: string, options: ModelLoadOptions = {}): Promise<CausalLM> {
  const dtypeOption = options.dtype ?? 'auto';
  const dtype = DTYPES[dtypeOption as keyof typeof DTYPES];
  const quantGroup = options.group_size ?? DEFAULT_QUANT_GROUP;
  if (!QUANT_GROUPS.includes(quantGroup)) {
    throw new ConfigError(`group_size must be one of ${QUANT_GROUPS.join(', ')}, got ${JSON.stringify(options.group_size)}.`);
  }
  if (!dtype) throw new ConfigError(`dtype must be one of ${Object.keys(DTYPES).join(', ')}, got ${JSON.stringify(dtypeOption)}.`);
  if (options.device !== undefined && options.device !== 'webgpu') {
    throw new ConfigError(`device "${String(options.device)}" is not available; this backend runs on "webgpu".`);
  }
  const config = parseModelConfig(await readModelFileText(model, 'config.json', options), model);
  const family = familyFor(config.modelType);
  const prequantized = config.quantization ?? undefined;
  if (prequantized) {
    // The checkpoint fixes the weights' format: its Linears run as q4 (repacked on the GPU), the rest as stored.
    if (dtype !== 'auto' && dtype !== 'q4') {
      throw new ConfigError(`"${model}" is pre-quantized (${prequantized.describe}); load it with dtype 'auto' or 'q4', not ${JSON.stringify(dtypeOption)}.`);
    }
    if (options.group_size !== undefined && options.group_size !== prequantized.group) {
      throw new ConfigError(`"${model}" is pre-quantized with group size ${prequantized.group}; group_size ${options.group_size} cannot apply.`);
    }
  }
  const loadDtype: LoadDtype = prequantized ? 'auto' : dtype;
  const genText = await optionalText(model, 'generation_config.json', options);
  const generationConfig: GenerationOptions | null = genText === null ? null : parseGenerationConfigJson(genText);

  const maxContext = options.max_context === undefined ? Math.min(config.maxPositionEmbeddings, 4096) : positiveInt(options.max_context, 'max_context');
  const prefillChunk = options.prefill_chunk_size === undefined ? 128 : positiveInt(options.prefill_chunk_size, 'prefill_chunk_size');
  const specs = family.weights(config);

  const ownsContext = !options.context;
  const ctx = options.context ?? (await GPUContext.create({ gpu: options.gpu }));
  const weights = new WeightStore(ctx);
  try {
    // The estimate, before anything is allocated or downloaded: weights + one sequence's KV cache and scratch.
    const weightBytes = estimateWeightBytes(specs, { dtype: loadDtype, torchDtype: config.torchDtype, quantGroup, prequantized });
    // Converting on load holds one tensor twice more (its upload and its converted copy) for a moment; quantizing
    // holds one whole slot staged as stored.
    const transient = loadDtype === 'auto' ? 0 : 2 * Math.max(...specs.map((s) => s.rows * s.cols * 4));
    const workspace = estimateWorkspace(family, config, maxContext, prefillChunk);
    const estimate = weightBytes + workspace + transient;
    if (options.max_gpu_memory !== undefined && estimate > options.max_gpu_memory) {
      throw new OutOfMemoryError(
        `"${model}" needs about ${formatBytes(estimate)} of GPU memory (weights ${formatBytes(weightBytes)}, KV cache and ` +
          `activations for ${maxContext} positions ${formatBytes(workspace)}), above max_gpu_memory ${formatBytes(options.max_gpu_memory)}.`,
      );
    }
    ctx.device.pushErrorScope('out-of-memory');
    let loadError: unknown = null;
    try {
      await weights.load(specs, streamModelTensors(model, options), {
        dtype: loadDtype,
        torchDtype: config.torchDtype,
        maxBindingBytes: options.max_binding_bytes,
        quantGroup,
        prequantized,
        ignore: (name) => family.ignoreTensor(name, config),
        describeConfig: `config.json has num_hidden_layers ${config.numLayers}, tie_word_embeddings ${config.tieWordEmbeddings}`,
      });
    } catch (e) {
      loadError = e;
    }
    const oom = await ctx.device.popErrorScope();
    if (oom) {
      weights.dispose();
      throw new OutOfMemoryError(
        `Out of GPU memory loading "${model}" (about ${formatBytes(estimate)} needed: weights ${formatBytes(weightBytes)}, ` +
          `workspace ${formatBytes(workspace)}): ${oom.message}`,
      );
    }
    if (loadError) throw loadError;
    const instance = family.instantiate(ctx, config, weights);
    const lm = new CausalLM({ ctx, ownsContext, family, config, weights, instance, generationConfig, maxContext, prefillChunk });
    options.progress_callback?.({ status: 'ready', name: model, file: '' });
    return lm;
  } catch (e) {
    weights.dispose();
    if (ownsContext) ctx.dispose();
    throw e;
  }
}

/**
 * GPU bytes besides the weights for one sequence: the family's KV cache and scratch for one prefill chunk, plus what
 * the runtime adds: a forward call's logits for that chunk (and their readback copy) and the final-norm rows, the
 * sampler's rows, the repetition history, and the prepared dispatches' uniforms (a few cached plans of ~14 dispatches
 * per layer).
 */
function estimateWorkspace(family: ModelFamily, c: DecoderConfig, maxContext: number, chunk: number): number {
  const forward = 2 * chunk * c.vocabSize + chunk * c.hiddenSize;
  const sampling = 2 * c.vocabSize + 3 * c.hiddenSize + maxContext + 16;
  const uniforms = 8 * (14 * c.numLayers + 8) * 16;
  return family.workspaceBytes(c, 1, chunk, maxContext) + (forward + sampling + uniforms) * 4;
}
