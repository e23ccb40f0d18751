/**
 * Decoders: token strings → text, as the Rust `tokenizers` library does it. Each one maps a list of token strings
 * to a new list (`decodeChain`), so they compose in a Sequence; the caller joins the final list.
 */
import type { Decoder } from './components.js';
import { CHAR_TO_BYTE } from './bytes.js';
import { arr, bool, fail, int, obj, str, typeOf, describe, type JsonObject } from './json.js';
import { compileRustRegex, findMatches } from './regex.js';

const DECODER_TYPES = [
  'ByteLevel',
  'Metaspace',
  'WordPiece',
  'BPEDecoder',
  'ByteFallback',
  'Fuse',
  'Strip',
  'Replace',
  'CTC',
  'Sequence',
] as const;

/** The decoder described by tokenizer.json's `decoder` field, or null when there is none. */
export function decoderFromJSON(json: unknown, path = 'decoder'): Decoder | null {
  if (json === null || json === undefined) return null;
  const o = obj(json, path);
  switch (typeOf(o, path, DECODER_TYPES, 'decoder')) {
    case 'ByteLevel':
      // add_prefix_space / trim_offsets / use_regex only matter to the pre-tokenizer and post-processor, but the
      // fields are still checked, as the Rust library's shared ByteLevel type does.
      for (const key of ['add_prefix_space', 'trim_offsets', 'use_regex']) bool(o, key, path, false);
      return new ByteLevelDecoder();
    case 'Metaspace':
      return new MetaspaceDecoder(oneChar(o, 'replacement', path), prependScheme(o, path));
    case 'WordPiece':
      return new WordPieceDecoder(str(o, 'prefix', path), bool(o, 'cleanup', path));
    case 'BPEDecoder':
      return new BPEDecoder(str(o, 'suffix', path));
    case 'ByteFallback':
      return new ByteFallbackDecoder();
    case 'Fuse':
      return new FuseDecoder();
    case 'Strip':
      return new StripDecoder(oneChar(o, 'content', path), int(o, 'start', path), int(o, 'stop', path));
    case 'Replace':
      return replaceFromJSON(o, path);
    case 'CTC':
      return new CTCDecoder(str(o, 'pad_token', path), str(o, 'word_delimiter_token', path), bool(o, 'cleanup', path));
    case 'Sequence': {
      const items = arr(o.decoders, `${path}.decoders`);
      const decoders = items.map((d, i) => {
        const decoder = decoderFromJSON(d, `${path}.decoders[${i}]`);
        if (!decoder) fail(`${path}.decoders[${i}]`, 'must be a decoder, got null');
        return decoder;
      });
      return new SequenceDecoder(decoders);
    }
  }
  return fail(`${path}.type`, 'is not handled'); // unreachable: typeOf checked the name
}

/** A field holding exactly one character (Rust `char`). */
function oneChar(o: JsonObject, key: string, path: string): string {
  const s = str(o, key, path);
  const chars = Array.from(s);
  if (chars.length !== 1) fail(`${path}.${key}`, `must be a single character, got ${describe(s)}`);
  return s;
}

export type PrependScheme = 'always' | 'first' | 'never';

/**
 * Metaspace's `prepend_scheme` (default "always"), with the legacy `add_prefix_space`: Rust accepts
 * `add_prefix_space: false` only beside an explicit `prepend_scheme: "never"`, and ignores `true`.
 */
export function prependScheme(o: JsonObject, path: string): PrependScheme {
  const v = o.prepend_scheme;
  let scheme: PrependScheme;
  if (v === undefined || v === null) scheme = 'always';
  else if (v === 'always' || v === 'first' || v === 'never') scheme = v;
  else fail(`${path}.prepend_scheme`, `must be "always", "first" or "never", got ${describe(v)}`);
  if (o.add_prefix_space !== undefined && o.add_prefix_space !== null) {
    if (!bool(o, 'add_prefix_space', path) && scheme !== 'never') {
      fail(`${path}.add_prefix_space`, `is false, which contradicts prepend_scheme "${scheme}"`);
    }
  }
  return scheme;
}

// ---------------------------------------------------------------------------------------------------------------

const utf8Lossy = new TextDecoder('utf-8', { ignoreBOM: true });
const utf8Strict = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });
const utf8Encoder = new TextEncoder();

/** Growable byte buffer. */
class Bytes {
  buf = new Uint8Array(64);
  length = 0;
  push(b: number): void {
    if (this.length === this.buf.length) this.grow(1);
    this.buf[this.length++] = b;
  }
  append(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buf.length) this.grow(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
  private grow(extra: number): void {
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + extra));
    next.set(this.view());
    this.buf = next;
  }
}

// CHAR_TO_BYTE as a flat table: every byte-level character is below U+0144.
const BYTE_OF_CHAR = new Int16Array(0x144).fill(-1);
for (const [code, byte] of CHAR_TO_BYTE) BYTE_OF_CHAR[code] = byte;

/**
 * Byte-level BPE: every token made only of byte-level characters becomes its bytes (any other token keeps its own
 * UTF-8); all bytes are then decoded at once, invalid sequences becoming U+FFFD as in `String::from_utf8_lossy`.
 */
export class ByteLevelDecoder implements Decoder {
  decodeChain(tokens: string[]): string[] {
    const bytes = new Bytes();
    for (const token of tokens) {
      const start = bytes.length;
      let ok = true;
      for (let i = 0; i < token.length; i++) {
        const c = token.charCodeAt(i);
        const b = c < 0x144 ? BYTE_OF_CHAR[c] : -1;
        if (b < 0) {
          ok = false;
          break;
        }
        bytes.push(b);
      }
      if (!ok) {
        bytes.length = start;
        bytes.append(utf8Encoder.encode(token));
      }
    }
    return [utf8Lossy.decode(bytes.view())];
  }
}

/**
 * SentencePiece's "▁" for spaces: every replacement character becomes a space, except in the first token, where
 * they all disappear (unless the scheme is "never", i.e. no space was prepended when encoding).
 */
export class MetaspaceDecoder implements Decoder {
  constructor(
    readonly replacement: string,
    readonly scheme: PrependScheme,
  ) {}

  decodeChain(tokens: string[]): string[] {
    return tokens.map((token, i) =>
      token.split(this.replacement).join(i === 0 && this.scheme !== 'never' ? '' : ' '),
    );
  }
}

/** Rust's `wordpiece::cleanup`: undoes the spaces a WordPiece decode puts before punctuation and contractions. */
export function wordPieceCleanup(text: string): string {
  return text
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(' do not', " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

/** BERT: "##piece" continues the previous word, any other token after the first starts a new one after a space. */
export class WordPieceDecoder implements Decoder {
  constructor(
    readonly prefix: string,
    readonly cleanup: boolean,
  ) {}

  decodeChain(tokens: string[]): string[] {
    return tokens.map((token, i) => {
      let t = token;
      if (i !== 0) t = t.startsWith(this.prefix) ? t.slice(this.prefix.length) : ` ${t}`;
      return this.cleanup ? wordPieceCleanup(t) : t;
    });
  }
}

/**
 * `s` with every `from` replaced by `to`, like Rust's `str::replace`. An empty `from` matches at every character
 * boundary; JavaScript's replaceAll would also split surrogate pairs, so that case counts code points.
 */
function replaceStr(s: string, from: string, to: string): string {
  if (from !== '') return s.split(from).join(to);
  if (s === '') return to;
  return to + Array.from(s).join(to) + to;
}

/** Original BPE: the end-of-word suffix becomes a space, except in the last token where it is dropped. */
export class BPEDecoder implements Decoder {
  constructor(readonly suffix: string) {}

  decodeChain(tokens: string[]): string[] {
    const last = tokens.length - 1;
    return tokens.map((token, i) => replaceStr(token, this.suffix, i === last ? '' : ' '));
  }
}

/** The byte of a `<0xNN>` token, or -1. Like Rust, accepts what `u8::from_str_radix(_, 16)` does ("+A" too). */
function byteOfToken(token: string): number {
  if (token.length !== 6 || !token.startsWith('<0x') || token.charCodeAt(5) !== 0x3e) return -1;
  const lo = hexDigit(token.charCodeAt(4));
  if (lo < 0) return -1;
  const c = token.charCodeAt(3);
  if (c === 0x2b) return lo; // '+'
  const hi = hexDigit(c);
  return hi < 0 ? -1 : hi * 16 + lo;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * SentencePiece byte fallback: each run of `<0xNN>` tokens becomes its bytes as UTF-8 when the whole run is
 * valid, otherwise one U+FFFD per byte token (so one bad byte spoils the run, as in Rust).
 */
export class ByteFallbackDecoder implements Decoder {
  decodeChain(tokens: string[]): string[] {
    const out: string[] = [];
    const run = new Bytes();
    const endRun = () => {
      if (run.length === 0) return;
      let text: string | null;
      try {
        text = utf8Strict.decode(run.view());
      } catch {
        text = null;
      }
      if (text !== null) out.push(text);
      else for (let i = 0; i < run.length; i++) out.push('\uFFFD');
      run.length = 0;
    };
    for (const token of tokens) {
      const b = byteOfToken(token);
      if (b >= 0) {
        run.push(b);
      } else {
        endRun();
        out.push(token);
      }
    }
    endRun();
    return out;
  }
}

/** Joins everything into one piece, for decoders that must see the whole text (Strip after Fuse). */
export class FuseDecoder implements Decoder {
  decodeChain(tokens: string[]): string[] {
    return [tokens.join('')];
  }
}

/** Removes up to `start` leading and `stop` trailing `content` characters from each token. */
export class StripDecoder implements Decoder {
  constructor(
    readonly content: string,
    readonly start: number,
    readonly stop: number,
  ) {}

  decodeChain(tokens: string[]): string[] {
    return tokens.map((token) => {
      if (!token.startsWith(this.content) && !token.endsWith(this.content)) return token;
      const chars = Array.from(token);
      let startCut = 0;
      while (startCut < Math.min(this.start, chars.length) && chars[startCut] === this.content) startCut++;
      // Rust 0.22 panics when the trailing cut would run into the leading one; newer versions stop there, as here.
      let stopCut = chars.length;
      const maxStop = Math.min(this.stop, chars.length - startCut);
      while (chars.length - stopCut < maxStop && chars[stopCut - 1] === this.content) stopCut--;
      return startCut === 0 && stopCut === chars.length ? token : chars.slice(startCut, stopCut).join('');
    });
  }
}

/** Replaces every match of a string or regex in each token with `content` (taken literally, no `$1`). */
export class ReplaceDecoder implements Decoder {
  constructor(
    /** A literal string, or a global RegExp from `compileRustRegex`. */
    readonly pattern: string | RegExp,
    readonly content: string,
  ) {}

  decodeChain(tokens: string[]): string[] {
    return tokens.map((token) => this.replace(token));
  }

  private replace(token: string): string {
    // Rust splits an empty token into one unmatched empty part, so even an empty match adds nothing.
    if (token === '') return '';
    if (typeof this.pattern === 'string') return replaceStr(token, this.pattern, this.content);
    const matches = findMatches(this.pattern, token);
    let out = '';
    let prev = 0;
    for (let i = 0; i < matches.length; i += 2) {
      out += token.slice(prev, matches[i]) + this.content;
      prev = matches[i + 1];
    }
    return out + token.slice(prev);
  }
}

function replaceFromJSON(o: JsonObject, path: string): ReplaceDecoder {
  const pattern = obj(o.pattern, `${path}.pattern`);
  const content = str(o, 'content', path);
  if (typeof pattern.String === 'string') return new ReplaceDecoder(pattern.String, content);
  if (typeof pattern.Regex === 'string') {
    return new ReplaceDecoder(compileRustRegex(pattern.Regex, `${path}.pattern.Regex`), content);
  }
  return fail(`${path}.pattern`, 'must be {"String": ...} or {"Regex": ...}');
}

/**
 * CTC (speech models): collapses repeated tokens, removes the pad token and, with `cleanup`, turns the word
 * delimiter into a space after WordPiece's cleanup.
 */
export class CTCDecoder implements Decoder {
  constructor(
    readonly padToken: string,
    readonly wordDelimiterToken: string,
    readonly cleanup: boolean,
  ) {}

  decodeChain(tokens: string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < tokens.length; i++) {
      if (i > 0 && tokens[i] === tokens[i - 1]) continue;
      let t = replaceStr(tokens[i], this.padToken, '');
      if (this.cleanup) t = replaceStr(wordPieceCleanup(t), this.wordDelimiterToken, ' ');
      if (t !== '') out.push(t);
    }
    return out;
  }
}

/** Runs decoders one after the other, each on the previous one's output. */
export class SequenceDecoder implements Decoder {
  constructor(readonly decoders: Decoder[]) {}

  decodeChain(tokens: string[]): string[] {
    let out = tokens;
    for (const d of this.decoders) out = d.decodeChain(out);
    return out;
  }
}
