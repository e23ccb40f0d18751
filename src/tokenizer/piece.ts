/**
 * A piece of text that remembers where it came from. Normalizers and pre-tokenizers rewrite text (NFC, "▁" for
 * spaces, bytes as printable characters, ...); each UTF-16 code unit of a Piece carries the [start, end) range of
 * the ORIGINAL input it was made from, so token offsets always point into the user's string (in UTF-16 units,
 * so `text.slice(start, end)` works).
 */
export class Piece {
  constructor(
    /** The current text. */
    readonly text: string,
    /** starts[i], ends[i]: original range of text[i]. Length = text.length. */
    readonly starts: Int32Array,
    readonly ends: Int32Array,
  ) {}

  /** A piece that is `text` itself, at `offset` in the original. */
  static of(text: string, offset = 0): Piece {
    const n = text.length;
    const starts = new Int32Array(n);
    const ends = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      starts[i] = offset + i;
      ends[i] = offset + i + 1;
    }
    return new Piece(text, starts, ends);
  }

  get length(): number {
    return this.text.length;
  }

  /** The sub-piece text[start, end) (UTF-16 indices), alignments kept. */
  slice(start: number, end: number = this.text.length): Piece {
    if (start === 0 && end === this.text.length) return this;
    return new Piece(this.text.slice(start, end), this.starts.subarray(start, end), this.ends.subarray(start, end));
  }

  /**
   * The original range of text[start, end): the start of its first unit and the end of its last, as the Rust
   * library computes token offsets (after reordering normalizers the two need not be the min and max). An empty
   * range maps to the point where it sits: the end of the unit before it, or the start of the unit at it.
   */
  originalRange(start: number, end: number): [number, number] {
    if (start >= end) {
      const at = start < this.text.length ? this.starts[start] : start > 0 ? this.ends[start - 1] : 0;
      return [at, at];
    }
    return [this.starts[start], this.ends[end - 1]];
  }

  /** Where this piece begins in the original (for an empty piece, 0 unless it was sliced from something). */
  get originalStart(): number {
    return this.text.length > 0 ? this.starts[0] : 0;
  }
}

/**
 * Builds a new Piece from parts of an old one: `push(text, srcStart, srcEnd)` says "`text` replaces
 * old.text[srcStart, srcEnd)". Every code unit of `text` gets the original range of that source span; an insertion
 * (srcStart === srcEnd) gets the empty range at that point. Parts must come in source order; source text that no
 * part covers is dropped. `keep(srcStart, srcEnd)` copies a span unchanged (alignments included), cheaply.
 */
export class PieceBuilder {
  private readonly texts: string[] = [];
  private starts: Int32Array;
  private ends: Int32Array;
  private n = 0;

  constructor(private readonly source: Piece, capacityHint = source.length) {
    this.starts = new Int32Array(Math.max(4, capacityHint));
    this.ends = new Int32Array(Math.max(4, capacityHint));
  }

  private reserve(extra: number): void {
    if (this.n + extra <= this.starts.length) return;
    const size = Math.max(this.n + extra, this.starts.length * 2);
    const s = new Int32Array(size);
    const e = new Int32Array(size);
    s.set(this.starts.subarray(0, this.n));
    e.set(this.ends.subarray(0, this.n));
    this.starts = s;
    this.ends = e;
  }

  /** Copies source.text[srcStart, srcEnd) with its alignments. */
  keep(srcStart: number, srcEnd: number): this {
    const len = srcEnd - srcStart;
    if (len <= 0) return this;
    this.reserve(len);
    this.texts.push(this.source.text.slice(srcStart, srcEnd));
    this.starts.set(this.source.starts.subarray(srcStart, srcEnd), this.n);
    this.ends.set(this.source.ends.subarray(srcStart, srcEnd), this.n);
    this.n += len;
    return this;
  }

  /** `text` replaces source.text[srcStart, srcEnd). */
  push(text: string, srcStart: number, srcEnd: number): this {
    if (text.length === 0) return this;
    const [lo, hi] = this.source.originalRange(srcStart, srcEnd);
    this.reserve(text.length);
    this.texts.push(text);
    this.starts.fill(lo, this.n, this.n + text.length);
    this.ends.fill(hi, this.n, this.n + text.length);
    this.n += text.length;
    return this;
  }

  build(): Piece {
    return new Piece(this.texts.join(''), this.starts.slice(0, this.n), this.ends.slice(0, this.n));
  }
}
