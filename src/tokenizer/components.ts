/**
 * The five stages of a tokenizer.json pipeline, as in the Rust `tokenizers` library:
 *   normalizer → pre-tokenizer → model → post-processor, and decoder on the way back.
 * Each stage family lives in its own module with a `*FromJSON(json, path)` factory.
 */
import type { Piece } from './piece.js';

/** Rewrites text (NFC, lowercase, "▁" for " ", ...), keeping alignments to the original. */
export interface Normalizer {
  normalize(piece: Piece): Piece;
}

/** Splits normalized text into words (and may rewrite them, as ByteLevel and Metaspace do). */
export interface PreTokenizer {
  /** Splits each of `pieces` further; returns the new list in order. Empty pieces may be dropped. */
  preTokenize(pieces: Piece[]): Piece[];
}

/** Where a model writes the tokens of one word: ids with [start, end) in the word's UTF-16 text. */
export interface TokenSink {
  push(id: number, start: number, end: number): void;
}

/** Turns one pre-tokenized word into token ids. */
export interface Model {
  tokenize(word: string, out: TokenSink): void;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Number of entries in the model's own vocabulary (added tokens not included). */
  readonly vocabSize: number;
  /** The model's vocabulary, token → id. */
  getVocab(): Map<string, number>;
  /**
   * The token string reported for a token of `word[start, end)`, when it is not simply the vocabulary entry
   * of `id` (Unigram reports the text of an unknown piece, not "<unk>"). Absent: `idToToken(id)`.
   */
  tokenValue?(id: number, word: string, start: number, end: number): string;
}

/** Turns a list of token strings back into text pieces (joined by the caller), like Rust's `decode_chain`. */
export interface Decoder {
  decodeChain(tokens: string[]): string[];
}

/** One encoded sequence, with everything per token. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  /** [start, end) of each token in the input string, UTF-16 units; [0, 0] for added special tokens. */
  offsets: Array<[number, number]>;
  typeIds: number[];
  specialTokensMask: number[];
  attentionMask: number[];
}

/** Adds special tokens around one sequence or a pair (BOS/EOS, [CLS]/[SEP], ...). */
export interface PostProcessor {
  /** How many tokens `process` adds. */
  addedTokens(isPair: boolean): number;
  process(encoding: Encoding, pair: Encoding | null, addSpecialTokens: boolean): Encoding;
}

export function emptyEncoding(): Encoding {
  return { ids: [], tokens: [], offsets: [], typeIds: [], specialTokensMask: [], attentionMask: [] };
}
