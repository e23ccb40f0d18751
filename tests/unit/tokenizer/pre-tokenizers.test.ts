// Pre-tokenizers against the Rust library: words and their offsets in the original string.
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../../../src/errors.js';
import type { PreTokenizer } from '../../../src/tokenizer/components.js';
import { Piece } from '../../../src/tokenizer/piece.js';
import { MetaspacePreTokenizer, preTokenizerFromJSON, splitPiece } from '../../../src/tokenizer/pre-tokenizers.js';
import { HARD_STRINGS } from '../../helpers/hard-strings.js';
import { rng } from '../../helpers/random.js';
import { randomText } from '../../helpers/random-text.js';
import { codePointToUtf16Offsets, rust, rustTokenizerWith } from '../../helpers/rust-tokenizers.js';
import { loadTokenizerFiles, TOKENIZER_NAMES } from '../../helpers/tokenizer-files.js';

type Words = Array<[string, [number, number]]>;

/** The Rust pre-tokenizer for a `pre_tokenizer` config, read back from a minimal tokenizer.json. */
function rustPreTokenizer(config: unknown) {
  return rustTokenizerWith({ pre_tokenizer: config, model: { type: 'WordLevel', vocab: {}, unk_token: '[UNK]' } }).getPreTokenizer()!;
}

function expected(pt: ReturnType<typeof rustPreTokenizer>, text: string): Words {
  const words = pt.preTokenizeString(text);
  const offsets = codePointToUtf16Offsets(text, words.map((w) => w[1]));
  return words.map((w, i) => [w[0], offsets[i]]);
}

function actual(pt: PreTokenizer, text: string): Words {
  return pt.preTokenize([Piece.of(text)]).map((p) => [p.text, p.originalRange(0, p.length)]);
}

/** Compares on every text; returns the first mismatches (empty when all agree). */
function differences(config: unknown, texts: readonly string[]): string[] {
  const theirs = rustPreTokenizer(config);
  const ours = preTokenizerFromJSON(config)!;
  const out: string[] = [];
  for (const text of texts) {
    const want = JSON.stringify(expected(theirs, text));
    const got = JSON.stringify(actual(ours, text));
    if (want !== got && out.length < 3) out.push(`${JSON.stringify(text)}\n  rust: ${want}\n  ours: ${got}`);
  }
  return out;
}

// Characters where the Unicode version or case folding matters, on top of the shared hard strings.
const EXTRA = [
  'ſ K Å ǅ ǈ ͅ ΐ ΐ ﬅ ﬆ ʕ ʖ',
  "it'ſ IT'S it'K I'M you'Re THEY'VE we'LL she'D don'T",
  '\u088f\u0c5c\u{10940}\u{11de0}\u{16ea0}\u{323b0} \u2b96\u20c1',
  'a\u0345b \u1fbe\u03b9',
  '   \n\n  \r\n \t ',
  'x\u200dy \u{1f468}\u200d\u{1f469}',
  '\u0295\u0294\u0296',
];

function randomTexts(count: number, seed: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const base = randomText(seed * 7919 + i, 80);
    out.push(r() < 0.25 ? base + EXTRA[Math.floor(r() * EXTRA.length)] : base);
  }
  return out;
}

const TEXTS = [...HARD_STRINGS, ...EXTRA];

const sequence = (...pretokenizers: unknown[]) => ({ type: 'Sequence', pretokenizers });
const split = (pattern: unknown, behavior = 'Isolated', invert = false) => ({ type: 'Split', pattern, behavior, invert });

/** The `pre_tokenizer` of a tokenizer.json text, without parsing the (large) vocabulary after it. */
function preTokenizerConfig(json: string): unknown {
  const start = json.indexOf('"pre_tokenizer"');
  const end = json.indexOf('"post_processor"', start);
  if (start >= 0 && end > start) {
    try {
      return JSON.parse(`{${json.slice(start, end).trim().replace(/,$/, '')}}`).pre_tokenizer;
    } catch {
      // not in the usual key order; parse it all
    }
  }
  return JSON.parse(json).pre_tokenizer ?? null;
}

describe('pre-tokenizers of the real tokenizer files', () => {
  for (const name of TOKENIZER_NAMES) {
    it(`${name}: words and offsets as Rust on hard and random strings`, () => {
      const config = preTokenizerConfig(loadTokenizerFiles(name).json);
      if (config === null) {
        expect(preTokenizerFromJSON(null)).toBeNull();
        return;
      }
      expect(differences(config, [...TEXTS, ...randomTexts(120, TOKENIZER_NAMES.indexOf(name) + 1)])).toEqual([]);
    });
  }
});

describe('each pre-tokenizer type, as Rust', () => {
  const configs: unknown[] = [
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false },
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false },
    { type: 'Metaspace', replacement: '▁' },
    { type: 'Metaspace', replacement: '▁', add_prefix_space: true },
    { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true },
    { type: 'Metaspace', replacement: '_', prepend_scheme: 'never', split: true },
    { type: 'Metaspace', replacement: '😀', prepend_scheme: 'always', split: true },
    { type: 'Whitespace' },
    { type: 'WhitespaceSplit' },
    { type: 'BertPreTokenizer' },
    { type: 'Punctuation' },
    { type: 'Punctuation', behavior: 'Removed' },
    { type: 'Punctuation', behavior: 'MergedWithPrevious' },
    { type: 'Punctuation', behavior: 'MergedWithNext' },
    { type: 'Punctuation', behavior: 'Contiguous' },
    { type: 'Digits', individual_digits: true },
    { type: 'Digits', individual_digits: false },
    { type: 'CharDelimiterSplit', delimiter: ' ' },
    { type: 'CharDelimiterSplit', delimiter: '😀' },
    { type: 'FixedLength', length: 3 },
    { type: 'FixedLength' },
    { type: 'Sequence', pretokenizers: [] },
    sequence({ type: 'WhitespaceSplit' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first' }),
    sequence({ type: 'Punctuation' }, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true }),
    sequence({ type: 'Digits', individual_digits: true }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first' }),
  ];
  const texts = [...TEXTS, ...randomTexts(40, 99)];
  for (const config of configs) {
    it(JSON.stringify(config), () => {
      expect(differences(config, texts)).toEqual([]);
    });
  }
});

describe('character classes of the pre-tokenizers, code point by code point', () => {
  // All of the BMP, every 7th code point of plane 1 and every 61st above, and characters added in Unicode 17, one
  // after the other: a character in the wrong class would move a word boundary.
  const added = [
    0x88f, 0xc5c, 0xcdc, 0x1acf, 0x20c1, 0x2b96, 0xa7ce, 0xfbc3, 0x10940, 0x10ed0, 0x11de0, 0x16ea0, 0x16ff4, 0x1e6c0, 0x323b0,
  ];
  const cps: number[] = [];
  for (let c = 0; c <= 0x10ffff; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    if (c < 0x10000 || (c < 0x20000 && c % 7 === 0) || c % 61 === 0 || added.includes(c)) cps.push(c);
  }
  let text = '';
  for (let i = 0; i < cps.length; i += 10000) text += String.fromCodePoint(...cps.slice(i, i + 10000));
  for (const type of ['Whitespace', 'WhitespaceSplit', 'BertPreTokenizer', 'Punctuation', 'Digits']) {
    it(type, () => {
      const config = type === 'Digits' ? { type, individual_digits: true } : { type };
      expect(differences(config, [text])).toEqual([]);
    });
  }
});

describe('Split behaviors, as Rust', () => {
  const patterns = [
    { String: ' ' },
    { String: '' },
    { String: 'o' },
    { Regex: 'o*' },
    { Regex: '(?=o)' },
    { Regex: '\\s+' },
    { Regex: '\\p{N}{1,3}' },
  ];
  const behaviors = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];
  const texts = ['Hello  world 123 ok', 'oooo o  ooo', '', ' ', 'o', '  lead and trail  ', 'a1234567b 1 22', ...EXTRA];
  for (const pattern of patterns) {
    for (const invert of [false, true]) {
      it(`${JSON.stringify(pattern)} invert=${invert}`, () => {
        for (const behavior of behaviors) {
          expect(differences(split(pattern, behavior, invert), texts), behavior).toEqual([]);
        }
      });
    }
  }
});

describe('pieces that do not start the input', () => {
  it('Metaspace "first" prepends only to the piece at original offset 0', () => {
    const pt = new MetaspacePreTokenizer('▁', 'first', false);
    const words = pt.preTokenize([Piece.of('ab c', 0), Piece.of('de', 5)]);
    expect(words.map((w) => w.text)).toEqual(['▁ab▁c', 'de']);
  });

  it('a prepended character points at the first character of its word, as in Rust', () => {
    const [word] = new MetaspacePreTokenizer('▁', 'always', true).preTokenize([Piece.of('😀x', 10)]);
    expect(word.text).toBe('▁😀x');
    expect(word.originalRange(0, 1)).toEqual([10, 12]);
    const byteLevel = preTokenizerFromJSON({ type: 'ByteLevel', add_prefix_space: true, trim_offsets: true })!;
    const [bytes] = byteLevel.preTokenize([Piece.of('é', 3)]);
    expect(bytes.text).toBe('ĠÃ©');
    expect([0, 1, 2].map((i) => bytes.originalRange(i, i + 1))).toEqual([[3, 4], [3, 4], [3, 4]]);
  });

  it('splitPiece keeps the alignment of sliced pieces', () => {
    const out: Piece[] = [];
    splitPiece(Piece.of('ab cd', 100), [2, 3], 'Removed', false, out);
    expect(out.map((p) => [p.text, p.originalRange(0, p.length)])).toEqual([['ab', [100, 102]], ['cd', [103, 105]]]);
  });
});

describe('tokenizer.json errors name the field', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ type: 'Nope' }, /pre_tokenizer\.type "Nope" is not a supported pre-tokenizer \(supported: .*ByteLevel/],
    [{}, /pre_tokenizer\.type must name/],
    ['ByteLevel', /pre_tokenizer must be an object/],
    [{ type: 'ByteLevel', trim_offsets: true }, /pre_tokenizer\.add_prefix_space must be true or false/],
    [{ type: 'ByteLevel', add_prefix_space: true }, /pre_tokenizer\.trim_offsets/],
    [split({ String: ' ' }, 'isolated'), /pre_tokenizer\.behavior must be one of Removed/],
    [{ type: 'Split', pattern: { String: ' ' }, invert: false }, /pre_tokenizer\.behavior must be a string/],
    [{ type: 'Split', pattern: { String: ' ' }, behavior: 'Isolated' }, /pre_tokenizer\.invert/],
    [split(' '), /pre_tokenizer\.pattern must be an object/],
    [split({ Regexp: 'a' }), /pre_tokenizer\.pattern must be \{"String"/],
    [split({ Regex: '(a' }), /pre_tokenizer\.pattern\.Regex is not a supported regular expression/],
    [{ type: 'Metaspace' }, /pre_tokenizer\.replacement must be a string/],
    [{ type: 'Metaspace', replacement: '__' }, /pre_tokenizer\.replacement must be a single character/],
    [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'First' }, /pre_tokenizer\.prepend_scheme must be "always"/],
    [{ type: 'Metaspace', replacement: '▁', add_prefix_space: false }, /pre_tokenizer\.add_prefix_space is false/],
    [{ type: 'Digits' }, /pre_tokenizer\.individual_digits/],
    [{ type: 'CharDelimiterSplit', delimiter: 'ab' }, /pre_tokenizer\.delimiter must be a single character/],
    [{ type: 'FixedLength', length: 0 }, /pre_tokenizer\.length must be greater than 0/],
    [{ type: 'Sequence' }, /pre_tokenizer\.pretokenizers must be an array/],
    [{ type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, null] }, /pre_tokenizer\.pretokenizers\[1\] must be an object/],
    [
      sequence(split({ Regex: 'a{' }), split({ Regex: '[' })),
      /pre_tokenizer\.pretokenizers\[1\]\.pattern\.Regex/,
    ],
  ];
  for (const [config, message] of cases) {
    it(JSON.stringify(config), () => {
      expect(() => preTokenizerFromJSON(config)).toThrow(TokenizerError);
      expect(() => preTokenizerFromJSON(config)).toThrow(message);
    });
  }

  it('the Rust library rejects the same configs', () => {
    // FixedLength 0 loads in Rust and fails only when used; it is rejected here up front.
    const rejected = cases.slice(3).filter(([config]) => (config as { type: string }).type !== 'FixedLength');
    for (const [config] of rejected) expect(() => rustPreTokenizer(config), JSON.stringify(config)).toThrow();
  });

  it('a pattern the Rust library accepts but that cannot be translated is an error too, never a crash', () => {
    const config = split({ Regex: 'a\\Xb' });
    expect(() => rustPreTokenizer(config)).not.toThrow();
    const message = /pre_tokenizer\.pattern\.Regex is not a supported regular expression: \\X is not/;
    expect(() => preTokenizerFromJSON(config)).toThrow(message);
  });
});

describe('speed', () => {
  // A loose bound (typically ~0.3 s): it catches quadratic behavior without failing on a busy machine.
  it('pre-tokenizes 1 MB with the llama3 pre-tokenizer in a few hundred milliseconds', () => {
    const pt = preTokenizerFromJSON(preTokenizerConfig(loadTokenizerFiles('llama3').json))!;
    let text = '';
    for (let i = 0; text.length < 1 << 20; i++) text += randomText(i, 400) + ' ';
    pt.preTokenize([Piece.of(text.slice(0, 4096))]); // warm up the regex
    const t0 = performance.now();
    const words = pt.preTokenize([Piece.of(text)]);
    const ms = performance.now() - t0;
    expect(words.length).toBeGreaterThan(100_000);
    expect(ms).toBeLessThan(3000);
  });
});
