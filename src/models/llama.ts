/**
 * The Llama family: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM (and SmolLM, which is
 * Llama). What differs between them is data in DecoderConfig: q/k/v (and o) biases, Qwen3's per-head q/k RMSNorm,
 * sliding windows, tied embeddings, rope scaling. Gemma and Gemma-2 (models/gemma.ts) run the same body with the
 * data of `DecoderShape` (norm weights as 1 + w, embeddings × sqrt(hidden), GeGLU, Gemma-2's extra norms, query
 * scale and soft caps). The forward pass mirrors `modeling_llama.py`:
 *
 *   hidden_states = self.embed_tokens(input_ids)
 *   for decoder_layer in self.layers:
 *       residual = hidden_states
 *       hidden_states = self.input_layernorm(hidden_states)
 *       q, k, v = q_proj(h), k_proj(h), v_proj(h)            # Qwen3: q = q_norm(q), k = k_norm(k) per head
 *       q, k = apply_rotary_pos_emb(q, k, cos, sin)
 *       k, v = past_key_value.update(k, v)                    # written into the pre-allocated cache
 *       hidden_states = o_proj(softmax(q kᵀ · scaling + mask) v)
 *       hidden_states = residual + hidden_states              # fused into o_proj's epilogue
 *       residual = hidden_states
 *       hidden_states = self.post_attention_layernorm(hidden_states)
 *       hidden_states = down_proj(act_fn(gate_proj(h)) * up_proj(h))
 *       hidden_states = residual + hidden_states              # fused into down_proj's epilogue
 *   hidden_states = self.norm(hidden_states)
 *   logits = self.lm_head(hidden_states)
 *
 * Gemma-2 (`sandwichNorms`) normalizes each sub-layer's output before it joins the residual stream, and names the
 * MLP's input norm pre_feedforward_layernorm (its post_attention_layernorm is the attention's output norm):
 *       hidden_states = residual + self.post_attention_layernorm(self_attn(self.input_layernorm(hidden_states)))
 *       hidden_states = residual + self.post_feedforward_layernorm(mlp(self.pre_feedforward_layernorm(hidden_states)))
 * Each sum is fused into the next norm (norm kernel's residual form); the last layer's is a plain add.
 *
 * Buffers (R = rows = batch · tokens, the most one step holds):
 *   h, h2: (R, hidden) residual stream, ping-ponged within a layer (a linear cannot add a buffer into itself)
 *   xn: (R, hidden) normed input of the projections
 *   q, attn: (R, Hq·D); k, v: (R, Hkv·D); qn, kn: the same after Qwen3's q/k norm
 *   gu: (R, 2·intermediate) gate and up in one matmul (their weights stacked at load); act: (R, intermediate)
 *   kCache[l], vCache[l]: (batch, maxSeq, Hkv, D) per layer
 */
import { ConfigError, OutOfMemoryError } from '../errors.js';
import { prepareAttention, prepareKvWrite, type AttentionDispatch, type KvWriteDispatch } from '../kernels/attention.js';
import { disposeDispatch, type KernelDispatch } from '../kernels/dispatch.js';
import { prepareAdd, prepareGated, prepareSoftCap } from '../kernels/elementwise.js';
import { prepareRMSNorm } from '../kernels/norm.js';
import { prepareRopeF32 } from '../kernels/rope.js';
import { ropeInvFreq } from '../kernels/rope-scaling.js';
import { COPY_DST, COPY_SRC, STORAGE, createBuffer, formatBytes, uploadBuffer } from '../runtime/buffers.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { prepareChunkedEmbedding, prepareChunkedLinear } from '../runtime/weight-kernels.js';
import type { WeightSlotSpec, WeightStore } from '../runtime/weights.js';
import type { DecoderConfig } from './config.js';
import type { BodyPlan, FamilyInstance, HeadPlan, ModelFamily, StepInputs } from './family.js';

const F32 = 4;

/**
 * A part: tensor name, rows, first slot row, and for a row range of a fused tensor (Phi-3's `qkv_proj`) the tensor's
 * row count and the first of its rows taken.
 */
type Part = [string, number, number] | [string, number, number, { rows: number; rowStart: number }];

/** A matrix slot; `splittable` when its linear has no fused bias or residual (so row chunks can serve it). */
function matrix(key: string, rows: number, cols: number, origin: string, ...parts: Part[]): WeightSlotSpec {
  return {
    key,
    kind: 'matrix',
    splittable: false,
    rows,
    cols,
    origin,
    parts: parts.map(([name, partRows, rowOffset, source]) => ({ name, shape: [partRows, cols], rowOffset, ...(source && { source }) })),
  };
}

function vector(key: string, n: number, origin: string, ...parts: [string, number, number][]): WeightSlotSpec {
  return { key, kind: 'vector', rows: n, cols: 1, origin, parts: parts.map(([name, len, rowOffset]) => ({ name, shape: [len], rowOffset })) };
}

export function llamaWeights(c: DecoderConfig): WeightSlotSpec[] {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const hid = `hidden_size ${H}`;
  const qOrigin = `num_attention_heads ${c.numHeads} × head_dim ${c.headDim}, ${hid}`;
  const kvOrigin = `num_key_value_heads ${c.numKvHeads} × head_dim ${c.headDim}, ${hid}`;
  const mlpOrigin = `intermediate_size ${I}, ${hid}`;
  const { sandwichNorms: sandwich, fusedProjections: fused } = decoderShape(c);
  const specs: WeightSlotSpec[] = [
    matrix('embed', c.vocabSize, H, `vocab_size ${c.vocabSize}, ${hid}`, ['model.embed_tokens.weight', c.vocabSize, 0]),
  ];
  const splittable = (spec: WeightSlotSpec, yes: boolean) => {
    spec.splittable = yes;
    return spec;
  };
  splittable(specs[0]!, true);
  specs[0]!.role = 'embedding'; // gathered row by row; when tied also the LM head, in the same 16-bit format
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    const L = `layers.${i}.`;
    specs.push(vector(`${L}input_layernorm`, H, hid, [`${p}input_layernorm.weight`, H, 0]));
    // Phi-3 stores q, k, v as the row ranges of one qkv_proj (q rows first), each filling its own slot.
    const qkvRows = qDim + 2 * kvDim;
    const proj = (n: string, rows: number, rowStart: number): Part =>
      fused ? [`${p}self_attn.qkv_proj.weight`, rows, 0, { rows: qkvRows, rowStart }] : [`${p}self_attn.${n}_proj.weight`, rows, 0];
    specs.push(splittable(matrix(`${L}q`, qDim, H, qOrigin, proj('q', qDim, 0)), !c.qkvBias));
    specs.push(splittable(matrix(`${L}k`, kvDim, H, kvOrigin, proj('k', kvDim, qDim)), !c.qkvBias));
    specs.push(splittable(matrix(`${L}v`, kvDim, H, kvOrigin, proj('v', kvDim, qDim + kvDim)), !c.qkvBias));
    if (c.qkvBias) {
      specs.push(vector(`${L}q.bias`, qDim, qOrigin, [`${p}self_attn.q_proj.bias`, qDim, 0]));
      specs.push(vector(`${L}k.bias`, kvDim, kvOrigin, [`${p}self_attn.k_proj.bias`, kvDim, 0]));
      specs.push(vector(`${L}v.bias`, kvDim, kvOrigin, [`${p}self_attn.v_proj.bias`, kvDim, 0]));
    }
    if (c.qkNorm) {
      const o = `head_dim ${c.headDim}`;
      specs.push(vector(`${L}q_norm`, c.headDim, o, [`${p}self_attn.q_norm.weight`, c.headDim, 0]));
      specs.push(vector(`${L}k_norm`, c.headDim, o, [`${p}self_attn.k_norm.weight`, c.headDim, 0]));
    }
    specs.push(matrix(`${L}o`, H, qDim, `${hid}, num_attention_heads ${c.numHeads} × head_dim ${c.headDim}`, [`${p}self_attn.o_proj.weight`, H, 0]));
    if (c.oBias) specs.push(vector(`${L}o.bias`, H, hid, [`${p}self_attn.o_proj.bias`, H, 0]));
    specs.push(vector(`${L}post_attention_layernorm`, H, hid, [`${p}post_attention_layernorm.weight`, H, 0]));
    if (sandwich) {
      for (const n of ['pre_feedforward_layernorm', 'post_feedforward_layernorm']) specs.push(vector(`${L}${n}`, H, hid, [`${p}${n}.weight`, H, 0]));
    }
    // Our gate_up slot stacks gate then up, as Phi-3's gate_up_proj already does.
    const gateUp: Part[] = fused ? [[`${p}mlp.gate_up_proj.weight`, 2 * I, 0]] : [[`${p}mlp.gate_proj.weight`, I, 0], [`${p}mlp.up_proj.weight`, I, I]];
    specs.push(splittable(matrix(`${L}gate_up`, 2 * I, H, mlpOrigin, ...gateUp), !c.mlpBias));
    specs.push(matrix(`${L}down`, H, I, `${hid}, intermediate_size ${I}`, [`${p}mlp.down_proj.weight`, H, 0]));
    if (c.mlpBias) {
      specs.push(vector(`${L}gate_up.bias`, 2 * I, mlpOrigin, [`${p}mlp.gate_proj.bias`, I, 0], [`${p}mlp.up_proj.bias`, I, I]));
      specs.push(vector(`${L}down.bias`, H, hid, [`${p}mlp.down_proj.bias`, H, 0]));
    }
  }
  specs.push(vector('norm', H, hid, ['model.norm.weight', H, 0]));
  if (!c.tieWordEmbeddings) {
    const head = splittable(matrix('lm_head', c.vocabSize, H, `vocab_size ${c.vocabSize}, ${hid}`, ['lm_head.weight', c.vocabSize, 0]), true);
    head.role = 'head';
    specs.push(head);
  }
  return specs;
}

/** What the Gemma models change in the Llama body, derived from the config alone. */
export interface DecoderShape {
  /** RMSNorm weights stored as an offset from one: `x · rsqrt(mean(x²) + eps) · (1 + w)` (Gemma). */
  unitOffsetNorm: boolean;
  /**
   * Factor on the embeddings: `hidden_states * normalizer`, normalizer = torch.tensor(hidden_size**0.5,
   * dtype=hidden_states.dtype), i.e. the f32 of sqrt(hidden) here, where the body runs in f32 (Gemma); else 1.
   */
  embedScale: number;
  /** Gemma-2's post_attention / pre_feedforward / post_feedforward norms around both sub-layers. */
  sandwichNorms: boolean;
  /** Multiplies q·k: head_dim^-0.5, or Gemma-2's query_pre_attn_scalar^-0.5. */
  attnScaling: number;
  /** Attention logit soft-cap (tanh(s / cap) · cap before the mask); 0 = none. */
  attnSoftCap: number;
  /** Soft-cap on the LM head output; 0 = none. */
  finalSoftCap: number;
  /** Checkpoint stores q/k/v as one `qkv_proj` and gate/up as one `gate_up_proj` (Phi-3). */
  fusedProjections: boolean;
}

export function decoderShape(c: DecoderConfig): DecoderShape {
  return {
    unitOffsetNorm: c.gemmaNorm,
    embedScale: c.gemmaNorm ? Math.fround(Math.sqrt(c.hiddenSize)) : 1,
    sandwichNorms: c.modelType === 'gemma2',
    attnScaling: 1 / Math.sqrt(c.queryPreAttnScalar ?? c.headDim),
    attnSoftCap: c.attnSoftCap,
    finalSoftCap: c.finalSoftCap,
    fusedProjections: c.modelType === 'phi3',
  };
}

interface Scratch {
  rows: number;
  batch: number;
  maxSeq: number;
  h: GPUBuffer;
  h2: GPUBuffer;
  xn: GPUBuffer;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  qn: GPUBuffer | null;
  kn: GPUBuffer | null;
  attn: GPUBuffer;
  gu: GPUBuffer;
  act: GPUBuffer;
  kCache: GPUBuffer[];
  vCache: GPUBuffer[];
}

/** Bytes of `LlamaInstance.allocate`: the scratch buffers listed at the top, per row, and the f32 KV cache. */
function llamaWorkspaceBytes(c: DecoderConfig, batch: number, rows: number, maxSeq: number): number {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const perRow = 3 * c.hiddenSize + 2 * qDim + 2 * kvDim + (c.qkNorm ? qDim + kvDim : 0) + 3 * c.intermediateSize;
  const kv = 2 * c.numLayers * batch * maxSeq * kvDim;
  return (perRow * rows + kv) * F32;
}

export class LlamaInstance implements FamilyInstance {
  private scratch: Scratch | null = null;
  private readonly invFreq: GPUBuffer;
  private readonly rotaryDim: number;
  private readonly attentionScaling: number;
  private readonly shape: DecoderShape;

  constructor(
    private readonly ctx: GPUContext,
    private readonly config: DecoderConfig,
    private readonly weights: WeightStore,
  ) {
    const rope = ropeInvFreq(config.rope);
    this.invFreq = uploadBuffer(ctx, 'rope/inv_freq', rope.invFreq, STORAGE | COPY_DST);
    this.rotaryDim = rope.rotaryDim;
    this.attentionScaling = rope.attentionScaling;
    this.shape = decoderShape(config);
  }

  workspaceBytes(batch: number, rows: number, maxSeq: number): number {
    return llamaWorkspaceBytes(this.config, batch, rows, maxSeq);
  }

  allocate(batch: number, rows: number, maxSeq: number): void {
    this.release();
    const { ctx, config: c } = this;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const cacheBytes = batch * maxSeq * kvDim * F32;
    const maxBinding = ctx.limits.maxStorageBufferBindingSize;
    if (cacheBytes > maxBinding) {
      throw new OutOfMemoryError(
        `The KV cache of one layer (batch ${batch} × ${maxSeq} positions × ${kvDim} = ${formatBytes(cacheBytes)}) is above this GPU's ` +
          `binding limit of ${formatBytes(maxBinding)}; load with a smaller max_context or use a smaller batch.`,
      );
    }
    const made: GPUBuffer[] = [];
    const buf = (label: string, floats: number) => {
      const b = createBuffer(ctx, label, floats * F32, STORAGE | COPY_SRC | COPY_DST);
      made.push(b);
      return b;
    };
    try {
      const s: Scratch = {
        rows,
        batch,
        maxSeq,
        h: buf('h', rows * c.hiddenSize),
        h2: buf('h2', rows * c.hiddenSize),
        xn: buf('xn', rows * c.hiddenSize),
        q: buf('q', rows * qDim),
        k: buf('k', rows * kvDim),
        v: buf('v', rows * kvDim),
        qn: c.qkNorm ? buf('qn', rows * qDim) : null,
        kn: c.qkNorm ? buf('kn', rows * kvDim) : null,
        attn: buf('attn', rows * qDim),
        gu: buf('gate_up', rows * 2 * c.intermediateSize),
        act: buf('act', rows * c.intermediateSize),
        kCache: [],
        vCache: [],
      };
      for (let l = 0; l < c.numLayers; l++) {
        s.kCache.push(buf(`layers.${l}.k_cache`, batch * maxSeq * kvDim));
        s.vCache.push(buf(`layers.${l}.v_cache`, batch * maxSeq * kvDim));
      }
      this.scratch = s;
    } catch (e) {
      for (const b of made) b.destroy();
      throw e;
    }
  }

  release(): void {
    const s = this.scratch;
    if (!s) return;
    this.scratch = null;
    for (const b of [s.h, s.h2, s.xn, s.q, s.k, s.v, s.qn, s.kn, s.attn, s.gu, s.act, ...s.kCache, ...s.vCache]) b?.destroy();
  }

  dispose(): void {
    this.release();
    this.invFreq.destroy();
  }

  body(inputs: StepInputs, batch: number, tokens: number): BodyPlan {
    const { ctx, config: c, weights: w } = this;
    const s = this.scratch;
    if (!s || batch > s.batch || batch * tokens > s.rows) {
      throw new ConfigError(`Internal: workspace too small for batch ${batch} × ${tokens} tokens.`);
    }
    const M = batch * tokens;
    const H = c.hiddenSize;
    const I = c.intermediateSize;
    const D = c.headDim;
    const qDim = c.numHeads * D;
    const list: KernelDispatch[] = [];
    const steps: Array<KvWriteDispatch | AttentionDispatch> = [];
    const bias = (key: string) => (w.has(key) ? w.single(key) : undefined);
    const shape = this.shape;
    // RMSNorm of `rows` rows of x into y, or with `residual`: residual += x, y = norm(residual).
    const rmsNorm = (key: string, x: GPUBuffer, y: GPUBuffer, rows: number, dim: number, residual?: GPUBuffer) =>
      prepareRMSNorm(ctx, { x, weight: w.single(key), y, rows, dim, eps: c.normEps, residual, unitOffset: shape.unitOffsetNorm, label: key });
    let output = s.h;
    try {
      // hidden_states = self.embed_tokens(input_ids) (* normalizer, Gemma)
      const embedScale = shape.embedScale === 1 ? undefined : shape.embedScale;
      list.push(...prepareChunkedEmbedding(ctx, w, 'embed', { ids: inputs.ids, out: s.h, tokens: M, scale: embedScale, label: 'embed_tokens' }));
      for (let l = 0; l < c.numLayers; l++) {
        const L = `layers.${l}.`;
        // Gemma-2: the previous layer's MLP output (in h2) joins the stream here, fused into this norm.
        const pending = shape.sandwichNorms && l > 0 ? s.h2 : undefined;
        list.push(rmsNorm(`${L}input_layernorm`, pending ?? s.h, s.xn, M, H, pending && s.h));
        list.push(...prepareChunkedLinear(ctx, w, `${L}q`, { x: s.xn, y: s.q, M, K: H, bias: bias(`${L}q.bias`), label: `${L}q_proj` }));
        list.push(...prepareChunkedLinear(ctx, w, `${L}k`, { x: s.xn, y: s.k, M, K: H, bias: bias(`${L}k.bias`), label: `${L}k_proj` }));
        list.push(...prepareChunkedLinear(ctx, w, `${L}v`, { x: s.xn, y: s.v, M, K: H, bias: bias(`${L}v.bias`), label: `${L}v_proj` }));
        let q = s.q;
        let k = s.k;
        if (c.qkNorm) {
          // query_states = self.q_norm(q_proj(h).view(hidden_shape)): RMSNorm over head_dim, per head
          list.push(rmsNorm(`${L}q_norm`, s.q, s.qn!, M * c.numHeads, D));
          list.push(rmsNorm(`${L}k_norm`, s.k, s.kn!, M * c.numKvHeads, D));
          q = s.qn!;
          k = s.kn!;
        }
        list.push(
          prepareRopeF32(ctx, {
            q,
            k,
            positions: inputs.positions,
            invFreq: this.invFreq,
            tokens: M,
            qHeads: c.numHeads,
            kHeads: c.numKvHeads,
            headDim: D,
            rotaryDim: this.rotaryDim,
            attentionScaling: this.attentionScaling,
            label: `${L}rotary`,
          }),
        );
        const kvw = prepareKvWrite(ctx, {
          k,
          v: s.v,
          kCache: s.kCache[l]!,
          vCache: s.vCache[l]!,
          tokens,
          batch,
          kvHeads: c.numKvHeads,
          headDim: D,
          maxSeq: s.maxSeq,
          label: `${L}kv_cache.update`,
        });
        const att = prepareAttention(ctx, {
          q,
          kCache: s.kCache[l]!,
          vCache: s.vCache[l]!,
          out: s.attn,
          tokens,
          batch,
          heads: c.numHeads,
          kvHeads: c.numKvHeads,
          headDim: D,
          maxSeq: s.maxSeq,
          scaling: shape.attnScaling,
          softCap: shape.attnSoftCap,
          window: c.layerWindows[l] ?? 0,
          rowMaskStart: inputs.rowMaskStart,
          label: `${L}self_attn`,
        });
        list.push(kvw, att);
        steps.push(kvw, att);
        // mlpIn: the normed input of the MLP
        let mlpIn: GPUBuffer;
        if (shape.sandwichNorms) {
          // h2 = post_attention_layernorm(o_proj(attn)); h += h2 and h2 = pre_feedforward_layernorm(h)
          list.push(...prepareChunkedLinear(ctx, w, `${L}o`, { x: s.attn, y: s.h2, M, K: qDim, bias: bias(`${L}o.bias`), label: `${L}o_proj` }));
          list.push(rmsNorm(`${L}post_attention_layernorm`, s.h2, s.xn, M, H));
          list.push(rmsNorm(`${L}pre_feedforward_layernorm`, s.xn, s.h2, M, H, s.h));
          mlpIn = s.h2;
        } else {
          list.push(...prepareChunkedLinear(ctx, w, `${L}o`, { x: s.attn, y: s.h2, M, K: qDim, bias: bias(`${L}o.bias`), residual: s.h, label: `${L}o_proj+residual` }));
          list.push(rmsNorm(`${L}post_attention_layernorm`, s.h2, s.xn, M, H));
          mlpIn = s.xn;
        }
        list.push(...prepareChunkedLinear(ctx, w, `${L}gate_up`, { x: mlpIn, y: s.gu, M, K: H, bias: bias(`${L}gate_up.bias`), label: `${L}gate_up_proj` }));
        list.push(prepareGated(ctx, { activation: c.hiddenAct, gateUp: s.gu, out: s.act, rows: M, n: I, label: `${L}act_fn(gate)*up` }));
        if (shape.sandwichNorms) {
          // h2 = post_feedforward_layernorm(down_proj(act)), added to h by the next layer's input norm
          list.push(...prepareChunkedLinear(ctx, w, `${L}down`, { x: s.act, y: s.xn, M, K: I, bias: bias(`${L}down.bias`), label: `${L}down_proj` }));
          list.push(rmsNorm(`${L}post_feedforward_layernorm`, s.xn, s.h2, M, H));
        } else {
          list.push(...prepareChunkedLinear(ctx, w, `${L}down`, { x: s.act, y: s.h, M, K: I, bias: bias(`${L}down.bias`), residual: s.h2, label: `${L}down_proj+residual` }));
        }
      }
      if (shape.sandwichNorms) {
        // the last layer's hidden_states = residual + hidden_states
        list.push(prepareAdd(ctx, { a: s.h, b: s.h2, out: s.xn, count: M * H, label: `layers.${c.numLayers - 1}.residual` }));
        output = s.xn;
      }
    } catch (e) {
      for (const d of list) disposeDispatch(d);
      throw e;
    }
    return {
      batch,
      tokens,
      dispatches: list,
      output,
      setStep(base: number, n: number) {
        for (const d of steps) d.setStep(base, n);
      },
      dispose() {
        for (const d of list) disposeDispatch(d);
      },
    };
  }

  head(input: GPUBuffer, logits: GPUBuffer, rows: number): HeadPlan {
    const { ctx, config: c, weights: w } = this;
    const normed = createBuffer(ctx, 'final_norm', rows * c.hiddenSize * F32, STORAGE);
    const list: KernelDispatch[] = [];
    try {
      const shape = this.shape;
      list.push(prepareRMSNorm(ctx, { x: input, weight: w.single('norm'), y: normed, rows, dim: c.hiddenSize, eps: c.normEps, unitOffset: shape.unitOffsetNorm, label: 'norm' }));
      const head = c.tieWordEmbeddings ? 'embed' : 'lm_head';
      list.push(...prepareChunkedLinear(ctx, w, head, { x: normed, y: logits, M: rows, K: c.hiddenSize, label: 'lm_head' }));
      if (shape.finalSoftCap > 0) {
        // logits = tanh(logits / final_logit_softcapping) * final_logit_softcapping
        list.push(prepareSoftCap(ctx, { x: logits, count: rows * c.vocabSize, cap: shape.finalSoftCap, label: 'final_logit_softcapping' }));
      }
    } catch (e) {
      for (const d of list) disposeDispatch(d);
      normed.destroy();
      throw e;
    }
    return {
      rows,
      dispatches: list,
      dispose() {
        for (const d of list) disposeDispatch(d);
        normed.destroy();
      },
    };
  }
}

export const llamaFamily: ModelFamily = {
  name: 'llama',
  modelTypes: ['llama', 'mistral', 'qwen2', 'qwen3'],
  weights: llamaWeights,
  workspaceBytes: llamaWorkspaceBytes,
  ignoreTensor(name: string, config: DecoderConfig): boolean {
    // Older Llama exports carry the rotary inverse-frequency buffers; a tied checkpoint may still hold lm_head.
    return name.endsWith('.rotary_emb.inv_freq') || (config.tieWordEmbeddings && name === 'lm_head.weight');
  },
  instantiate(ctx, config, weights) {
    return new LlamaInstance(ctx, config, weights);
  },
};
