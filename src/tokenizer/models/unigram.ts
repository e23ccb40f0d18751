/**
 * Unigram (SentencePiece), as the Rust `tokenizers` model: the segmentation of the word with the highest total
 * piece score (Viterbi over character positions). A character that no single-character piece covers may be the
 * unknown piece, scored min(score) - 10; consecutive unknown pieces are fused into one token, which becomes its
 * UTF-8 byte tokens "<0xNN>" (byte_fallback, when all exist) or the unknown id.
 * Ties keep the first candidate found: pieces are tried by start position, then by length.
 */
import { TokenizerError } from '../../errors.js';
import type { Model, TokenSink } from '../components.js';
import { arr, bool, describe, fail, obj, type Json } from '../json.js';
import { byteTokenIds, checkType, emitPacked, IntPairMap, pushUtf8, WordCache } from './shared.js';

const UNK_PENALTY = 10;

export class Unigram implements Model {
  readonly unkId: number | null;
  readonly byteFallback: boolean;
  private readonly pieces: string[];
  private readonly scores: Float64Array;
  private readonly tokenToIds = new Map<string, number>();
  private readonly unkScore: number;
  private readonly byteIds: Float64Array;
  /** Trie over UTF-16 units: (node, unit) → child node; the root is node 0. */
  private readonly trie: IntPairMap;
  /** Piece id ending at each trie node, -1 if none. */
  private readonly terminal: Int32Array;
  private readonly cache = new WordCache();

  // Viterbi working arrays, per UTF-16 position of the word, grown on demand.
  private bestScore = new Float64Array(64);
  private bestStart = new Int32Array(64); // -1: not reached yet
  private bestId = new Float64Array(64);

  /** `vocab[i]` = [piece, score] of id i. */
  constructor(vocab: ReadonlyArray<readonly [string, number]>, unkId: number | null, byteFallback: boolean) {
    this.unkId = unkId;
    this.byteFallback = byteFallback;
    this.pieces = vocab.map((v) => v[0]);
    this.scores = Float64Array.from(vocab, (v) => v[1]);
    let units = 0;
    for (const piece of this.pieces) units += piece.length;
    this.trie = new IntPairMap(units);
    let minScore = Infinity;
    const terminal: number[] = [-1];
    let nodes = 1;
    for (let id = 0; id < vocab.length; id++) {
      const [piece, score] = vocab[id];
      // A piece listed twice keeps its last id, as Rust's token → id map does.
      this.tokenToIds.set(piece, id);
      let node = 0;
      for (let k = 0; k < piece.length; k++) {
        const unit = piece.charCodeAt(k);
        let child = this.trie.get(node, unit);
        if (child < 0) {
          child = nodes++;
          this.trie.set(node, unit, child);
          terminal.push(-1);
        }
        node = child;
      }
      terminal[node] = id;
      if (score < minScore) minScore = score;
    }
    this.terminal = Int32Array.from(terminal);
    this.unkScore = minScore - UNK_PENALTY;
    this.byteIds = byteTokenIds((t) => this.tokenToIds.get(t));
  }

  tokenize(word: string, out: TokenSink): void {
    if (word.length === 0) return;
    let tokens = this.cache.get(word);
    if (tokens === undefined) {
      tokens = this.encode(word);
      this.cache.set(word, tokens);
    }
    emitPacked(tokens, out);
  }

  tokenToId(token: string): number | undefined {
    return this.tokenToIds.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.pieces[id];
  }

  /** As in the Rust library, an unknown piece is reported as its own text, not as the unknown token. */
  tokenValue(id: number, word: string, start: number, end: number): string {
    return id === this.unkId ? word.slice(start, end) : (this.pieces[id] ?? '');
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  getVocab(): Map<string, number> {
    return new Map(this.tokenToIds);
  }

  clearCache(): void {
    this.cache.clear();
  }

  /** Best segmentation of `word` as packed [id, start, end] triples. */
  private encode(word: string): Uint32Array {
    const len = word.length;
    this.reserve(len + 1);
    const { bestScore, bestStart, bestId, trie, terminal, scores } = this;
    bestScore.fill(0, 0, len + 1); // a position never reached scores 0, as in Rust
    bestStart.fill(-1, 0, len + 1);

    for (let start = 0; start < len; ) {
      const unit = word.charCodeAt(start);
      const charLen = unit >= 0xd800 && unit <= 0xdbff && start + 1 < len && isLow(word.charCodeAt(start + 1)) ? 2 : 1;
      const base = bestScore[start];
      let hasSingle = false;
      let node = 0;
      for (let k = start; k < len; k++) {
        node = trie.get(node, word.charCodeAt(k));
        if (node < 0) break;
        const id = terminal[node];
        if (id < 0) continue;
        const end = k + 1;
        const candidate = scores[id] + base;
        if (bestStart[end] < 0 || candidate > bestScore[end]) {
          bestScore[end] = candidate;
          bestStart[end] = start;
          bestId[end] = id;
        }
        if (end - start === charLen) hasSingle = true;
      }
      if (!hasSingle) {
        const end = start + charLen;
        const candidate = this.unkScore + base;
        if (bestStart[end] < 0 || candidate > bestScore[end]) {
          if (this.unkId === null) {
            throw new TokenizerError(`Unigram: ${describe(word)} has a character no piece covers, and no unk_id`);
          }
          bestScore[end] = candidate;
          bestStart[end] = start;
          bestId[end] = this.unkId;
        }
      }
      start += charLen;
    }

    // Walk the best path back from the end, fusing runs of unknown pieces.
    const path: number[] = []; // [id, start, end] triples, last token first; id -1 = fused unknown run
    let fusedEnd = -1;
    let fusedStart = -1;
    for (let end = len; end > 0; ) {
      const start = bestStart[end];
      const id = bestId[end];
      if (this.unkId !== null && id === this.unkId) {
        if (fusedEnd < 0) fusedEnd = end;
        fusedStart = start;
      } else {
        if (fusedEnd >= 0) path.push(-1, fusedStart, fusedEnd);
        fusedEnd = -1;
        path.push(id, start, end);
      }
      end = start;
    }
    if (fusedEnd >= 0) path.push(-1, fusedStart, fusedEnd);

    const tokens: number[] = [];
    for (let i = path.length - 3; i >= 0; i -= 3) {
      const start = path[i + 1];
      const end = path[i + 2];
      if (path[i] >= 0) {
        tokens.push(path[i], start, end);
        continue;
      }
      // A fused run is looked up as text (it may be a piece, e.g. "<unk>" itself), then as bytes, then unknown.
      const text = word.slice(start, end);
      const id = this.tokenToIds.get(text);
      if (id !== undefined) tokens.push(id, start, end);
      else if (!this.byteFallback || !this.pushBytes(text, start, end, tokens)) tokens.push(this.unkId!, start, end);
    }
    return Uint32Array.from(tokens);
  }

  /** Pushes the byte tokens of `text`, all spanning [start, end), if every byte has one. */
  private pushBytes(text: string, start: number, end: number, tokens: number[]): boolean {
    const bytes: number[] = [];
    pushUtf8(text, bytes);
    for (const b of bytes) if (this.byteIds[b] < 0) return false;
    for (const b of bytes) tokens.push(this.byteIds[b], start, end);
    return true;
  }

  private reserve(size: number): void {
    if (this.bestScore.length >= size) return;
    const n = Math.max(size, this.bestScore.length * 2);
    this.bestScore = new Float64Array(n);
    this.bestStart = new Int32Array(n);
    this.bestId = new Float64Array(n);
  }
}

/**
 * `{"type": "Unigram", "vocab": [["<unk>", 0], ["▁the", -3.2], ...], "unk_id": 0, "byte_fallback": false}`.
 * As in Rust: vocab is required; unk_id (optional) must be below the vocabulary size.
 */
export function unigramFromJSON(json: unknown, path = 'model'): Unigram {
  const o = obj(json, path);
  checkType(o, 'Unigram', path);
  const list = arr(o.vocab, `${path}.vocab`);
  const vocab = list.map((entry: Json, i): [string, number] => {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
      fail(`${path}.vocab[${i}]`, `must be a [piece, score] pair, got ${describe(entry)}`);
    }
    return [entry[0], entry[1]];
  });
  let unkId: number | null = null;
  if (o.unk_id !== undefined && o.unk_id !== null) {
    const id = o.unk_id;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      fail(`${path}.unk_id`, `must be null or a piece index, got ${describe(id)}`);
    }
    if (id >= vocab.length) fail(`${path}.unk_id`, `is ${id}, past the end of the vocabulary (${vocab.length} pieces)`);
    unkId = id;
  }
  return new Unigram(vocab, unkId, bool(o, 'byte_fallback', path, false));
}

function isLow(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
