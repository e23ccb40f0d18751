import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { normalizeConfig, SUPPORTED_MODEL_TYPES, type DecoderConfig } from '../../src/models/config.js';
import { parseModelConfig } from '../../src/api/auto-config.js';
import { AutoConfig } from '../../src/api/auto-config.js';
import { HF_TINY, HF_TINY_CASES, readJson } from '../helpers/hf-tiny.js';
import { decoderShape } from '../../src/models/llama.js';
import { familyFor, RUNNABLE_MODEL_TYPES } from '../../src/models/registry.js';

const norm = (c: string): DecoderConfig => normalizeConfig(readJson(c, 'config.json'));

function expectConfigError(fn: () => unknown, message: string | RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  if (typeof message === 'string') expect((err as Error).message).toContain(message);
  else expect((err as Error).message).toMatch(message);
}

const llamaBase = () => ({ ...readJson('llama', 'config.json') });

describe('normalizeConfig on the hf-tiny fixtures', () => {
  it('normalizes every case', () => {
    expect(HF_TINY_CASES.length).toBeGreaterThanOrEqual(10);
    for (const c of HF_TINY_CASES) {
      const raw = readJson(c, 'config.json');
      const cfg = normalizeConfig(raw);
      expect(SUPPORTED_MODEL_TYPES).toContain(cfg.modelType);
      expect(cfg.layerWindows).toHaveLength(cfg.numLayers);
      expect(cfg.numHeads % cfg.numKvHeads).toBe(0);
      expect(cfg.maxPositionEmbeddings).toBe(256);
      expect(cfg.raw.model_type).toBe(raw.model_type);
      expect(cfg.eosTokenId.length).toBeGreaterThan(0);
    }
  });

  it('llama', () => {
    const cfg = norm('llama');
    expect(cfg).toMatchObject({
      modelType: 'llama',
      architectures: ['LlamaForCausalLM'],
      vocabSize: 512,
      hiddenSize: 64,
      intermediateSize: 176,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      normEps: 1e-5,
      hiddenAct: 'silu',
      qkvBias: false,
      oBias: false,
      mlpBias: false,
      qkNorm: false,
      layerWindows: [0, 0],
      tieWordEmbeddings: false,
      torchDtype: 'float32',
      bosTokenId: 1,
      eosTokenId: [2],
      padTokenId: null,
      positionEmbedding: 'rope',
      attnSoftCap: 0,
      finalSoftCap: 0,
      queryPreAttnScalar: null,
    });
    expect(cfg.rope).toMatchObject({ rope_theta: 10000, head_dim: 16, rope_scaling: null, max_position_embeddings: 256 });
  });

  it('llama3-rope', () => {
    const cfg = norm('llama3-rope');
    expect(cfg.torchDtype).toBe('bfloat16');
    expect(cfg.headDim).toBe(32);
    expect(cfg.numLayers).toBe(3);
    expect(cfg.rope.rope_theta).toBe(500000);
    expect(cfg.rope.rope_scaling).toMatchObject({ rope_type: 'llama3', factor: 8 });
  });

  it('mistral: sliding_window null means full attention everywhere', () => {
    const cfg = norm('mistral');
    expect(cfg).toMatchObject({ numKvHeads: 1, layerWindows: [0, 0], qkvBias: false, oBias: false });
    expect(cfg.rope.rope_theta).toBe(1e6);
  });

  it('qwen2: q/k/v biases only; use_sliding_window false', () => {
    const cfg = norm('qwen2');
    expect(cfg).toMatchObject({ qkvBias: true, oBias: false, mlpBias: false, torchDtype: 'float16', layerWindows: [0, 0] });
    expect(cfg.bosTokenId).toBeNull();
    expect(cfg.eosTokenId).toEqual([767]);
    expect(cfg.padTokenId).toBe(765);
    expect(cfg.headDim).toBe(16);
  });

  it('qwen3: head_dim 32 with hidden 64, q/k norm', () => {
    const cfg = norm('qwen3');
    expect(cfg).toMatchObject({ headDim: 32, hiddenSize: 64, qkNorm: true, qkvBias: false, oBias: false });
    expect(cfg.rope.head_dim).toBe(32);
  });

  it('gemma: GeGLU, MQA, tied by default', () => {
    const cfg = norm('gemma');
    expect(cfg).toMatchObject({ hiddenAct: 'gelu_tanh', numKvHeads: 1, headDim: 16, tieWordEmbeddings: true, gemmaNorm: true, bosTokenId: 2, padTokenId: 0 });
    // tie_word_embeddings is absent from the file: the GemmaConfig default fills it in.
    expect(cfg.raw.tie_word_embeddings).toBe(true);
  });

  it('gemma2: alternating windows, soft-capping, query_pre_attn_scalar', () => {
    const cfg = norm('gemma2');
    expect(cfg).toMatchObject({
      layerWindows: [8, 0],
      attnSoftCap: 2.5,
      finalSoftCap: 2.0,
      queryPreAttnScalar: 32,
      headDim: 16,
      hiddenAct: 'gelu_tanh',
      tieWordEmbeddings: true,
    });
    const four = normalizeConfig({ ...readJson<Record<string, unknown>>('gemma2', 'config.json'), num_hidden_layers: 5 });
    expect(four.layerWindows).toEqual([8, 0, 8, 0, 8]);
  });

  it('phi3', () => {
    const cfg = norm('phi3');
    expect(cfg).toMatchObject({ vocabSize: 600, headDim: 16, numKvHeads: 2, qkvBias: false, oBias: false, layerWindows: [0, 0], padTokenId: 595, eosTokenId: [595] });
  });

  it('gpt2: GPT-2 field names, learned positions, biases, gelu_new', () => {
    const cfg = norm('gpt2');
    expect(cfg).toMatchObject({
      modelType: 'gpt2',
      vocabSize: 700,
      hiddenSize: 64,
      intermediateSize: 256,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 4,
      headDim: 16,
      maxPositionEmbeddings: 256,
      normEps: 1e-5,
      hiddenAct: 'gelu_tanh',
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      tieWordEmbeddings: true,
      positionEmbedding: 'learned',
      bosTokenId: 699,
      eosTokenId: [699],
    });
  });

  it('smollm-tied', () => {
    const cfg = norm('smollm-tied');
    expect(cfg).toMatchObject({ tieWordEmbeddings: true, numHeads: 6, numKvHeads: 2, headDim: 16, hiddenSize: 96, padTokenId: 2 });
    expect(cfg.rope.rope_theta).toBe(100000);
  });
});

describe('normalizeConfig defaults', () => {
  const minimal = (model_type: string, extra: Record<string, unknown> = {}) => ({
    model_type,
    vocab_size: 100,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 4,
    num_attention_heads: 8,
    ...extra,
  });

  it('llama class defaults', () => {
    const cfg = normalizeConfig(minimal('llama'));
    expect(cfg).toMatchObject({
      numKvHeads: 8,
      headDim: 8,
      normEps: 1e-6,
      hiddenAct: 'silu',
      qkvBias: false,
      mlpBias: false,
      tieWordEmbeddings: false,
      maxPositionEmbeddings: 2048,
      bosTokenId: 1,
      eosTokenId: [2],
      padTokenId: null,
      torchDtype: null,
    });
    expect(cfg.rope.rope_theta).toBe(10000);
    expect(cfg.raw).toMatchObject({ rms_norm_eps: 1e-6, num_key_value_heads: 8, head_dim: 8, rope_theta: 10000, attention_bias: false });
  });

  it('llama attention_bias covers q, k, v and o; mlp_bias the MLP', () => {
    expect(normalizeConfig(minimal('llama', { attention_bias: true, mlp_bias: true }))).toMatchObject({ qkvBias: true, oBias: true, mlpBias: true });
  });

  it('mistral default sliding_window 4096 on every layer, 8 kv heads', () => {
    const cfg = normalizeConfig(minimal('mistral'));
    expect(cfg.layerWindows).toEqual([4096, 4096, 4096, 4096]);
    expect(cfg.numKvHeads).toBe(8);
    expect(cfg.maxPositionEmbeddings).toBe(131072);
  });

  it('qwen2 / qwen3 sliding window only from max_window_layers on, and only with use_sliding_window', () => {
    expect(normalizeConfig(minimal('qwen2', { num_key_value_heads: 4 })).layerWindows).toEqual([0, 0, 0, 0]);
    expect(normalizeConfig(minimal('qwen2', { num_key_value_heads: 4, use_sliding_window: true, sliding_window: 16, max_window_layers: 2 })).layerWindows).toEqual([0, 0, 16, 16]);
    expect(normalizeConfig(minimal('qwen3', { num_key_value_heads: 4, use_sliding_window: true, sliding_window: 16, max_window_layers: 3 })).layerWindows).toEqual([0, 0, 0, 16]);
    expect(normalizeConfig(minimal('qwen2', { num_key_value_heads: 4 })).qkvBias).toBe(true);
    expect(normalizeConfig(minimal('qwen2', { num_key_value_heads: 4 })).eosTokenId).toEqual([]);
  });

  it('qwen3 head_dim defaults to 128 (not hidden/heads)', () => {
    expect(normalizeConfig(minimal('qwen3', { num_key_value_heads: 8 })).headDim).toBe(128);
    // Defaults that do not fit are caught like any other field: 8 heads, 32 kv heads by default.
    expect(() => normalizeConfig(minimal('qwen3'))).toThrow('num_attention_heads (8) must be a multiple of num_key_value_heads (32)');
  });

  it('gemma2 defaults', () => {
    const cfg = normalizeConfig(minimal('gemma2'));
    expect(cfg).toMatchObject({ attnSoftCap: 50, finalSoftCap: 30, queryPreAttnScalar: 256, headDim: 256, numKvHeads: 4, tieWordEmbeddings: true });
    expect(cfg.layerWindows).toEqual([4096, 0, 4096, 0]);
    expect(normalizeConfig(minimal('gemma2', { attn_logit_softcapping: null, final_logit_softcapping: null })).attnSoftCap).toBe(0);
  });

  it('gemma prefers hidden_activation over hidden_act', () => {
    expect(normalizeConfig(minimal('gemma', { num_key_value_heads: 1, hidden_act: 'gelu', hidden_activation: 'gelu_pytorch_tanh' })).hiddenAct).toBe('gelu_tanh');
    expect(normalizeConfig(minimal('gemma', { num_key_value_heads: 1, hidden_act: 'gelu' })).hiddenAct).toBe('gelu_erf');
  });

  it('phi3 defaults', () => {
    const cfg = normalizeConfig(minimal('phi3'));
    expect(cfg).toMatchObject({ normEps: 1e-5, numKvHeads: 8, padTokenId: 32000, eosTokenId: [32000] });
    expect(normalizeConfig(minimal('phi3', { sliding_window: 32 })).layerWindows).toEqual([32, 32, 32, 32]);
  });

  it('gpt2 defaults and n_inner', () => {
    const base = { model_type: 'gpt2', vocab_size: 100, n_embd: 32, n_layer: 2, n_head: 4 };
    expect(normalizeConfig(base)).toMatchObject({ intermediateSize: 128, maxPositionEmbeddings: 1024, normEps: 1e-5, bosTokenId: 50256, hiddenAct: 'gelu_tanh' });
    expect(normalizeConfig({ ...base, n_inner: 48, activation_function: 'gelu' })).toMatchObject({ intermediateSize: 48, hiddenAct: 'gelu_erf' });
  });

  it('eos lists are kept and deduplicated', () => {
    expect(normalizeConfig(minimal('llama', { eos_token_id: [5, 7, 5] })).eosTokenId).toEqual([5, 7]);
    expect(normalizeConfig(minimal('llama', { eos_token_id: null })).eosTokenId).toEqual([]);
  });
});

describe('normalizeConfig errors', () => {
  it('rejects non-objects', () => {
    expectConfigError(() => normalizeConfig(null), 'config.json: must be a JSON object');
    expectConfigError(() => normalizeConfig([1]), 'an array');
    expectConfigError(() => normalizeConfig('x', 'my.json'), 'my.json: must be a JSON object');
  });

  it('model_type missing or unknown', () => {
    const { model_type: _, ...noType } = llamaBase();
    expectConfigError(() => normalizeConfig(noType), /config\.json: model_type is missing.*llama, mistral, qwen2, qwen3, gemma, gemma2, phi3, gpt2/);
    expectConfigError(() => normalizeConfig({ ...llamaBase(), model_type: 'bert' }), /model_type "bert" is not supported \(supported: llama, mistral/);
    expectConfigError(() => normalizeConfig({ ...llamaBase(), model_type: 3 }), 'model_type must be a string, got 3');
  });

  it('ill-typed fields name the field and the file', () => {
    expectConfigError(() => normalizeConfig({ ...llamaBase(), num_attention_heads: '8' }), 'config.json: num_attention_heads must be a positive integer, got "8"');
    expectConfigError(() => normalizeConfig({ ...llamaBase(), hidden_size: 64.5 }, 'x/config.json'), 'x/config.json: hidden_size must be a positive integer, got 64.5');
    expectConfigError(() => normalizeConfig({ ...llamaBase(), rms_norm_eps: -1 }), 'config.json: rms_norm_eps must be a positive number, got -1');
    expectConfigError(() => normalizeConfig({ ...llamaBase(), tie_word_embeddings: 'yes' }), 'tie_word_embeddings must be a boolean, got "yes"');
    expectConfigError(() => normalizeConfig({ ...llamaBase(), eos_token_id: [2, 'x'] }), 'eos_token_id must be');
    expectConfigError(() => normalizeConfig({ ...llamaBase(), head_dim: 0 }), 'head_dim must be a positive integer, got 0');
    expectConfigError(() => normalizeConfig({ ...llamaBase(), torch_dtype: 'int4' }), 'torch_dtype is not supported');
    expectConfigError(() => normalizeConfig({ ...llamaBase(), architectures: 'Llama' }), 'architectures must be a list of strings');
  });

  it('missing required fields', () => {
    const { num_hidden_layers: _, ...noLayers } = llamaBase();
    expectConfigError(() => normalizeConfig(noLayers), 'config.json: num_hidden_layers is missing');
    expectConfigError(() => normalizeConfig({ model_type: 'gpt2', vocab_size: 10, n_embd: 8, n_layer: 1 }), 'n_head is missing');
  });

  it('head layout', () => {
    expectConfigError(() => normalizeConfig({ ...llamaBase(), num_key_value_heads: 3 }), 'num_attention_heads (4) must be a multiple of num_key_value_heads (3)');
    const { head_dim: _, ...noHeadDim } = llamaBase();
    expectConfigError(() => normalizeConfig({ ...noHeadDim, hidden_size: 66 }), 'hidden_size (66) must be divisible by num_attention_heads (4)');
  });

  it('unsupported activation', () => {
    expectConfigError(() => normalizeConfig({ ...llamaBase(), hidden_act: 'relu' }), 'hidden_act "relu" is not supported');
    expectConfigError(() => normalizeConfig({ ...readJson<Record<string, unknown>>('gemma2', 'config.json'), hidden_activation: 'tanh' }), 'hidden_activation "tanh"');
  });

  it('rope_scaling goes through ropeInvFreq', () => {
    expectConfigError(() => normalizeConfig({ ...llamaBase(), rope_scaling: { rope_type: 'longrope', factor: 2 } }), /config\.json: .*rope_scaling\.rope_type "longrope" is not supported/);
    expectConfigError(() => normalizeConfig({ ...llamaBase(), rope_scaling: { type: 'linear', factor: 0.5 } }), 'rope_scaling.factor');
    expectConfigError(() => normalizeConfig({ ...llamaBase(), rope_scaling: [1] }), 'rope_scaling must be an object or null');
    expect(normalizeConfig({ ...llamaBase(), rope_scaling: { type: 'linear', factor: 2 } }).rope.rope_scaling).toEqual({ type: 'linear', factor: 2 });
  });

  it('sliding windows and soft caps are validated', () => {
    expectConfigError(() => normalizeConfig({ ...readJson<Record<string, unknown>>('mistral', 'config.json'), sliding_window: -4 }), 'sliding_window must be a positive integer, got -4');
    expectConfigError(() => normalizeConfig({ ...readJson<Record<string, unknown>>('gemma2', 'config.json'), attn_logit_softcapping: 'x' }), 'attn_logit_softcapping must be a positive number');
  });
});

describe('AutoConfig', () => {
  it('loads a local folder with defaults filled in', async () => {
    const cfg = await AutoConfig.from_pretrained(`${HF_TINY}/gemma`);
    expect(cfg.model_type).toBe('gemma');
    expect(cfg.tie_word_embeddings).toBe(true);
    expect(cfg.hidden_size).toBe(64);
  });

  it('invalid JSON is a ConfigError naming config.json and the model', () => {
    expectConfigError(() => parseModelConfig('{ nope', 'org/model'), 'config.json of "org/model" is not valid JSON');
    expectConfigError(() => parseModelConfig('{"model_type":"llama"}', 'org/model'), 'config.json of "org/model": vocab_size is missing');
  });
});

describe('decoderShape: what the Gemma models change in the Llama body', () => {
  it('llama: plain RMSNorm, no embedding factor, head_dim^-0.5, no caps', () => {
    expect(decoderShape(norm('llama'))).toEqual({
      unitOffsetNorm: false,
      embedScale: 1,
      sandwichNorms: false,
      attnScaling: 1 / Math.sqrt(norm('llama').headDim),
      attnSoftCap: 0,
      finalSoftCap: 0,
      fusedProjections: false,
    });
  });

  it('gemma: (1 + w) norms, embeddings × the f32 of sqrt(hidden_size), head_dim^-0.5 from head_dim', () => {
    const cfg = norm('gemma');
    expect(decoderShape(cfg)).toEqual({
      unitOffsetNorm: true,
      embedScale: Math.fround(Math.sqrt(cfg.hiddenSize)),
      sandwichNorms: false,
      attnScaling: 1 / Math.sqrt(16),
      attnSoftCap: 0,
      finalSoftCap: 0,
      fusedProjections: false,
    });
    // sqrt(2048) is not an f32: the normalizer is rounded as torch.tensor(hidden**0.5, dtype=float32) rounds it.
    const wide = decoderShape(normalizeConfig({ ...readJson<Record<string, unknown>>('gemma', 'config.json'), hidden_size: 2048 }));
    expect(wide.embedScale).toBe(Math.fround(Math.sqrt(2048)));
    expect(wide.embedScale).not.toBe(Math.sqrt(2048));
  });

  it('gemma2: sandwich norms, query_pre_attn_scalar^-0.5, both soft caps', () => {
    expect(decoderShape(norm('gemma2'))).toMatchObject({
      unitOffsetNorm: true,
      sandwichNorms: true,
      attnScaling: 32 ** -0.5,
      attnSoftCap: 2.5,
      finalSoftCap: 2.0,
    });
  });

  it('phi3: the Llama shape with fused q/k/v and gate/up projections in the checkpoint', () => {
    expect(decoderShape(norm('phi3'))).toMatchObject({ unitOffsetNorm: false, embedScale: 1, sandwichNorms: false, fusedProjections: true });
  });

  it('gemma and gemma2 run (registry), with their extra norm slots', () => {
    expect(RUNNABLE_MODEL_TYPES).toEqual(expect.arrayContaining(['gemma', 'gemma2']));
    expect(familyFor('gemma2').weights(norm('gemma2')).map((s) => s.key)).toEqual(
      expect.arrayContaining(['layers.1.pre_feedforward_layernorm', 'layers.1.post_feedforward_layernorm']),
    );
    expect(familyFor('gemma').weights(norm('gemma')).some((s) => s.key.includes('feedforward'))).toBe(false);
  });

  it('phi3 runs (registry): its fused qkv_proj fills q, k, v by row range, gate_up_proj the gate_up slot', () => {
    expect(RUNNABLE_MODEL_TYPES).toContain('phi3');
    expect(RUNNABLE_MODEL_TYPES).not.toContain('gpt2');
    const specs = familyFor('phi3').weights(norm('phi3'));
    const parts = (key: string) => specs.find((s) => s.key === key)!.parts;
    const qkv = 'model.layers.0.self_attn.qkv_proj.weight';
    // 4 query heads and 2 key/value heads of 16: q rows 0..63, k 64..95, v 96..127 of one [128, 64] tensor
    expect(parts('layers.0.q')).toEqual([{ name: qkv, shape: [64, 64], rowOffset: 0, source: { rows: 128, rowStart: 0 } }]);
    expect(parts('layers.0.k')).toEqual([{ name: qkv, shape: [32, 64], rowOffset: 0, source: { rows: 128, rowStart: 64 } }]);
    expect(parts('layers.0.v')).toEqual([{ name: qkv, shape: [32, 64], rowOffset: 0, source: { rows: 128, rowStart: 96 } }]);
    expect(parts('layers.0.gate_up')).toEqual([{ name: 'model.layers.0.mlp.gate_up_proj.weight', shape: [352, 64], rowOffset: 0 }]);
    expect(() => familyFor('gpt2')).toThrow(/"gpt2" is recognised but its forward pass is not available yet/);
  });
});
