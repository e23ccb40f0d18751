/**
 * GemmaForCausalLM and Gemma2ForCausalLM: the Llama body (models/llama.ts) with the data `decoderShape` derives
 * from their configs, mirroring `modeling_gemma.py` / `modeling_gemma2.py`:
 *
 *   hidden_states = inputs_embeds * torch.tensor(self.config.hidden_size**0.5, dtype=hidden_states.dtype)
 *   GemmaRMSNorm:  output = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + self.weight.float())
 *   GemmaMLP:      down_proj(gelu_pytorch_tanh(gate_proj(x)) * up_proj(x))
 *   lm_head tied to embed_tokens; head_dim read from the config (not hidden / heads)
 * and for Gemma-2 in addition:
 *   post_attention_layernorm on the attention output, pre_/post_feedforward_layernorm around the MLP
 *   attn_weights = q @ kᵀ * query_pre_attn_scalar**-0.5; tanh(attn_weights / cap) * cap before the mask
 *   sliding window on even layers (config.layerWindows), full attention on odd ones
 *   logits = tanh(logits / final_logit_softcapping) * final_logit_softcapping
 */
import type { ModelFamily } from './family.js';
import { llamaFamily } from './llama.js';

export const gemmaFamily: ModelFamily = {
  ...llamaFamily,
  name: 'gemma',
  modelTypes: ['gemma', 'gemma2'],
};
