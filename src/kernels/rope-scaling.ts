/**
 * Rotary-embedding inverse frequencies on the host, as Hugging Face transformers computes them in
 * `modeling_rope_utils.py` (one `_compute_*_parameters` function per `rope_scaling` type). Math is done in float64
 * and rounded to f32 once at the end; the result feeds the `invFreq` buffer of the rope kernel (`rope.ts`).
 *
 * Supported `rope_scaling.rope_type` (or the older key `type`): absent / `default`, `linear`, `dynamic` (NTK),
 * `llama3`, `yarn`. Anything else, or a malformed field, is a `ConfigError` naming the field.
 */
import { ConfigError } from '../errors.js';

/** The fields of a Hugging Face `config.json` that rotary embeddings read. Other fields are ignored. */
export interface RopeConfig {
  rope_theta?: number;
  head_dim?: number | null;
  hidden_size?: number;
  num_attention_heads?: number;
  partial_rotary_factor?: number | null;
  max_position_embeddings?: number;
  rope_scaling?: Record<string, unknown> | null;
  [key: string]: unknown;
}

export interface RopeInvFreqOptions {
  /**
   * Current sequence length (positions 0 … seqLen − 1 in use). Only `dynamic` reads it: past
   * `max_position_embeddings` the base is recomputed for this length, as transformers' `dynamic_rope_update` does.
   */
  seqLen?: number;
}

export interface RopeParameters {
  /** (rotaryDim / 2) f32 inverse frequencies: angle of pair i at position p is p · invFreq[i]. */
  invFreq: Float32Array;
  /** Multiplies cos and sin (`attention_factor`; 1 except for yarn). */
  attentionScaling: number;
  /** Number of leading head dimensions rotated: int(head_dim · partial_rotary_factor). */
  rotaryDim: number;
  /** Head dimension the rotary dims are taken from. */
  headDim: number;
  /** The rope type used (`default` when the config has no scaling). */
  ropeType: RopeType;
}

export type RopeType = 'default' | 'linear' | 'dynamic' | 'llama3' | 'yarn';

/** Default `rope_theta` when the config omits it (the Llama/Mistral/Qwen config classes' default). */
export const DEFAULT_ROPE_THETA = 10000;

function fail(field: string, problem: string): never {
  throw new ConfigError(`RoPE config: ${field} ${problem}.`);
}

function positiveNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(field, `must be a positive finite number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    fail(field, `must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalNumber(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail(field, `must be a finite number, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `rope_scaling.factor`: a number ≥ 1 (transformers' validation asks for a float ≥ 1). */
function scalingFactor(scaling: Record<string, unknown>): number {
  const factor = positiveNumber(scaling.factor, 'rope_scaling.factor');
  if (factor < 1) fail('rope_scaling.factor', `must be ≥ 1, got ${factor}`);
  return factor;
}

/** Reads head_dim, rotary dim and base from the config. */
function baseGeometry(config: RopeConfig): { base: number; headDim: number; dim: number } {
  const base = config.rope_theta === undefined ? DEFAULT_ROPE_THETA : positiveNumber(config.rope_theta, 'rope_theta');
  if (base <= 1) fail('rope_theta', `must be greater than 1, got ${base}`);
  let headDim: number;
  if (config.head_dim !== undefined && config.head_dim !== null) {
    headDim = positiveInteger(config.head_dim, 'head_dim');
  } else {
    // head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    const hidden = positiveInteger(config.hidden_size, 'hidden_size');
    const heads = positiveInteger(config.num_attention_heads, 'num_attention_heads');
    if (hidden % heads !== 0) {
      fail('hidden_size', `(${hidden}) must be divisible by num_attention_heads (${heads}) when head_dim is absent`);
    }
    headDim = hidden / heads;
  }
  let partial = 1;
  if (config.partial_rotary_factor !== undefined && config.partial_rotary_factor !== null) {
    partial = positiveNumber(config.partial_rotary_factor, 'partial_rotary_factor');
    if (partial > 1) fail('partial_rotary_factor', `must be in (0, 1], got ${partial}`);
  }
  // dim = int(head_dim * partial_rotary_factor)
  const dim = Math.floor(headDim * partial);
  if (dim < 2 || dim % 2 !== 0) {
    fail('partial_rotary_factor', `gives a rotary dimension of ${dim} (head_dim ${headDim}); it must be even and ≥ 2`);
  }
  return { base, headDim, dim };
}

/** inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)), in float64. */
function defaultInvFreq(base: number, dim: number): Float64Array {
  const out = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = 1 / Math.pow(base, (2 * i) / dim);
  return out;
}

function ropeTypeOf(scaling: Record<string, unknown> | null | undefined): RopeType {
  if (scaling === undefined || scaling === null) return 'default';
  if (typeof scaling !== 'object' || Array.isArray(scaling)) {
    fail('rope_scaling', `must be an object or null, got ${JSON.stringify(scaling)}`);
  }
  // rope_type = config.rope_scaling.get("rope_type", config.rope_scaling.get("type"))
  const raw = scaling.rope_type ?? scaling.type ?? 'default';
  const field = scaling.rope_type !== undefined ? 'rope_scaling.rope_type' : 'rope_scaling.type';
  if (raw === 'default' || raw === 'linear' || raw === 'dynamic' || raw === 'llama3' || raw === 'yarn') return raw;
  fail(field, `${JSON.stringify(raw)} is not supported (supported: default, linear, dynamic, llama3, yarn)`);
}

/**
 * The inverse frequencies and attention scaling of `config`'s rotary embedding, as transformers'
 * `ROPE_INIT_FUNCTIONS[rope_type](config, device, seq_len)` returns them.
 */
export function ropeInvFreq(config: RopeConfig, options: RopeInvFreqOptions = {}): RopeParameters {
  if (config === null || typeof config !== 'object') fail('config', 'must be an object');
  const { base, headDim, dim } = baseGeometry(config);
  const ropeType = ropeTypeOf(config.rope_scaling);
  const scaling = (config.rope_scaling ?? {}) as Record<string, unknown>;
  let inv: Float64Array;
  let attentionScaling = 1;

  switch (ropeType) {
    case 'default':
      inv = defaultInvFreq(base, dim);
      break;

    case 'linear': {
      const factor = scalingFactor(scaling);
      inv = defaultInvFreq(base, dim);
      // inv_freq /= factor
      for (let i = 0; i < inv.length; i++) inv[i] /= factor;
      break;
    }

    case 'dynamic': {
      const factor = scalingFactor(scaling);
      const maxPos = positiveInteger(config.max_position_embeddings, 'max_position_embeddings');
      let seqLen = maxPos;
      if (options.seqLen !== undefined) {
        if (!Number.isInteger(options.seqLen) || options.seqLen < 1) {
          throw new ConfigError(`RoPE: seqLen must be a positive integer, got ${options.seqLen}.`);
        }
        // seq_len = seq_len if seq_len is not None and seq_len > max_position_embeddings else max_position_embeddings
        if (options.seqLen > maxPos) seqLen = options.seqLen;
      }
      // base = base * ((factor * seq_len / max_position_embeddings) - (factor - 1)) ** (dim / (dim - 2))
      // (dim = 2 would divide by zero in transformers too; the base is then left alone while seq_len ≤ max.)
      let scaledBase = base;
      if (seqLen > maxPos) {
        if (dim === 2) fail('partial_rotary_factor', 'gives a rotary dimension of 2, for which dynamic NTK is undefined');
        scaledBase = base * Math.pow((factor * seqLen) / maxPos - (factor - 1), dim / (dim - 2));
      }
      inv = defaultInvFreq(scaledBase, dim);
      break;
    }

    case 'llama3': {
      const factor = scalingFactor(scaling);
      const low = positiveNumber(scaling.low_freq_factor, 'rope_scaling.low_freq_factor');
      const high = positiveNumber(scaling.high_freq_factor, 'rope_scaling.high_freq_factor');
      if (!(high > low)) {
        fail('rope_scaling.high_freq_factor', `(${high}) must be greater than rope_scaling.low_freq_factor (${low})`);
      }
      const oldContext = positiveNumber(
        scaling.original_max_position_embeddings,
        'rope_scaling.original_max_position_embeddings',
      );
      inv = defaultInvFreq(base, dim);
      // low_freq_wavelen = old_context_len / low_freq_factor; high_freq_wavelen = old_context_len / high_freq_factor
      const lowWavelen = oldContext / low;
      const highWavelen = oldContext / high;
      for (let i = 0; i < inv.length; i++) {
        const f = inv[i];
        // wavelen = 2 * math.pi / inv_freq
        const wavelen = (2 * Math.PI) / f;
        if (wavelen > lowWavelen) {
          // inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
          inv[i] = f / factor;
        } else if (!(wavelen < highWavelen)) {
          // is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
          // smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
          const smooth = (oldContext / wavelen - low) / (high - low);
          // smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
          inv[i] = ((1 - smooth) * f) / factor + smooth * f;
        }
        // else high frequency: left as is.
      }
      break;
    }

    case 'yarn': {
      let factor = scalingFactor(scaling);
      const attentionFactor = optionalNumber(scaling.attention_factor, 'rope_scaling.attention_factor');
      const mscale = optionalNumber(scaling.mscale, 'rope_scaling.mscale');
      const mscaleAllDim = optionalNumber(scaling.mscale_all_dim, 'rope_scaling.mscale_all_dim');
      let originalMax: number;
      if (scaling.original_max_position_embeddings !== undefined && scaling.original_max_position_embeddings !== null) {
        originalMax = positiveNumber(
          scaling.original_max_position_embeddings,
          'rope_scaling.original_max_position_embeddings',
        );
        // factor = config.max_position_embeddings / original_max_position_embeddings
        factor = positiveInteger(config.max_position_embeddings, 'max_position_embeddings') / originalMax;
      } else {
        // original_max_position_embeddings = config.max_position_embeddings
        originalMax = positiveInteger(config.max_position_embeddings, 'max_position_embeddings');
      }
      // def get_mscale(scale, mscale=1): if scale <= 1: return 1.0; return 0.1 * mscale * math.log(scale) + 1.0
      const getMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      if (attentionFactor !== undefined) {
        if (attentionFactor <= 0) fail('rope_scaling.attention_factor', `must be positive, got ${attentionFactor}`);
        attentionScaling = attentionFactor;
      } else if (mscale && mscaleAllDim) {
        // attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        attentionScaling = getMscale(factor, mscale) / getMscale(factor, mscaleAllDim);
      } else {
        // attention_factor = get_mscale(factor)
        attentionScaling = getMscale(factor);
      }
      // beta_fast = config.rope_scaling.get("beta_fast") or 32; beta_slow = ... .get("beta_slow") or 1
      const betaFast = optionalNumber(scaling.beta_fast, 'rope_scaling.beta_fast') || 32;
      const betaSlow = optionalNumber(scaling.beta_slow, 'rope_scaling.beta_slow') || 1;
      if (betaFast <= 0) fail('rope_scaling.beta_fast', `must be positive, got ${betaFast}`);
      if (betaSlow <= 0) fail('rope_scaling.beta_slow', `must be positive, got ${betaSlow}`);
      const truncate = scaling.truncate ?? true;
      if (typeof truncate !== 'boolean') fail('rope_scaling.truncate', `must be a boolean, got ${JSON.stringify(truncate)}`);

      // find_correction_dim: (dim * math.log(max_position_embeddings / (num_rotations * 2 * math.pi))) / (2 * math.log(base))
      const correctionDim = (rotations: number) =>
        (dim * Math.log(originalMax / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
      let lowDim = correctionDim(betaFast);
      let highDim = correctionDim(betaSlow);
      if (truncate) {
        // low = math.floor(low); high = math.ceil(high)
        lowDim = Math.floor(lowDim);
        highDim = Math.ceil(highDim);
      }
      // return max(low, 0), min(high, dim - 1)
      lowDim = Math.max(lowDim, 0);
      highDim = Math.min(highDim, dim - 1);
      // linear_ramp_factor: if min == max: max += 0.001
      if (lowDim === highDim) highDim += 0.001;

      inv = new Float64Array(dim / 2);
      for (let i = 0; i < dim / 2; i++) {
        // pos_freqs = base ** (torch.arange(0, dim, 2).float() / dim)
        const posFreq = Math.pow(base, (2 * i) / dim);
        // inv_freq_extrapolation = 1.0 / pos_freqs; inv_freq_interpolation = 1.0 / (factor * pos_freqs)
        const extrapolation = 1 / posFreq;
        const interpolation = 1 / (factor * posFreq);
        // ramp_func = torch.clamp((torch.arange(dim) - min) / (max - min), 0, 1)
        const ramp = Math.min(1, Math.max(0, (i - lowDim) / (highDim - lowDim)));
        // inv_freq_extrapolation_factor = 1 - linear_ramp_factor(low, high, dim // 2)
        const extrapolationFactor = 1 - ramp;
        // inv_freq = inv_freq_interpolation * (1 - inv_freq_extrapolation_factor)
        //            + inv_freq_extrapolation * inv_freq_extrapolation_factor
        inv[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
      }
      break;
    }
  }

  return { invFreq: Float32Array.from(inv), attentionScaling, rotaryDim: dim, headDim, ropeType };
}
