/** The WordLevel model: each word is one token, or the unknown token. */
import { TokenizerError } from '../../errors.js';
import type { TokenSink } from '../components.js';
import { describe, obj, str } from '../json.js';
import { checkType, Vocab, VocabModel } from './shared.js';

export class WordLevel extends VocabModel {
  constructor(
    vocab: Vocab,
    readonly unkToken: string,
  ) {
    super(vocab);
  }

  tokenize(word: string, out: TokenSink): void {
    const id = this.vocab.get(word) ?? this.vocab.get(this.unkToken);
    if (id === undefined) {
      throw new TokenizerError(
        `WordLevel: ${describe(word)} is not in the vocabulary, nor is unk_token ${JSON.stringify(this.unkToken)}`,
      );
    }
    out.push(id, 0, word.length);
  }
}

/** `{"type": "WordLevel", "vocab": {...}, "unk_token": "<unk>"}`; both fields are required, as in Rust. */
export function wordLevelFromJSON(json: unknown, path = 'model'): WordLevel {
  const o = obj(json, path);
  checkType(o, 'WordLevel', path);
  const vocab = Vocab.fromJSON(o, path);
  return new WordLevel(vocab, str(o, 'unk_token', path));
}

