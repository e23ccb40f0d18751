// Translation of the Rust library's Oniguruma patterns, checked against the Rust library itself: a Split
// pre-tokenizer with the pattern shows exactly which strings Oniguruma matches.
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../../../src/errors.js';
import { caseVariants, compileRustRegex, escapeRegex, findMatches } from '../../../src/tokenizer/regex.js';
import { HARD_STRINGS } from '../../helpers/hard-strings.js';
import { rng } from '../../helpers/random.js';
import { randomText } from '../../helpers/random-text.js';
import { codePointToUtf16Offsets, rust } from '../../helpers/rust-tokenizers.js';
import { loadTokenizerFiles } from '../../helpers/tokenizer-files.js';

/** Oniguruma's matches of `pattern` in `text` as flat UTF-16 [start, end, ...] (empty matches are not visible). */
function onigMatches(pattern: string, texts: readonly string[]): number[][] {
  const config = { type: 'Split', pattern: { Regex: pattern }, behavior: 'Removed', invert: true };
  const json = {
    version: '1.0',
    added_tokens: [],
    pre_tokenizer: config,
    model: { type: 'WordLevel', vocab: {}, unk_token: '[UNK]' },
  };
  const pt = rust.Tokenizer.fromString(JSON.stringify(json)).getPreTokenizer()!;
  return texts.map((text) => codePointToUtf16Offsets(text, pt.preTokenizeString(text).map((w) => w[1])).flat());
}

function ourMatches(pattern: string, texts: readonly string[]): number[][] {
  const re = compileRustRegex(pattern, 'pattern');
  return texts.map((text) => {
    const m = findMatches(re, text);
    const nonEmpty: number[] = [];
    for (let i = 0; i < m.length; i += 2) if (m[i + 1] > m[i]) nonEmpty.push(m[i], m[i + 1]);
    return nonEmpty;
  });
}

/** The texts on which the two engines disagree (at most 3, with both results). */
function disagreements(pattern: string, texts: readonly string[]): string[] {
  const want = onigMatches(pattern, texts);
  const got = ourMatches(pattern, texts);
  const out: string[] = [];
  texts.forEach((text, i) => {
    if (want[i].join() !== got[i].join() && out.length < 3) {
      out.push(`${JSON.stringify(text)}: oniguruma [${want[i]}] ours [${got[i]}]`);
    }
  });
  return out;
}

// Text built to hit the corners of the real patterns: contractions in any case (with ſ and the Kelvin sign,
// which fold to s and k), whitespace runs, digit runs, marks, scripts, emoji sequences, characters added in
// Unicode 17 and ʕ (whose category changed then).
const FRAGMENTS = [
  "'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'lL", "'d", "'D", "'ſ",
  "'\u212a", "'x", "'", "''", '’s', "DON'T", "I'M", "you'Re", "they'VE", "it'll", ' ', '  ', '   ', '\t', '\t ', '\n',
  '\n\n', '\r\n', '\r', ' \r\n', '\u00a0', '\u3000', '\u2028', '\u2029', '\u0085', '\ufeff', '\u000b', '\u000c',
  '\u200b', '\u200d', '\u1680', '\u202f', '0', '12', '123', '1234', '12345678', '١٢٣', '１２', '½', '²', 'Ⅻ', 'a', 'Z',
  'word', 'Word', 'WORD', 'camelCase', 'HTTPServer', 'naïve', 'e\u0301', 'Ǆǅǆ', 'ß', 'İı', 'ΣΑΣ', 'ς', '\u0345',
  '中文', 'ひらがな', 'カタカナー', '한국어', 'العربية', 'עברית', 'हिन्दी', 'ไทย', 'Ελληνικά', 'Русский',
  '😀', '👍🏽', '👨‍👩‍👧', '🇯🇵', '1️⃣', '.', ',', '!', '?', '...', '—', '(', ')', '[', ']', '{', '}', '<', '>',
  '/', '\\',
  '|', '#', '$', '%', '^', '&', '*', '_', '-', '+', '=', '~', '`', '"', '@', ':', ';', 'https://example.com/a?b=c',
  'x += 1;', 'fn(a, b)', '\u088f', '\u0c5c', '\u{10940}', '\u{11de0}', '\u{16ea0}', '\u{323b0}', '\u2b96', '\u0295',
  '\u{1d400}', '\u{e0041}', '\u{10ffff}',
];

function fragmentText(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 24);
  for (let i = 0; i < n; i++) s += FRAGMENTS[Math.floor(r() * FRAGMENTS.length)];
  return s;
}

/** At least 1000 seeded random strings: half from the shared generator, half from the fragments above. */
function randomStrings(seed: number, count = 1000): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(i % 2 === 0 ? randomText(seed * 10007 + i, 120) : fragmentText(r));
  return out;
}

const HARD = [...HARD_STRINGS, ...FRAGMENTS, FRAGMENTS.join(''), FRAGMENTS.join(' ')];

/** Every Split pattern of the real files, the GPT-2 pattern of ByteLevel and the Whitespace pattern. */
function realPatterns(): string[] {
  const found = new Set<string>();
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const regex = (o.pattern as { Regex?: unknown } | undefined)?.Regex;
      if (o.type === 'Split' && typeof regex === 'string') found.add(regex);
      Object.values(o).forEach(visit);
    }
  };
  for (const name of ['llama3', 'qwen3', 'gpt4o', 'deepseek_v3'] as const) {
    visit(JSON.parse(loadTokenizerFiles(name).json).pre_tokenizer);
  }
  // GPT-2 (ByteLevel), CLIP, Mistral Tekken and BLOOM.
  found.add("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
  found.add("'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+");
  found.add(
    '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|' +
      '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|' +
      '\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
  );
  found.add(' ?[^(\\s|[.,!?…。，、।۔،])]+');
  return [...found];
}

describe('the patterns of real tokenizers match as in Oniguruma', () => {
  const patterns = realPatterns();

  it('finds the patterns of llama3, qwen3, gpt4o and deepseek_v3', () => {
    expect(patterns.length).toBeGreaterThanOrEqual(9);
  });

  patterns.forEach((pattern, i) => {
    it(`${pattern.slice(0, 60)}… on hard strings and 1000 random strings`, () => {
      expect(disagreements(pattern, HARD)).toEqual([]);
      expect(disagreements(pattern, randomStrings(i + 1))).toEqual([]);
    });
  });

  it('never backtracks badly: 20,000-character runs take well under a second', () => {
    const units = [' ', 'a', 'A', '1', '\n', ' \n', ' a', 'a1', "'", '.', '中', '\u0301', 'aA', ' .', '\t \r\n'];
    const runs = units.map((s) => s.repeat(Math.ceil(20000 / s.length)));
    runs.push(`${' '.repeat(20000)}x`, `${'A'.repeat(20000)}1`, `${'a'.repeat(20000)}'`);
    for (const pattern of patterns) {
      const re = compileRustRegex(pattern, 'pattern');
      for (const text of runs) {
        const t0 = performance.now();
        findMatches(re, text);
        expect(performance.now() - t0, `${JSON.stringify(pattern)} on ${JSON.stringify(text.slice(0, 6))}…`).toBeLessThan(1000);
      }
      expect(disagreements(pattern, runs)).toEqual([]);
    }
  });
});

describe('character classes agree with Oniguruma on every sampled code point', () => {
  // All of planes 0 and 1, every 61st code point above, the large Unicode 17 CJK block and the tags.
  const cps: number[] = [];
  for (let c = 0; c <= 0x10ffff; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    if (c < 0x20000 || c % 61 === 0 || (c >= 0x323b0 && c <= 0x33479 && c % 7 === 0) || (c >= 0xe0000 && c < 0xe0200)) cps.push(c);
  }
  let all = '';
  for (let i = 0; i < cps.length; i += 10000) all += String.fromCodePoint(...cps.slice(i, i + 10000));

  const classes = [
    '\\s', '\\S', '\\w', '\\W', '[\\w]', '[\\W]', '\\d', '\\D', '\\h', '\\p{L}', '\\p{N}', '\\p{P}', '\\p{S}', '\\p{M}',
    '\\p{Lu}', '\\p{Ll}', '\\p{Lo}', '\\P{L}', '\\p{^N}', '\\p{Alpha}', '\\p{Word}', '\\p{Punct}', '\\p{Greek}',
    '[[:punct:]]', '[[:alnum:]]', '[[:^space:]]', '[^\\r\\n\\p{L}\\p{N}]', '[^\\s\\p{L}\\p{N}]', '[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]',
    '[\\p{L}&&[^\\p{Lu}]]', '(?i)[a-z]', '(?i)[^\\p{L}]', '(?i)[\\p{M}]', '.', '[^(\\s|[.,!?…。，、।۔،])]',
  ];
  for (const cls of classes) {
    it(cls, () => {
      const [want] = onigMatches(`(?:${cls})+`, [all]);
      const re = compileRustRegex(`(?:${cls})+`, 'pattern');
      expect(findMatches(re, all).join()).toBe(want.join());
    });
  }
});

describe('case-insensitive letters fold as in Oniguruma', () => {
  it('every cased character matches exactly the characters Oniguruma folds it with', () => {
    const cased: number[] = [];
    for (let c = 0; c < 0x1e944; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      const s = String.fromCodePoint(c);
      if (s.toLowerCase() !== s || s.toUpperCase() !== s) cased.push(c);
    }
    // The variants form classes: each member of a class has the same class.
    const key = (cps: number[]) => [...cps].sort((a, b) => a - b).join();
    for (const c of cased) for (const v of caseVariants(c)) expect(key(caseVariants(v)), c.toString(16)).toBe(key(caseVariants(c)));
    // Batches of characters, cut two different ways so that two batches rarely share a pair of characters:
    // what (?i:[batch]) matches must be the union of their classes. One Oniguruma call per batch. Characters
    // that also fold to a string (ß ~ "ss", ﬆ ~ "st") get a batch of their own, as such a match would hide the
    // single letters of the batch.
    const text = String.fromCodePoint(...cased);
    const multi = (c: number) => {
      const s = String.fromCodePoint(c);
      return [...s.toUpperCase()].length > 1 || [...s.toLowerCase()].length > 1;
    };
    const simple = cased.filter((c) => !multi(c));
    const batches: number[][] = cased.filter(multi).map((c) => [c]);
    for (let i = 0; i < simple.length; i += 40) batches.push(simple.slice(i, i + 40));
    for (let k = 0; k < 40; k++) batches.push(simple.filter((_, i) => i % 40 === k));
    const patterns = batches.map((b) => `(?i:[${b.map((c) => `\\x{${c.toString(16)}}`).join('')}])`);
    const wrong: string[] = [];
    batches.forEach((batch, i) => {
      const [m] = onigMatches(patterns[i], [text]);
      const want = new Set<number>();
      // A match of two letters is a multi-character fold (ﬆ ~ "st"), which the translation leaves out.
      for (let j = 0; j < m.length; j += 2) {
        const match = text.slice(m[j], m[j + 1]);
        if ([...match].length === 1) want.add(match.codePointAt(0)!);
      }
      const got = new Set(batch.flatMap((c) => caseVariants(c)));
      if (want.size !== got.size || [...want].some((x) => !got.has(x))) wrong.push(batch.map((c) => c.toString(16)).join(' '));
    });
    expect(wrong).toEqual([]);
  });
});

describe('Oniguruma syntax', () => {
  const cases: Array<[string, string[]]> = [
    ["(?i:'s|'t|'re)", ["it's IT'S it'ſ DON'T you'Re 'RE"]],
    ['a(?i)b|c', ['ab aB c C AB']],
    ['(?i)a(?-i)a|x', ['AaAA X x']],
    ['(?i:k)', ['K k \u212a']],
    ['a{,2}', ['aaaaa']],
    ['a{2}+', ['aaaaa']],
    ['a{2,1}a', ['aa aaa']],
    ['a{2}?', ['aaaaa']],
    ['a{1,2}?b', ['aab']],
    ['a{,}|x{ 1}|y{1,2,3}|{|}|]', ['a{,} x{ 1} y{1,2,3} { } ]']],
    ['a**', ['aaa']],
    ['a*+a|b++c|(?>x+)x', ['aaa bbc xxx']],
    ['[]a]|[^]b]', [']a]b c']],
    ['[a-c-e]', ['abcde-']],
    ['[\\w-]', ['a-b']],
    ['[a-z&&[^aeiou]]+|[[:digit:]&&[^5]]', ['hello 12345']],
    ['^a|b$', ['a\nab\r\nb ab']],
    ['\\Aa|a\\z|x\\Z', ['aaxa x\n']],
    ['\\R', ['a\r\nb\nc\rd\u2028e\u0085']],
    ['\\bw\\B|\\b\\d', ['w ww ²w 5 x5']],
    ['a.b|(?m:c.d)', ['a\nb a\rb c\nd']],
    ['\\N|\\O', ['a\n']],
    ['(?x) a b # comment\n c', ['abc a b c']],
    ['(?x)[ a]b', ['a b ab']],
    ['a(?#note)b', ['ab']],
    ['\\x41\\x{1F600}\\u00e9\\101\\0\\cA\\e\\t|\\o{102}|\\C-b', ['A😀éA\u0000\u0001\u001b\t B \u0002']],
    ["\\'|\\-|\\,|\\q|\\\"|\\ ", ["' - , q \" "]],
    ['\\p{^L}+|\\P{N}+|\\p{Zinh}', ['a1 \u0301']],
    ['(?<=a)b|(?<!c)d|x(?=y)|x(?!z)', ['ab cd ed xy xz xw']],
    ['(?<name>ab)+|(?:cd)+|(ef)+', ['ababcdcdefef']],
    ['x*', ['axxb']],
    ['', ['abc']],
    ['(?=a)|b', ['abab']],
    ['[[:alpha:][:digit:]]+|[[:^alpha:]]', ['ab12 !']],
    ['\\h+\\H', ['0x1fZ']],
    ['(a(?i)b|c)d', ['abd aBd cd Cd ad']],
    ['(?i)[\\p{Lu}]+|(?i:[^\\p{Ll}])|[\\p{Lu}]', ['aBc DEF 1 ǅ \u0345']],
    ['(?i)[[^a]]|(?i)[x&&[^X]]|(?i)[^\\w&&[^a]]', ['aAbxX!']],
    ['a\\n^|^b', ['a\nb\na\n']],
    // V8 (Node 20) gets [^…] inside a repeated group wrong in `v` mode, and [^] after a repeated lookahead
    ['(?:b[^a])+|(?:c.)+|(?:1\\z){,2}', ['bcbd cxcy _1B 1']],
    ['(?:a$){1,2}|(?:x(?=[^!]))+', ['a!a\nxx!']],
  ];
  for (const [pattern, texts] of cases) {
    it(JSON.stringify(pattern), () => {
      expect(disagreements(pattern, texts)).toEqual([]);
    });
  }

  it('skips an empty match where the previous match ended, as the Rust library does', () => {
    const re = compileRustRegex('a*', 'pattern');
    expect(findMatches(re, 'baac')).toEqual([0, 0, 1, 3, 4, 4]);
    expect(findMatches(compileRustRegex('', 'pattern'), '😀a')).toEqual([0, 0, 2, 2, 3, 3]);
  });
});

describe('errors', () => {
  const rejected: Array<[string, RegExp]> = [
    ['(a', /unmatched parenthesis/],
    ['a)', /unmatched '\)'/],
    ['[a', /premature end of char-class/],
    ['[]', /empty char-class/],
    ['*a', /target of repeat operator is not specified/],
    ['a|+', /target of repeat operator is not specified/],
    ['[[:foo:]]', /invalid POSIX bracket type/],
    ['\\p{Foo}', /unknown character property/],
    ['[z-a]', /empty range/],
    ['[\\w-z]', /unmatched range specifier/],
    ['(?q)', /undefined group option/],
    ['\\u12', /invalid code point value/],
    ['a{100001}', /too big number for repeat range/],
    ['\\', /end pattern at escape/],
    ['(?=a)*', /target of repeat operator is invalid/],
    ['(?:^|x)+', /target of repeat operator is invalid/],
  ];
  for (const [pattern, message] of rejected) {
    it(`rejects ${JSON.stringify(pattern)} like Oniguruma`, () => {
      expect(() => compileRustRegex(pattern, 'normalizer.pattern.Regex')).toThrow(TokenizerError);
      const prefix = /^tokenizer\.json: normalizer\.pattern\.Regex is not a supported regular expression/;
      expect(() => compileRustRegex(pattern, 'normalizer.pattern.Regex')).toThrow(prefix);
      expect(() => compileRustRegex(pattern, 'normalizer.pattern.Regex')).toThrow(message);
      expect(() => onigMatches(pattern, ['a'])).toThrow();
    });
  }

  const unsupported: Array<[string, RegExp]> = [
    ['(a)\\1', /backreferences/],
    ['(?<n>a)\\k<n>', /backreferences/],
    ['(?<n>a)\\g<n>', /subexpression calls/],
    ['a\\Kb', /\\K/],
    ['\\X', /\\X/],
    ['\\Ga', /\\G/],
    ['(?~ab)', /absent operator/],
    ['(?(1)a|b)', /conditional/],
    ['\\p{InBasicLatin}', /Unicode blocks/],
    ['(?<=a++)b', /inside a lookbehind/],
    ['(?:|a)*', /can match the empty string before a longer match/],
    ['(?:a*?b?)+', /can match the empty string before a longer match/],
  ];
  for (const [pattern, message] of unsupported) {
    it(`says ${JSON.stringify(pattern)} is not supported`, () => {
      expect(() => compileRustRegex(pattern, 'pre_tokenizer.pattern.Regex')).toThrow(TokenizerError);
      expect(() => compileRustRegex(pattern, 'pre_tokenizer.pattern.Regex')).toThrow(message);
    });
  }
});

describe('escapeRegex', () => {
  it('gives a pattern that matches the text literally, in JavaScript and through the translation', () => {
    const text = "a.b*c+d?e^f$g{h}i(j)k[l]m|n\\o/p-q'r\"s#t&u~v ,w";
    expect(new RegExp(escapeRegex(text), 'u').exec(`x${text}x`)?.index).toBe(1);
    expect(new RegExp(escapeRegex(text), 'v').exec(`x${text}x`)?.index).toBe(1);
    expect(findMatches(compileRustRegex(escapeRegex(text), 'pattern'), `x${text}x`)).toEqual([1, 1 + text.length]);
  });
});
