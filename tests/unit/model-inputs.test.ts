import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { positionIds, readBatch } from '../../src/runtime/inputs.js';
import { Tensor } from '../../src/runtime/tensor.js';
import { estimateWeightBytes, type WeightSlotSpec } from '../../src/runtime/weights.js';
import { llamaWeights } from '../../src/models/llama.js';
import { normalizeConfig } from '../../src/models/config.js';
import { readJson } from '../helpers/hf-tiny.js';

describe('readBatch', () => {
  it('takes one sequence, a batch, a Tensor and bigint ids', () => {
    expect(readBatch([1, 2, 3], undefined, 10).ids).toEqual([[1, 2, 3]]);
    expect(readBatch([[1, 2], [3, 4]], undefined, 10).ids).toEqual([[1, 2], [3, 4]]);
    expect(readBatch(new Tensor('int32', new Int32Array([1, 2, 3, 4]), [2, 2]), undefined, 10).ids).toEqual([[1, 2], [3, 4]]);
    expect(readBatch([[1n, 2n]], undefined, 10).ids).toEqual([[1, 2]]);
  });

  it('finds left and right padding, and derives positions as generate() does', () => {
    const b = readBatch([[0, 0, 5, 6], [5, 6, 7, 0], [1, 2, 3, 4]], [[0, 0, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]], 10);
    expect(b.leftPad).toEqual([2, 0, 0]);
    expect(b.rightPad).toEqual([0, 1, 0]);
    expect(positionIds(b)).toEqual([[1, 1, 0, 1], [0, 1, 2, 1], [0, 1, 2, 3]]);
  });

  it('names what is wrong', () => {
    const bad = (f: () => unknown, what: RegExp) => {
      expect(f).toThrow(ConfigError);
      expect(f).toThrow(what);
    };
    bad(() => readBatch([], undefined, 10), /empty/);
    bad(() => readBatch([[]], undefined, 10), /empty sequence/);
    bad(() => readBatch([[1, 2], [3]], undefined, 10), /row 1 has 1/);
    bad(() => readBatch([[1, 10]], undefined, 10), /input_ids\[0\]\[1\] is 10/);
    bad(() => readBatch([[1, -1]], undefined, 10), /input_ids\[0\]\[1\] is -1/);
    bad(() => readBatch([[1, 1.5]], undefined, 10), /input_ids\[0\]\[1\]/);
    bad(() => readBatch([[1, 2]], [[1, 1], [1, 1]], 10), /2 rows/);
    bad(() => readBatch([[1, 2, 3]], [[1, 0, 1]], 10), /gap at position 1/);
    bad(() => readBatch([[1, 2, 3]], [[0, 0, 0]], 10), /all zeros/);
    bad(() => readBatch([[1, 2, 3]], [[1, 2, 1]], 10), /must be 0 or 1/);
    bad(() => readBatch([[1, 2, 3]], [[1, 1]], 10), /row 0 has 2 entries/);
  });
});

describe('Llama weight slots', () => {
  it('lists exactly the tensors of each fixture checkpoint, with their shapes', () => {
    for (const name of ['llama', 'mistral', 'qwen2', 'qwen3', 'smollm-tied', 'llama3-rope']) {
      const config = normalizeConfig(readJson(name, 'config.json'));
      const specs: WeightSlotSpec[] = llamaWeights(config);
      const golden = readJson<{ checkpoint: { num_parameters: number } }>(name, 'golden.json');
      const params = specs.reduce((n, s) => n + s.parts.reduce((m, p) => m + p.shape.reduce((a, b) => a * b, 1), 0), 0);
      expect(params, name).toBe(golden.checkpoint.num_parameters);
      // f32 storage: 4 bytes per parameter; bf16 halves the matrices only (vectors stay f32).
      expect(estimateWeightBytes(specs, { dtype: 'f32', torchDtype: null })).toBe(4 * params);
      expect(estimateWeightBytes(specs, { dtype: 'bf16', torchDtype: null })).toBeLessThan(4 * params);
    }
  });
});
