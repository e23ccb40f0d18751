/**
 * Generation options with the names and defaults of transformers' `GenerationConfig`, merged from layers
 * (model config < `generation_config.json` < the options of one `generate` call) and resolved into what the
 * decoding loop needs.
 *
 * In every layer `undefined` means "not set" (an earlier layer's value stays). `null` means "set to nothing",
 * as `None` does in Python: for `max_new_tokens` it falls back to `max_length`, for `top_k` / `top_p` /
 * `min_p` / `temperature` / `repetition_penalty` it turns the filter off; for token ids and `stop_strings`
 * it is the same as not set.
 */
import { ConfigError } from '../errors.js';

export interface GenerationOptions {
  /** New tokens to generate at most; overrides `max_length`. */
  max_new_tokens?: number | null;
  /** Prompt plus new tokens at most (transformers' default 20), used when `max_new_tokens` is not set. */
  max_length?: number | null;
  /** EOS ids are suppressed until this many new tokens were generated. */
  min_new_tokens?: number | null;
  /** EOS ids are suppressed until the sequence (prompt + new tokens) is this long (transformers' default 0). */
  min_length?: number | null;
  /** Sample (true) or pick the most likely token (false, the default). */
  do_sample?: boolean | null;
  temperature?: number | null;
  /** Keep the k most likely tokens (default 50; 0 or null: off). */
  top_k?: number | null;
  /** Nucleus sampling: keep the smallest set with this much probability (default 1: off). */
  top_p?: number | null;
  /** Drop tokens less likely than min_p × the top probability (default null: off). */
  min_p?: number | null;
  repetition_penalty?: number | null;
  num_return_sequences?: number | null;
  /** Only 1: beam search is not supported. */
  num_beams?: number | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
  bos_token_id?: number | null;
  /** Generation of a sequence stops once its new text contains one of these. */
  stop_strings?: string | string[] | null;
  /** Seed of the sampler's random numbers (webslm's own; a random one when not set). */
  seed?: number | null;
}

export interface ResolvedGeneration {
  /** From `max_new_tokens`, else `max_length` − prompt length; never negative. */
  maxNewTokens: number;
  /** EOS ids are suppressed for the first this many new tokens: max(min_new_tokens, min_length − prompt length). */
  minNewTokens: number;
  /** `do_sample` false: argmax decoding; temperature, topK, topP and minP are then neutral (1, 0, 1, 0). */
  greedy: boolean;
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off. */
  minP: number;
  /** 1 = off. */
  repetitionPenalty: number;
  numReturnSequences: number;
  eosTokenIds: number[];
  /** `pad_token_id`, else the first EOS id (as transformers does, with a warning), else null. */
  padTokenId: number | null;
  bosTokenId: number | null;
  stopStrings: string[];
  /** A u32-range integer; random when not given. */
  seed: number;
}

/** transformers' GenerationConfig defaults (the ones webslm reads). */
export const GENERATION_DEFAULTS = {
  max_length: 20,
  max_new_tokens: null,
  min_new_tokens: 0,
  min_length: 0,
  do_sample: false,
  temperature: 1.0,
  top_k: 50,
  top_p: 1.0,
  min_p: null,
  repetition_penalty: 1.0,
  num_return_sequences: 1,
  num_beams: 1,
  eos_token_id: null,
  pad_token_id: null,
  bos_token_id: null,
  stop_strings: null,
  seed: null,
} as const satisfies Required<GenerationOptions>;

const KEYS = Object.keys(GENERATION_DEFAULTS) as Array<keyof GenerationOptions>;

function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function bad(where: string, key: string, problem: string, value: unknown): never {
  throw new ConfigError(`${where}${key} ${problem}, got ${show(value)}`);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** Checks the type and range of every set field of one layer; `where` prefixes the messages. */
function checkLayer(opts: Record<string, unknown>, where: string): void {
  for (const key of KEYS) {
    const v = opts[key];
    if (v === undefined || v === null) continue;
    switch (key) {
      case 'max_new_tokens':
      case 'max_length':
      case 'min_new_tokens':
      case 'min_length':
        if (!isInt(v) || v < 0) bad(where, key, 'must be a non-negative integer', v);
        break;
      case 'num_return_sequences':
        if (!isInt(v) || v < 1) bad(where, key, 'must be a positive integer', v);
        break;
      case 'num_beams':
        // > 1 is refused after merging, so a call's num_beams: 1 can override a checkpoint's default.
        if (!isInt(v) || v < 1) bad(where, key, 'must be a positive integer', v);
        break;
      case 'do_sample':
        if (typeof v !== 'boolean') bad(where, key, 'must be a boolean', v);
        break;
      case 'temperature':
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(where, key, 'must be a non-negative number', v);
        break;
      case 'top_k':
        if (!isInt(v) || v < 0) bad(where, key, 'must be a non-negative integer', v);
        break;
      case 'top_p':
        if (typeof v !== 'number' || !(v > 0 && v <= 1)) bad(where, key, 'must be a number in (0, 1]', v);
        break;
      case 'min_p':
        if (typeof v !== 'number' || !(v >= 0 && v <= 1)) bad(where, key, 'must be a number in [0, 1]', v);
        break;
      case 'repetition_penalty':
        if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) bad(where, key, 'must be a positive number', v);
        break;
      case 'eos_token_id': {
        const list = Array.isArray(v) ? v : [v];
        if (!list.every((id) => isInt(id) && id >= 0)) bad(where, key, 'must be a non-negative integer or a list of them', v);
        break;
      }
      case 'pad_token_id':
      case 'bos_token_id':
        if (!isInt(v) || v < 0) bad(where, key, 'must be a non-negative integer', v);
        break;
      case 'stop_strings': {
        const list = Array.isArray(v) ? v : [v];
        if (!list.every((s) => typeof s === 'string' && s.length > 0)) {
          bad(where, key, 'must be a non-empty string or a list of them', v);
        }
        break;
      }
      case 'seed':
        if (!isInt(v) || v < 0) bad(where, key, 'must be a non-negative integer', v);
        break;
    }
  }
}

/**
 * The options of a `generation_config.json` text. Fields webslm does not read are ignored; a read field of the
 * wrong type or range is a `ConfigError` naming `file` and the field.
 */
export function parseGenerationConfigJson(text: string, file = 'generation_config.json'): GenerationOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file} is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`${file} must be a JSON object, got ${Array.isArray(parsed) ? 'an array' : show(parsed)}`);
  }
  const obj = parsed as Record<string, unknown>;
  checkLayer(obj, `${file}: `);
  const out: GenerationOptions = {};
  for (const key of KEYS) {
    if (obj[key] !== undefined) (out as Record<string, unknown>)[key] = obj[key];
  }
  return out;
}

function randomU32(): number {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint32Array) => Uint32Array } }).crypto;
  if (c?.getRandomValues) return c.getRandomValues(new Uint32Array(1))[0];
  return Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
}

/**
 * Merges `layers` (later ones override earlier ones; null / undefined layers are skipped) over transformers'
 * defaults and `modelConfig`'s token ids, checks them, and resolves them for a prompt of `promptLength` tokens.
 */
export function resolveGeneration(
  layers: Array<GenerationOptions | null | undefined>,
  promptLength: number,
  modelConfig?: { eosTokenId: number[]; padTokenId: number | null; bosTokenId: number | null },
): ResolvedGeneration {
  if (!Number.isInteger(promptLength) || promptLength < 0) {
    throw new ConfigError(`prompt length must be a non-negative integer, got ${promptLength}`);
  }
  const merged: Record<string, unknown> = { ...GENERATION_DEFAULTS };
  // Token ids and stop strings: null means "not set", so an earlier layer (the model config) shows through.
  const fallThroughOnNull = new Set<string>(['eos_token_id', 'pad_token_id', 'bos_token_id', 'stop_strings', 'seed']);
  if (modelConfig) {
    if (modelConfig.eosTokenId.length > 0) merged.eos_token_id = modelConfig.eosTokenId;
    if (modelConfig.padTokenId !== null) merged.pad_token_id = modelConfig.padTokenId;
    if (modelConfig.bosTokenId !== null) merged.bos_token_id = modelConfig.bosTokenId;
  }
  for (const layer of layers) {
    if (layer === null || layer === undefined) continue;
    if (typeof layer !== 'object') throw new ConfigError(`generation options must be an object, got ${show(layer)}`);
    checkLayer(layer as Record<string, unknown>, '');
    for (const key of KEYS) {
      const v = layer[key];
      if (v === undefined || (v === null && fallThroughOnNull.has(key))) continue;
      merged[key] = v;
    }
  }

  const maxNew = merged.max_new_tokens as number | null;
  const maxLength = merged.max_length as number | null;
  let maxNewTokens: number;
  if (maxNew !== null) maxNewTokens = maxNew;
  else if (maxLength !== null) maxNewTokens = Math.max(0, maxLength - promptLength);
  else maxNewTokens = Math.max(0, GENERATION_DEFAULTS.max_length - promptLength);

  const numBeams = (merged.num_beams as number | null) ?? 1;
  if (numBeams > 1) throw new ConfigError(`num_beams is ${numBeams}: beam search is not supported (use num_beams 1)`);

  const greedy = merged.do_sample !== true;
  const temperature = (merged.temperature as number | null) ?? 1;
  if (!greedy && temperature === 0) {
    throw new ConfigError(
      'temperature must be strictly positive when do_sample is true, got 0 (for greedy decoding set do_sample: false)',
    );
  }
  const numReturnSequences = (merged.num_return_sequences as number | null) ?? 1;
  if (greedy && numReturnSequences > 1) {
    throw new ConfigError(
      `num_return_sequences is ${numReturnSequences}: greedy decoding (do_sample false) only supports num_return_sequences 1`,
    );
  }

  const eos = merged.eos_token_id as number | number[] | null;
  const eosTokenIds = eos === null ? [] : [...new Set(Array.isArray(eos) ? eos : [eos])];
  const pad = merged.pad_token_id as number | null;
  const stop = merged.stop_strings as string | string[] | null;

  return {
    maxNewTokens,
    minNewTokens: Math.max((merged.min_new_tokens as number | null) ?? 0, ((merged.min_length as number | null) ?? 0) - promptLength, 0),
    greedy,
    temperature: greedy ? 1 : temperature,
    topK: greedy ? 0 : ((merged.top_k as number | null) ?? 0),
    topP: greedy ? 1 : ((merged.top_p as number | null) ?? 1),
    minP: greedy ? 0 : ((merged.min_p as number | null) ?? 0),
    repetitionPenalty: (merged.repetition_penalty as number | null) ?? 1,
    numReturnSequences,
    eosTokenIds,
    padTokenId: pad ?? (eosTokenIds.length > 0 ? eosTokenIds[0] : null),
    bosTokenId: merged.bos_token_id as number | null,
    stopStrings: stop === null ? [] : Array.isArray(stop) ? [...stop] : [stop],
    seed: (merged.seed as number | null) ?? randomU32(),
  };
}
