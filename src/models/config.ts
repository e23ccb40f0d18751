/**
 * `config.json` of a Hugging Face decoder-only model, normalized into one shape for every supported
 * architecture, with the defaults of the Python config classes (transformers 4.47; Qwen3 from 4.51) filled in
 * for fields the file leaves out. Any field present in the file overrides the default.
 *
 * Validation is strict: a field of the wrong type, an unknown `model_type` or an inconsistent head layout is a
 * `ConfigError` naming the file and the field.
 */
import { ConfigError } from '../errors.js';
import type { Activation } from '../kernels/elementwise.js';
import { ropeInvFreq, type RopeConfig } from '../kernels/rope-scaling.js';
import { parseQuantizationConfig, type PrequantizedConfig } from './quantization-config.js';

export const SUPPORTED_MODEL_TYPES: readonly string[] = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'phi3', 'gpt2'];

export type TorchDtype = 'float32' | 'float16' | 'bfloat16';

export interface DecoderConfig {
  modelType: string;
  architectures: string[];
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  /** `rms_norm_eps` (RMSNorm models) or `layer_norm_epsilon` (GPT-2). */
  normEps: number;
  /** silu; gelu_pytorch_tanh / gelu_new / gelu_fast → 'gelu_tanh'; gelu → 'gelu_erf'. */
  hiddenAct: Activation;
  /** Biases on the q, k, v projections. */
  qkvBias: boolean;
  /** Bias on the attention output projection. */
  oBias: boolean;
  /** Biases on the MLP projections. */
  mlpBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  /**
   * Per layer: sliding-window size, 0 = full attention. With window w, query position q sees key positions k
   * with q − w < k ≤ q (transformers masks `k <= q - w`).
   */
  layerWindows: number[];
  tieWordEmbeddings: boolean;
  torchDtype: TorchDtype | null;
  bosTokenId: number | null;
  eosTokenId: number[];
  padTokenId: number | null;
  /** How positions enter the model: rotary embeddings, or GPT-2's learned position embeddings (`wpe`). */
  positionEmbedding: 'rope' | 'learned';
  /** The fields `ropeInvFreq` reads, defaults applied (for GPT-2: present but unused). */
  rope: RopeConfig;
  /** Gemma-2 `attn_logit_softcapping`; 0 = none. */
  attnSoftCap: number;
  /** Gemma-2 `final_logit_softcapping`; 0 = none. */
  finalSoftCap: number;
  /** Gemma-2: attention scores are scaled by query_pre_attn_scalar^-0.5 instead of head_dim^-0.5. */
  queryPreAttnScalar: number | null;
  /** Gemma / Gemma-2: embeddings are multiplied by sqrt(hidden_size), RMSNorm weights are used as (1 + w). */
  gemmaNorm: boolean;
  /** A pre-quantized (AWQ / GPTQ) checkpoint's `quantization_config`, or null. */
  quantization: PrequantizedConfig | null;
  /** config.json as parsed, with the config class's defaults filled in for absent fields. */
  raw: Record<string, unknown>;
}

/** Defaults of each Python config class's `__init__` (and of `PretrainedConfig` for the token ids). */
const CLASS_DEFAULTS: Record<string, Record<string, unknown>> = {
  llama: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: null,
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    use_cache: true,
    pad_token_id: null,
    bos_token_id: 1,
    eos_token_id: 2,
    pretraining_tp: 1,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    head_dim: null,
  },
  mistral: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: null,
    hidden_act: 'silu',
    max_position_embeddings: 4096 * 32,
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    use_cache: true,
    pad_token_id: null,
    bos_token_id: 1,
    eos_token_id: 2,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    sliding_window: 4096,
    attention_dropout: 0.0,
  },
  qwen2: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    hidden_act: 'silu',
    max_position_embeddings: 32768,
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    use_cache: true,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    rope_scaling: null,
    use_sliding_window: false,
    sliding_window: 4096,
    max_window_layers: 28,
    attention_dropout: 0.0,
    bos_token_id: null,
    eos_token_id: null,
    pad_token_id: null,
  },
  qwen3: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    head_dim: 128,
    hidden_act: 'silu',
    max_position_embeddings: 32768,
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    use_cache: true,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    rope_scaling: null,
    attention_bias: false,
    use_sliding_window: false,
    sliding_window: 4096,
    max_window_layers: 28,
    attention_dropout: 0.0,
    bos_token_id: null,
    eos_token_id: null,
    pad_token_id: null,
  },
  gemma: {
    vocab_size: 256000,
    hidden_size: 3072,
    intermediate_size: 24576,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 16,
    head_dim: 256,
    hidden_act: 'gelu_pytorch_tanh',
    hidden_activation: null,
    max_position_embeddings: 8192,
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    use_cache: true,
    pad_token_id: 0,
    eos_token_id: 1,
    bos_token_id: 2,
    tie_word_embeddings: true,
    rope_theta: 10000.0,
    attention_bias: false,
    attention_dropout: 0.0,
  },
  gemma2: {
    vocab_size: 256000,
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 8192,
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    use_cache: true,
    pad_token_id: 0,
    eos_token_id: 1,
    bos_token_id: 2,
    tie_word_embeddings: true,
    rope_theta: 10000.0,
    attention_bias: false,
    attention_dropout: 0.0,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    final_logit_softcapping: 30.0,
    attn_logit_softcapping: 50.0,
    cache_implementation: 'hybrid',
  },
  phi3: {
    vocab_size: 32064,
    hidden_size: 3072,
    intermediate_size: 8192,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: null,
    resid_pdrop: 0.0,
    embd_pdrop: 0.0,
    attention_dropout: 0.0,
    hidden_act: 'silu',
    max_position_embeddings: 4096,
    original_max_position_embeddings: 4096,
    initializer_range: 0.02,
    rms_norm_eps: 1e-5,
    use_cache: true,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    rope_scaling: null,
    bos_token_id: 1,
    eos_token_id: 32000,
    pad_token_id: 32000,
    sliding_window: null,
  },
  gpt2: {
    vocab_size: 50257,
    n_positions: 1024,
    n_embd: 768,
    n_layer: 12,
    n_head: 12,
    n_inner: null,
    activation_function: 'gelu_new',
    resid_pdrop: 0.1,
    embd_pdrop: 0.1,
    attn_pdrop: 0.1,
    layer_norm_epsilon: 1e-5,
    initializer_range: 0.02,
    scale_attn_weights: true,
    use_cache: true,
    bos_token_id: 50256,
    eos_token_id: 50256,
    pad_token_id: null,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
  },
};

/** Fields without which the checkpoint's shapes are unknown: a config that omits them is rejected. */
const REQUIRED: Record<string, string[]> = {
  gpt2: ['vocab_size', 'n_embd', 'n_layer', 'n_head'],
  default: ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads'],
};

const ACTIVATION_NAMES: Record<string, Activation> = {
  silu: 'silu',
  swish: 'silu',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_new: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  gelu: 'gelu_erf',
};

/** Reads and checks the fields of one parsed config, naming the file in every error. */
class Reader {
  constructor(
    readonly obj: Record<string, unknown>,
    readonly file: string,
  ) {}

  /** `value`, when given, is shown after the problem (`…, got "8"`). */
  fail(field: string, problem: string, ...value: [unknown?]): never {
    const got = value.length > 0 ? `, got ${show(value[0])}` : '';
    throw new ConfigError(`${this.file}: ${field} ${problem}${got}`);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  posInt(field: string): number {
    const v = this.obj[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) this.fail(field, 'must be a positive integer', v);
    return v;
  }

  nonNegInt(field: string): number {
    const v = this.obj[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(field, 'must be a non-negative integer', v);
    return v;
  }

  posNumber(field: string): number {
    const v = this.obj[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, 'must be a positive number', v);
    return v;
  }

  /** A positive number, or 0 for null / absent. */
  optPosNumber(field: string): number {
    if (!this.has(field)) return 0;
    return this.posNumber(field);
  }

  optPosInt(field: string): number | null {
    if (!this.has(field)) return null;
    return this.posInt(field);
  }

  bool(field: string): boolean {
    const v = this.obj[field];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') this.fail(field, 'must be a boolean', v);
    return v;
  }

  string(field: string): string {
    const v = this.obj[field];
    if (typeof v !== 'string') this.fail(field, 'must be a string', v);
    return v;
  }

  tokenId(field: string): number | null {
    const v = this.obj[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(field, 'must be a non-negative integer or null', v);
    return v;
  }

  tokenIds(field: string): number[] {
    const v = this.obj[field];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    for (const id of list) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        this.fail(field, 'must be a non-negative integer, a list of them, or null', v);
      }
    }
    return [...new Set(list as number[])];
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function activation(r: Reader, field: string): Activation {
  const name = r.string(field);
  const act = ACTIVATION_NAMES[name];
  if (act === undefined) {
    r.fail(field, `${JSON.stringify(name)} is not supported (supported: ${Object.keys(ACTIVATION_NAMES).join(', ')})`);
  }
  return act;
}

function torchDtype(r: Reader): TorchDtype | null {
  const v = r.obj.torch_dtype;
  if (v === undefined || v === null || v === 'auto') return null;
  if (v === 'float32' || v === 'float16' || v === 'bfloat16') return v;
  if (typeof v !== 'string') r.fail('torch_dtype', 'must be a string', v);
  r.fail('torch_dtype', 'is not supported (supported: float32, float16, bfloat16)', v);
}

/**
 * Normalizes a parsed `config.json` (`raw`) of a supported decoder. `file` names the file in error messages
 * (default `config.json`).
 */
export function normalizeConfig(raw: unknown, file = 'config.json'): DecoderConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${file}: must be a JSON object, got ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
  }
  const given = raw as Record<string, unknown>;
  const modelType = given.model_type;
  if (modelType === undefined || modelType === null) {
    throw new ConfigError(`${file}: model_type is missing (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
  if (typeof modelType !== 'string') {
    throw new ConfigError(`${file}: model_type must be a string, got ${show(modelType)}`);
  }
  if (!SUPPORTED_MODEL_TYPES.includes(modelType)) {
    throw new ConfigError(
      `${file}: model_type ${JSON.stringify(modelType)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
    );
  }

  for (const field of REQUIRED[modelType] ?? REQUIRED.default) {
    if (given[field] === undefined || given[field] === null) {
      throw new ConfigError(`${file}: ${field} is missing (required for model_type ${JSON.stringify(modelType)})`);
    }
  }

  // Defaults first, then every field of the file (present fields override, including explicit nulls).
  const filled: Record<string, unknown> = { ...CLASS_DEFAULTS[modelType] };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) filled[k] = v;
  const r = new Reader(filled, file);

  let architectures: string[] = [];
  if (filled.architectures !== undefined && filled.architectures !== null) {
    const a = filled.architectures;
    if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) r.fail('architectures', 'must be a list of strings', a);
    architectures = a as string[];
  }

  const common = {
    modelType,
    architectures,
    torchDtype: torchDtype(r),
    bosTokenId: r.tokenId('bos_token_id'),
    eosTokenId: r.tokenIds('eos_token_id'),
    padTokenId: r.tokenId('pad_token_id'),
    quantization: parseQuantizationConfig(filled, file),
    raw: filled,
  };

  if (modelType === 'gpt2') {
    const vocabSize = r.posInt('vocab_size');
    const hiddenSize = r.posInt('n_embd');
    const numLayers = r.posInt('n_layer');
    const numHeads = r.posInt('n_head');
    if (hiddenSize % numHeads !== 0) r.fail('n_embd', `(${hiddenSize}) must be divisible by n_head (${numHeads})`);
    const intermediateSize = r.has('n_inner') ? r.posInt('n_inner') : 4 * hiddenSize;
    const maxPos = r.posInt('n_positions');
    if (r.has('scale_attn_weights') && !r.bool('scale_attn_weights')) {
      r.fail('scale_attn_weights', 'false is not supported');
    }
    if (r.bool('scale_attn_by_inverse_layer_idx')) r.fail('scale_attn_by_inverse_layer_idx', 'true is not supported');
    return {
      ...common,
      vocabSize,
      hiddenSize,
      intermediateSize,
      numLayers,
      numHeads,
      numKvHeads: numHeads,
      headDim: hiddenSize / numHeads,
      maxPositionEmbeddings: maxPos,
      normEps: r.posNumber('layer_norm_epsilon'),
      hiddenAct: activation(r, 'activation_function'),
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      qkNorm: false,
      layerWindows: new Array(numLayers).fill(0),
      tieWordEmbeddings: r.bool('tie_word_embeddings'),
      positionEmbedding: 'learned',
      rope: { hidden_size: hiddenSize, num_attention_heads: numHeads, head_dim: hiddenSize / numHeads, max_position_embeddings: maxPos, rope_scaling: null },
      attnSoftCap: 0,
      finalSoftCap: 0,
      queryPreAttnScalar: null,
      gemmaNorm: false,
    };
  }

  const vocabSize = r.posInt('vocab_size');
  const hiddenSize = r.posInt('hidden_size');
  const intermediateSize = r.posInt('intermediate_size');
  const numLayers = r.posInt('num_hidden_layers');
  const numHeads = r.posInt('num_attention_heads');
  // num_key_value_heads = num_attention_heads when None (Llama, Phi-3; the others default to a number).
  if (!r.has('num_key_value_heads')) filled.num_key_value_heads = numHeads;
  const numKvHeads = r.posInt('num_key_value_heads');
  if (numHeads % numKvHeads !== 0) {
    r.fail('num_attention_heads', `(${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  // Qwen2 and Phi-3 (4.47) have no head_dim: always hidden_size // num_attention_heads.
  const readsHeadDim = modelType !== 'qwen2' && modelType !== 'phi3';
  let headDim: number;
  if (readsHeadDim && r.has('head_dim')) {
    headDim = r.posInt('head_dim');
  } else {
    if (hiddenSize % numHeads !== 0) {
      r.fail('hidden_size', `(${hiddenSize}) must be divisible by num_attention_heads (${numHeads}) when head_dim is absent`);
    }
    headDim = hiddenSize / numHeads;
    if (readsHeadDim) filled.head_dim = headDim;
  }
  const maxPos = r.posInt('max_position_embeddings');
  const normEps = r.posNumber('rms_norm_eps');
  r.posNumber('rope_theta');
  const ropeScaling = filled.rope_scaling ?? null;
  if (ropeScaling !== null && (typeof ropeScaling !== 'object' || Array.isArray(ropeScaling))) {
    r.fail('rope_scaling', 'must be an object or null', ropeScaling);
  }
  let partial: number | null = null;
  if (r.has('partial_rotary_factor')) partial = r.posNumber('partial_rotary_factor');

  const rope: RopeConfig = {
    rope_theta: filled.rope_theta as number,
    head_dim: headDim,
    hidden_size: hiddenSize,
    num_attention_heads: numHeads,
    partial_rotary_factor: partial,
    max_position_embeddings: maxPos,
    rope_scaling: ropeScaling as Record<string, unknown> | null,
  };
  if (r.has('original_max_position_embeddings')) rope.original_max_position_embeddings = r.posInt('original_max_position_embeddings');
  try {
    ropeInvFreq(rope);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${file}: ${e.message}`, { cause: e });
    throw e;
  }

  // Activation: Gemma reads hidden_activation when set (the checkpoints' hidden_act "gelu" is a known misnomer
  // for the tanh approximation), else hidden_act; Gemma-2 reads hidden_activation only.
  let hiddenAct: Activation;
  if (modelType === 'gemma2') hiddenAct = activation(r, 'hidden_activation');
  else if (modelType === 'gemma' && r.has('hidden_activation')) hiddenAct = activation(r, 'hidden_activation');
  else hiddenAct = activation(r, 'hidden_act');

  let qkvBias = false;
  let oBias = false;
  let mlpBias = false;
  switch (modelType) {
    case 'llama':
      qkvBias = oBias = r.bool('attention_bias');
      mlpBias = r.bool('mlp_bias');
      break;
    case 'qwen2':
      qkvBias = true; // q/k/v_proj have bias=True, o_proj bias=False, in every Qwen2
      break;
    case 'qwen3':
    case 'gemma':
    case 'gemma2':
      qkvBias = oBias = r.bool('attention_bias');
      break;
    // mistral, phi3: no biases anywhere.
  }

  const layerWindows: number[] = new Array(numLayers).fill(0);
  switch (modelType) {
    case 'mistral':
    case 'phi3': {
      const w = r.optPosInt('sliding_window');
      if (w !== null) layerWindows.fill(w);
      break;
    }
    case 'qwen2':
    case 'qwen3': {
      const use = r.bool('use_sliding_window');
      const w = r.optPosInt('sliding_window');
      const from = r.nonNegInt('max_window_layers');
      if (use && w !== null) for (let i = from; i < numLayers; i++) layerWindows[i] = w;
      break;
    }
    case 'gemma2': {
      const w = r.optPosInt('sliding_window');
      if (w !== null) for (let i = 0; i < numLayers; i += 2) layerWindows[i] = w;
      break;
    }
  }

  let attnSoftCap = 0;
  let finalSoftCap = 0;
  let queryPreAttnScalar: number | null = null;
  if (modelType === 'gemma2') {
    attnSoftCap = r.optPosNumber('attn_logit_softcapping');
    finalSoftCap = r.optPosNumber('final_logit_softcapping');
    queryPreAttnScalar = r.posNumber('query_pre_attn_scalar');
  }

  return {
    ...common,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    maxPositionEmbeddings: maxPos,
    normEps,
    hiddenAct,
    qkvBias,
    oBias,
    mlpBias,
    qkNorm: modelType === 'qwen3',
    layerWindows,
    tieWordEmbeddings: r.bool('tie_word_embeddings'),
    positionEmbedding: 'rope',
    rope,
    attnSoftCap,
    finalSoftCap,
    queryPreAttnScalar,
    gemmaNorm: modelType === 'gemma' || modelType === 'gemma2',
  };
}
