/**
 * Normalizers, the first stage of a tokenizer.json pipeline. Each one rewrites a Piece exactly as the Rust
 * `tokenizers` library (0.22) rewrites its NormalizedString: the same text, and the same alignments back to the
 * original string, including the places where Rust's bookkeeping is surprising, so that token offsets agree too.
 *
 * Rust records every rewrite as a list of new characters, each tagged with a "change": 0 = it takes the place of
 * the next old character, -n = it does and n more old characters vanish, +1 = it is inserted and shares the
 * alignment of the old character just before it. Old characters are consumed strictly in order, whatever the new
 * ones are, so a rewrite that emits fewer "replacing" characters than it covers shifts every later alignment.
 * `Rewriter` below replays that model; each normalizer emits the same change sequence as its Rust counterpart.
 *
 * Character properties follow the Unicode versions of the Rust crates, not of the JavaScript engine: the tables
 * below were measured against the Rust library (Unicode 9 era for normalization, combining marks and BERT's
 * categories). Unicode normalization itself uses String.prototype.normalize, which agrees with Rust on everything
 * except characters newer than Rust's tables (NORMALIZATION_EXCEPTIONS), which Rust leaves alone.
 */
import type { Normalizer } from './components.js';
import { Piece } from './piece.js';
import { arr, bool, describe, fail, obj, str, typeOf, type JsonObject } from './json.js';
import { compileRustRegex, escapeRegex, findMatches } from './regex.js';
import { BYTE_TO_CHAR } from './bytes.js';

export const NORMALIZER_TYPES = [
  'BertNormalizer',
  'Strip',
  'StripAccents',
  'NFC',
  'NFD',
  'NFKC',
  'NFKD',
  'Sequence',
  'Lowercase',
  'Nmt',
  'Precompiled',
  'Replace',
  'Prepend',
  'ByteLevel',
] as const;

// ---------------------------------------------------------------------------------------------------------------
// Character tables. Each is a list of code point ranges: comma-separated `gap[+length]` in base 36, where gap is
// the distance from the previous range's last code point (from 0 for the first).

/** Characters Rust's `is_combining_mark` (unicode-normalization tables) is true for: what StripAccents removes. */
const COMBINING_MARKS =
  'lc+33,7o+6,7c+18,2,2+1,2+1,2,21+a,1d+k,h,2u+6,3+5,3+1,2+3,10,v+q,2k+a,1n+8,z+3,2+8,2+2,2+4,18+2,3d+d,2+w,1j+2,' +
  '2+h,2+6,b+1,u+2,1l,2+6,3+1,3+2,a,b+1,u+2,1l,2+4,5+1,3+2,4,v+1,4,c+2,1l,2+7,2+2,2+2,l+1,u+2,1l,2+6,3+1,3+2,9+1,' +
  'b+1,v,1o+4,4+2,2+3,a,15+3,1n+6,2+2,2+3,8+1,c+1,u+2,1l,2+6,2+2,2+3,8+1,c+1,u+2,1n+6,2+2,2+3,a,b+1,v+1,1z,5+5,2,' +
  '2+7,j+1,1q,3+6,d+7,2r,3+5,2+1,c+5,23+1,s,2,2,5+1,1e+j,2+1,6+a,2+z,a,2t+j,o+3,5+2,2+2,3+6,4+3,e+b,2,b+3,jk+2,qb' +
  '+2,u+2,u+1,v+1,1t+v,a,1a+2,3c+1,z,3b+b,5+b,64+4,1m+9,2+s,3,1d+e,1u+4,1c+g,13+8,d+2,v+c,1l+d,1d+j,49+2,2+k,5,5+' +
  '2,4+1,5j+1h,6+4,k1+w,2db+2,3y,2p+v,ff+5,2y+1,n9x+3,2+9,x+1,29+1,7l,4,5,o+4,2h+1,1f+h,r+h,1h+7,q+c,19+3,1c+d,11' +
  ',1w+d,d,9+1,1a+2,1f,2+2,3+1,6+1,2,16+4,6+1,6l+7,2+1,fn5,ki+f,h+f,r2,6b,46+4,1af+2,2+1,6+3,15+2,5,4m+1,10a+2,1i' +
  '+e,1l+3,1a+a,1y+2,11+d,1r,d+2,1d+d,a+2,2o+b,7,4h+b,m+3,1l,2+6,3+1,3+2,a,b+1,3+6,4+4,5d+h,2y+j,6k+6,3+8,s+1,2b+' +
  'g,2z+c,2u+e,zo+7,2+7,2b+l,2+d,fga+4,1o+6,t7+19,h+3,f7v+1,43r+4,4+5,9+7,3+6,v+3,45+2,1j0+1i,5+1d,9,f,n+4,2+e,11' +
  't+6,2+g,3+6,2+1,2+4,1pi+6,32+6,gzhy+6n';

/** What BertNormalizer's clean_text deletes: NUL, U+FFFD and Rust's `is_other` (Cc, Cf, Co) except \t \n \r. */
const BERT_CONTROLS =
  '0+8,3+1,2+h,2o+w,e,11v+5,n,5d,1e,3cv,1kt+4,r+4,1e+4,2+9,11u9+4xr,16o,6y+2,2,3b4,xyb+3,440+7,h407,v+2n,1egx+1ek' +
  'd,3+1ekd';

/** Nonspacing marks (Mn) as the `unicode_categories` crate has them: what BertNormalizer's strip_accents removes. */
const BERT_NONSPACING_MARKS =
  'lc+1r,3,3+16,7o+4,7e+18,2,2+1,2+1,2,21+a,1d+k,h,2u+6,3+5,3+1,2+3,10,v+q,2k+a,1n+8,z+3,2+8,2+2,2+4,18+2,3s+v,1k' +
  ',2,5+7,5,4+6,b+1,u,1n,5+3,9,l+1,u+1,1m,5+1,5+1,3+2,4,v+1,4,c+1,1m,5+4,2+1,5,l+1,u,1n,3,2+3,9,9,c+1,v,1q,d,1f,1' +
  'q+2,6+1,3+3,8+1,c+1,u,1n,3,7,6+1,l+1,u,1s+3,9,l+1,2v,8+2,2,2j,3+6,d+7,2r,3+5,2+1,c+5,23+1,s,2,2,1k+1,2,3,2+5,2' +
  ',2+2,2+1,6+5,2+3,2+3,2+3,2+3,2+3,2+b,2+2,a,2v+3,2+5,2+1,3+1,q+1,5+2,h+3,e,3+1,7,g,jk+2,qb+2,u+2,u+1,v+1,1t+1,2' +
  '+6,9,3+a,a,1a+2,4c,3b+2,5+1,a,7+2,64+1,3,1n,2+6,2,2,3+7,7+9,3,1d+d,1v+3,1d,2+4,2,6,15+8,d+1,x+3,3+1,2+2,1l,2+1' +
  ',4,2+2,1n+7,3+1,49+2,2+c,2+6,5,7,4+1,5j+1h,7+3,k1+c,5,4+b,2db+2,3y,2p+v,ff+3,30+1,n9x,5+9,x+1,29+1,7l,4,5,q+1,' +
  '4e,s+h,1h+7,q+a,1b+2,1d,3+3,3,15,1w+5,3+1,3+1,d,9,1c,1g,2+2,3+1,6+1,2,17+1,9,6n,3,5,fn5,ki+f,h+f,r2,6b,46+4,1a' +
  'f+2,2+1,6+3,15+2,5,4m+1,10b,1j+e,1l+2,1e+3,3+1,1y+2,11+4,2,3+4,1r,d+1,1h+8,c+2,2r+2,3,2+1,4o,4+7,m+1,1n,4,12+6' +
  ',4+4,8v+5,2,5+1,2+1,6n+3,7+1,2+1,s+1,2e+7,3,2+1,2z,2,3+5,2,2u+2,3+3,2+4,gjp+4,1o+6,ux+3,f7v+1,43t+2,i+7,3+6,v+' +
  '3,45+2,1j0+1i,5+1d,9,f,n+4,2+e,2sh+6,gzl6+6n';

/**
 * Characters newer than Rust's normalization tables that String.prototype.normalize (Unicode 17) decomposes,
 * composes or reorders. Rust treats them as unassigned: no decomposition, combining class 0, no composition.
 */
const NORMALIZATION_EXCEPTIONS =
  '1kt,4a+8,17+9,8b,fy,73+1,am,1nf,q2+u,3+b,ln+4,45h,n3m+3,1k,n1,huo,9,8,a,bh+4,2+15,2+8,12i+3,1u+4,8u+1,26+1,2+2' +
  ',1z+a,1e+3,6j,jv,1z+3,6,3,2+1,13,3,7,3,2+2,5+2,3y,rf+1,6u,5,3,5+1,5,4d,2c,j,2a,ix,2+1,2a,bu+1,d0c+b,6,2es,4+3,' +
  'hy+1,icl+z,3sn+1p,y,4h+6,ag,1q+3,e5+3,73+1,6s,3,8+1,6,22f,22s+9';

/** Rust's `char::is_whitespace` (the White_Space property, stable across Unicode versions). */
const WHITESPACE_CLASS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** Decodes a range table into [first, last, first, last, ...]. */
function decodeRanges(table: string): number[] {
  const out: number[] = [];
  let prev = 0;
  for (const part of table.split(',')) {
    const plus = part.indexOf('+');
    const first = prev + parseInt(plus < 0 ? part : part.slice(0, plus), 36);
    const last = first + (plus < 0 ? 0 : parseInt(part.slice(plus + 1), 36));
    out.push(first, last);
    prev = last;
  }
  return out;
}

/** A RegExp character class body (for the `u` flag) matching the table's code points. */
function rangeClass(table: string): string {
  const r = decodeRanges(table);
  const hex = (c: number) => `\\u{${c.toString(16)}}`;
  let out = '';
  for (let i = 0; i < r.length; i += 2) out += r[i] === r[i + 1] ? hex(r[i]) : `${hex(r[i])}-${hex(r[i + 1])}`;
  return out;
}

/** Builds a value on first use (the tables cost a little to compile and most pipelines need none of them). */
function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

const combiningMarkRe = lazy(() => new RegExp(`[${rangeClass(COMBINING_MARKS)}]+`, 'gu'));
const bertNonspacingRe = lazy(() => new RegExp(`[${rangeClass(BERT_NONSPACING_MARKS)}]+`, 'gu'));
/** Whitespace that clean_text turns into ' ' (the rest of White_Space is control characters, deleted). */
const BERT_SPACES = '\\t\\n\\r\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const BERT_SPACE_RE = new RegExp(`^[${BERT_SPACES}]$`);
/** clean_text's work: deleted characters, and whitespace other than ' ' that becomes ' '. */
const bertCleanRe = lazy(() => new RegExp(`[${rangeClass(BERT_CONTROLS)}${BERT_SPACES}]`, 'gu'));
const normalizationExceptions = lazy(() => {
  const set = new Set<number>();
  const r = decodeRanges(NORMALIZATION_EXCEPTIONS);
  for (let i = 0; i < r.length; i += 2) for (let c = r[i]; c <= r[i + 1]; c++) set.add(c);
  return set;
});
const normalizationExceptionRe = lazy(() => new RegExp(`[${rangeClass(NORMALIZATION_EXCEPTIONS)}]`, 'u'));

// ---------------------------------------------------------------------------------------------------------------
// Replaying Rust's alignment bookkeeping.

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** UTF-16 length of the character at text[i] (a lone surrogate counts as one character). */
function charLength(text: string, i: number): number {
  return isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1)) ? 2 : 1;
}

function countChars(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i += charLength(s, i)) n++;
  return n;
}

/**
 * Builds a new Piece from a source Piece with Rust's transform semantics (see the module comment). `pos` is the
 * next source character not yet consumed; `replace` is a change ≤ 0, `insert` a change of +1.
 */
class Rewriter {
  private readonly text: string;
  private readonly parts: string[] = [];
  private starts: Int32Array;
  private ends: Int32Array;
  private n = 0;
  pos = 0;

  constructor(private readonly src: Piece) {
    this.text = src.text;
    const size = Math.max(16, src.length + (src.length >> 3));
    this.starts = new Int32Array(size);
    this.ends = new Int32Array(size);
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

  private append(s: string, lo: number, hi: number): void {
    this.reserve(s.length);
    this.parts.push(s);
    this.starts.fill(lo, this.n, this.n + s.length);
    this.ends.fill(hi, this.n, this.n + s.length);
    this.n += s.length;
  }

  /** Source [pos, to) unchanged, alignments included. */
  copyTo(to: number): void {
    const from = this.pos;
    if (to <= from) return;
    const len = to - from;
    this.reserve(len);
    this.parts.push(this.text.slice(from, to));
    this.starts.set(this.src.starts.subarray(from, to), this.n);
    this.ends.set(this.src.ends.subarray(from, to), this.n);
    this.n += len;
    this.pos = to;
  }

  /** Source [pos, pos + s.length) rewritten as `s`, unit for unit (same length), alignments kept. */
  copyAs(s: string): void {
    if (s.length === 0) return;
    this.copyTo(this.pos + s.length);
    this.parts[this.parts.length - 1] = s;
  }

  /** Drops source [pos, to). */
  skipTo(to: number): void {
    if (to > this.pos) this.pos = to;
  }

  /** `ch` takes the place (and alignment) of the next unconsumed source character; `drop` more vanish. */
  replace(ch: string, drop = 0): void {
    const text = this.text;
    if (this.pos >= text.length) {
      // Rust would index past its alignments here; no change sequence we emit gets this far.
      this.insert(ch);
      return;
    }
    const len = charLength(text, this.pos);
    if (ch.length === len && text.startsWith(ch, this.pos)) this.copyTo(this.pos + len);
    else {
      this.append(ch, this.src.starts[this.pos], this.src.ends[this.pos + len - 1]);
      this.pos += len;
    }
    for (let k = 0; k < drop && this.pos < text.length; k++) this.pos += charLength(text, this.pos);
  }

  /** New text sharing the alignment of the source character just before `pos` (an empty range at the start). */
  insert(s: string): void {
    const pos = this.pos;
    if (pos === 0) {
      const at = this.src.length > 0 ? this.src.starts[0] : 0;
      this.append(s, at, at);
      return;
    }
    const pair = pos >= 2 && isLow(this.text.charCodeAt(pos - 1)) && isHigh(this.text.charCodeAt(pos - 2));
    const k = pair ? pos - 2 : pos - 1;
    this.append(s, this.src.starts[k], this.src.ends[pos - 1]);
  }

  /**
   * Source [from, to) passes through unchanged (each character with change 0). When earlier rewrites consumed as
   * many source characters as they covered, that is a plain copy; otherwise each character takes the alignment of
   * the lagging source position, as in Rust.
   */
  pass(from: number, to: number): void {
    if (this.pos === from) {
      this.copyTo(to);
      return;
    }
    for (let i = from; i < to; ) {
      const len = charLength(this.text, i);
      this.replace(this.text.slice(i, i + len));
      i += len;
    }
  }

  build(): Piece {
    // A view when little capacity is left over, saving a copy of large texts.
    const fits = this.n >= this.starts.length - (this.starts.length >> 3);
    const starts = fits ? this.starts.subarray(0, this.n) : this.starts.slice(0, this.n);
    const ends = fits ? this.ends.subarray(0, this.n) : this.ends.slice(0, this.n);
    return new Piece(this.parts.join(''), starts, ends);
  }
}

/** Runs `re` (global) over the piece: each match is rewritten by `edit`, the text between passes through. */
function rewriteMatches(piece: Piece, re: RegExp, edit: (w: Rewriter, match: string) => void): Piece {
  const text = piece.text;
  re.lastIndex = 0;
  let m = re.exec(text);
  if (m === null) return piece;
  const w = new Rewriter(piece);
  for (; m !== null; m = re.exec(text)) {
    w.copyTo(m.index);
    edit(w, m[0]);
  }
  w.copyTo(text.length);
  return w.build();
}

// ---------------------------------------------------------------------------------------------------------------
// Unicode normalization forms.

type Form = 'NFC' | 'NFD' | 'NFKC' | 'NFKD';

const decompositions = { NFD: new Map<number, number[]>(), NFKD: new Map<number, number[]>() };

/** Full decomposition of one character, as Rust's tables give it (none for characters they do not know). */
function decomposition(cp: number, compat: boolean): number[] {
  const cache = compat ? decompositions.NFKD : decompositions.NFD;
  let d = cache.get(cp);
  if (d === undefined) {
    const s = String.fromCodePoint(cp);
    d = normalizationExceptions().has(cp) ? [cp] : codePoints(s.normalize(compat ? 'NFKD' : 'NFD'));
    cache.set(cp, d);
  }
  return d;
}

function codePoints(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i)!;
    out.push(cp);
    i += cp > 0xffff ? 2 : 1;
  }
  return out;
}

const NON_ASCII_RUN = /[^\0-\x7f]+/g;

// Engines put combining marks in canonical order by insertion sort, which is quadratic in the length of a run of
// marks (100,000 marks take many seconds). Long runs are sorted here first, so the engine only confirms the order.
const LONG_MARK_RUN = /\p{M}{32}/u;
const MARK_RUN = /\p{M}{32,}/gu;

const starters = new Map<number, boolean>();
/**
 * Whether a character that is its own canonical decomposition has combining class 0 (probed with marks of class 1
 * and 240 on either side). Characters newer than Rust's tables count as starters, as in Rust.
 */
function isStarter(cp: number): boolean {
  let v = starters.get(cp);
  if (v === undefined) {
    const c = String.fromCodePoint(cp);
    v =
      normalizationExceptions().has(cp) ||
      ((c + '\u0334').normalize('NFD') === c + '\u0334' && ('\u0345' + c).normalize('NFD') === '\u0345' + c);
    starters.set(cp, v);
  }
  return v;
}

/**
 * `s` with each long run of marks canonically decomposed and put in canonical order: a canonically equivalent
 * string, so it normalizes to the same result.
 */
function presortMarks(s: string): string {
  if (!LONG_MARK_RUN.test(s)) return s;
  return s.replace(MARK_RUN, (run) => {
    let out = '';
    let block: number[] = [];
    const flush = () => {
      if (block.length > 1) sortByCombiningClass(block);
      for (const cp of block) out += String.fromCodePoint(cp);
      block = [];
    };
    for (const cp of codePoints(run)) {
      for (const part of decomposition(cp, false)) {
        if (isStarter(part)) {
          flush();
          out += String.fromCodePoint(part);
        } else block.push(part);
      }
    }
    flush();
    return out;
  });
}

/** Stable sort of non-starters by combining class, classes compared by how the engine orders each pair. */
function sortByCombiningClass(block: number[]): void {
  const distinct = [...new Set(block)];
  // a goes before b when NFD moves it in front: a has the lower class.
  const lower = (a: number, b: number) => {
    const sa = String.fromCodePoint(a);
    const sb = String.fromCodePoint(b);
    return (sb + sa).normalize('NFD') === sa + sb;
  };
  distinct.sort((a, b) => (lower(a, b) ? -1 : lower(b, a) ? 1 : 0));
  const rank = new Map<number, number>();
  let r = 0;
  for (let i = 0; i < distinct.length; i++) {
    if (i > 0 && lower(distinct[i - 1], distinct[i])) r++;
    rank.set(distinct[i], r);
  }
  block.sort((a, b) => rank.get(a)! - rank.get(b)!);
}

/**
 * Rust's `nfd`/`nfkd`/`nfc`/`nfkc`. The text comes from String.prototype.normalize; the alignments from replaying
 * unicode-normalization-alignments: each character's decomposition (first part replacing it, the rest inserted),
 * stable-sorted by combining class, then each composition merging the changes of what it absorbed.
 */
function normalizeForm(piece: Piece, form: Form): Piece {
  const text = piece.text;
  const longMarks = LONG_MARK_RUN.test(text);
  if (!longMarks && text.normalize(form) === text) return piece;
  const w = new Rewriter(piece);
  // Normalization never crosses from one ASCII character to the next, so the work splits into runs of non-ASCII
  // characters together with the ASCII character before them (a base that following marks may compose with).
  NON_ASCII_RUN.lastIndex = 0;
  for (let m = NON_ASCII_RUN.exec(text); m !== null; m = NON_ASCII_RUN.exec(text)) {
    const start = m.index > 0 ? m.index - 1 : 0;
    const end = m.index + m[0].length;
    const chunk = text.slice(start, end);
    if ((longMarks ? presortMarks(chunk) : chunk).normalize(form) === chunk) continue;
    w.copyTo(start);
    if (!normalizationExceptionRe().test(chunk)) {
      normalizeRun(w, chunk, form);
      continue;
    }
    // Characters unknown to Rust are starters that combine with nothing: normalize around them.
    let runStart = 0;
    for (let i = 0; i < chunk.length; ) {
      const cp = chunk.codePointAt(i)!;
      const len = cp > 0xffff ? 2 : 1;
      if (normalizationExceptions().has(cp)) {
        normalizeRun(w, chunk.slice(runStart, i), form);
        w.copyTo(w.pos + len);
        runStart = i + len;
      }
      i += len;
    }
    normalizeRun(w, chunk.slice(runStart), form);
  }
  w.copyTo(text.length);
  return w.build();
}

/** Normalizes `run`, the source text at w.pos, with Rust's change sequence. */
function normalizeRun(w: Rewriter, run: string, form: Form): void {
  if (run.length === 0) return;
  const input = presortMarks(run);
  const target = input.normalize(form);
  if (target === run) {
    w.copyTo(w.pos + run.length);
    return;
  }
  const compat = form === 'NFKC' || form === 'NFKD';
  // The decomposed stream before sorting: each character's parts, the first replacing it (0), the rest new (1).
  const raw: number[] = [];
  const rawChange: number[] = [];
  for (let i = 0; i < run.length; ) {
    const cp = run.codePointAt(i)!;
    i += cp > 0xffff ? 2 : 1;
    const parts = decomposition(cp, compat);
    for (let k = 0; k < parts.length; k++) {
      raw.push(parts[k]);
      rawChange.push(k === 0 ? 0 : 1);
    }
  }
  // The sort is stable, so equal characters keep their order: the k-th occurrence of a character in the sorted
  // text is its k-th occurrence in the raw stream.
  const decomposed = compat ? 'NFKD' : 'NFD';
  const sorted = codePoints(form === decomposed ? target : input.normalize(decomposed));
  if (sorted.length !== raw.length) return fallbackRun(w, run, target);
  const rawOccurrences = new Occurrences(raw);
  const sortedChange = new Array<number>(sorted.length);
  for (let k = 0; k < sorted.length; k++) {
    const j = rawOccurrences.take(sorted[k]);
    if (j < 0) return fallbackRun(w, run, target);
    sortedChange[k] = rawChange[j];
  }
  if (form === 'NFD' || form === 'NFKD') {
    for (let k = 0; k < sorted.length; k++) emitChange(w, String.fromCodePoint(sorted[k]), sortedChange[k]);
    return;
  }
  // Composition: each output character absorbed the stream characters of its canonical decomposition: the first
  // unused one, then the next unused occurrences of the other parts. Changes add up, minus one per merge.
  const occurrences = new Occurrences(sorted);
  const used = new Uint8Array(sorted.length);
  let first = 0;
  for (const o of codePoints(target)) {
    while (first < sorted.length && used[first]) first++;
    const parts = decomposition(o, false);
    let last = -1;
    let change = 1;
    for (let k = 0; k < parts.length; k++) {
      const j = occurrences.take(parts[k]);
      if (j < 0 || j <= last || (k === 0 && j !== first)) return fallbackRun(w, run, target);
      used[j] = 1;
      change += sortedChange[j] - 1;
      last = j;
    }
    emitChange(w, String.fromCodePoint(o), change);
  }
}

/** The positions of each value in a list, handed out in order. */
class Occurrences {
  private readonly next: Int32Array;
  private readonly head = new Map<number, number>();

  constructor(values: number[]) {
    this.next = new Int32Array(values.length);
    for (let i = values.length - 1; i >= 0; i--) {
      this.next[i] = this.head.get(values[i]) ?? -1;
      this.head.set(values[i], i);
    }
  }

  /** The first position of `value` not yet taken, or -1. */
  take(value: number): number {
    const i = this.head.get(value);
    if (i === undefined || i < 0) return -1;
    this.head.set(value, this.next[i]);
    return i;
  }
}

/** Coarse alignment for a run the replay could not explain: everything maps to the run. Never expected. */
function fallbackRun(w: Rewriter, run: string, target: string): void {
  const n = countChars(run);
  if (target.length === 0) {
    w.skipTo(w.pos + run.length);
    return;
  }
  const len = charLength(target, 0);
  w.replace(target.slice(0, len), n - 1);
  if (target.length > len) w.insert(target.slice(len));
}

function emitChange(w: Rewriter, ch: string, change: number): void {
  if (change > 0) w.insert(ch);
  else w.replace(ch, -change);
}

export class NFDNormalizer implements Normalizer {
  normalize(piece: Piece): Piece {
    return normalizeForm(piece, 'NFD');
  }
}

export class NFKDNormalizer implements Normalizer {
  normalize(piece: Piece): Piece {
    return normalizeForm(piece, 'NFKD');
  }
}

export class NFCNormalizer implements Normalizer {
  normalize(piece: Piece): Piece {
    return normalizeForm(piece, 'NFC');
  }
}

export class NFKCNormalizer implements Normalizer {
  normalize(piece: Piece): Piece {
    return normalizeForm(piece, 'NFKC');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Simple character rewrites.

/**
 * Rust lowercases character by character (`char::to_lowercase`), which JavaScript's toLowerCase matches except for
 * context: JS turns a word-final 'Σ' into 'ς', Rust always gives 'σ'. Only 'İ' changes length (→ 'i̇').
 */
function lowercase(piece: Piece): Piece {
  const text = piece.text;
  const lower = text.toLowerCase();
  if (lower === text) return piece;
  if (lower.length === text.length && !text.includes('\u03a3')) return new Piece(lower, piece.starts, piece.ends);
  return rewriteMatches(piece, LOWERCASE_PARTS, (w, m) => {
    if (m === '\u03a3') w.replace('\u03c3');
    else if (m === '\u0130') {
      w.replace('i');
      w.insert('\u0307');
    } else {
      // Without 'İ' every character keeps its length, so alignments carry over unit for unit.
      w.copyAs(m.toLowerCase());
    }
  });
}

const LOWERCASE_PARTS = /[^\u03a3\u0130]+|\u03a3|\u0130/g;

export class LowercaseNormalizer implements Normalizer {
  normalize(piece: Piece): Piece {
    return lowercase(piece);
  }
}

export class StripNormalizer implements Normalizer {
  constructor(
    readonly left: boolean,
    readonly right: boolean,
  ) {}

  normalize(piece: Piece): Piece {
    const text = piece.text;
    const ws = WHITESPACE_RE;
    let start = 0;
    let end = text.length;
    if (this.left) while (start < end && ws.test(text[start])) start++;
    if (this.right) while (end > start && ws.test(text[end - 1])) end--;
    return piece.slice(start, end);
  }
}

const WHITESPACE_RE = new RegExp(`^[${WHITESPACE_CLASS}]$`);

/** Removes combining marks (General_Category M in Rust's tables). */
export class StripAccentsNormalizer implements Normalizer {
  normalize(piece: Piece): Piece {
    return rewriteMatches(piece, combiningMarkRe(), (w, m) => w.skipTo(w.pos + m.length));
  }
}

/** Replaces every match of a literal string or a regular expression (non-overlapping, left to right). */
export class ReplaceNormalizer implements Normalizer {
  private readonly re: RegExp;
  /** One UTF-16 unit for another (" " → "▁"): every alignment stays where it is. */
  private readonly unitForUnit: boolean;

  constructor(
    readonly pattern: { String: string } | { Regex: string },
    readonly content: string,
    path = 'normalizer',
  ) {
    this.re =
      'String' in pattern
        ? new RegExp(escapeRegex(pattern.String), 'gu')
        : compileRustRegex(pattern.Regex, `${path}.pattern.Regex`);
    this.unitForUnit =
      'String' in pattern && pattern.String.length === 1 && content.length === 1 && !isHigh(content.charCodeAt(0));
  }

  normalize(piece: Piece): Piece {
    const text = piece.text;
    // Rust reports no match at all in an empty string, even for a pattern that matches the empty string.
    if (text.length === 0) return piece;
    if (this.unitForUnit) {
      const replaced = text.replaceAll((this.pattern as { String: string }).String, this.content);
      return replaced === text ? piece : new Piece(replaced, piece.starts, piece.ends);
    }
    const matches = findMatches(this.re, text);
    if (matches.length === 0) return piece;
    const w = new Rewriter(piece);
    for (let k = 0; k < matches.length; k += 2) {
      // Rust consumes the matched characters, then inserts the content with the alignment of the character just
      // before the insertion point: the last matched one (or, for an empty match, the one before it).
      w.copyTo(matches[k]);
      w.skipTo(matches[k + 1]);
      if (this.content.length > 0) w.insert(this.content);
    }
    w.copyTo(text.length);
    return w.build();
  }
}

/** Puts `prepend` in front of non-empty text; Rust gives it the alignment of the first character. */
export class PrependNormalizer implements Normalizer {
  constructor(readonly prepend: string) {}

  normalize(piece: Piece): Piece {
    const text = piece.text;
    if (text.length === 0) return piece;
    const w = new Rewriter(piece);
    const firstLen = charLength(text, 0);
    const first = text.slice(0, firstLen);
    if (this.prepend.length > 0) {
      const p0 = charLength(this.prepend, 0);
      w.replace(this.prepend.slice(0, p0));
      w.insert(this.prepend.slice(p0) + first);
    } else {
      w.insert(first);
    }
    w.skipTo(firstLen);
    w.copyTo(text.length);
    return w.build();
  }
}

/** SentencePiece's NMT cleanup: drops ASCII controls, turns other control-like whitespace into ' '. */
export class NmtNormalizer implements Normalizer {
  normalize(piece: Piece): Piece {
    return rewriteMatches(piece, NMT_RE, (w, m) => {
      const c = m.charCodeAt(0);
      if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d) w.skipTo(w.pos + 1);
      else if (c === 0x7f || c === 0x8f || c === 0x9f) w.skipTo(w.pos + 1);
      else w.replace(' ');
    });
  }
}

const NMT_RE = /[\x01-\x1f\x7f\x8f\x9f\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]/g;

/** Each character becomes its UTF-8 bytes, written as the byte-level alphabet (GPT-2's). */
export class ByteLevelNormalizer implements Normalizer {
  normalize(piece: Piece): Piece {
    const text = piece.text;
    if (text.length === 0) return piece;
    const w = new Rewriter(piece);
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i)!;
      const len = cp > 0xffff ? 2 : 1;
      const bytes = utf8Chars(cp);
      w.replace(bytes[0]);
      if (bytes.length > 1) w.insert(bytes.slice(1));
      i += len;
    }
    return w.build();
  }
}

const utf8Scratch = new Uint8Array(4);

/** The byte-level characters of one code point's UTF-8 encoding. */
function utf8Chars(cp: number): string {
  const n = utf8Encode(cp, utf8Scratch);
  let s = '';
  for (let k = 0; k < n; k++) s += BYTE_TO_CHAR[utf8Scratch[k]];
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// BertNormalizer.

/** The CJK blocks BertNormalizer surrounds with spaces (exactly Rust's list, gaps included). */
const CJK_RE = new RegExp(
  '[\\u4e00-\\u9fff\\u3400-\\u4dbf\\uf900-\\ufaff\\u{20000}-\\u{2a6df}\\u{2a700}-\\u{2b73f}\\u{2b740}-\\u{2b81f}' +
    '\\u{2b920}-\\u{2ceaf}\\u{2f800}-\\u{2fa1f}]',
  'gu',
);

export class BertNormalizer implements Normalizer {
  constructor(
    readonly cleanText: boolean,
    readonly handleChineseChars: boolean,
    /** null: follow `lowercase`. */
    readonly stripAccents: boolean | null,
    readonly lowercase: boolean,
  ) {}

  normalize(piece: Piece): Piece {
    let p = piece;
    if (this.cleanText) {
      p = rewriteMatches(p, bertCleanRe(), (w, m) => {
        if (BERT_SPACE_RE.test(m)) w.replace(' ');
        else w.skipTo(w.pos + m.length);
      });
    }
    if (this.handleChineseChars) {
      p = rewriteMatches(p, CJK_RE, (w, m) => {
        w.replace(' ');
        w.insert(m);
        w.insert(' ');
      });
    }
    if (this.stripAccents ?? this.lowercase) {
      p = normalizeForm(p, 'NFD');
      p = rewriteMatches(p, bertNonspacingRe(), (w, m) => w.skipTo(w.pos + m.length));
    }
    if (this.lowercase) p = lowercase(p);
    return p;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Precompiled: SentencePiece's compiled normalization rules.

/** Grapheme_Cluster_Break values, as far as the rules below need them (non-zero: 0 marks "not computed yet"). */
const Gcb = {
  Other: 1,
  CR: 2,
  LF: 3,
  Control: 4,
  Extend: 5,
  ZWJ: 6,
  SpacingMark: 7,
  Prepend: 8,
  RegionalIndicator: 9,
  L: 10,
  V: 11,
  T: 12,
  LV: 13,
  LVT: 14,
  Pictographic: 15,
} as const;
type Gcb = (typeof Gcb)[keyof typeof Gcb];

const GCB_EXTEND = /^[\p{Grapheme_Extend}\p{Emoji_Modifier}]$/u;
/** Spacing marks, minus the Mc characters that Unicode's grapheme rules leave out. */
const GCB_SPACING = /^[\p{Mc}\u0e33\u0eb3]$/u;
const GCB_NOT_SPACING = new RegExp(
  '^[\\u102b\\u102c\\u1038\\u1062-\\u1064\\u1067-\\u106d\\u1083\\u1087-\\u108c\\u108f\\u109a-\\u109c' +
    '\\u1a61\\u1a63\\u1a64\\uaa7b\\uaa7d\\u{11720}\\u{11721}]$',
  'u',
);
const GCB_PREPEND = new RegExp(
  '^[\\u0600-\\u0605\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u0d4e\\u{110bd}\\u{110cd}\\u{111c2}\\u{111c3}' +
    '\\u{1193f}\\u{11941}\\u{11a3a}\\u{11a84}-\\u{11a89}\\u{11d46}\\u{11f02}]$',
  'u',
);
const GCB_CONTROL = /^(?:[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]|(?=\p{Cn})\p{Default_Ignorable_Code_Point})$/u;
const GCB_PICTOGRAPHIC = /^\p{Extended_Pictographic}$/u;

const gcbBmp = new Uint8Array(0x10000);
const gcbAstral = new Map<number, Gcb>();

function gcb(cp: number): Gcb {
  if (cp < 0x10000) {
    const known = gcbBmp[cp];
    if (known !== 0) return known as Gcb;
    const v = computeGcb(cp);
    gcbBmp[cp] = v;
    return v;
  }
  let v = gcbAstral.get(cp);
  if (v === undefined) gcbAstral.set(cp, (v = computeGcb(cp)));
  return v;
}

function computeGcb(cp: number): Gcb {
  if (cp === 0x0d) return Gcb.CR;
  if (cp === 0x0a) return Gcb.LF;
  if (cp === 0x200d) return Gcb.ZWJ;
  if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0xa960 && cp <= 0xa97c)) return Gcb.L;
  if ((cp >= 0x1160 && cp <= 0x11a7) || (cp >= 0xd7b0 && cp <= 0xd7c6)) return Gcb.V;
  if ((cp >= 0x11a8 && cp <= 0x11ff) || (cp >= 0xd7cb && cp <= 0xd7fb)) return Gcb.T;
  if (cp >= 0xac00 && cp <= 0xd7a3) return (cp - 0xac00) % 28 === 0 ? Gcb.LV : Gcb.LVT;
  if (cp >= 0x1f1e6 && cp <= 0x1f1ff) return Gcb.RegionalIndicator;
  const s = String.fromCodePoint(cp);
  if (GCB_PREPEND.test(s)) return Gcb.Prepend;
  if (GCB_EXTEND.test(s)) return Gcb.Extend;
  if (GCB_SPACING.test(s) && !GCB_NOT_SPACING.test(s)) return Gcb.SpacingMark;
  if (GCB_PICTOGRAPHIC.test(s)) return Gcb.Pictographic;
  if (GCB_CONTROL.test(s)) return Gcb.Control;
  return Gcb.Other;
}

/**
 * End of the extended grapheme cluster starting at text[i] (UAX #29). The Indic conjunct rule (GB9c) is left out:
 * it only joins three-byte characters, and Precompiled treats every cluster of six bytes or more char by char.
 */
function graphemeEnd(text: string, i: number): number {
  const n = text.length;
  let cp = text.codePointAt(i)!;
  let j = i + (cp > 0xffff ? 2 : 1);
  let prev = gcb(cp);
  if (prev === Gcb.CR) return j < n && text.charCodeAt(j) === 0x0a ? j + 1 : j;
  if (prev === Gcb.LF || prev === Gcb.Control) return j;
  let pictographic = prev === Gcb.Pictographic; // inside "Extended_Pictographic Extend*"
  let zwjAfterPictographic = false;
  let regional = prev === Gcb.RegionalIndicator ? 1 : 0;
  while (j < n) {
    cp = text.codePointAt(j)!;
    const next = gcb(cp);
    let join: boolean;
    if (next === Gcb.CR || next === Gcb.LF || next === Gcb.Control) join = false;
    else if (prev === Gcb.Prepend || next === Gcb.Extend || next === Gcb.ZWJ || next === Gcb.SpacingMark) join = true;
    else if (prev === Gcb.L) join = next === Gcb.L || next === Gcb.V || next === Gcb.LV || next === Gcb.LVT;
    else if (prev === Gcb.LV || prev === Gcb.V) join = next === Gcb.V || next === Gcb.T;
    else if (prev === Gcb.LVT || prev === Gcb.T) join = next === Gcb.T;
    else if (next === Gcb.Pictographic) join = prev === Gcb.ZWJ && zwjAfterPictographic;
    else if (next === Gcb.RegionalIndicator) join = prev === Gcb.RegionalIndicator && regional === 1;
    else join = false;
    if (!join) break;
    zwjAfterPictographic = next === Gcb.ZWJ && pictographic;
    pictographic = next === Gcb.Pictographic || (pictographic && next === Gcb.Extend);
    regional = next === Gcb.RegionalIndicator ? regional + 1 : 0;
    prev = next;
    j += cp > 0xffff ? 2 : 1;
  }
  return j;
}

/** UTF-8 length of text[from, to). */
function utf8Length(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (isHigh(c) && isLow(text.charCodeAt(i + 1))) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const utf8Decoder = new TextDecoder('utf-8');

/**
 * The `precompiled_charsmap` of a SentencePiece model: a little-endian u32 byte size of a double-array trie (Darts),
 * the trie's u32 units, then the replacement strings, NUL-terminated. A trie value is a byte offset into them.
 */
export class PrecompiledNormalizer implements Normalizer {
  /** null: an empty charsmap, which changes nothing. */
  private readonly units: Uint32Array | null;
  private readonly strings: Uint8Array;
  private readonly replacements = new Map<number, string>();
  /** Replacement of each single character (null: none), filled on use. */
  private readonly charCache = new Map<number, string | null>();
  private readonly asciiCache: Array<string | null | undefined> = new Array(128);
  private readonly bytes = new Uint8Array(4);

  constructor(charsmap: Uint8Array, path = 'normalizer') {
    if (charsmap.length === 0) {
      this.units = null;
      this.strings = charsmap;
      return;
    }
    const where = `${path}.precompiled_charsmap`;
    if (charsmap.length < 4) fail(where, 'is too short to hold a trie');
    const view = new DataView(charsmap.buffer, charsmap.byteOffset, charsmap.byteLength);
    const trieBytes = view.getUint32(0, true);
    const count = Math.floor(trieBytes / 4);
    if (4 + count * 4 > charsmap.length)
      fail(where, `declares a ${trieBytes}-byte trie but holds ${charsmap.length - 4} bytes`);
    if (count === 0) fail(where, 'has an empty trie');
    const units = new Uint32Array(count);
    for (let i = 0; i < count; i++) units[i] = view.getUint32(4 + i * 4, true);
    this.units = units;
    this.strings = charsmap.subarray(4 + count * 4);
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(this.strings);
    } catch {
      fail(where, 'holds replacement strings that are not valid UTF-8');
    }
  }

  /** From the base64 text of tokenizer.json. */
  static fromBase64(b64: string, path = 'normalizer'): PrecompiledNormalizer {
    let binary: string;
    try {
      binary = atob(b64);
    } catch {
      fail(`${path}.precompiled_charsmap`, 'is not valid base64');
    }
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new PrecompiledNormalizer(bytes, path);
  }

  /** The replacement string at byte offset `at`: up to the next NUL. */
  private replacementAt(at: number): string {
    let s = this.replacements.get(at);
    if (s === undefined) {
      const bytes = this.strings;
      let end = at;
      while (end < bytes.length && bytes[end] !== 0) end++;
      s = at < bytes.length ? utf8Decoder.decode(bytes.subarray(at, end)) : '';
      this.replacements.set(at, s);
    }
    return s;
  }

  /**
   * Darts common-prefix search over the UTF-8 bytes of text[from, to): the replacement of the SHORTEST key that
   * prefixes them (what Rust takes), or null. A NUL byte ends the search.
   */
  private lookup(text: string, from: number, to: number): string | null {
    const units = this.units!;
    let node = unitOffset(units[0]);
    const bytes = this.bytes;
    for (let i = from; i < to; ) {
      const cp = text.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      const len = utf8Encode(cp, bytes);
      for (let k = 0; k < len; k++) {
        const b = bytes[k];
        if (b === 0) return null;
        node ^= b;
        if (node >= units.length) return null;
        const unit = units[node];
        if ((unit & 0x800000ff) !== b) return null;
        node ^= unitOffset(unit);
        if ((unit >>> 8) & 1) return node < units.length ? this.replacementAt(units[node] & 0x7fffffff) : null;
      }
    }
    return null;
  }

  private charReplacement(text: string, i: number, cp: number): string | null {
    if (cp < 0x80) {
      let r = this.asciiCache[cp];
      if (r === undefined) this.asciiCache[cp] = r = this.lookup(text, i, i + 1);
      return r;
    }
    let r = this.charCache.get(cp);
    if (r === undefined) {
      r = this.lookup(text, i, i + (cp > 0xffff ? 2 : 1));
      this.charCache.set(cp, r);
    }
    return r;
  }

  normalize(piece: Piece): Piece {
    if (this.units === null) return piece;
    const text = piece.text;
    const n = text.length;
    // Rust works grapheme by grapheme: a cluster shorter than 6 UTF-8 bytes is first looked up whole, otherwise
    // (or when that finds nothing) character by character. Nothing is rewritten unless some lookup succeeds.
    let out: DelayedChanges | null = null;
    let plain = 0; // start of the characters left as they are since the last rewrite
    for (let i = 0; i < n; ) {
      const c = text.charCodeAt(i);
      const end =
        c < 0x80 && c !== 0x0d && (i + 1 >= n || text.charCodeAt(i + 1) < 0x80) ? i + 1 : graphemeEnd(text, i);
      const cp = c < 0x80 ? c : text.codePointAt(i)!;
      if (end - i > (cp > 0xffff ? 2 : 1) && utf8Length(text, i, end) < 6) {
        const r = this.lookup(text, i, end);
        if (r !== null) {
          out ??= new DelayedChanges(new Rewriter(piece));
          out.pass(text, plain, i);
          out.replaceChars(r, countChars(text.slice(i, end)));
          plain = i = end;
          continue;
        }
      }
      for (let k = i; k < end; ) {
        const kc = k === i ? cp : text.codePointAt(k)!;
        const next = k + (kc > 0xffff ? 2 : 1);
        const r = this.charReplacement(text, k, kc);
        if (r !== null) {
          out ??= new DelayedChanges(new Rewriter(piece));
          out.pass(text, plain, k);
          out.replaceChars(r, 1);
          plain = next;
        }
        k = next;
      }
      i = end;
    }
    if (out === null) return piece;
    out.pass(text, plain, n);
    return out.finish();
  }
}

/**
 * Precompiled's change list, replayed one step behind: Rust lets a rewrite to nothing fold its removal into the
 * change of whatever character came before it.
 */
class DelayedChanges {
  private ch = '';
  private change = 0;
  private pending = false;

  constructor(private readonly w: Rewriter) {}

  private push(ch: string, change: number): void {
    this.flush();
    this.ch = ch;
    this.change = change;
    this.pending = true;
  }

  private flush(): void {
    if (this.pending) emitChange(this.w, this.ch, this.change);
    this.pending = false;
  }

  /** Source text[from, to) left as it is (change 0 each). */
  pass(text: string, from: number, to: number): void {
    if (to <= from) return;
    const last = to - (to - from >= 2 && isLow(text.charCodeAt(to - 1)) && isHigh(text.charCodeAt(to - 2)) ? 2 : 1);
    this.flush();
    this.w.pass(from, last);
    this.push(text.slice(last, to), 0);
  }

  /**
   * `oldCount` source characters rewritten as `replacement`: every new character gets change 0, except that the
   * last (new − old) get +1 when it grows, and the last one absorbs (new − old) when it shrinks.
   */
  replaceChars(replacement: string, oldCount: number): void {
    const count = countChars(replacement);
    const diff = count - oldCount;
    if (count === 0) {
      if (this.pending) this.change += diff;
      return;
    }
    let k = 0;
    for (let i = 0; i < replacement.length; k++) {
      const len = charLength(replacement, i);
      const change = diff > 0 ? (k >= count - diff ? 1 : 0) : k === count - 1 ? diff : 0;
      this.push(replacement.slice(i, i + len), change);
      i += len;
    }
  }

  finish(): Piece {
    this.flush();
    return this.w.build();
  }
}

/** Writes the UTF-8 bytes of `cp` into `out`, returns their count (a lone surrogate encodes as U+FFFD). */
function utf8Encode(cp: number, out: Uint8Array): number {
  if (cp < 0x80) {
    out[0] = cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = 0xc0 | (cp >> 6);
    out[1] = 0x80 | (cp & 63);
    return 2;
  }
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
  if (cp < 0x10000) {
    out[0] = 0xe0 | (cp >> 12);
    out[1] = 0x80 | ((cp >> 6) & 63);
    out[2] = 0x80 | (cp & 63);
    return 3;
  }
  out[0] = 0xf0 | (cp >> 18);
  out[1] = 0x80 | ((cp >> 12) & 63);
  out[2] = 0x80 | ((cp >> 6) & 63);
  out[3] = 0x80 | (cp & 63);
  return 4;
}

function unitOffset(unit: number): number {
  return (unit >>> 10) << ((unit & 0x200) >>> 6);
}

// ---------------------------------------------------------------------------------------------------------------

export class SequenceNormalizer implements Normalizer {
  constructor(readonly normalizers: readonly Normalizer[]) {}

  normalize(piece: Piece): Piece {
    let p = piece;
    for (const n of this.normalizers) p = n.normalize(p);
    return p;
  }
}

/** Builds the normalizer of a tokenizer.json (`null` when there is none). */
export function normalizerFromJSON(json: unknown, path = 'normalizer'): Normalizer | null {
  if (json === null || json === undefined) return null;
  const o = obj(json, path);
  const type = typeOf(o, path, NORMALIZER_TYPES, 'normalizer');
  switch (type) {
    case 'NFC':
      return new NFCNormalizer();
    case 'NFD':
      return new NFDNormalizer();
    case 'NFKC':
      return new NFKCNormalizer();
    case 'NFKD':
      return new NFKDNormalizer();
    case 'Lowercase':
      return new LowercaseNormalizer();
    case 'StripAccents':
      return new StripAccentsNormalizer();
    case 'Nmt':
      return new NmtNormalizer();
    case 'ByteLevel':
      return new ByteLevelNormalizer();
    case 'Strip':
      return new StripNormalizer(bool(o, 'strip_left', path), bool(o, 'strip_right', path));
    case 'Replace':
      return new ReplaceNormalizer(replacePattern(o, path), str(o, 'content', path), path);
    case 'Prepend':
      return new PrependNormalizer(str(o, 'prepend', path));
    case 'BertNormalizer': {
      const sa = o.strip_accents;
      if (sa !== undefined && sa !== null && typeof sa !== 'boolean')
        fail(`${path}.strip_accents`, `must be true, false or null, got ${describe(sa)}`);
      return new BertNormalizer(
        bool(o, 'clean_text', path),
        bool(o, 'handle_chinese_chars', path),
        typeof sa === 'boolean' ? sa : null,
        bool(o, 'lowercase', path),
      );
    }
    case 'Precompiled': {
      const map = o.precompiled_charsmap;
      // Rust cannot load an empty or missing charsmap; here it means "no rules".
      if (map === null || map === undefined || map === '') return new PrecompiledNormalizer(new Uint8Array(0), path);
      return PrecompiledNormalizer.fromBase64(str(o, 'precompiled_charsmap', path), path);
    }
    case 'Sequence': {
      const list = arr(o.normalizers, `${path}.normalizers`);
      return new SequenceNormalizer(
        list.map((item, i) => {
          const p = `${path}.normalizers[${i}]`;
          return normalizerFromJSON(obj(item, p), p)!;
        }),
      );
    }
  }
  return fail(`${path}.type`, `"${type}" is not handled`);
}

function replacePattern(o: JsonObject, path: string): { String: string } | { Regex: string } {
  const p = obj(o.pattern, `${path}.pattern`);
  if ('String' in p) return { String: str(p, 'String', `${path}.pattern`) };
  if ('Regex' in p) return { Regex: str(p, 'Regex', `${path}.pattern`) };
  return fail(`${path}.pattern`, 'must be {"String": "..."} or {"Regex": "..."}');
}
