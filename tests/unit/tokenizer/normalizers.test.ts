// Normalizers against the Rust library: text and alignments, on hard strings, seeded random strings, whole
// Unicode planes and the real tokenizer.json files.
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../../../src/errors.js';
import { Piece } from '../../../src/tokenizer/piece.js';
import type { Normalizer } from '../../../src/tokenizer/components.js';
import { NORMALIZER_TYPES, normalizerFromJSON } from '../../../src/tokenizer/normalizers.js';
import { rust, codePointToUtf16Offsets } from '../../helpers/rust-tokenizers.js';
import { loadTokenizerFiles } from '../../helpers/tokenizer-files.js';
import { HARD_STRINGS } from '../../helpers/hard-strings.js';
import { randomText } from '../../helpers/random-text.js';
import { rng } from '../../helpers/random.js';

// ---------------------------------------------------------------------------------------------------------------
// Inputs

/** Strings aimed at normalizers. */
const NORMALIZATION_STRINGS: string[] = [
  '',
  ' ',
  'a',
  'A',
  '   leading and trailing   ',
  '\t\ttabs\t',
  'line\r\nbreaks\r\n',
  '\r\n',
  '\r\r\n\n',
  ' \u00a0\u1680\u2000\u2001\u200a\u2028\u2029\u202f\u205f\u3000 ',
  '\u0085next line\u0085',
  '\u000b\u000cvertical\u001c\u001d\u001e\u001f',
  'nul\u0000in\u0000the\u0000middle',
  '\u0001\u0002\u0007\u0008\u000e\u001b\u007f\u0080\u008f\u009f',
  'soft\u00adhyphen, zero\u200bwidth, zw\u200cn\u200dj, bom\ufeff, word\u2060joiner',
  'replacement \ufffd char',
  'private \ue000\uf8ff \u{f0000} \u{10fffd}',
  'noncharacters \ufdd0 \ufffe \u{1fffe}',
  'tags \u{e0041}\u{e0042} and selectors \ufe0f\u{e0100}',
  'café',
  'cafe\u0301',
  'Cafe\u0301 au lait, nai\u0308ve, re\u0301sume\u0301',
  'e\u0301\u0323 e\u0323\u0301 a\u0328\u0301 o\u031b\u0323',
  'a\u0301\u0301\u0301\u0301\u0301\u0301\u0301\u0301',
  '\u0301 leading mark',
  'x\u0301\u0302\u0303\u0304\u0305\u0306\u0307',
  'q\u0307\u0323 \u1e0b\u0323 \u1e69 s\u0323\u0307',
  'Ångström Å Å Ω Ω K K',
  'ḱṷṓn ṩ ẛ̣ ệ ế ỗ ự',
  'Việt Nam, Tiếng Việt có dấu: Cụ thể, bạn sẽ tham gia',
  '\u0344 \u0340\u0341\u0343 \u0f73 \u0f75 \u0f81',
  'Hangul 한국어 \u1112\u1161\u11ab\u1100\u116e\u11a8 \u1100\u1161 \uac00\u11a8 \u3131\u314f',
  'halfwidth ｶﾞｷﾞ ﾊﾟ ｱｲｳ ﾞﾟ',
  'Greek ΣΊΣΥΦΟΣ ΟΔΟΣ Σ σ ς ΑΣ ΑΣ. ΑΣΑ',
  'Turkish İstanbul İI ı i̇ DİYARBAKIR',
  'ligatures ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ǅ Ǆ ǆ',
  'fullwidth ＡＢＣ ａｂｃ １２３ ！？ ＠＃',
  'circled ① ② ⑳ ⓐ Ⓐ ㉑ ㊿',
  'super x² x³ x¹⁰ H₂O ½ ¼ ¾ ⅓ ™ ℠ № ℃ ℉ ㎞ ㎏ ㍻',
  'roman Ⅰ Ⅱ Ⅻ ⅰ ⅻ',
  'math 𝐀𝐁𝐂 𝑎𝑏𝑐 𝔸𝔹 ℝ ℕ ∑ √ ∞',
  'Arabic العربية مَرْحَبًا ﻻ ﷺ ﷽ ﺍﻟﺴﻼﻡ',
  'Hebrew שָׁלוֹם בְּרֵאשִׁית',
  'Hindi हिन्दी क़ ख़ ग़ ज़ ड़ ढ़ फ़ य़ क्ष',
  'Bengali য় ড় ঢ় কো কৌ',
  'Tamil கொ கோ கௌ',
  'Thai ภาษาไทย ำน\u0e49ำ3ลำ',
  'CJK 日本語 中文 漢字 ひらがな カタカナ',
  'CJK compatibility 豈 更 車 \u2f800 \u{2f800} \u{2fa1d}',
  'CJK ext 𠀀 𪜀 𫝀 𫠠 𬺰 𰀀',
  'emoji 😀 🤗 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸 1️⃣ ❤️ 🧑🏿‍💻 🫠',
  'emoji modifiers a🏻 ©\u200d© ©️ ‼️',
  'Unicode 10+ marks \u1df6\u1df7 a\u1df6\u0301 e\u0d3b x\u{11a34}',
  'new composites \u{105c9} \u{105d2}\u0307 \u{11383} \u{11382}\u{113c9} \u{16d68} \u{16d67}\u{16d67} \u{11938}',
  'new compat \u{1fbf0}\u{1fbf9} \u32ff \ua7f2 \uab69 \u{10781}',
  'Cyrillic Ёлка Йод ё й \u0418\u0306',
  'Devanagari nukta \u0915\u093c \u0958',
  'Kannada \u0cbf\u0cd5 \u0cc6\u0cc2\u0cd5',
  'Malayalam \u0d46\u0d3e \u0d4a',
  'Dotless \u0131\u0307 \u0130\u0301',
  'Angstrom sign \u212b and Kelvin \u212a and Ohm \u2126',
  'Greek tonos \u0390 \u03b0 \u1fd3 \u1fe3 \u0385 \u1fee',
  'ǰ ẖ ẗ ẘ ẙ ẚ ŉ ß ẞ',
  'Ⓚ ㏂ ㍐ ﬀ \ufb4f',
  'Tabs\tand\vother\fcontrols\u001c\u001f',
  '\u2581 metaspace ▁▁ and Ġ',
  'ZWJ\u200d\u200d\u200d',
  'ends with space ',
  ' \u0301',
  '\u3000\u3000',
  'a\u0308\u0301\u0304 A\u030a\u0301 \u00c5\u0301',
  'mixed \u0065\u0301\u0065\u0301\u0065\u0301 \u00e9\u00e9',
  'x'.repeat(50) + 'é' + 'e\u0301'.repeat(20),
  // Long runs of marks (sorted before the engine sees them), with starters and characters newer than Rust's tables.
  `a${'\u0301\u0323\u0345\u0334\u0308\u0327\u0344\u0f73'.repeat(8)}b`,
  `e${'\u0301\u0323'.repeat(20)}\u093e${'\u094d\u093c'.repeat(20)}\u1df6${'\u0301\u0316'.repeat(20)} end`,
  `${'\u0301\u0323\u1df6'.repeat(15)}\uac00${'\u0301\u0323'.repeat(20)}\u11a8`,
];

const MARK_BLOCKS = [0x0591, 0x064b, 0x093c, 0x094d, 0x0e31, 0x0e48, 0x3099, 0x309a, 0x1dc0, 0x20d0];
const TRAPS = ['ﬁ', 'ﬂ', 'İ', 'Σ', 'ς', 'ß', 'ǅ', '①', '²', '™', '½', 'Å', 'Ω', '\u0344', '\u0f73'];
const EMOJI = ['😀', '🤗', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇯🇵', '1️⃣', '❤️', '🫠', '\u200d', '\ufe0f'];

/** Seeded random strings mixing ASCII, Latin-1, combining marks, CJK, emoji, whitespace and other traps. */
function randomStrings(count: number, seed: number): string[] {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pieces: Array<() => string> = [
    () => 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?-\'"()'[int(76)],
    () => ' ',
    () => [' ', '  ', '\t', '\n', '\r\n', '\r', '\u00a0', '\u3000', '\u2028', '\u0085', '\u000b', '\u000c'][int(12)],
    () => String.fromCharCode(0xc0 + int(0x40)),
    () => String.fromCharCode(0x300 + int(0x70)),
    () => String.fromCharCode(MARK_BLOCKS[int(MARK_BLOCKS.length)] + int(4)),
    () => String.fromCharCode(0x4e00 + int(0x5200)),
    () => String.fromCharCode(0xac00 + int(0x2ba4)),
    () => String.fromCharCode([0x1100, 0x1161, 0x11a8, 0x3131][int(4)] + int(20)),
    () => String.fromCharCode(0xff01 + int(0x9e)),
    () => String.fromCharCode(0x1e00 + int(0x100)),
    () => String.fromCharCode(0x0370 + int(0x90)),
    () => TRAPS[int(TRAPS.length)],
    () => EMOJI[int(EMOJI.length)],
    () => ['\u0000', '\u0001', '\u001f', '\u007f', '\u009f', '\u00ad', '\u200b', '\ufeff', '\ufffd', '\u2581'][int(10)],
    () => String.fromCharCode(0xf900 + int(0x200)),
    () => String.fromCharCode(0xfb50 + int(0x2b0)),
    () => String.fromCodePoint([0x20000, 0x1d400, 0x2f800, 0x1f300, 0x11380, 0x16d60, 0x1df0][int(7)] + int(48)),
  ];
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const len = int(k % 10 === 0 ? 200 : 24);
    let s = '';
    for (let i = 0; i < len; i++) s += pieces[int(pieces.length)]();
    out.push(s);
  }
  return out;
}

const RANDOM = [...randomStrings(500, 1234), ...Array.from({ length: 100 }, (_, i) => randomText(i + 1, 120))];
const ALL = [...new Set([...NORMALIZATION_STRINGS, ...HARD_STRINGS, ...RANDOM])];

// ---------------------------------------------------------------------------------------------------------------
// The Rust side, built from the same JSON

const T5_CHARSMAP = (JSON.parse(loadTokenizerFiles('t5').json) as { normalizer: { precompiled_charsmap: string } })
  .normalizer.precompiled_charsmap;

const EACH_CHARACTER = { type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false };
const T5 = { type: 'Precompiled', precompiled_charsmap: T5_CHARSMAP };

function bert(clean_text: boolean, handle_chinese_chars: boolean, strip_accents: boolean | null, lowercase: boolean) {
  return { type: 'BertNormalizer', clean_text, handle_chinese_chars, strip_accents, lowercase };
}

function tokenizerJson(normalizer: unknown, perChar = false): string {
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer,
    // One word per normalized character, so each [UNK] token's offsets are that character's alignment.
    pre_tokenizer: perChar ? EACH_CHARACTER : null,
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: { '[UNK]': 0 }, unk_token: '[UNK]' },
  });
}

function rustNormalizer(json: unknown) {
  const n = rust.Tokenizer.fromString(tokenizerJson(json)).getNormalizer();
  if (!n) throw new Error('no normalizer');
  return n;
}

function ours(json: unknown): Normalizer {
  const n = normalizerFromJSON(json);
  if (!n) throw new Error('no normalizer');
  return n;
}

/**
 * Every unit's range is ordered and inside the original; where the text is unchanged the alignment is the
 * identity (except for `Prepend ""`: Rust gives the first character an empty range there).
 */
function checkAlignments(name: string, s: string, offset: number, p: Piece): void {
  expect(p.starts.length).toBe(p.length);
  expect(p.ends.length).toBe(p.length);
  const identity = p.text === s && name !== 'Prepend empty';
  for (let i = 0; i < p.length; i++) {
    const ok = p.starts[i] <= p.ends[i] && p.starts[i] >= offset && p.ends[i] <= offset + s.length;
    if (!ok || (identity && (p.starts[i] !== offset + i || p.ends[i] !== offset + i + 1)))
      expect.fail(`${name} ${JSON.stringify(s)} unit ${i}: [${p.starts[i]}, ${p.ends[i]})`);
  }
}

function mismatch(input: string, got: string, want: string): string {
  return `${JSON.stringify(input)}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;
}

/** Each normalized character's [start, end) in the original, from our Piece. */
function ourCharOffsets(p: Piece): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < p.length; ) {
    const len = p.text.codePointAt(i)! > 0xffff ? 2 : 1;
    out.push([p.starts[i], p.ends[i + len - 1]]);
    i += len;
  }
  return out;
}

/** Each normalized character's [start, end) in the original, according to Rust (UTF-16 units). */
async function rustCharOffsets(json: unknown, inputs: string[]): Promise<Array<Array<[number, number]>>> {
  const tok = rust.Tokenizer.fromString(tokenizerJson(json, true));
  const encodings = await tok.encodeBatch(inputs, { addSpecialTokens: false });
  return encodings.map((e, k) => codePointToUtf16Offsets(inputs[k], e.getOffsets()));
}

const CONFIGS: Array<[string, unknown]> = [
  ['NFC', { type: 'NFC' }],
  ['NFD', { type: 'NFD' }],
  ['NFKC', { type: 'NFKC' }],
  ['NFKD', { type: 'NFKD' }],
  ['Lowercase', { type: 'Lowercase' }],
  ['Strip both', { type: 'Strip', strip_left: true, strip_right: true }],
  ['Strip left', { type: 'Strip', strip_left: true, strip_right: false }],
  ['Strip right', { type: 'Strip', strip_left: false, strip_right: true }],
  ['StripAccents', { type: 'StripAccents' }],
  ['NFKD + StripAccents', { type: 'Sequence', normalizers: [{ type: 'NFKD' }, { type: 'StripAccents' }] }],
  ['Replace string', { type: 'Replace', pattern: { String: ' ' }, content: '▁' }],
  ['Replace string to longer', { type: 'Replace', pattern: { String: 'e' }, content: '<E>' }],
  ['Replace multi-char to empty', { type: 'Replace', pattern: { String: 'ab' }, content: '' }],
  ['Replace regex', { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }],
  ['Replace empty matches', { type: 'Replace', pattern: { Regex: 'a*' }, content: '-' }],
  ['Replace the empty string', { type: 'Replace', pattern: { String: '' }, content: '|' }],
  ['Replace each non-ASCII character', { type: 'Replace', pattern: { Regex: '[^\\x00-\\x7f]' }, content: '?' }],
  ['Prepend', { type: 'Prepend', prepend: '▁' }],
  ['Prepend long', { type: 'Prepend', prepend: 'ab😀' }],
  ['Prepend empty', { type: 'Prepend', prepend: '' }],
  ['Nmt', { type: 'Nmt' }],
  ['ByteLevel', { type: 'ByteLevel' }],
  ['Bert (bert-base-uncased)', JSON.parse(loadTokenizerFiles('bert').json).normalizer],
  ['Bert cased', bert(true, true, null, false)],
  ['Bert strip only', bert(false, false, true, false)],
  ['Bert lowercase no strip', bert(false, true, false, true)],
  ['Precompiled (t5)', T5],
  ['Sequence (llama2)', JSON.parse(loadTokenizerFiles('llama2').json).normalizer],
  ['Sequence, empty (deepseek_v3)', { type: 'Sequence', normalizers: [] }],
  ['Sequence of everything', {
    type: 'Sequence',
    normalizers: [
      { type: 'Strip', strip_left: true, strip_right: true },
      { type: 'NFKC' },
      { type: 'Lowercase' },
      { type: 'Replace', pattern: { Regex: '\\s+' }, content: '▁' },
      { type: 'Prepend', prepend: '▁' },
      { type: 'NFD' },
      { type: 'StripAccents' },
      { type: 'NFC' },
    ],
  }],
];

// ---------------------------------------------------------------------------------------------------------------

describe('normalizers match the Rust library', () => {
  it('has enough inputs', () => {
    expect(RANDOM.length).toBeGreaterThanOrEqual(500);
    expect(ALL.length).toBeGreaterThan(800);
  });

  for (const [name, json] of CONFIGS) {
    it(`${name}: text, and alignments within the original`, () => {
      const mine = ours(json);
      const theirs = rustNormalizer(json);
      const bad: string[] = [];
      for (const s of ALL) {
        const offset = s.length % 2 === 0 ? 0 : 7;
        const p = mine.normalize(Piece.of(s, offset));
        const want = theirs.normalizeString(s);
        if (p.text !== want && bad.length < 5) bad.push(mismatch(s, p.text, want));
        checkAlignments(name, s, offset, p);
      }
      expect(bad).toEqual([]);
    });

    it(`${name}: alignments`, async () => {
      const mine = ours(json);
      const inputs = ALL.filter((s) => s.length < 2000);
      const want = await rustCharOffsets(json, inputs);
      const bad: string[] = [];
      inputs.forEach((s, k) => {
        const got = ourCharOffsets(mine.normalize(Piece.of(s)));
        if (JSON.stringify(got) !== JSON.stringify(want[k]) && bad.length < 3)
          bad.push(`${JSON.stringify(s)}:\n  got  ${JSON.stringify(got)}\n  want ${JSON.stringify(want[k])}`);
      });
      expect(bad).toEqual([]);
    });
  }
});

describe('the Rust constructors agree with the JSON the tests load', () => {
  // Rust built from tokenizer.json JSON is the same normalizer as the one from the direct constructors.
  const bytes = Array.from(atob(T5_CHARSMAP), (c) => c.charCodeAt(0));
  const pairs: Array<[unknown, { normalizeString(s: string): string }]> = [
    [{ type: 'NFC' }, rust.nfcNormalizer()],
    [{ type: 'NFD' }, rust.nfdNormalizer()],
    [{ type: 'NFKC' }, rust.nfkcNormalizer()],
    [{ type: 'NFKD' }, rust.nfkdNormalizer()],
    [{ type: 'Lowercase' }, rust.lowercase()],
    [{ type: 'Strip', strip_left: true, strip_right: false }, rust.stripNormalizer(true, false)],
    [{ type: 'StripAccents' }, rust.stripAccentsNormalizer()],
    [{ type: 'Nmt' }, rust.nmt()],
    [{ type: 'Replace', pattern: { String: ' ' }, content: '▁' }, rust.replace(' ', '▁')],
    [{ type: 'Prepend', prepend: '▁' }, rust.prependNormalizer('▁')],
    [T5, rust.precompiled(bytes)],
    [
      { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: false, strip_accents: true, lowercase: false },
      rust.bertNormalizer({ cleanText: true, handleChineseChars: false, stripAccents: true, lowercase: false }),
    ],
    [
      { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }] },
      rust.sequenceNormalizer([rust.nfdNormalizer(), rust.lowercase()]),
    ],
  ];
  it('on the normalization strings', () => {
    for (const [json, direct] of pairs) {
      const n = ours(json);
      for (const s of NORMALIZATION_STRINGS)
        expect(n.normalize(Piece.of(s)).text, JSON.stringify(s)).toBe(direct.normalizeString(s));
    }
  });
});

describe('lone surrogates (which Rust strings cannot hold)', () => {
  it('pass through every normalizer without breaking alignments', () => {
    const inputs = ['\ud800', 'a\udc00b', '\udc00\ud800', 'e\u0301\ud83d', '\ud83d\u0301 x \u{1f600}\ude00'];
    for (const [name, json] of CONFIGS) {
      const n = ours(json);
      for (const s of inputs) checkAlignments(name, s, 0, n.normalize(Piece.of(s)));
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Whole ranges of code points: the character tables against Rust's.

/** Code points of the BMP and SMP, a sample of the ideographic and private-use planes, and plane 14. */
function sweepCodePoints(): number[] {
  const out: number[] = [];
  const add = (lo: number, hi: number, step = 1) => {
    for (let c = lo; c <= hi; c += step) if (c < 0xd800 || c > 0xdfff) out.push(c);
  };
  add(0, 0x1ffff);
  add(0x20000, 0x3ffff, 97);
  add(0x2f800, 0x2fa1f);
  add(0xe0000, 0xe01ff);
  add(0xf0000, 0x10ffff, 4099);
  out.push(0x10fffd, 0x10ffff);
  return out;
}

const SWEEP = sweepCodePoints();

/** Every code point in turn, each wrapped by `wrap` and followed by `sep`. */
function sweepText(wrap: (s: string) => string, sep: string, skip: (cp: number) => boolean = () => false): string {
  const parts: string[] = [];
  for (const cp of SWEEP) if (!skip(cp)) parts.push(wrap(String.fromCodePoint(cp)));
  return parts.join(sep);
}

const notMark = (cp: number) => !/\p{M}/u.test(String.fromCodePoint(cp));
const isHash = (cp: number) => cp === 0x23;

describe('normalizers match the Rust library character by character', () => {
  const cases: Array<[string, unknown, string, (s: string) => string, (cp: number) => boolean]> = [
    ['NFC', { type: 'NFC' }, '\n', (s) => s, () => false],
    ['NFD', { type: 'NFD' }, '\n', (s) => s, () => false],
    ['NFKC', { type: 'NFKC' }, '\n', (s) => s, () => false],
    ['NFKD', { type: 'NFKD' }, '\n', (s) => s, () => false],
    // Combining classes (only marks have one): a mark of class 1 after the character, one of class 240 before it.
    ['NFD, class probe 1', { type: 'NFD' }, '\n', (s) => `${s}\u0334`, notMark],
    ['NFD, class probe 240', { type: 'NFD' }, '\n', (s) => `\u0345${s}`, notMark],
    ['NFC, class probe 1', { type: 'NFC' }, '\n', (s) => `a${s}\u0334`, notMark],
    ['NFKC, class probe 240', { type: 'NFKC' }, '\n', (s) => `\u0345${s}`, notMark],
    ['Lowercase', { type: 'Lowercase' }, '#', (s) => s, isHash],
    ['StripAccents', { type: 'StripAccents' }, '#', (s) => s, isHash],
    ['Bert clean_text', bert(true, false, false, false), '#', (s) => s, isHash],
    ['Bert chinese chars', bert(false, true, false, false), '#', (s) => s, isHash],
    ['Bert strip_accents', bert(false, false, true, false), '#', (s) => s, isHash],
    ['Nmt', { type: 'Nmt' }, '#', (s) => s, isHash],
    ['Strip', { type: 'Strip', strip_left: true, strip_right: true }, '', (s) => s, () => false],
    ['Precompiled (t5)', T5, '#', (s) => s, isHash],
    ['Precompiled (t5), after a base', T5, '#', (s) => `a${s}`, isHash],
  ];
  for (const [name, json, sep, wrap, skip] of cases) {
    it(name, () => {
      const mine = ours(json);
      const theirs = rustNormalizer(json);
      if (sep === '') {
        // One call per character (Strip only looks at the ends); White_Space is all below U+3100.
        const bad = SWEEP.filter((cp) => cp < 0x3100 || (cp >= 0xfe00 && cp <= 0xffff)).filter((cp) => {
          const s = ` ${String.fromCodePoint(cp)}x${String.fromCodePoint(cp)}`;
          return mine.normalize(Piece.of(s)).text !== theirs.normalizeString(s);
        });
        expect(bad.map((c) => c.toString(16))).toEqual([]);
        return;
      }
      const text = sweepText(wrap, sep, skip);
      const got = mine.normalize(Piece.of(text)).text.split(sep);
      const want = theirs.normalizeString(text).split(sep);
      const inputs = text.split(sep);
      expect(got.length).toBe(want.length);
      const bad: string[] = [];
      for (let k = 0; k < got.length && bad.length < 10; k++)
        if (got[k] !== want[k]) bad.push(mismatch(inputs[k], got[k], want[k]));
      expect(bad).toEqual([]);
    });
  }

  it('Precompiled (t5) on base + mark clusters, alignments included', async () => {
    const json = T5;
    const bases = ['a', 'e', 'o', 'A', 'z', '1', ' ', 'é', 'ø', 'ß', 'α', 'ж', 'ﬁ', 'Ａ', '①', 'ｶ', 'ㄱ', '\u0600', '\r'];
    const marks = [];
    for (let m = 0x300; m <= 0x36f; m++) marks.push(String.fromCharCode(m));
    marks.push('\u3099', '\u309a', '\u200d', '\u200c', '\u{1f3fb}', '\u{e0041}', '\u0e33', '\u093c', '\n', 'b');
    const inputs: string[] = [];
    for (const b of bases) {
      inputs.push(marks.map((m) => b + m).join(' '));
      inputs.push(marks.map((m) => b + m + m).join(' '));
    }
    const mine = ours(json);
    const theirs = rustNormalizer(json);
    const want = await rustCharOffsets(json, inputs);
    for (let k = 0; k < inputs.length; k++) {
      const got = mine.normalize(Piece.of(inputs[k]));
      expect(got.text, JSON.stringify(inputs[k])).toBe(theirs.normalizeString(inputs[k]));
      expect(ourCharOffsets(got), JSON.stringify(inputs[k])).toEqual(want[k]);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('the real tokenizer.json normalizers', () => {
  // Loaded the way the files are, through the whole tokenizer.json. (The larger files' normalizers are NFC,
  // Replace " " → "▁" and an empty Sequence: all among CONFIGS.)
  for (const name of ['llama2', 'bert', 't5'] as const) {
    it(name, () => {
      const json = loadTokenizerFiles(name).json;
      const mine = normalizerFromJSON(JSON.parse(json).normalizer)!;
      const theirs = rust.Tokenizer.fromString(json).getNormalizer()!;
      for (const s of NORMALIZATION_STRINGS)
        expect(mine.normalize(Piece.of(s)).text, JSON.stringify(s)).toBe(theirs.normalizeString(s));
    });
  }

  it('files without a normalizer give null', () => {
    for (const name of ['gpt2', 'mistral'] as const) {
      const json = JSON.parse(loadTokenizerFiles(name).json);
      expect(json.normalizer).toBeNull();
      expect(normalizerFromJSON(json.normalizer)).toBeNull();
    }
    expect(normalizerFromJSON(undefined)).toBeNull();
  });
});

describe('alignments', () => {
  it('of a charsmap-less Precompiled and an empty Sequence are the identity', () => {
    for (const json of [{ type: 'Precompiled', precompiled_charsmap: '' }, { type: 'Sequence', normalizers: [] }]) {
      for (const s of NORMALIZATION_STRINGS) {
        const p = Piece.of(s, 3);
        expect(ours(json).normalize(p)).toBe(p);
      }
    }
  });

  it('map back to the original text through the pipeline', () => {
    // Lowercase of a sliced piece: alignments keep pointing into the full string.
    const s = 'HELLO WORLD İSTANBUL ΟΔΟΣ';
    const p = ours({ type: 'Lowercase' }).normalize(Piece.of(s).slice(6));
    expect(p.text).toBe('world i̇stanbul οδοσ');
    expect(s.slice(...p.originalRange(0, 5))).toBe('WORLD');
    expect(s.slice(...p.originalRange(6, 8))).toBe('İ');
    expect(s.slice(...p.originalRange(p.length - 4, p.length))).toBe('ΟΔΟΣ');
  });

  it('follow Rust where it is surprising', () => {
    // Lowercase is per character: no final sigma; 'İ' grows into two characters, both aligned to it.
    const lower = ours({ type: 'Lowercase' }).normalize(Piece.of('ΟΔΟΣ İ'));
    expect(lower.text).toBe('οδοσ i\u0307');
    expect(ourCharOffsets(lower).slice(5)).toEqual([[5, 6], [5, 6]]);
    // NFC: a composed character keeps only its first part's alignment.
    const nfc = ours({ type: 'NFC' }).normalize(Piece.of('e\u0301x'));
    expect(ourCharOffsets(nfc)).toEqual([[0, 1], [2, 3]]);
    // Replace: the content takes the alignment of the last matched character.
    const rep = ours({ type: 'Replace', pattern: { String: 'ab' }, content: 'X' }).normalize(Piece.of('-ab-'));
    expect(ourCharOffsets(rep)).toEqual([[0, 1], [2, 3], [3, 4]]);
    // Prepend: the new text shares the first character's alignment.
    const pre = ours({ type: 'Prepend', prepend: '▁' }).normalize(Piece.of('hi'));
    expect(ourCharOffsets(pre)).toEqual([[0, 1], [0, 1], [1, 2]]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('normalizerFromJSON', () => {
  const error = (json: unknown): string => {
    try {
      normalizerFromJSON(json);
    } catch (e) {
      expect(e).toBeInstanceOf(TokenizerError);
      return (e as Error).message;
    }
    throw new Error(`no error for ${JSON.stringify(json)}`);
  };

  it('knows every Rust type', () => {
    expect([...NORMALIZER_TYPES].sort()).toEqual([
      'BertNormalizer',
      'ByteLevel',
      'Lowercase',
      'NFC',
      'NFD',
      'NFKC',
      'NFKD',
      'Nmt',
      'Precompiled',
      'Prepend',
      'Replace',
      'Sequence',
      'Strip',
      'StripAccents',
    ]);
  });

  it('ignores unknown fields, like Rust', () => {
    expect(ours({ type: 'NFC', extra: 1 }).normalize(Piece.of('e\u0301')).text).toBe('é');
  });

  it('names the field at fault', () => {
    expect(error({ type: 'Unicode' })).toMatch(/normalizer\.type.*"Unicode".*supported: BertNormalizer, Strip/);
    expect(error({})).toMatch(/normalizer\.type/);
    expect(error('NFC')).toMatch(/normalizer must be an object/);
    expect(error({ type: 'Strip', strip_left: true })).toMatch(/normalizer\.strip_right/);
    expect(error({ type: 'Strip', strip_left: 'yes', strip_right: true })).toMatch(/normalizer\.strip_left/);
    expect(error({ type: 'Replace', pattern: ' ', content: '▁' })).toMatch(/normalizer\.pattern must be an object/);
    expect(error({ type: 'Replace', pattern: { Glob: ' ' }, content: '▁' })).toMatch(/normalizer\.pattern/);
    expect(error({ type: 'Replace', pattern: { String: 1 }, content: '▁' })).toMatch(/normalizer\.pattern\.String/);
    expect(error({ type: 'Replace', pattern: { String: ' ' } })).toMatch(/normalizer\.content/);
    expect(error({ type: 'Replace', pattern: { Regex: '(' }, content: '' })).toMatch(/normalizer\.pattern\.Regex/);
    expect(error({ type: 'Prepend', prepend: 3 })).toMatch(/normalizer\.prepend/);
    expect(error({ ...bert(true, true, null, true), strip_accents: 'no' })).toMatch(/normalizer\.strip_accents/);
    expect(error({ ...bert(true, true, null, true), handle_chinese_chars: undefined })).toMatch(
      /normalizer\.handle_chinese_chars/,
    );
    const charsmap = (map: unknown) => error({ type: 'Precompiled', precompiled_charsmap: map });
    expect(charsmap('!!!')).toMatch(/normalizer\.precompiled_charsmap.*base64/);
    expect(charsmap(btoa('\u00ff\u00ff\u0000\u0000'))).toMatch(/normalizer\.precompiled_charsmap.*trie/);
    expect(charsmap(5)).toMatch(/normalizer\.precompiled_charsmap/);
    expect(error({ type: 'Sequence' })).toMatch(/normalizer\.normalizers must be an array/);
    const sequence = (...normalizers: unknown[]) => ({ type: 'Sequence', normalizers });
    expect(error(sequence({ type: 'NFC' }, null))).toMatch(/normalizer\.normalizers\[1\] must be an object/);
    expect(error(sequence({ type: 'NFC' }, sequence({ type: 'Replace', pattern: { Regex: 1 }, content: '' })))).toMatch(
      /normalizer\.normalizers\[1\]\.normalizers\[0\]\.pattern\.Regex/,
    );
  });

  it('treats an empty charsmap as no rules', () => {
    for (const map of ['', null]) {
      const p = Piece.of('ﬁ Ａ');
      expect(ours({ type: 'Precompiled', precompiled_charsmap: map }).normalize(p)).toBe(p);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('speed', () => {
  const MB = 1 << 20;
  const english = 'The quick brown fox jumps over the lazy dog, again and again. '.repeat(MB / 62);
  const mixed = randomText(99, MB);
  // Nothing quadratic: one base followed by 100,000 marks that all reorder.
  const marks = `a${'\u0301\u0323'.repeat(50_000)}`;
  const cases: Array<[string, unknown, string]> = [
    ['NFC, nothing to do', { type: 'NFC' }, english],
    ['NFC, a long run of marks', { type: 'NFC' }, marks],
    ['NFKD, a long run of marks', { type: 'NFKD' }, marks],
    ['t5 Precompiled, a long run of marks', T5, marks],
    ['NFKC, mixed text', { type: 'NFKC' }, mixed],
    ['NFD, mixed text', { type: 'NFD' }, mixed],
    ['Lowercase', { type: 'Lowercase' }, english],
    ['llama2 Sequence', JSON.parse(loadTokenizerFiles('llama2').json).normalizer, english],
    ['bert', JSON.parse(loadTokenizerFiles('bert').json).normalizer, mixed],
    ['t5 Precompiled, English', T5, english],
    ['t5 Precompiled, mixed', T5, mixed],
  ];
  for (const [name, json, text] of cases) {
    it(`${name}: 1 MB`, () => {
      const n = ours(json);
      n.normalize(Piece.of(text.slice(0, 10_000))); // warm up
      const piece = Piece.of(text);
      const t0 = performance.now();
      n.normalize(piece);
      const ms = performance.now() - t0;
      // Typically 5 to 100 ms; the bound is loose for busy machines but still catches quadratic behaviour.
      expect(ms).toBeLessThan(1000);
    });
  }
});
