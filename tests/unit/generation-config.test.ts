import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { GENERATION_DEFAULTS, parseGenerationConfigJson, resolveGeneration } from '../../src/api/generation-config.js';
import { normalizeConfig } from '../../src/models/config.js';
import { HF_TINY_CASES, readJson, readText } from '../helpers/hf-tiny.js';

const model = { eosTokenId: [2], padTokenId: null, bosTokenId: 1 };

describe('transformers defaults', () => {
  it('match GenerationConfig', () => {
    expect(GENERATION_DEFAULTS).toMatchObject({
      max_length: 20,
      max_new_tokens: null,
      min_new_tokens: 0,
      min_length: 0,
      do_sample: false,
      temperature: 1,
      top_k: 50,
      top_p: 1,
      min_p: null,
      repetition_penalty: 1,
      num_return_sequences: 1,
      num_beams: 1,
    });
  });

  it('resolve with nothing set: greedy, max_length 20 minus the prompt', () => {
    const r = resolveGeneration([], 5, model);
    expect(r).toMatchObject({
      maxNewTokens: 15,
      minNewTokens: 0,
      greedy: true,
      temperature: 1,
      topK: 0,
      topP: 1,
      minP: 0,
      repetitionPenalty: 1,
      numReturnSequences: 1,
      eosTokenIds: [2],
      padTokenId: 2, // the first eos, as transformers does
      bosTokenId: 1,
      stopStrings: [],
    });
    expect(Number.isInteger(r.seed) && r.seed >= 0 && r.seed < 2 ** 32).toBe(true);
    expect(resolveGeneration([], 30).maxNewTokens).toBe(0);
  });

  it('min_new_tokens and min_length: EOS suppressed for max(min_new_tokens, min_length − prompt) new tokens', () => {
    expect(resolveGeneration([{ min_new_tokens: 3 }], 5, model).minNewTokens).toBe(3);
    expect(resolveGeneration([{ min_length: 9 }], 5, model).minNewTokens).toBe(4);
    expect(resolveGeneration([{ min_length: 9, min_new_tokens: 6 }], 5, model).minNewTokens).toBe(6);
    expect(resolveGeneration([{ min_length: 3 }], 5, model).minNewTokens).toBe(0);
    expect(() => resolveGeneration([{ min_length: -1 }], 5, model)).toThrow(/min_length/);
  });

  it('sampling keeps top_k 50 by default', () => {
    const r = resolveGeneration([{ do_sample: true }], 0);
    expect(r).toMatchObject({ greedy: false, temperature: 1, topK: 50, topP: 1, minP: 0 });
  });

  it('greedy ignores the sampling knobs', () => {
    const r = resolveGeneration([{ temperature: 0.5, top_k: 3, top_p: 0.5, min_p: 0.1, repetition_penalty: 1.2 }], 0);
    expect(r).toMatchObject({ greedy: true, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1.2 });
  });
});

describe('merging layers', () => {
  it('later layers override earlier ones; undefined does not override', () => {
    const genCfg = { max_new_tokens: 10, do_sample: true, temperature: 0.7, top_k: 20, eos_token_id: [5, 6] };
    const call = { temperature: 0.3, top_k: undefined, max_new_tokens: 4, seed: 42 };
    const r = resolveGeneration([genCfg, call], 3, model);
    expect(r).toMatchObject({ maxNewTokens: 4, greedy: false, temperature: 0.3, topK: 20, eosTokenIds: [5, 6], padTokenId: 5, seed: 42 });
  });

  it('null layers are skipped; max_new_tokens beats max_length; null max_new_tokens falls back', () => {
    expect(resolveGeneration([null, undefined, { max_length: 50 }], 10).maxNewTokens).toBe(40);
    expect(resolveGeneration([{ max_length: 50, max_new_tokens: 7 }], 10).maxNewTokens).toBe(7);
    expect(resolveGeneration([{ max_new_tokens: 7 }, { max_new_tokens: null, max_length: 12 }], 10).maxNewTokens).toBe(2);
  });

  it('null switches filters off', () => {
    expect(resolveGeneration([{ do_sample: true }, { top_k: null }], 0).topK).toBe(0);
    expect(resolveGeneration([{ do_sample: true, top_k: 0 }], 0).topK).toBe(0);
  });

  it('eos: generation config else model config; pad falls back to the first eos', () => {
    expect(resolveGeneration([{}], 0, model).eosTokenIds).toEqual([2]);
    expect(resolveGeneration([{ eos_token_id: 9 }], 0, model).eosTokenIds).toEqual([9]);
    expect(resolveGeneration([{ eos_token_id: null }], 0, model).eosTokenIds).toEqual([2]);
    expect(resolveGeneration([{ pad_token_id: 0 }], 0, model).padTokenId).toBe(0);
    expect(resolveGeneration([], 0, { eosTokenId: [3], padTokenId: 7, bosTokenId: null }).padTokenId).toBe(7);
    expect(resolveGeneration([], 0).padTokenId).toBeNull();
  });

  it('stop strings: a string or a list', () => {
    expect(resolveGeneration([{ stop_strings: 'END' }], 0).stopStrings).toEqual(['END']);
    expect(resolveGeneration([{ stop_strings: ['a', 'b'] }], 0).stopStrings).toEqual(['a', 'b']);
  });

  it('the hf-tiny model configs and generation_config.json files combine', () => {
    for (const c of HF_TINY_CASES) {
      const cfg = normalizeConfig(readJson(c, 'config.json'));
      const gen = parseGenerationConfigJson(readText(c, 'generation_config.json'));
      const golden = readJson<{ generate_kwargs: { eos_token_id: number[]; pad_token_id: number; max_new_tokens: number } }>(c, 'golden.json');
      const r = resolveGeneration([gen, { max_new_tokens: 24 }], 4, cfg);
      expect(r.greedy).toBe(true);
      expect(r.maxNewTokens).toBe(24);
      expect(r.eosTokenIds, c).toEqual(golden.generate_kwargs.eos_token_id);
      expect(r.padTokenId, c).toBe(golden.generate_kwargs.pad_token_id);
    }
  });
});

describe('validation', () => {
  const bad = (opts: Record<string, unknown>, msg: string | RegExp) => {
    let err: unknown;
    try {
      resolveGeneration([opts as never], 0);
    } catch (e) {
      err = e;
    }
    expect(err, JSON.stringify(opts)).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(msg);
  };

  it('names the option', () => {
    bad({ num_beams: 4 }, 'beam search is not supported');
    bad({ max_new_tokens: -1 }, 'max_new_tokens must be a non-negative integer, got -1');
    bad({ max_new_tokens: NaN }, 'max_new_tokens must be a non-negative integer');
    bad({ max_length: 1.5 }, 'max_length must be');
    bad({ min_new_tokens: -2 }, 'min_new_tokens');
    bad({ temperature: -0.1 }, 'temperature must be a non-negative number');
    bad({ temperature: NaN }, 'temperature');
    bad({ top_k: -1 }, 'top_k must be a non-negative integer');
    bad({ top_p: 0 }, /top_p must be a number in \(0, 1\]/);
    bad({ top_p: 1.5 }, 'top_p');
    bad({ min_p: 1.1 }, /min_p must be a number in \[0, 1\]/);
    bad({ min_p: -0.1 }, 'min_p');
    bad({ repetition_penalty: 0 }, 'repetition_penalty must be a positive number');
    bad({ num_return_sequences: 0 }, 'num_return_sequences must be a positive integer');
    bad({ do_sample: 'yes' }, 'do_sample must be a boolean');
    bad({ eos_token_id: [1, -1] }, 'eos_token_id');
    bad({ stop_strings: [''] }, 'stop_strings');
    bad({ seed: -3 }, 'seed');
  });

  it('temperature 0 with sampling is an error (as in transformers); fine when greedy', () => {
    bad({ do_sample: true, temperature: 0 }, 'temperature must be strictly positive');
    expect(resolveGeneration([{ temperature: 0 }], 0).greedy).toBe(true);
  });

  it('greedy with several return sequences is an error; sampling allows it', () => {
    bad({ num_return_sequences: 2 }, 'num_return_sequences');
    expect(resolveGeneration([{ do_sample: true, num_return_sequences: 3 }], 0).numReturnSequences).toBe(3);
  });

  it('a call can override a checkpoint num_beams', () => {
    expect(resolveGeneration([{ num_beams: 4 }, { num_beams: 1 }], 0).greedy).toBe(true);
  });
});

describe('parseGenerationConfigJson', () => {
  it('reads the known fields and ignores the rest', () => {
    const g = parseGenerationConfigJson(readText('phi3', 'generation_config.json'));
    expect(g).toEqual({ bos_token_id: 1, eos_token_id: [595, 597], pad_token_id: 595 });
  });

  it('errors name the file and the field', () => {
    expect(() => parseGenerationConfigJson('{ x')).toThrow(ConfigError);
    expect(() => parseGenerationConfigJson('{ x')).toThrow('generation_config.json is not valid JSON');
    expect(() => parseGenerationConfigJson('[]')).toThrow('generation_config.json must be a JSON object');
    expect(() => parseGenerationConfigJson('{"top_p": "0.9"}', 'm/generation_config.json')).toThrow('m/generation_config.json: top_p must be a number in (0, 1], got "0.9"');
    expect(() => parseGenerationConfigJson('{"eos_token_id": "2"}')).toThrow('generation_config.json: eos_token_id');
  });

  it('keeps nulls (they mean "off")', () => {
    expect(parseGenerationConfigJson('{"top_k": null, "do_sample": true}')).toEqual({ top_k: null, do_sample: true });
  });
});
