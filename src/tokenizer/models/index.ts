/** The `model` section of tokenizer.json: BPE, WordPiece, WordLevel or Unigram. */
import { TokenizerError } from '../../errors.js';
import type { Model } from '../components.js';
import { fail, obj, typeOf, type JsonObject } from '../json.js';
import { bpeFromJSON } from './bpe.js';
import { unigramFromJSON } from './unigram.js';
import { wordLevelFromJSON } from './wordlevel.js';
import { wordPieceFromJSON } from './wordpiece.js';

export { BPE, bpeFromJSON } from './bpe.js';
export { Unigram, unigramFromJSON } from './unigram.js';
export { WordLevel, wordLevelFromJSON } from './wordlevel.js';
export { WordPiece, wordPieceFromJSON } from './wordpiece.js';

const MODEL_TYPES = ['BPE', 'WordPiece', 'WordLevel', 'Unigram'] as const;

const READERS: Record<(typeof MODEL_TYPES)[number], (json: JsonObject, path: string) => Model> = {
  BPE: bpeFromJSON,
  WordPiece: wordPieceFromJSON,
  WordLevel: wordLevelFromJSON,
  Unigram: unigramFromJSON,
};

export function modelFromJSON(json: unknown, path = 'model'): Model {
  const o = obj(json, path);
  if (o.type === undefined) return untypedModel(o, path);
  const type = typeOf(o, path, MODEL_TYPES, 'model') as (typeof MODEL_TYPES)[number];
  return READERS[type](o, path);
}

/**
 * Files written before models had a `type`: like Rust, try each model in turn and keep the first that loads.
 * The order matters: a WordPiece model is also a valid WordLevel one, and BPE needs `merges`.
 */
function untypedModel(o: JsonObject, path: string): Model {
  const reasons: string[] = [];
  for (const type of MODEL_TYPES) {
    try {
      return READERS[type](o, path);
    } catch (e) {
      if (!(e instanceof TokenizerError)) throw e;
      reasons.push(`not ${type}: ${e.message.replace(/^tokenizer\.json: /, '')}`);
    }
  }
  fail(path, `has no "type" and matches no model (${reasons.join('; ')})`);
}
