/**
 * Model inputs as users pass them (number[] for one sequence, number[][] for a batch, or a Tensor), checked and
 * turned into padded rows with their padding lengths.
 */
import { ConfigError } from '../errors.js';
import { Tensor } from './tensor.js';

export type IdsInput = readonly number[] | readonly (readonly number[])[] | Tensor | readonly bigint[] | readonly (readonly bigint[])[];

export interface Batch {
  /** Rows of equal length. */
  ids: number[][];
  /** 0/1 per position. */
  mask: number[][];
  /** Per row: zeros at the start of its mask (left padding). */
  leftPad: number[];
  /** Per row: zeros at the end of its mask (right padding). */
  rightPad: number[];
  length: number;
}

function toRows(value: IdsInput, name: string): number[][] {
  if (value instanceof Tensor) {
    if (value.dims.length === 1) return [Array.from(value.data as ArrayLike<number>, Number)];
    if (value.dims.length !== 2) throw new ConfigError(`${name} must be 1-D or 2-D, got dims [${value.dims.join(', ')}].`);
    const [b, s] = value.dims as [number, number];
    const all = Array.from(value.data as ArrayLike<number>, Number);
    return Array.from({ length: b }, (_, i) => all.slice(i * s, (i + 1) * s));
  }
  if (!Array.isArray(value)) throw new ConfigError(`${name} must be an array of token ids or an array of such arrays.`);
  if (value.length > 0 && Array.isArray(value[0])) return (value as readonly (readonly (number | bigint)[])[]).map((r) => r.map(Number));
  return [(value as readonly (number | bigint)[]).map(Number)];
}

/**
 * Checks ids (integers in [0, vocab)) and the mask (0/1, same shape, ones contiguous per row), and finds each
 * row's padding. Without a mask every position is real.
 */
export function readBatch(inputIds: IdsInput, attentionMask: IdsInput | undefined, vocab: number): Batch {
  const ids = toRows(inputIds, 'input_ids');
  if (ids.length === 0) throw new ConfigError('input_ids is empty: give at least one sequence.');
  const length = ids[0]!.length;
  if (length === 0) throw new ConfigError('input_ids has an empty sequence: give at least one token.');
  ids.forEach((row, b) => {
    if (row.length !== length) {
      throw new ConfigError(`input_ids rows differ in length (row 0 has ${length}, row ${b} has ${row.length}); pad them (tokenizer padding: true).`);
    }
    row.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new ConfigError(`input_ids[${b}][${t}] is ${id}, outside the vocabulary 0..${vocab - 1}.`);
      }
    });
  });
  const mask = attentionMask === undefined ? ids.map((r) => r.map(() => 1)) : toRows(attentionMask, 'attention_mask');
  if (mask.length !== ids.length) {
    throw new ConfigError(`attention_mask has ${mask.length} rows but input_ids has ${ids.length}.`);
  }
  const leftPad: number[] = [];
  const rightPad: number[] = [];
  mask.forEach((row, b) => {
    if (row.length !== length) throw new ConfigError(`attention_mask row ${b} has ${row.length} entries but input_ids rows have ${length}.`);
    const first = row.findIndex((m) => m !== 0);
    if (first < 0) throw new ConfigError(`attention_mask row ${b} is all zeros: every sequence needs at least one token.`);
    let last = length - 1;
    while (row[last] === 0) last--;
    for (let t = 0; t < length; t++) {
      const m = row[t];
      if (m !== 0 && m !== 1) throw new ConfigError(`attention_mask[${b}][${t}] is ${m}; it must be 0 or 1.`);
      if ((t < first || t > last) !== (m === 0)) {
        throw new ConfigError(`attention_mask row ${b} has a gap at position ${t}: only padding at the start or end of a row is supported.`);
      }
    }
    leftPad.push(first);
    rightPad.push(length - 1 - last);
  });
  return { ids, mask, leftPad, rightPad, length };
}

/** Position ids as generate() derives them: cumsum(mask) − 1, and 1 at padding. */
export function positionIds(batch: Batch): number[][] {
  return batch.mask.map((row) => {
    let seen = 0;
    return row.map((m) => {
      if (m === 0) return 1;
      return seen++;
    });
  });
}
