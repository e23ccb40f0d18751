/**
 * WordPiece (BERT), as the Rust `tokenizers` model: greedy longest-match-first from the left, pieces after the
 * first looked up with the continuing_subword_prefix ("##"). If some position has no match, or the word has more
 * than max_input_chars_per_word characters (code points), the whole word is the unknown token.
 */
import { TokenizerError } from '../../errors.js';
import type { TokenSink } from '../components.js';
import { fail, int, obj, str } from '../json.js';
import { checkType, Vocab, VocabModel } from './shared.js';

export interface WordPieceConfig {
  vocab: Vocab;
  unkToken: string;
  continuingSubwordPrefix: string;
  maxInputCharsPerWord: number;
}

export class WordPiece extends VocabModel {
  readonly unkToken: string;
  readonly continuingSubwordPrefix: string;
  readonly maxInputCharsPerWord: number;
  /** Longest vocabulary entry, in UTF-16 units: no longer piece can match, so the search starts there. */
  private readonly maxTokenLength: number;
  // Pieces of the word being tokenized, kept until the whole word is known to succeed.
  private readonly pieces: number[] = [];

  constructor(config: WordPieceConfig) {
    super(config.vocab);
    this.unkToken = config.unkToken;
    this.continuingSubwordPrefix = config.continuingSubwordPrefix;
    this.maxInputCharsPerWord = config.maxInputCharsPerWord;
    this.maxTokenLength = this.vocab.maxTokenLength;
  }

  tokenize(word: string, out: TokenSink): void {
    const len = word.length;
    if (countCodePoints(word, this.maxInputCharsPerWord + 1) > this.maxInputCharsPerWord) {
      out.push(this.unkId(), 0, len);
      return;
    }
    const prefix = this.continuingSubwordPrefix;
    const pieces = this.pieces;
    pieces.length = 0;
    for (let start = 0; start < len; ) {
      const room = start === 0 ? this.maxTokenLength : this.maxTokenLength - prefix.length;
      let end = Math.min(len, start + room);
      if (end < len && isLowSurrogate(word.charCodeAt(end)) && isHighSurrogate(word.charCodeAt(end - 1))) end--;
      let id: number | undefined;
      while (end > start) {
        id = this.vocab.get(start === 0 ? word.slice(0, end) : prefix + word.slice(start, end));
        if (id !== undefined) break;
        // Step back one character (a surrogate pair is one character).
        const pair =
          end - start >= 2 && isLowSurrogate(word.charCodeAt(end - 1)) && isHighSurrogate(word.charCodeAt(end - 2));
        end -= pair ? 2 : 1;
      }
      if (id === undefined) {
        out.push(this.unkId(), 0, len);
        return;
      }
      pieces.push(id, start, end);
      start = end;
    }
    for (let i = 0; i < pieces.length; i += 3) out.push(pieces[i], pieces[i + 1], pieces[i + 2]);
  }

  private unkId(): number {
    const id = this.vocab.get(this.unkToken);
    if (id === undefined) {
      throw new TokenizerError(`WordPiece: unknown token ${JSON.stringify(this.unkToken)} is not in the vocabulary`);
    }
    return id;
  }
}

/**
 * `{"type": "WordPiece", "vocab": {...}, "unk_token": "[UNK]", "continuing_subword_prefix": "##",
 * "max_input_chars_per_word": 100}`. As in Rust, all four fields are required (and `type` is optional).
 */
export function wordPieceFromJSON(json: unknown, path = 'model'): WordPiece {
  const o = obj(json, path);
  checkType(o, 'WordPiece', path);
  for (const key of ['vocab', 'unk_token', 'continuing_subword_prefix', 'max_input_chars_per_word']) {
    if (o[key] === undefined) fail(`${path}.${key}`, 'is missing (required by a WordPiece model)');
  }
  return new WordPiece({
    vocab: Vocab.fromJSON(o, path),
    unkToken: str(o, 'unk_token', path),
    continuingSubwordPrefix: str(o, 'continuing_subword_prefix', path),
    maxInputCharsPerWord: int(o, 'max_input_chars_per_word', path),
  });
}

/** Number of code points in `text`, counting stops at `limit`. */
function countCodePoints(text: string, limit: number): number {
  let count = 0;
  for (let i = 0; i < text.length && count < limit; i++, count++) {
    if (isHighSurrogate(text.charCodeAt(i)) && isLowSurrogate(text.charCodeAt(i + 1))) i++;
  }
  return count;
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
