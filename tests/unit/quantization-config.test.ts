// quantization_config of pre-quantized checkpoints: the AWQ / GPTQ variants we run, and ConfigErrors for the rest.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { normalizeConfig } from '../../src/models/config.js';
import { parseQuantizationConfig } from '../../src/models/quantization-config.js';

const parse = (qc: unknown) => parseQuantizationConfig({ quantization_config: qc });

describe('parseQuantizationConfig', () => {
  it('absent or null: not pre-quantized', () => {
    expect(parseQuantizationConfig({})).toBeNull();
    expect(parse(null)).toBeNull();
  });

  it('AWQ as transformers writes it (AutoAWQ to_transformers_dict), and AutoAWQ quant_config spellings', () => {
    expect(parse({ quant_method: 'awq', zero_point: true, group_size: 128, bits: 4, version: 'gemm', modules_to_not_convert: null })).toEqual({
      method: 'awq',
      bits: 4,
      group: 128,
      zeroOffset: 0,
      describe: 'AWQ 4-bit GEMM, group 128',
    });
    expect(parse({ quant_method: 'AWQ', w_bit: 4, q_group_size: 64, version: 'GEMM', zero_point: true })?.group).toBe(64);
  });

  it('GPTQ v1 (AutoGPTQ, stored zeros minus one) and v2 (GPTQModel)', () => {
    const v1 = parse({ quant_method: 'gptq', bits: 4, group_size: 128, desc_act: false, sym: true, static_groups: false, true_sequential: true, damp_percent: 0.01 });
    expect(v1).toMatchObject({ method: 'gptq', group: 128, zeroOffset: 1, describe: 'GPTQ 4-bit, group 128, sym, v1 format' });
    expect(parse({ quant_method: 'gptq', bits: 4, group_size: 32, desc_act: false, sym: false, checkpoint_format: 'gptq_v2' })).toMatchObject({
      zeroOffset: 0,
      describe: 'GPTQ 4-bit, group 32, asym, v2 format',
    });
  });

  it.each([
    ['a string', 'x', /quantization_config must be an object/],
    ['no method', { bits: 4 }, /quant_method undefined is not supported/],
    ['bitsandbytes', { quant_method: 'bitsandbytes', load_in_4bit: true }, /quant_method "bitsandbytes" is not supported \(supported: awq/],
    ['fp8', { quant_method: 'fp8' }, /quant_method "fp8"/],
    ['8-bit GPTQ', { quant_method: 'gptq', bits: 8, group_size: 128 }, /bits 8 is not supported \(4-bit only\)/],
    ['group -1', { quant_method: 'gptq', bits: 4, group_size: -1 }, /group_size -1 is not supported .*one group per row/],
    ['group 256', { quant_method: 'awq', bits: 4, group_size: 256, version: 'gemm' }, /group_size 256 is not supported \(supported: 32, 64, 128\)/],
    ['act-order', { quant_method: 'gptq', bits: 4, group_size: 128, desc_act: true }, /desc_act true \(act-order/],
    ['marlin', { quant_method: 'gptq', bits: 4, group_size: 128, checkpoint_format: 'marlin' }, /checkpoint_format "marlin" is not supported/],
    ['AWQ gemv', { quant_method: 'awq', bits: 4, group_size: 128, version: 'gemv' }, /version "gemv" is not supported \(AWQ's "gemm" packing only\)/],
    ['AWQ no zero point', { quant_method: 'awq', bits: 4, group_size: 128, zero_point: false }, /zero_point false is not supported/],
  ])('%s: ConfigError', (_, qc, message) => {
    expect(() => parse(qc)).toThrow(ConfigError);
    expect(() => parse(qc)).toThrow(message);
  });

  it('normalizeConfig carries it, naming the file in errors', () => {
    const base = { model_type: 'llama', vocab_size: 32, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 };
    expect(normalizeConfig(base).quantization).toBeNull();
    expect(normalizeConfig({ ...base, quantization_config: { quant_method: 'awq', bits: 4, group_size: 32 } }).quantization?.method).toBe('awq');
    expect(() => normalizeConfig({ ...base, quantization_config: { quant_method: 'hqq' } }, 'x/config.json')).toThrow(/^x\/config\.json: quantization_config\.quant_method "hqq"/);
  });
});
