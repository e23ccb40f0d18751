// The tokenizer models (BPE, WordPiece, WordLevel, Unigram) against the Rust `tokenizers` library: the real
// models of ten tokenizer.json files on hard and random words, random synthetic models, and JSON errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenizerError } from '../../../src/errors.js';
import { toByteLevel } from '../../../src/tokenizer/bytes.js';
import type { Model } from '../../../src/tokenizer/components.js';
import { bpeFromJSON, modelFromJSON, WordLevel, WordPiece } from '../../../src/tokenizer/models/index.js';
import { WordCache } from '../../../src/tokenizer/models/shared.js';
import { rng } from '../../helpers/random.js';
import { codePointToUtf16Offsets, rust, rustTokenizerWith } from '../../helpers/rust-tokenizers.js';
import { loadTokenizerFiles, type TokenizerName } from '../../helpers/tokenizer-files.js';

type RustTokenizer = InstanceType<typeof rust.Tokenizer>;
type Tokens = { ids: number[]; offsets: Array<[number, number]> };

const LOAD_TIMEOUT = 60_000;

/** A Rust tokenizer that is `model` alone: no normalizer, pre-tokenizer, post-processor or added tokens. */
function rustModel(model: unknown): RustTokenizer {
  return rustTokenizerWith({ model });
}

function ours(model: Model, word: string): Tokens {
  const ids: number[] = [];
  const offsets: Array<[number, number]> = [];
  model.tokenize(word, { push: (id, start, end) => (ids.push(id), offsets.push([start, end])) });
  return { ids, offsets };
}

async function theirs(tokenizer: RustTokenizer, words: string[]): Promise<Tokens[]> {
  const encodings = await tokenizer.encodeBatch(words, { addSpecialTokens: false });
  return encodings.map((e, i) => ({ ids: e.getIds(), offsets: codePointToUtf16Offsets(words[i], e.getOffsets()) }));
}

/** Words whose tokens differ (at most `limit` of them, with both results), for a readable failure. */
async function differences(model: Model, tokenizer: RustTokenizer, words: string[], limit = 5) {
  const expected = await theirs(tokenizer, words);
  const bad: Array<{ word: string; ours: Tokens; rust: Tokens }> = [];
  words.forEach((word, i) => {
    const got = ours(model, word);
    const want = expected[i];
    if (JSON.stringify(got) !== JSON.stringify(want) && bad.length < limit) bad.push({ word, ours: got, rust: want });
  });
  return bad;
}

// ---------------------------------------------------------------------------------------------------------------
// Words

const HARD_WORDS: string[] = [
  // single characters
  'a', 'Z', '0', ' ', '\n', '\t', '.', "'", 'é', 'ß', 'ñ', '中', 'の', '한', 'ж', 'λ', 'ع', 'क', 'ก', '😀', '€',
  '\u00a0', '\u00ad', '\u200b', '\u200d', '\ufeff', '\u0000', '\u0007', '\u007f', '\ufffd',
  // words, long words, casing, apostrophes
  'the', 'The', 'THE', 'hello', 'world', "don't", "I'm", 'lowerUPPER', 'camelCaseIdentifier', 'snake_case_name',
  'antidisestablishmentarianism', 'supercalifragilisticexpialidocious', 'Pneumonoultramicroscopicsilicovolcanoconiosis',
  'Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  'abababababababab',
  // digits and numbers
  '1', '12', '123', '1234', '1234567890', '0000000000000000', '3.14159265358979', '1,000,000', '-42', '1e-10', '２０２４',
  // punctuation, code, urls, whitespace runs
  '...', '!!!', '?!', '——', '((()))', '{"a":1}', 'function(){return x;}', '<|endoftext|>', '<s>', '</s>', '[CLS]',
  '<unk>', 'https://example.com/path?q=1&r=2', 'user@example.com', '#hashtag', '@mention',
  '    ', '\n\n\n', '\r\n', ' \t ',
  // accents, composed and decomposed
  'naïve', 'café', 'résumé', 'Ångström', 'e\u0301', 'cafe\u0301', 'Zoë', 'façade', 'ﬁ', 'Ⅻ', 'œuvre',
  // mixed scripts
  'helloмир', 'abc中文def', 'Tokyo東京', 'ελληνικά', 'Привет', 'español', 'Français',
  // CJK, Japanese, Korean
  '我爱北京天安门', '日本語のテキスト', 'カタカナ', 'ひらがな', '한국어', '안녕하세요', '漢字', '𠀀𠀁𠀂',
  // Arabic, Hebrew, Hindi, Thai, others
  'مرحبا', 'بالعالم', 'שלום', 'नमस्ते', 'दुनिया', 'สวัสดีชาวโลก', 'ภาษาไทย', 'ሰላም', 'Γειά', 'ᐊᐃᐅ',
  // emoji: ZWJ sequences, skin tones, flags, keycaps
  '👨‍👩‍👧‍👦', '🏳️‍🌈', '👍🏽', '🇺🇳', '🇫🇷🇩🇪', '1️⃣', '❤️', '🤖🦄🌈', '😀😀😀',
  // characters no vocabulary has (byte fallback / unknown)
  '\u{10fffd}', '\u{e000}', '\u{f8ff}', '𓀀', '\u{1f9ff}', '\u{1d400}\u{1d401}', 'a\u{e000}b', 'x\u{10fffd}\u{10fffd}y',
  '\u{2a6d6}', 'ꙮ', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
];

const POOLS: string[][] = [
  'abcdefghijklmnopqrstuvwxyz',
  'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  '0123456789',
  ' .,;:!?\'"()[]{}<>-_=+*/\\|@#$%^&~`',
  'àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœ',
  'абвгдеёжзийклмнопрстуфхцчшщъыьэюя',
  'αβγδεζηθικλμνξοπρστυφχψω',
  '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心',
  'ぁあぃいぅうぇえぉおかがきぎくぐけげこごさざしじすずせぜそぞアイウエオカキクケコ',
  '가각간갇갈감갑값강개객거건걸검겁게겨격견결겸경계고곡곤곧골곰곱공과',
  'ابتثجحخدذرزسشصضطظعغفقكلمنهوي',
  'अआइईउऊऋएऐओऔकखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह्ािीुूृेैोौं',
  'กขฃคฅฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮะัาำิีึืุู็่้๊๋์',
  '\u0300\u0301\u0302\u0308\u0327\u200d\ufe0f',
  '\t\n\r\u000b\u000c\u0000\u0007\u001b\u007f\u0085\u00a0\u00ad\u2028\u200b\ufeff',
  '😀😂🤣❤👍🏽👨👩👧🎉🚀🔥💯🥰🤖🦄🌈🍕\u{1d400}\u{20000}\u{2a6d6}\u{1f9ff}\u{10fffd}\u{e000}\u{13000}\u{1f1fa}\u{1f1f3}',
].map((s) => Array.from(s));

/** A random word: mostly one script, sometimes switching; mostly short, sometimes long. */
function randomWord(next: () => number): string {
  const r = next();
  const length =
    r < 0.7 ? 1 + Math.floor(next() * 10) : r < 0.95 ? 10 + Math.floor(next() * 50) : 60 + Math.floor(next() * 300);
  let pool = POOLS[Math.floor(next() * POOLS.length)];
  let word = '';
  for (let i = 0; i < length; i++) {
    if (next() < 0.15) pool = POOLS[Math.floor(next() * POOLS.length)];
    word += pool[Math.floor(next() * pool.length)];
  }
  return word;
}

/** A word made of 1 to 4 vocabulary tokens, so that many merges apply. */
function vocabWord(model: Model, next: () => number, clean: (token: string) => string): string {
  const parts = 1 + Math.floor(next() * 4);
  let word = '';
  for (let i = 0; i < parts; i++) word += clean(model.idToToken(Math.floor(next() * model.vocabSize)) ?? '');
  return word;
}

function longWords(next: () => number): string[] {
  let mixed = '';
  while (mixed.length < 2000) mixed += randomWord(next);
  mixed = mixed.slice(0, 2000).replace(/[\ud800-\udbff]$/, ''); // no half of a surrogate pair at the cut
  return [mixed, 'a'.repeat(2000), 'ab'.repeat(1000), '9'.repeat(2000), '中文'.repeat(700)];
}

// ---------------------------------------------------------------------------------------------------------------
// Real models

/** How each model expects its words: what its pre-tokenizer would have made of the text. */
const REAL: Array<{ name: TokenizerName; input: (word: string) => string; clean?: (token: string) => string }> = [
  { name: 'llama2', input: (w) => w.replace(/ /g, '▁') },
  { name: 'mistral', input: (w) => w.replace(/ /g, '▁') },
  { name: 'gemma3', input: (w) => w.replace(/ /g, '▁') },
  { name: 'llama3', input: toByteLevel },
  { name: 'qwen3', input: toByteLevel },
  { name: 'gpt4o', input: toByteLevel },
  { name: 'deepseek_v3', input: toByteLevel },
  { name: 'gpt2', input: toByteLevel },
  { name: 'bert', input: (w) => w, clean: (t) => t.replace(/^##/, '') },
  { name: 't5', input: (w) => '▁' + w.replace(/ /g, '▁') },
];

describe.each(REAL)('$name model matches Rust', ({ name, input, clean = (t: string) => t }) => {
  let model: Model;
  let tokenizer: RustTokenizer;
  let modelJson: Record<string, unknown>;

  beforeAll(() => {
    modelJson = JSON.parse(loadTokenizerFiles(name).json).model;
    model = modelFromJSON(modelJson);
    tokenizer = rustModel(modelJson);
  }, LOAD_TIMEOUT);

  it('on hard words, as the pre-tokenizer gives them', async () => {
    const words = HARD_WORDS.flatMap((w) => [w, ` ${w}`, `${w}${w}`, w.toUpperCase()]).map(input);
    expect(words.length).toBeGreaterThan(400);
    expect(await differences(model, tokenizer, words)).toEqual([]);
  });

  it('on 2,000-character words', async () => {
    expect(await differences(model, tokenizer, longWords(rng(7)).map(input))).toEqual([]);
  });

  it('on 600 seeded random words and 600 words of vocabulary tokens', async () => {
    const next = rng(name.length * 1000 + name.charCodeAt(0));
    const words: string[] = [];
    for (let i = 0; i < 600; i++) words.push(input(randomWord(next)));
    for (let i = 0; i < 600; i++) words.push(vocabWord(model, next, clean));
    expect(await differences(model, tokenizer, words.filter((w) => w.length > 0))).toEqual([]);
  });

  it('on words it was not made for (raw text: unknown characters dropped, unknown or bytes)', async () => {
    const next = rng(99);
    const words = [...HARD_WORDS, ...Array.from({ length: 200 }, () => randomWord(next))];
    expect(await differences(model, tokenizer, words)).toEqual([]);
  });

  it('has the same vocabulary', () => {
    expect(model.vocabSize).toBe(tokenizer.getVocabSize(false));
    const next = rng(5);
    for (let i = 0; i < 2000; i++) {
      const id = Math.floor(next() * model.vocabSize);
      const token = tokenizer.idToToken(id);
      expect(model.idToToken(id) ?? null).toBe(token);
      if (token !== null) expect(model.tokenToId(token)).toBe(tokenizer.tokenToId(token));
    }
    expect(model.tokenToId('\u{10fffd}no such token')).toBeUndefined();
    expect(model.getVocab().size).toBe(model.vocabSize);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Synthetic models, random and hand-made, against Rust

/** A random BPE over a small alphabet: every merge is valid, and long runs make many ties. */
function randomBPE(seed: number, options: Record<string, unknown> = {}) {
  const next = rng(seed);
  const prefix = (options.continuing_subword_prefix as string | undefined) ?? '';
  const suffix = (options.end_of_word_suffix as string | undefined) ?? '';
  const alphabet = ['a', 'b', 'c', 'd', 'é', '😀'];
  const vocab: Record<string, number> = {};
  const add = (t: string) => (vocab[t] ??= Object.keys(vocab).length);
  for (const c of alphabet) {
    add(c);
    if (prefix) add(prefix + c);
    if (suffix) add(c + suffix);
    if (prefix && suffix) add(prefix + c + suffix);
  }
  const merges: string[][] = [];
  for (let i = 0; i < 60; i++) {
    const tokens = Object.keys(vocab);
    const a = tokens[Math.floor(next() * tokens.length)];
    const b = tokens[Math.floor(next() * tokens.length)];
    if (prefix && !b.startsWith(prefix)) continue; // Rust slices the prefix off the right token blindly
    if (suffix && a.endsWith(suffix)) continue;
    merges.push([a, b]);
    add(a + b.slice(prefix.length));
  }
  return { type: 'BPE', vocab, merges, ...options };
}

const byteToken = (b: number) => `<0x${b.toString(16).padStart(2, '0').toUpperCase()}>`;

function randomWords(seed: number, alphabet: string[], count: number, maxLength = 12): string[] {
  const next = rng(seed);
  return Array.from({ length: count }, () => {
    let w = '';
    const n = 1 + Math.floor(next() * maxLength);
    for (let i = 0; i < n; i++) w += alphabet[Math.floor(next() * alphabet.length)];
    return w;
  });
}

describe('BPE on synthetic models matches Rust', () => {
  const alphabet = ['a', 'b', 'c', 'd', 'é', '😀', 'x', '€'];
  const variants: Array<[string, Record<string, unknown>]> = [
    ['plain', {}],
    ['unk', { unk_token: 'a' }],
    ['fused unk', { unk_token: 'a', fuse_unk: true }],
    ['byte fallback', { byte_fallback: true }],
    ['prefix', { continuing_subword_prefix: '##' }],
    ['suffix', { end_of_word_suffix: '</w>' }],
    ['prefix and suffix', { continuing_subword_prefix: '##', end_of_word_suffix: '</w>', unk_token: 'b' }],
    ['ignore_merges', { ignore_merges: true }],
    ['dropout 0', { dropout: 0 }],
  ];
  for (const [label, options] of variants) {
    it(`random merges, ${label}`, async () => {
      for (let seed = 1; seed <= 8; seed++) {
        const json = randomBPE(seed, options);
        if (options.byte_fallback) {
          // a third of the byte tokens: some characters fall back to bytes, others to nothing
          for (let b = 0; b < 256; b += 3) json.vocab[byteToken(b)] = b + 1000;
        }
        const words = randomWords(seed, alphabet, 150, 16);
        expect(await differences(bpeFromJSON(json), rustModel(json), words), `seed ${seed}`).toEqual([]);
      }
    });
  }

  it('merges in "a b" form, with a "#version" line and a pair listed twice (its last rank counts)', async () => {
    const vocab = { a: 0, b: 1, c: 2, ab: 3, bc: 4, abc: 5 };
    const json = { type: 'BPE', vocab, merges: ['#version: 0.2', 'a b', 'b c', 'a b', 'ab c'] };
    const model = bpeFromJSON(json);
    expect(ours(model, 'abc')).toEqual({ ids: [0, 4], offsets: [[0, 1], [1, 3]] });
    expect(await differences(model, rustModel(json), ['abc', 'ab', 'cab', 'abcabc'])).toEqual([]);
  });

  it('unknown characters: fused or not, dropped without unk_token, unk_token missing from the vocabulary', async () => {
    const vocab = { '<unk>': 0, a: 1, b: 2, ab: 3 };
    const words = ['axxb', 'x€b', 'a😀😀', 'xab', 'axb', 'ab'];
    for (const extra of [{ unk_token: '<unk>' }, { unk_token: '<unk>', fuse_unk: true }, {}]) {
      const json = { type: 'BPE', vocab, merges: ['a b'], ...extra };
      expect(await differences(bpeFromJSON(json), rustModel(json), words)).toEqual([]);
    }
    // Without unk_token, unknown characters vanish and the ones around them meet (as in Rust).
    expect(ours(bpeFromJSON({ type: 'BPE', vocab, merges: ['a b'] }), 'axb')).toEqual({ ids: [3], offsets: [[0, 2]] });
    const missing = bpeFromJSON({ type: 'BPE', vocab, merges: ['a b'], unk_token: '<zzz>' });
    expect(ours(missing, 'ab').ids).toEqual([3]);
    expect(() => ours(missing, 'axb')).toThrow(TokenizerError);
  });

  it('byte fallback when some byte tokens are missing (pending unknown token order, as in Rust)', async () => {
    const vocab = { '<unk>': 0, a: 1, b: 2, '<0xE2>': 3, '<0x82>': 4, '<0xAC>': 5, '<0x78>': 6 };
    const words = ['a€b', 'x€b', 'y€b', 'yy€€yb', 'ay', '€', 'y', '😀€a'];
    for (const extra of [{}, { fuse_unk: true }]) {
      const json = { type: 'BPE', vocab, merges: [], unk_token: '<unk>', byte_fallback: true, ...extra };
      expect(await differences(bpeFromJSON(json), rustModel(json), words)).toEqual([]);
    }
    // All three byte tokens of "€" span the character.
    const model = bpeFromJSON({ type: 'BPE', vocab, merges: [], unk_token: '<unk>', byte_fallback: true });
    expect(ours(model, 'a€')).toEqual({ ids: [1, 3, 4, 5], offsets: [[0, 1], [1, 2], [1, 2], [1, 2]] });
  });

  it('ignore_merges keeps a word in the vocabulary whole', () => {
    const vocab = { a: 0, b: 1, c: 2, ab: 3, abc: 4, bc: 5 };
    const merges = ['b c', 'a b'];
    expect(ours(bpeFromJSON({ type: 'BPE', vocab, merges }), 'abc').ids).toEqual([0, 5]);
    expect(ours(bpeFromJSON({ type: 'BPE', vocab, merges, ignore_merges: true }), 'abc').ids).toEqual([4]);
  });

  it('gives the same tokens on a cached second call, and for words past the cache length limit', () => {
    const model = bpeFromJSON(randomBPE(3));
    for (const w of ['abcabc', 'a'.repeat(300), 'ab😀'.repeat(100)]) expect(ours(model, w)).toEqual(ours(model, w));
  });

  it('takes a lone surrogate (which Rust strings cannot hold) as U+FFFD for byte fallback', () => {
    const vocab = { '<unk>': 0, a: 1, '<0xEF>': 2, '<0xBF>': 3, '<0xBD>': 4 };
    const model = bpeFromJSON({ type: 'BPE', vocab, merges: [], unk_token: '<unk>', byte_fallback: true });
    expect(ours(model, 'a\ud800a')).toEqual({ ids: [1, 2, 3, 4, 1], offsets: [[0, 1], [1, 2], [1, 2], [1, 2], [2, 3]] });
  });
});

/** A random Unigram with integer scores, so that equal-score segmentations (ties) are common. */
function randomUnigram(seed: number, options: Record<string, unknown>) {
  const next = rng(seed);
  const alphabet = ['a', 'b', 'c', 'é', '😀'];
  const pieces = new Set<string>(['<unk>', 'a', 'b', 'c']);
  while (pieces.size < 40) {
    let p = '';
    const n = 1 + Math.floor(next() * 4);
    for (let i = 0; i < n; i++) p += alphabet[Math.floor(next() * alphabet.length)];
    pieces.add(p);
  }
  const vocab = [...pieces].map((p) => [p, -Math.floor(next() * 6)]);
  vocab.push(['<0x78>', -3], ['<0xF0>', -3], ['<0x9F>', -3], ['<0x98>', -3], ['<0x80>', -3]);
  return { type: 'Unigram', vocab, unk_id: 0, ...options };
}

describe('Unigram on synthetic models matches Rust', () => {
  const alphabet = ['a', 'b', 'c', 'é', '😀', 'x', '€', 'y'];
  for (const [label, options] of [
    ['with unk', {}],
    ['with byte fallback', { byte_fallback: true }],
  ] as const) {
    it(`random pieces and tied scores, ${label}`, async () => {
      for (let seed = 1; seed <= 10; seed++) {
        const json = randomUnigram(seed, options);
        const words = randomWords(seed, alphabet, 150, 14);
        expect(await differences(modelFromJSON(json), rustModel(json), words), `seed ${seed}`).toEqual([]);
      }
    });
  }

  it('fuses unknown characters, also with the unknown piece itself; fails without unk_id', async () => {
    const vocab = [['<unk>', 0], ['a', -1], ['b', -2], ['ab', -2.5], ['<0x78>', -3], ['c', -1.5]];
    const json = { type: 'Unigram', vocab, unk_id: 0 };
    const words = ['abab', 'axxb', 'x€b', 'c<unk>x', 'xx'];
    expect(await differences(modelFromJSON(json), rustModel(json), words)).toEqual([]);
    expect(ours(modelFromJSON(json), 'axxb')).toEqual({ ids: [1, 0, 2], offsets: [[0, 1], [1, 3], [3, 4]] });
    const noUnk = modelFromJSON({ type: 'Unigram', vocab });
    expect(ours(noUnk, 'abab').ids).toEqual([3, 3]);
    expect(() => ours(noUnk, 'axb')).toThrow(TokenizerError);
  });
});

describe('WordPiece and WordLevel match Rust', () => {
  const vocab = { '[UNK]': 0, a: 1, b: 2, ab: 3, '##a': 4, '##b': 5, '##ab': 6, '😀': 7, '##😀': 8, '##é': 9, abab: 10 };

  const fields = { vocab, unk_token: '[UNK]', continuing_subword_prefix: '##' };

  it('WordPiece: longest match first, whole word unknown on failure or past max_input_chars_per_word', async () => {
    for (const max of [100, 3]) {
      const json = { type: 'WordPiece', ...fields, max_input_chars_per_word: max };
      const words = [...randomWords(4, ['a', 'b', '😀', 'é', 'x'], 300, 8), 'ababab', 'é', 'a😀😀b'];
      expect(await differences(modelFromJSON(json), rustModel(json), words)).toEqual([]);
    }
    const model = modelFromJSON({ ...fields, max_input_chars_per_word: 100 });
    expect(model).toBeInstanceOf(WordPiece);
    expect(ours(model, 'abba')).toEqual({ ids: [3, 5, 4], offsets: [[0, 2], [2, 3], [3, 4]] });
    expect(ours(model, 'abx')).toEqual({ ids: [0], offsets: [[0, 3]] });
  });

  it('WordLevel: the word or the unknown token', async () => {
    const json = { type: 'WordLevel', vocab, unk_token: '[UNK]' };
    const model = modelFromJSON(json);
    expect(model).toBeInstanceOf(WordLevel);
    expect(await differences(model, rustModel(json), ['a', 'ab', 'abab', 'x', '😀', 'ba'])).toEqual([]);
    expect(ours(model, '😀x')).toEqual({ ids: [0], offsets: [[0, 3]] });
    expect(model.vocabSize).toBe(11);
    expect(model.idToToken(7)).toBe('😀');
    expect(() => ours(modelFromJSON({ type: 'WordLevel', vocab, unk_token: '<nope>' }), 'x')).toThrow(TokenizerError);
  });
});

describe('WordCache', () => {
  it('keeps at most its capacity, dropping the oldest word, and skips long words', () => {
    const cache = new WordCache(2, 4);
    const tokens = new Uint32Array([1, 0, 1]);
    cache.set('a', tokens);
    cache.set('b', tokens);
    cache.set('c', tokens);
    cache.set('long', tokens);
    const got = ['a', 'b', 'c', 'long'].map((w) => cache.get(w));
    expect(got).toEqual([undefined, tokens, tokens, undefined]);
  });
});

describe('model without "type", as Rust reads it', () => {
  const vocab = { a: 0, b: 1, ab: 2, '<unk>': 3 };
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['BPE when it has merges', { vocab, merges: ['a b'] }, 'BPE'],
    [
      'WordPiece when it has the four WordPiece fields',
      { vocab, unk_token: '<unk>', continuing_subword_prefix: '##', max_input_chars_per_word: 9 },
      'WordPiece',
    ],
    ['WordLevel with only vocab and unk_token', { vocab, unk_token: '<unk>' }, 'WordLevel'],
    ['WordLevel when its merges are bad', { vocab, merges: ['a zz'], unk_token: '<unk>' }, 'WordLevel'],
    ['Unigram when vocab is a list', { vocab: [['<unk>', 0], ['a', -1]], unk_id: 0 }, 'Unigram'],
  ];
  for (const [label, json, type] of cases) {
    it(label, async () => {
      const model = modelFromJSON(json);
      expect(model.constructor.name).toBe(type);
      expect(await differences(model, rustModel(json), ['ab', 'abba', 'x'])).toEqual([]);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// JSON errors

describe('malformed model JSON: TokenizerError naming the path, where Rust fails too', () => {
  const V = { a: 0, b: 1, ab: 2 };
  const bpe = (fields: object) => ({ type: 'BPE', vocab: V, merges: [], ...fields });
  const wordPiece = (fields: object) => ({ type: 'WordPiece', vocab: V, unk_token: 'a', ...fields });
  const twoTokens = 'must be two tokens separated by one space';
  const cases: Array<[string, unknown, string]> = [
    ['not an object', 'BPE', 'model must be an object'],
    [
      'unknown type',
      bpe({ type: 'Foo' }),
      'model.type "Foo" is not a supported model (supported: BPE, WordPiece, WordLevel, Unigram)',
    ],
    ['no type, matches nothing', { vocab: V }, 'model has no "type" and matches no model'],
    ['BPE without merges', { type: 'BPE', vocab: V }, 'model must have both "vocab" and "merges"'],
    ['vocab not an object', bpe({ vocab: [] }), 'model.vocab must be an object'],
    ['negative id', bpe({ vocab: { a: -1 } }), 'model.vocab["a"] must be a token id'],
    ['fractional id', bpe({ vocab: { a: 1.5 } }), 'model.vocab["a"] must be a token id'],
    ['merges not an array', bpe({ merges: 'a b' }), 'model.merges must be an array'],
    ['merge with three parts', bpe({ merges: ['a b', 'a b ab'] }), `model.merges[1] ${twoTokens}`],
    ['merge without a space', bpe({ merges: ['ab'] }), `model.merges[0] ${twoTokens}`],
    ['merge not a string', bpe({ merges: ['a b', 5] }), 'model.merges[1] must be a string'],
    ['merges of mixed forms', bpe({ merges: [['a', 'b'], 'a b'] }), 'model.merges[1] must be a pair of tokens'],
    ['merge pair of three', bpe({ merges: [['a', 'b', 'c']] }), 'model.merges[0] must be a pair of tokens'],
    ['merge token not in vocab', bpe({ merges: ['a b', 'a c'] }), 'model.merges[1] merges "c", which is not in'],
    ['merge result not in vocab', bpe({ merges: ['b a'] }), 'model.merges[0] makes "ba", which is not in'],
    ['dropout above 1', bpe({ dropout: 1.5 }), 'model.dropout must be null or a number from 0 to 1'],
    ['fuse_unk not a boolean', bpe({ fuse_unk: 'yes' }), 'model.fuse_unk must be true or false'],
    ['unk_token not a string', bpe({ unk_token: 3 }), 'model.unk_token must be a string or null'],
    [
      'WordPiece without a prefix',
      wordPiece({ max_input_chars_per_word: 5 }),
      'model.continuing_subword_prefix is missing',
    ],
    [
      'WordPiece max_input_chars_per_word null',
      wordPiece({ continuing_subword_prefix: '##', max_input_chars_per_word: null }),
      'model.max_input_chars_per_word must be a number, got null',
    ],
    ['WordLevel without unk_token', { type: 'WordLevel', vocab: V }, 'model.unk_token must be a string'],
    ['Unigram vocab not a list', { type: 'Unigram', vocab: V }, 'model.vocab must be an array'],
    ['Unigram entry not a pair', { type: 'Unigram', vocab: [['a', 0], ['b']] }, 'model.vocab[1] must be a [piece,'],
    ['Unigram unk_id past the end', { type: 'Unigram', vocab: [['a', 0]], unk_id: 1 }, 'model.unk_id is 1, past'],
    ['Unigram empty, with unk_id', { type: 'Unigram', vocab: [], unk_id: 0 }, 'model.unk_id is 0, past the end'],
  ];
  for (const [label, json, message] of cases) {
    it(label, () => {
      expect(() => modelFromJSON(json)).toThrow(TokenizerError);
      expect(() => modelFromJSON(json)).toThrow(`tokenizer.json: ${message}`);
      expect(() => rustModel(json)).toThrow();
    });
  }

  it('names the path it was given', () => {
    const json = { type: 'BPE', vocab: V, merges: ['a c'] };
    expect(() => modelFromJSON(json, 'x.model')).toThrow('tokenizer.json: x.model.merges[0]');
  });
});
