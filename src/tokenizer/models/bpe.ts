/**
 * Byte-pair encoding with the exact semantics of the Rust `tokenizers` BPE model:
 *   - a word starts as one symbol per character (continuing_subword_prefix on all but the first,
 *     end_of_word_suffix on the last); a character missing from the vocabulary becomes its UTF-8 byte tokens
 *     "<0xNN>" (byte_fallback, when all of them exist), else the unknown token (consecutive ones fused into one
 *     with fuse_unk), else it is dropped;
 *   - then the pair of adjacent symbols with the lowest merge rank is merged, leftmost first on equal ranks,
 *     until no pair has a merge. A min-heap of (rank, position) with lazy deletion makes this O(n log n);
 *   - with ignore_merges, a word that is itself in the vocabulary is one token.
 * Offsets follow Rust too: each symbol spans its UTF-8 bytes, counted from the start of the word in symbol order,
 * and a byte span covers the characters it touches (so the byte tokens of one character all span that character).
 *
 * Dropout (random merge skipping, a training-time regularizer) is not applied: tokenization is deterministic.
 */
import { TokenizerError } from '../../errors.js';
import type { TokenSink } from '../components.js';
import { arr, bool, describe, fail, obj, optStr, type Json } from '../json.js';
import {
  byteTokenIds,
  checkType,
  emitPacked,
  IntPairMap,
  pushUtf8,
  utf8Length,
  Vocab,
  WordCache,
  VocabModel,
} from './shared.js';

export interface BPEConfig {
  vocab: Vocab;
  /** (left id, right id) → merge rank. */
  ranks: IntPairMap;
  /** mergedId[rank]: id of the token a merge produces. */
  mergedId: Float64Array;
  unkToken: string | null;
  continuingSubwordPrefix: string | null;
  endOfWordSuffix: string | null;
  fuseUnk: boolean;
  byteFallback: boolean;
  ignoreMerges: boolean;
  dropout: number | null;
}

export class BPE extends VocabModel {
  readonly unkToken: string | null;
  readonly continuingSubwordPrefix: string | null;
  readonly endOfWordSuffix: string | null;
  readonly fuseUnk: boolean;
  readonly byteFallback: boolean;
  readonly ignoreMerges: boolean;
  readonly dropout: number | null;

  private readonly ranks: IntPairMap;
  private readonly mergedId: Float64Array;
  private readonly byteIds: Float64Array;
  /**
   * Id of each single-UTF-16-unit token (-1: none, -2: an id too large for the table, look it up): saves a
   * string and a lookup per character. Only without prefix and suffix, which change the symbols' text.
   */
  private readonly unitIds: Int32Array | null;
  private readonly cache = new WordCache();

  // Working arrays of the merge loop, grown on demand and reused across words.
  private symId = new Float64Array(64);
  private symPrev = new Int32Array(64);
  private symNext = new Int32Array(64);
  private symBytes = new Int32Array(64); // UTF-8 length; 0 marks a symbol merged into its left neighbour
  private charEnd16 = new Int32Array(64); // per character of the word: end in UTF-16 units...
  private charEnd8 = new Int32Array(64); // ...and in UTF-8 bytes
  private readonly heap = new MinHeap();
  private readonly bytes: number[] = [];

  constructor(config: BPEConfig) {
    super(config.vocab);
    this.ranks = config.ranks;
    this.mergedId = config.mergedId;
    this.unkToken = config.unkToken;
    // An empty prefix or suffix changes nothing; null is the cheaper way to say so.
    this.continuingSubwordPrefix = config.continuingSubwordPrefix || null;
    this.endOfWordSuffix = config.endOfWordSuffix || null;
    this.fuseUnk = config.fuseUnk;
    this.byteFallback = config.byteFallback;
    this.ignoreMerges = config.ignoreMerges;
    this.dropout = config.dropout;
    this.byteIds = byteTokenIds((t) => this.vocab.get(t));
    this.unitIds = null;
    if (this.continuingSubwordPrefix === null && this.endOfWordSuffix === null) {
      const unitIds = new Int32Array(0x10000).fill(-1);
      this.vocab.forEach((token, id) => {
        if (token.length === 1) unitIds[token.charCodeAt(0)] = id <= 0x7fffffff ? id : -2;
      });
      this.unitIds = unitIds;
    }
  }

  tokenize(word: string, out: TokenSink): void {
    if (word.length === 0) return;
    if (this.ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) {
        out.push(id, 0, word.length);
        return;
      }
    }
    let tokens = this.cache.get(word);
    if (tokens === undefined) {
      tokens = this.mergeWord(word);
      this.cache.set(word, tokens);
    }
    emitPacked(tokens, out);
  }

  /** Forgets the cached words (their tokens never change; this only frees memory). */
  clearCache(): void {
    this.cache.clear();
  }

  /** Tokenizes one word: symbols, then merges. Returns packed [id, start, end] triples. */
  private mergeWord(word: string): Uint32Array {
    const len = word.length;
    this.reserveChars(len);
    const prefix = this.continuingSubwordPrefix;
    const suffix = this.endOfWordSuffix;
    const charEnd16 = this.charEnd16;
    const charEnd8 = this.charEnd8;

    let n = 0; // symbols
    let chars = 0;
    let bytePos = 0;
    // A pending unknown token: Rust adds it only when a known character follows (or at the end), which also
    // decides where it lands relative to byte-fallback tokens.
    let pendingUnk = -1;
    let pendingUnkBytes = 0;

    for (let i = 0; i < len; ) {
      let cp = word.charCodeAt(i);
      let units = 1;
      if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < len) {
        const lo = word.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          units = 2;
        }
      }
      const byteLen = cp >= 0xd800 && cp <= 0xdfff ? 3 : utf8Length(cp);
      charEnd16[chars] = i + units;
      charEnd8[chars] = bytePos + byteLen;
      chars++;

      let id: number | undefined;
      let s: string | null = null; // the symbol's text, built only when needed
      if (this.unitIds !== null && units === 1 && this.unitIds[cp] !== -2) {
        id = this.unitIds[cp];
        if (id < 0) id = undefined;
      } else {
        s = word.slice(i, i + units);
        if (prefix !== null && i > 0) s = prefix + s;
        if (suffix !== null && i + units === len) s = s + suffix;
        id = this.vocab.get(s);
      }

      if (id !== undefined) {
        if (pendingUnk >= 0) {
          n = this.addSymbol(n, pendingUnk, pendingUnkBytes);
          pendingUnk = -1;
        }
        n = this.addSymbol(n, id, byteLen);
      } else if (this.byteFallback && this.addByteSymbols(s ?? word.slice(i, i + units), n)) {
        // Rust adds one symbol of one byte per UTF-8 byte of the symbol text (prefix and suffix included).
        n += this.bytes.length;
      } else if (this.unkToken !== null) {
        if (pendingUnk >= 0 && this.fuseUnk) {
          pendingUnkBytes += byteLen;
        } else {
          if (pendingUnk >= 0) n = this.addSymbol(n, pendingUnk, pendingUnkBytes);
          pendingUnk = this.unkId();
          pendingUnkBytes = byteLen;
        }
      }
      // else: no unknown token, the character is dropped (and so are its bytes from the offsets that follow).

      bytePos += byteLen;
      i += units;
    }
    if (pendingUnk >= 0) n = this.addSymbol(n, pendingUnk, pendingUnkBytes);

    if (n > 1) this.mergeAll(n);
    return this.pack(n, chars, len);
  }

  /**
   * Adds the byte tokens of `text` as symbols from index `n`, if every byte has one; leaves the bytes in
   * `this.bytes` (their count is the number of symbols added).
   */
  private addByteSymbols(text: string, n: number): boolean {
    const bytes = this.bytes;
    bytes.length = 0;
    pushUtf8(text, bytes);
    for (const b of bytes) if (this.byteIds[b] < 0) return false;
    for (let k = 0; k < bytes.length; k++) this.addSymbol(n + k, this.byteIds[bytes[k]], 1);
    return true;
  }

  private unkId(): number {
    const id = this.vocab.get(this.unkToken!);
    if (id === undefined) {
      throw new TokenizerError(`BPE: the unknown token ${JSON.stringify(this.unkToken)} is not in the vocabulary`);
    }
    return id;
  }

  private addSymbol(n: number, id: number, bytes: number): number {
    if (n >= this.symId.length) this.growSymbols();
    this.symId[n] = id;
    this.symPrev[n] = n - 1;
    this.symNext[n] = -1;
    if (n > 0) this.symNext[n - 1] = n;
    this.symBytes[n] = bytes;
    return n + 1;
  }

  /** The merge loop of Rust's `Word::merge_all`, entry for entry (including how stale entries are recognised). */
  private mergeAll(n: number): void {
    const { ranks, mergedId, symId, symPrev, symNext, symBytes, heap } = this;
    // Keys are rank * n + position: ordering by key is ordering by rank, then position.
    heap.clear();
    for (let pos = 0; pos + 1 < n; pos++) {
      const rank = ranks.get(symId[pos], symId[pos + 1]);
      if (rank >= 0) heap.push(rank * n + pos);
    }

    while (heap.size > 0) {
      const key = heap.pop();
      const rank = Math.floor(key / n);
      const pos = key - rank * n;
      if (symBytes[pos] === 0) continue; // merged away
      const right = symNext[pos];
      if (right === -1) continue;
      // The entry is current if the pair now at `pos` merges into the same token (Rust compares merged ids).
      const now = ranks.get(symId[pos], symId[right]);
      const newId = mergedId[rank];
      if (now < 0 || mergedId[now] !== newId) continue;

      symId[pos] = newId;
      symBytes[pos] += symBytes[right];
      symBytes[right] = 0;
      const after = symNext[right];
      symNext[pos] = after;
      if (after !== -1) symPrev[after] = pos;

      const before = symPrev[pos];
      if (before >= 0) {
        const r = ranks.get(symId[before], newId);
        if (r >= 0) heap.push(r * n + before);
      }
      if (after !== -1) {
        const r = ranks.get(newId, symId[after]);
        if (r >= 0) heap.push(r * n + pos);
      }
    }
  }

  /**
   * Packs the surviving symbols as [id, start, end] triples. Their byte spans are cumulative, as in Rust, and
   * each is widened to the characters it touches, in UTF-16 units of the word.
   */
  private pack(n: number, chars: number, len: number): Uint32Array {
    const { symId, symBytes, charEnd16, charEnd8 } = this;
    let live = 0;
    for (let i = 0; i < n; i++) if (symBytes[i] > 0) live++;
    const out = new Uint32Array(live * 3);
    let byte = 0;
    let c = 0; // first character that ends after `byte`
    let k = 0;
    for (let i = 0; i < n; i++) {
      const b = symBytes[i];
      if (b === 0) continue;
      while (c < chars && charEnd8[c] <= byte) c++;
      const start = c === 0 ? 0 : c < chars ? charEnd16[c - 1] : len;
      byte += b;
      while (c < chars && charEnd8[c] < byte) c++;
      const end = c < chars ? charEnd16[c] : len;
      out[k++] = symId[i];
      out[k++] = start;
      out[k++] = end;
    }
    return out;
  }

  private reserveChars(len: number): void {
    if (this.charEnd16.length >= len) return;
    const size = Math.max(len, this.charEnd16.length * 2);
    this.charEnd16 = new Int32Array(size);
    this.charEnd8 = new Int32Array(size);
  }

  private growSymbols(): void {
    const size = this.symId.length * 2;
    const grow = <T extends Float64Array | Int32Array>(a: T, b: T): T => (b.set(a), b);
    this.symId = grow(this.symId, new Float64Array(size));
    this.symPrev = grow(this.symPrev, new Int32Array(size));
    this.symNext = grow(this.symNext, new Int32Array(size));
    this.symBytes = grow(this.symBytes, new Int32Array(size));
  }
}

/** A binary min-heap of numbers, reused from word to word. */
class MinHeap {
  private items = new Float64Array(64);
  size = 0;

  clear(): void {
    this.size = 0;
  }

  push(value: number): void {
    if (this.size === this.items.length) {
      const bigger = new Float64Array(this.items.length * 2);
      bigger.set(this.items);
      this.items = bigger;
    }
    const items = this.items;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent] <= value) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = value;
  }

  /** Removes and returns the smallest value (the heap must not be empty). */
  pop(): number {
    const items = this.items;
    const top = items[0];
    const last = items[--this.size];
    const size = this.size;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && items[child + 1] < items[child]) child++;
      if (items[child] >= last) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
    return top;
  }
}

/**
 * `{"type": "BPE", "vocab": {...}, "merges": [...], ...}`. Like Rust: vocab and merges are required; merges are
 * all "a b" strings (lines starting with "#version" skipped) or all ["a", "b"] pairs; each merge's two tokens and
 * their concatenation (minus the continuing_subword_prefix of the right one) must be in the vocabulary; a pair
 * listed twice keeps its last rank; dropout must be within [0, 1].
 */
export function bpeFromJSON(json: unknown, path = 'model'): BPE {
  const o = obj(json, path);
  checkType(o, 'BPE', path);
  if (o.vocab === undefined || o.merges === undefined) fail(path, 'must have both "vocab" and "merges" (a BPE model)');
  let dropout: number | null = null;
  if (o.dropout !== undefined && o.dropout !== null) {
    if (typeof o.dropout !== 'number' || !(o.dropout >= 0 && o.dropout <= 1)) {
      fail(`${path}.dropout`, `must be null or a number from 0 to 1, got ${describe(o.dropout)}`);
    }
    dropout = o.dropout;
  }
  const vocab = Vocab.fromJSON(o, path);
  const continuingSubwordPrefix = optStr(o, 'continuing_subword_prefix', path);
  const { ranks, mergedId } = readMerges(o.merges, vocab, continuingSubwordPrefix, `${path}.merges`);
  return new BPE({
    vocab,
    ranks,
    mergedId,
    unkToken: optStr(o, 'unk_token', path),
    continuingSubwordPrefix,
    endOfWordSuffix: optStr(o, 'end_of_word_suffix', path),
    fuseUnk: bool(o, 'fuse_unk', path, false),
    byteFallback: bool(o, 'byte_fallback', path, false),
    ignoreMerges: bool(o, 'ignore_merges', path, false),
    dropout,
  });
}

function readMerges(
  json: Json | undefined,
  vocab: Vocab,
  prefix: string | null,
  path: string,
): { ranks: IntPairMap; mergedId: Float64Array } {
  const list = arr(json, path);
  const ranks = new IntPairMap(list.length);
  const mergedId = new Float64Array(list.length);
  const pairs = list.length > 0 && Array.isArray(list[0]);
  const prefixBytes = prefix ? new TextEncoder().encode(prefix).length : 0;
  let rank = 0;
  for (let i = 0; i < list.length; i++) {
    const m = list[i];
    let a: string;
    let b: string;
    if (pairs) {
      if (!Array.isArray(m) || m.length !== 2 || typeof m[0] !== 'string' || typeof m[1] !== 'string') {
        fail(`${path}[${i}]`, `must be a pair of tokens ["a", "b"] like the first merge, got ${describe(m)}`);
      }
      a = m[0];
      b = m[1];
    } else {
      if (typeof m !== 'string') {
        fail(`${path}[${i}]`, `must be a string "a b" like the first merge, got ${describe(m)}`);
      }
      if (m.startsWith('#version')) continue; // a merges.txt header
      const space = m.indexOf(' ');
      if (space < 0 || m.indexOf(' ', space + 1) >= 0) {
        fail(`${path}[${i}]`, `must be two tokens separated by one space, got ${describe(m)}`);
      }
      a = m.slice(0, space);
      b = m.slice(space + 1);
    }
    const idA = vocab.get(a);
    const idB = vocab.get(b);
    if (idA === undefined || idB === undefined) {
      fail(`${path}[${i}]`, `merges ${JSON.stringify(idA === undefined ? a : b)}, which is not in the vocabulary`);
    }
    const merged = a + (prefixBytes > 0 ? dropBytes(b, prefixBytes, `${path}[${i}]`) : b);
    const id = vocab.get(merged);
    if (id === undefined) fail(`${path}[${i}]`, `makes ${JSON.stringify(merged)}, which is not in the vocabulary`);
    ranks.set(idA, idB, rank);
    mergedId[rank] = id;
    rank++;
  }
  return { ranks, mergedId };
}

/** `text` without its first `count` UTF-8 bytes (Rust slices the prefix's byte length off the right token). */
function dropBytes(text: string, count: number, path: string): string {
  let bytes = 0;
  let i = 0;
  while (bytes < count && i < text.length) {
    const cp = text.codePointAt(i)!;
    bytes += utf8Length(cp);
    i += cp > 0xffff ? 2 : 1;
  }
  if (bytes !== count) {
    fail(path, `has a right token shorter than the continuing_subword_prefix, got ${describe(text)}`);
  }
  return text.slice(i);
}
