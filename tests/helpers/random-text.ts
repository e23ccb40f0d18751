/**
 * Seeded random text for differential tests: mostly ASCII words and spaces, mixed with every character class
 * of hard-strings.ts and with special tokens dropped in at random. Uses only integer arithmetic and
 * String.fromCodePoint, so a seed gives the same string on every engine. Never emits lone surrogates.
 */
import { rng } from './random.js';
import { SPECIAL_TOKEN_TEXTS } from './hard-strings.js';

const WORDS = (
  'the of and to in is was he for it with as his on be at by had are but from or have an they which one you ' +
  'were all we when there can been has more if no out do so what up said about other into than its time only ' +
  'could new them man some these then two first may any like now my such make over our even most me state ' +
  'after also made many did must before back see through way where get much go well your know should down ' +
  'work year because come people just say each those take day good how long Mr own too little use US very ' +
  'great still men here life both between old under last never place same another think house while high ' +
  'tokenizer WebGPU JavaScript transformer embedding GPT OpenAI HuggingFace naïve café résumé über Zürich'
).split(' ');

const CONTRACTION_SUFFIXES = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'LL", '’s', '’t'];
const PUNCTUATION = '.,;:!?-—–()[]{}<>"\'`~@#$%^&*_+=|\\/…«»¿¡';
const WHITESPACE = [' ', '  ', '\t', '\n', '\n\n', '\r\n', '\r', '\u00a0', '\u3000', '\u2028', '\u0085', '\ufeff', '\u000b'];
const ODD = ['\u0000', '\u0007', '\u001b', '\u007f', '\u200b', '\u200c', '\u200d', '\u00ad', '\u2060', '\ufe0f', '\ufffd', '▁', 'Ġ', '##'];
const COMBINING = ['\u0301', '\u0300', '\u0308', '\u0303', '\u0327', '\u030a', '\u0323', '\u093c', '\u3099'];
const EMOJI = ['😀', '🤗', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇯🇵', '1️⃣', '❤️', '🧑🏿‍💻', '🫠', '🚀'];
const SYMBOLS = ['ﬁ', 'ﬂ', 'Ａ', 'ｚ', '１', '∑', '√', '∞', '≠', '→', '┌', '─', '█', '½', '²', '™', '№', 'ǅ', 'İ', 'ı', 'ς', 'ß'];

/** [first, last] code point ranges of scripts, picked uniformly within a range. */
const SCRIPT_RANGES: Array<[number, number]> = [
  [0x4e00, 0x9fa5], // CJK ideographs
  [0x3041, 0x3096], // hiragana
  [0x30a1, 0x30fa], // katakana
  [0xac00, 0xd7a3], // hangul syllables
  [0x1100, 0x1112], // hangul leading jamo
  [0x0621, 0x064a], // Arabic letters
  [0x064b, 0x0652], // Arabic harakat
  [0x05d0, 0x05ea], // Hebrew
  [0x0905, 0x0939], // Devanagari letters
  [0x093e, 0x094d], // Devanagari signs and virama
  [0x0e01, 0x0e3a], // Thai
  [0x0b85, 0x0bcd], // Tamil
  [0x0410, 0x044f], // Cyrillic
  [0x0391, 0x03c9], // Greek
  [0x00c0, 0x017f], // Latin-1 and Extended-A
  [0x1f600, 0x1f64f], // emoticons
  [0x1f300, 0x1f5ff], // pictographs
  [0x20000, 0x2a6d6], // CJK extension B
  [0x1d400, 0x1d7ff], // math alphanumerics
];

export function randomText(seed: number, maxLen: number): string {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const target = int(maxLen + 1);
  let out = '';
  while (out.length < target) {
    const p = r();
    let part: string;
    if (p < 0.45) {
      const w = pick(WORDS);
      const c = r();
      part = (c < 0.1 ? w.toUpperCase() : c < 0.25 ? w[0].toUpperCase() + w.slice(1) : w) + (r() < 0.8 ? ' ' : '');
    } else if (p < 0.53) part = pick(WHITESPACE).repeat(1 + int(r() < 0.8 ? 1 : 6));
    else if (p < 0.6) part = PUNCTUATION[int(PUNCTUATION.length)].repeat(1 + int(r() < 0.8 ? 1 : 4));
    else if (p < 0.66) part = String(int(10 ** (1 + int(8))));
    else if (p < 0.69) part = pick(CONTRACTION_SUFFIXES);
    else if (p < 0.8) {
      const [lo, hi] = pick(SCRIPT_RANGES);
      part = '';
      for (let n = 1 + int(6); n > 0; n--) part += String.fromCodePoint(lo + int(hi - lo + 1));
    } else if (p < 0.85) part = pick(EMOJI);
    else if (p < 0.88) part = pick(COMBINING);
    else if (p < 0.91) part = pick(SYMBOLS);
    else if (p < 0.94) part = pick(ODD);
    else if (p < 0.97) part = pick(SPECIAL_TOKEN_TEXTS);
    else part = String.fromCodePoint(anyCodePoint(int));
    if (out.length + part.length > maxLen) break;
    out += part;
  }
  return out;
}

/** Any Unicode scalar value, biased toward the BMP. */
function anyCodePoint(int: (n: number) => number): number {
  if (int(4) === 0) return 0x10000 + int(0x100000);
  const cp = int(0x10000 - 0x800);
  return cp < 0xd800 ? cp : cp + 0x800; // skip the surrogate block
}
