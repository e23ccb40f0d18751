/**
 * Phi3ForCausalLM: the Llama body (models/llama.ts) with the weights of `modeling_phi3.py` fused in the checkpoint,
 * which the loader splits back into our slots (`DecoderShape.fusedProjections`):
 *
 *   qkv = self.qkv_proj(hidden_states)
 *   query_states = qkv[..., :query_pos]; key_states = qkv[..., query_pos : query_pos + kv_dim]; value_states = the rest
 *   up_states = self.gate_up_proj(hidden_states); gate, up_states = up_states.chunk(2, dim=-1)
 *   up_states = up_states * self.activation_fn(gate)
 * Everything else (RMSNorm, RoPE over rotary_dim, GQA, residuals) is the Llama forward pass.
 */
import type { ModelFamily } from './family.js';
import { llamaFamily } from './llama.js';

export const phi3Family: ModelFamily = {
  ...llamaFamily,
  name: 'phi3',
  modelTypes: ['phi3'],
};
