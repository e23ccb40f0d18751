/**
 * Pre-tokenizers: cut normalized text into words before the model sees them, as the Rust library's
 * `pre_tokenizers` module does. Words are Pieces, so offsets keep pointing into the original string even where a
 * pre-tokenizer rewrites text (ByteLevel shows UTF-8 bytes as printable characters, Metaspace turns " " into "▁").
 *
 * Every split follows the Rust library's two steps: list the stretches of a piece (the matches of a pattern and the
 * text between them), then keep or merge them according to a behavior. Empty words are dropped.
 */
import { BYTE_TO_CHAR } from './bytes.js';
import type { PreTokenizer } from './components.js';
import { arr, bool, fail, int, obj, optStr, str, typeOf, type JsonObject } from './json.js';
import { Piece, PieceBuilder } from './piece.js';
import { compileRustRegex, escapeRegex, findMatches } from './regex.js';

/** What happens to the matches of a pattern (the delimiters) when a piece is split. */
export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

const BEHAVIORS: readonly SplitBehavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

const TYPES = [
  'BertPreTokenizer',
  'ByteLevel',
  'CharDelimiterSplit',
  'Digits',
  'FixedLength',
  'Metaspace',
  'Punctuation',
  'Sequence',
  'Split',
  'Whitespace',
  'WhitespaceSplit',
] as const;

/** Builds the pre-tokenizer described by tokenizer.json's `pre_tokenizer` field (null when there is none). */
export function preTokenizerFromJSON(json: unknown, path = 'pre_tokenizer'): PreTokenizer | null {
  if (json === null || json === undefined) return null;
  return build(obj(json, path), path);
}

function build(o: JsonObject, path: string): PreTokenizer {
  switch (typeOf(o, path, TYPES, 'pre-tokenizer') as (typeof TYPES)[number]) {
    case 'BertPreTokenizer':
      return new BertPreTokenizer();
    case 'ByteLevel':
      return new ByteLevelPreTokenizer(
        bool(o, 'add_prefix_space', path),
        bool(o, 'trim_offsets', path),
        bool(o, 'use_regex', path, true),
      );
    case 'CharDelimiterSplit':
      return new CharDelimiterSplit(oneChar(o, 'delimiter', path));
    case 'Digits':
      return new DigitsPreTokenizer(bool(o, 'individual_digits', path));
    case 'FixedLength': {
      const length = int(o, 'length', path, 5);
      if (length === 0) fail(`${path}.length`, 'must be greater than 0');
      return new FixedLengthPreTokenizer(length);
    }
    case 'Metaspace':
      return metaspaceFromJSON(o, path);
    case 'Punctuation':
      return new PunctuationPreTokenizer(behaviorOf(o, path, 'Isolated'));
    case 'Sequence': {
      const list = arr(o.pretokenizers, `${path}.pretokenizers`);
      return new SequencePreTokenizer(
        list.map((p, i) => build(obj(p, `${path}.pretokenizers[${i}]`), `${path}.pretokenizers[${i}]`)),
      );
    }
    case 'Split':
      return splitFromJSON(o, path);
    case 'Whitespace':
      return new WhitespacePreTokenizer();
    case 'WhitespaceSplit':
      return new WhitespaceSplit();
  }
}

function behaviorOf(o: JsonObject, path: string, fallback?: SplitBehavior): SplitBehavior {
  const b = fallback === undefined ? str(o, 'behavior', path) : optStr(o, 'behavior', path, fallback)!;
  if (!(BEHAVIORS as readonly string[]).includes(b)) {
    fail(`${path}.behavior`, `must be one of ${BEHAVIORS.join(', ')}, got ${JSON.stringify(b)}`);
  }
  return b as SplitBehavior;
}

/** A field that must hold exactly one character (a Rust `char`). */
function oneChar(o: JsonObject, key: string, path: string): string {
  const s = str(o, key, path);
  if ([...s].length !== 1) fail(`${path}.${key}`, `must be a single character, got ${JSON.stringify(s)}`);
  return s;
}

function splitFromJSON(o: JsonObject, path: string): SplitPreTokenizer {
  const pattern = obj(o.pattern, `${path}.pattern`);
  const behavior = behaviorOf(o, path);
  const invert = bool(o, 'invert', path);
  const kind = Object.keys(pattern).join();
  if (kind !== 'String' && kind !== 'Regex') fail(`${path}.pattern`, 'must be {"String": "..."} or {"Regex": "..."}');
  const source = str(pattern, kind, `${path}.pattern`);
  // The Rust library escapes a String and compiles it as a regex too (so an empty string matches everywhere).
  const re = compileRustRegex(kind === 'String' ? escapeRegex(source) : source, `${path}.pattern.${kind}`);
  return new SplitPreTokenizer(re, behavior, invert);
}

function metaspaceFromJSON(o: JsonObject, path: string): MetaspacePreTokenizer {
  const replacement = oneChar(o, 'replacement', path);
  const scheme = optStr(o, 'prepend_scheme', path, 'always')!;
  if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never') {
    fail(`${path}.prepend_scheme`, `must be "always", "first" or "never", got ${JSON.stringify(scheme)}`);
  }
  // Legacy files carry add_prefix_space; false is only accepted together with prepend_scheme "never".
  const legacy = o.add_prefix_space === undefined || o.add_prefix_space === null ? null : bool(o, 'add_prefix_space', path);
  if (legacy === false && scheme !== 'never') {
    fail(`${path}.add_prefix_space`, `is false, which contradicts prepend_scheme ${JSON.stringify(scheme)}`);
  }
  return new MetaspacePreTokenizer(replacement, scheme, bool(o, 'split', path, true));
}

// ---------------------------------------------------------------------------------------------------------------
// Splitting

/**
 * Splits `piece` at `matches` (flat [start, end, ...], sorted, from findMatches or single characters) and appends
 * the non-empty words to `out`, like the Rust library's NormalizedString::split. With `invert` the matches are the
 * words and the text between them the delimiters.
 */
export function splitPiece(piece: Piece, matches: number[], behavior: SplitBehavior, invert: boolean, out: Piece[]): void {
  const n = piece.length;
  if (n === 0) return;
  if (behavior === 'Isolated' || (behavior === 'Removed' && !invert)) {
    // The common cases, without listing the stretches first.
    const keepMatches = behavior === 'Isolated';
    let prev = 0;
    for (let i = 0; i < matches.length; i += 2) {
      const s = matches[i];
      const e = matches[i + 1];
      if (s > prev) out.push(piece.slice(prev, s));
      if (keepMatches && e > s) out.push(piece.slice(s, e));
      prev = e;
    }
    if (prev < n) out.push(piece.slice(prev, n));
    return;
  }
  // The stretches of the piece: [start, end, isDelimiter] for matches and for the text between them.
  const m = invert ? 0 : 1;
  const st: number[] = [];
  let prev = 0;
  for (let i = 0; i < matches.length; i += 2) {
    if (matches[i] !== prev) st.push(prev, matches[i], 1 - m);
    st.push(matches[i], matches[i + 1], m);
    prev = matches[i + 1];
  }
  if (prev !== n) st.push(prev, n, 1 - m);

  const emit = (s: number, e: number) => {
    if (e > s) out.push(piece.slice(s, e));
  };
  switch (behavior) {
    case 'Removed':
      for (let i = 0; i < st.length; i += 3) if (st[i + 2] === 0) emit(st[i], st[i + 1]);
      return;
    case 'MergedWithPrevious':
    case 'Contiguous': {
      // MergedWithPrevious glues a delimiter to the word before it (not to a delimiter before it);
      // Contiguous glues runs of delimiters together.
      const contiguous = behavior === 'Contiguous';
      let start = -1;
      let end = -1;
      let prevDelimiter = 0;
      for (let i = 0; i < st.length; i += 3) {
        const d = st[i + 2];
        const glue = contiguous ? d === prevDelimiter : d === 1 && prevDelimiter === 0;
        if (glue && start >= 0) end = st[i + 1];
        else {
          if (start >= 0) emit(start, end);
          start = st[i];
          end = st[i + 1];
        }
        prevDelimiter = d;
      }
      if (start >= 0) emit(start, end);
      return;
    }
    case 'MergedWithNext': {
      // The mirror image: walk backwards, gluing a delimiter to the word after it.
      const words: number[] = [];
      let nextDelimiter = 0;
      for (let i = st.length - 3; i >= 0; i -= 3) {
        const d = st[i + 2];
        if (d === 1 && nextDelimiter === 0 && words.length > 0) words[words.length - 2] = st[i];
        else words.push(st[i], st[i + 1]);
        nextDelimiter = d;
      }
      for (let i = words.length - 2; i >= 0; i -= 2) emit(words[i], words[i + 1]);
      return;
    }
  }
}

/** The positions of every occurrence of the one-character `c` in `text`, as single-character matches. */
function charMatches(text: string, c: string): number[] {
  const out: number[] = [];
  for (let i = text.indexOf(c); i >= 0; i = text.indexOf(c, i + c.length)) out.push(i, i + c.length);
  return out;
}

/** Splits every piece at the matches of a global RegExp. */
abstract class RegexSplitter implements PreTokenizer {
  constructor(
    protected readonly re: RegExp,
    readonly behavior: SplitBehavior,
    readonly invert: boolean,
  ) {}

  preTokenize(pieces: Piece[]): Piece[] {
    const out: Piece[] = [];
    for (const p of pieces) splitPiece(p, findMatches(this.re, p.text), this.behavior, this.invert, out);
    return out;
  }
}

/** `Split`: a String or Regex pattern with a behavior, optionally inverted (the matches are the words). */
export class SplitPreTokenizer extends RegexSplitter {
  constructor(pattern: RegExp, behavior: SplitBehavior, invert: boolean) {
    super(pattern, behavior, invert);
  }

  get pattern(): RegExp {
    return this.re;
  }
}

/** `WhitespaceSplit`: words are the runs of non-whitespace (Unicode White_Space, as Rust's char::is_whitespace). */
export class WhitespaceSplit extends RegexSplitter {
  constructor() {
    super(new RegExp('\\p{White_Space}+', 'gv'), 'Removed', false);
  }
}

/**
 * `Whitespace`: words are `\w+` or `[^\w\s]+`. This one is compiled by the Rust `regex` crate, not Oniguruma, and
 * its `\w` also has Join_Control (the zero-width joiner), so it is spelled out here.
 */
export class WhitespacePreTokenizer extends RegexSplitter {
  constructor() {
    const word = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}';
    super(compileRustRegex(`[${word}]+|[^${word}\\s]+`, 'pre_tokenizer'), 'Removed', true);
  }
}

// Punctuation as the Rust library's BertPreTokenizer and Punctuation see it: ASCII punctuation (which includes
// symbols such as $ + < = > ^ ` | ~) and Unicode's P categories as of Unicode 8.0, the age of its table: two
// characters that have left P since are in, and the punctuation added since is out.
const PUNCTUATION_ADDED_AFTER_8 =
  '61d 9fd a76 c77 c84 1b4e-1b4f 1b7d-1b7f 2e43-2e4f 2e52-2e5d 10d6e 10ead 10ed0 10f55-10f59 10f86-10f89 113d4-113d5 ' +
  '113d7-113d8 1144b-1144f 1145a-1145b 1145d 11660-1166c 116b9 1183b 11944-11946 119e2 11a3f-11a46 11a9a-11a9c ' +
  '11a9e-11aa2 11b00-11b09 11be1 11c41-11c45 11c70-11c71 11ef7-11ef8 11f43-11f4f 11fff 12ff1-12ff2 16d6d-16d6f ' +
  '16e97-16e9a 16fe2 1e5ff 1e95e-1e95f';
const PUNCTUATION_NOW = '\\p{P}\\x21-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7e\\u{166d}\\u{111c9}';
const PUNCTUATION = `[[${PUNCTUATION_NOW}]--[${hexRanges(PUNCTUATION_ADDED_AFTER_8)}]]`;

/** "61d 1b4e-1b4f" → "\u{61d}\u{1b4e}-\u{1b4f}", for a class. */
function hexRanges(list: string): string {
  return list.replace(/[0-9a-f]+/g, '\\u{$&}').replaceAll(' ', '');
}

/** `Punctuation`: each punctuation character is a delimiter, handled by `behavior`. */
export class PunctuationPreTokenizer extends RegexSplitter {
  constructor(behavior: SplitBehavior = 'Isolated') {
    super(new RegExp(PUNCTUATION, 'gv'), behavior, false);
  }
}

/** `Digits`: numeric characters (Unicode N, as Rust's char::is_numeric) become words, one per character or per run. */
export class DigitsPreTokenizer extends RegexSplitter {
  constructor(readonly individualDigits: boolean) {
    super(new RegExp(individualDigits ? '\\p{N}' : '\\p{N}+', 'gv'), 'Isolated', false);
  }
}

/** `CharDelimiterSplit`: splits on one character, which is removed. */
export class CharDelimiterSplit implements PreTokenizer {
  constructor(readonly delimiter: string) {}

  preTokenize(pieces: Piece[]): Piece[] {
    const out: Piece[] = [];
    for (const p of pieces) splitPiece(p, charMatches(p.text, this.delimiter), 'Removed', false, out);
    return out;
  }
}

/** `BertPreTokenizer`: splits on whitespace (removed), then isolates each punctuation character. */
export class BertPreTokenizer implements PreTokenizer {
  private readonly whitespace = new WhitespaceSplit();
  private readonly punctuation = new PunctuationPreTokenizer('Isolated');

  preTokenize(pieces: Piece[]): Piece[] {
    return this.punctuation.preTokenize(this.whitespace.preTokenize(pieces));
  }
}

/** `FixedLength`: chunks of `length` characters (code points). */
export class FixedLengthPreTokenizer implements PreTokenizer {
  constructor(readonly length: number) {}

  preTokenize(pieces: Piece[]): Piece[] {
    const out: Piece[] = [];
    for (const p of pieces) {
      const text = p.text;
      let start = 0;
      let chars = 0;
      for (let i = 0; i < text.length; ) {
        const c = text.charCodeAt(i);
        i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
        if (++chars === this.length) {
          out.push(p.slice(start, i));
          start = i;
          chars = 0;
        }
      }
      if (start < text.length) out.push(p.slice(start));
    }
    return out;
  }
}

/** `Sequence`: each pre-tokenizer splits the words of the previous one. */
export class SequencePreTokenizer implements PreTokenizer {
  constructor(readonly preTokenizers: PreTokenizer[]) {}

  preTokenize(pieces: Piece[]): Piece[] {
    for (const p of this.preTokenizers) pieces = p.preTokenize(pieces);
    return pieces;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Pre-tokenizers that rewrite text

/**
 * `text` inserted before `piece`. Like the Rust library's prepend, the new characters take the original range of
 * the piece's first character, so a token made of them alone still points at real text.
 */
function prepend(piece: Piece, text: string): Piece {
  const c = piece.text.charCodeAt(0);
  const first = c >= 0xd800 && c <= 0xdbff && piece.length > 1 ? 2 : 1;
  return new PieceBuilder(piece, piece.length + text.length).push(text, 0, first).keep(0, piece.length).build();
}

/**
 * `Metaspace` (SentencePiece style): every " " becomes the replacement character ("▁"), the replacement is
 * prepended per `prependScheme` ("first": only to the piece that starts the input), and, with `split`, each
 * replacement character starts a new word.
 */
export class MetaspacePreTokenizer implements PreTokenizer {
  constructor(
    readonly replacement: string,
    readonly prependScheme: 'always' | 'first' | 'never',
    readonly split: boolean,
  ) {}

  preTokenize(pieces: Piece[]): Piece[] {
    const out: Piece[] = [];
    const rep = this.replacement;
    for (let p of pieces) {
      if (p.length === 0) continue;
      p = this.replaceSpaces(p);
      const prefix = this.prependScheme === 'always' || (this.prependScheme === 'first' && p.originalStart === 0);
      if (prefix && !p.text.startsWith(rep)) p = prepend(p, rep);
      if (this.split) splitPiece(p, charMatches(p.text, rep), 'MergedWithNext', false, out);
      else out.push(p);
    }
    return out;
  }

  private replaceSpaces(p: Piece): Piece {
    if (p.text.indexOf(' ') < 0) return p;
    // A one-unit replacement keeps every offset where it is.
    if (this.replacement.length === 1) return new Piece(p.text.replaceAll(' ', this.replacement), p.starts, p.ends);
    const b = new PieceBuilder(p, p.length * 2);
    let prev = 0;
    for (let i = p.text.indexOf(' '); i >= 0; i = p.text.indexOf(' ', i + 1)) {
      b.keep(prev, i).push(this.replacement, i, i + 1);
      prev = i + 1;
    }
    return b.keep(prev, p.length).build();
  }
}

// The GPT-2 pattern ByteLevel splits with when use_regex is on.
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

const BYTE_CODES = Uint16Array.from(BYTE_TO_CHAR, (c) => c.charCodeAt(0));
const utf16 = new TextDecoder('utf-16le');

/**
 * `ByteLevel` (GPT-2 and descendants): optionally prepends a space, optionally splits with the GPT-2 pattern, then
 * shows each UTF-8 byte as its printable stand-in character. Every byte keeps the original range of its character.
 * `trimOffsets` only matters to the post-processor.
 */
export class ByteLevelPreTokenizer implements PreTokenizer {
  private readonly re: RegExp | null;

  constructor(
    readonly addPrefixSpace: boolean,
    readonly trimOffsets: boolean,
    readonly useRegex: boolean,
  ) {
    this.re = useRegex ? compileRustRegex(GPT2_PATTERN, 'pre_tokenizer') : null;
  }

  preTokenize(pieces: Piece[]): Piece[] {
    const out: Piece[] = [];
    for (let p of pieces) {
      if (p.length === 0) continue;
      if (this.addPrefixSpace && !p.text.startsWith(' ')) p = prepend(p, ' ');
      if (this.re === null) out.push(toBytes(p));
      else {
        const words: Piece[] = [];
        splitPiece(p, findMatches(this.re, p.text), 'Isolated', false, words);
        for (const w of words) out.push(toBytes(w));
      }
    }
    return out;
  }
}

/** The byte-level form of a piece: one character per UTF-8 byte, each with its source character's range. */
function toBytes(p: Piece): Piece {
  const text = p.text;
  const n = text.length;
  // ASCII: one byte per unit, so the alignment stays; printable ASCII even stands for itself.
  let ascii = true;
  let same = true;
  for (let i = 0; i < n && ascii; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) ascii = false;
    else if (c <= 0x20 || c === 0x7f) same = false;
  }
  if (ascii) {
    if (same) return p;
    let mapped = '';
    let run = 0;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c <= 0x20 || c === 0x7f) {
        mapped += text.slice(run, i) + BYTE_TO_CHAR[c];
        run = i + 1;
      }
    }
    return new Piece(mapped + text.slice(run), p.starts, p.ends);
  }
  let size = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) size += 1;
    else if (c < 0x800) size += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      size += 4;
      i++;
    } else size += 3; // other BMP characters, and lone surrogates (encoded as U+FFFD)
  }
  const codes = new Uint16Array(size);
  const starts = new Int32Array(size);
  const ends = new Int32Array(size);
  let o = 0;
  for (let i = 0; i < n; ) {
    let cp = text.charCodeAt(i);
    let lo = p.starts[i];
    let hi = p.ends[i];
    let units = 1;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const next = i + 1 < n ? text.charCodeAt(i + 1) : 0;
      if (cp <= 0xdbff && (next & 0xfc00) === 0xdc00) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
        units = 2;
        lo = Math.min(lo, p.starts[i + 1]);
        hi = Math.max(hi, p.ends[i + 1]);
      } else cp = 0xfffd;
    }
    i += units;
    if (cp < 0x80) {
      codes[o] = BYTE_CODES[cp];
      starts[o] = lo;
      ends[o++] = hi;
      continue;
    }
    const count = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < count; k++) {
      // First byte: length marker and top bits; the others: 10xxxxxx.
      const shift = 6 * (count - 1 - k);
      const byte = k === 0 ? ((0xf00 >> count) & 0xff) | (cp >> shift) : 0x80 | ((cp >> shift) & 0x3f);
      codes[o] = BYTE_CODES[byte];
      starts[o] = lo;
      ends[o++] = hi;
    }
  }
  return new Piece(size < 64 ? String.fromCharCode(...codes) : utf16.decode(codes), starts, ends);
}
