/**
 * What the models share: the `vocab` object reader and the accessors of a vocabulary-backed model, an integer-pair
 * hash map, a bounded word cache and UTF-8 helpers.
 */
import type { Model, TokenSink } from '../components.js';
import { describe, fail, obj, type JsonObject } from '../json.js';

const MAX_ID = 0xffffffff; // ids are u32 in the Rust library

/**
 * A token → id vocabulary read from a tokenizer.json `vocab` object. Lookups go to the parsed object itself: its
 * keys are already interned strings, which makes loading a 262k-token vocabulary (and checking 500k merges
 * against it) several times faster than copying it into a Map first.
 */
export class Vocab {
  /** id → token (holes stay undefined; when two tokens share an id, the later one). */
  readonly tokens: string[];
  readonly size: number;
  /** Length of the longest token, in UTF-16 units. */
  readonly maxTokenLength: number;
  /** Whether some id has more than one token (then `tokens` does not list every token). */
  private readonly sharedIds: boolean;

  private constructor(private readonly ids: Record<string, number>, keys: string[], path: string) {
    const tokens: string[] = [];
    let longest = 0;
    let shared = false;
    for (let i = 0; i < keys.length; i++) {
      const token = keys[i];
      const id = ids[token];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_ID) {
        fail(`${path}[${JSON.stringify(token)}]`, `must be a token id (an integer, 0 to 2^32-1), got ${describe(id)}`);
      }
      if (tokens[id] !== undefined) shared = true;
      tokens[id] = token;
      if (token.length > longest) longest = token.length;
    }
    this.tokens = tokens;
    this.size = keys.length;
    this.maxTokenLength = longest;
    this.sharedIds = shared;
  }

  /** Reads `o.vocab`, an object token → id (a u32). */
  static fromJSON(o: JsonObject, path: string): Vocab {
    const v = obj(o.vocab, `${path}.vocab`);
    return new Vocab(v as Record<string, number>, Object.keys(v), `${path}.vocab`);
  }

  /** A vocabulary from a Map (tests and hand-built models). */
  static fromMap(vocab: Map<string, number>, path = 'vocab'): Vocab {
    const ids: Record<string, number> = Object.create(null);
    for (const [token, id] of vocab) ids[token] = id;
    return new Vocab(ids, [...vocab.keys()], path);
  }

  /** Own keys only: every own value is a number and nothing inherited from Object.prototype is. */
  get(token: string): number | undefined {
    const id = this.ids[token];
    return typeof id === 'number' ? id : undefined;
  }

  /** Calls `fn` for every (token, id). */
  forEach(fn: (token: string, id: number) => void): void {
    if (this.sharedIds) {
      for (const token of Object.keys(this.ids)) fn(token, this.ids[token]);
    } else {
      this.tokens.forEach(fn);
    }
  }

  /** token → id, a copy. */
  toMap(): Map<string, number> {
    const map = new Map<string, number>();
    for (const token of Object.keys(this.ids)) map.set(token, this.ids[token]);
    return map;
  }
}

/**
 * A hash map from a pair of u32 to a non-negative int32, with open addressing over typed arrays. It replaces
 * Map<string, ...> (one string per pair) and Map<number, ...> (keys past 2^31 become heap numbers) for the
 * hundreds of thousands of BPE merges, which makes both loading and lookups several times faster.
 */
export class IntPairMap {
  private left: Uint32Array;
  private right: Uint32Array;
  private values: Int32Array; // -1 = empty slot
  private mask: number;
  private count = 0;

  constructor(expected = 16) {
    let capacity = 16;
    while (capacity < expected * 2) capacity *= 2;
    this.left = new Uint32Array(capacity);
    this.right = new Uint32Array(capacity);
    this.values = new Int32Array(capacity).fill(-1);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.count;
  }

  private slot(a: number, b: number): number {
    let h = Math.imul(a, 0x9e3779b1) ^ b;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) & this.mask;
  }

  /** Sets (a, b) → value (value ≥ 0), replacing an earlier value. */
  set(a: number, b: number, value: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    let i = this.slot(a, b);
    while (this.values[i] !== -1) {
      if (this.left[i] === a && this.right[i] === b) {
        this.values[i] = value;
        return;
      }
      i = (i + 1) & this.mask;
    }
    this.left[i] = a;
    this.right[i] = b;
    this.values[i] = value;
    this.count++;
  }

  /** The value of (a, b), or -1. */
  get(a: number, b: number): number {
    let i = this.slot(a, b);
    for (;;) {
      const v = this.values[i];
      if (v === -1 || (this.left[i] === a && this.right[i] === b)) return v;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const { left, right, values } = this;
    const capacity = values.length * 2;
    this.left = new Uint32Array(capacity);
    this.right = new Uint32Array(capacity);
    this.values = new Int32Array(capacity).fill(-1);
    this.mask = capacity - 1;
    this.count = 0;
    for (let i = 0; i < values.length; i++) if (values[i] !== -1) this.set(left[i], right[i], values[i]);
  }
}

/**
 * Tokens of recently seen words, packed as [id, start, end, id, start, end, ...]. Bounded: when full, the oldest
 * entry goes (Map keeps insertion order), so memory stays flat on any input.
 */
export class WordCache {
  private readonly map = new Map<string, Uint32Array>();

  constructor(
    private readonly capacity = 20_000,
    /** Longer words are not kept: they are rare and would hold memory for nothing. */
    readonly maxWordLength = 256,
  ) {}

  get(word: string): Uint32Array | undefined {
    return this.map.get(word);
  }

  set(word: string, tokens: Uint32Array): void {
    if (word.length >= this.maxWordLength || this.capacity <= 0) return;
    if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value as string);
    this.map.set(word, tokens);
  }

  clear(): void {
    this.map.clear();
  }
}

/** Writes the packed tokens of a cache entry to `out`. */
export function emitPacked(tokens: Uint32Array, out: TokenSink): void {
  for (let i = 0; i < tokens.length; i += 3) out.push(tokens[i], tokens[i + 1], tokens[i + 2]);
}

/** UTF-8 length of a code point; a lone surrogate counts as U+FFFD (3 bytes), as TextEncoder writes it. */
export function utf8Length(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/** Appends the UTF-8 bytes of `text` to `bytes`; a lone surrogate is written as U+FFFD. */
export function pushUtf8(text: string, bytes: number[]): void {
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const lo = text.charCodeAt(i + 1);
      if (cp <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      } else cp = 0xfffd;
    }
    if (cp < 0x80) bytes.push(cp);
    else if (cp < 0x800) bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) bytes.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else bytes.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
}

/**
 * Ids of the 256 byte tokens "<0x00>" … "<0xFF>" (SentencePiece byte fallback); -1 where the vocabulary lacks one.
 */
export function byteTokenIds(tokenToId: (token: string) => number | undefined): Float64Array {
  const ids = new Float64Array(256).fill(-1);
  for (let b = 0; b < 256; b++) {
    const id = tokenToId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    if (id !== undefined) ids[b] = id;
  }
  return ids;
}

/** A model's own `type` field, when present, must name that model. */
export function checkType(o: JsonObject, type: string, path: string): void {
  if (o.type !== undefined && o.type !== type) fail(`${path}.type`, `must be "${type}", got ${describe(o.type)}`);
}

/** The lookups of a model whose vocabulary is a `Vocab` (BPE, WordPiece, WordLevel). */
export abstract class VocabModel implements Model {
  protected constructor(protected readonly vocab: Vocab) {}

  abstract tokenize(word: string, out: TokenSink): void;

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.vocab.tokens[id];
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  getVocab(): Map<string, number> {
    return this.vocab.toMap();
  }
}
