/**
 * `quantization_config` of a pre-quantized checkpoint's config.json, as transformers writes it for AWQ (AutoAWQ)
 * and GPTQ (AutoGPTQ / GPTQModel / optimum). We run the 4-bit layouts our q4 kernels can take after a repack on
 * the GPU (kernels/repack.ts); every other method or variant is a ConfigError naming the field.
 */
import { ConfigError } from '../errors.js';
import { QUANT_GROUPS, type QuantGroup } from '../kernels/quant.js';
import type { PrequantizedMethod } from '../kernels/repack.js';

export interface PrequantizedConfig {
  method: PrequantizedMethod;
  bits: 4;
  group: QuantGroup;
  /** Added to each stored zero point: 1 for GPTQ's original ("gptq", v1) format, which stores z − 1; else 0. */
  zeroOffset: 0 | 1;
  /** For messages, e.g. `GPTQ 4-bit, group 128, sym, v1`. */
  describe: string;
}

const SUPPORTED = 'awq (4-bit, version "gemm", zero_point true) and gptq (4-bit, desc_act false)';

/** Parses `raw.quantization_config` (null when absent). `file` names config.json in errors. */
export function parseQuantizationConfig(raw: Record<string, unknown>, file = 'config.json'): PrequantizedConfig | null {
  const qc = raw.quantization_config;
  if (qc === undefined || qc === null) return null;
  const fail = (field: string, why: string): never => {
    throw new ConfigError(`${file}: quantization_config.${field} ${why}`);
  };
  if (typeof qc !== 'object' || Array.isArray(qc)) {
    throw new ConfigError(`${file}: quantization_config must be an object, got ${JSON.stringify(qc)}.`);
  }
  const q = qc as Record<string, unknown>;
  const method = typeof q.quant_method === 'string' ? q.quant_method.toLowerCase() : q.quant_method;
  if (method !== 'awq' && method !== 'gptq') {
    fail('quant_method', `${JSON.stringify(q.quant_method)} is not supported (supported: ${SUPPORTED}).`);
  }
  // AutoAWQ's own quant_config.json spells bits and group size w_bit and q_group_size; transformers' config.json
  // uses bits and group_size. Accept both.
  const bits = q.bits ?? q.w_bit;
  if (bits !== 4) fail('bits', `${JSON.stringify(bits)} is not supported (4-bit only).`);
  const group = q.group_size ?? q.q_group_size;
  if (!QUANT_GROUPS.includes(group as QuantGroup)) {
    fail(
      'group_size',
      `${JSON.stringify(group)} is not supported (supported: ${QUANT_GROUPS.join(', ')}` + (group === -1 ? '; -1, one group per row, is not)' : ')') + '.',
    );
  }
  if (method === 'awq') {
    const version = typeof q.version === 'string' ? q.version.toLowerCase() : (q.version ?? 'gemm');
    if (version !== 'gemm') fail('version', `${JSON.stringify(q.version)} is not supported (AWQ's "gemm" packing only).`);
    if (q.zero_point === false) fail('zero_point', 'false is not supported (AWQ GEMM checkpoints carry zero points).');
    return { method: 'awq', bits: 4, group: group as QuantGroup, zeroOffset: 0, describe: `AWQ 4-bit GEMM, group ${String(group)}` };
  }
  if (q.desc_act === true) {
    fail('desc_act', 'true (act-order: groups permuted through g_idx) is not supported; re-quantize with desc_act false.');
  }
  const format = q.checkpoint_format ?? 'gptq';
  if (format !== 'gptq' && format !== 'gptq_v2') {
    fail('checkpoint_format', `${JSON.stringify(format)} is not supported (supported: "gptq", "gptq_v2").`);
  }
  const zeroOffset = format === 'gptq' ? 1 : 0;
  const sym = q.sym === false ? 'asym' : 'sym';
  return {
    method: 'gptq',
    bits: 4,
    group: group as QuantGroup,
    zeroOffset,
    describe: `GPTQ 4-bit, group ${String(group)}, ${sym}, ${format === 'gptq' ? 'v1' : 'v2'} format`,
  };
}
