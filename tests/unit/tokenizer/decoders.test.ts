// Decoders against the Rust `tokenizers` library: the real decoders of every tokenizer.json we test on, over
// seeded random token sequences drawn from their vocabularies, and other configurations over the same tokens.
import { describe, expect, it } from 'vitest';
import { decoderFromJSON, wordPieceCleanup } from '../../../src/tokenizer/decoders.js';
import { TokenizerError } from '../../../src/errors.js';
import { rng } from '../../helpers/random.js';
import { rust, rustTokenizerWith } from '../../helpers/rust-tokenizers.js';
import { TOKENIZER_NAMES, loadTokenizerFiles, type TokenizerName } from '../../helpers/tokenizer-files.js';

const SEQUENCES = 500; // random token lists per decoder configuration
const MAX_TOKENS = 24;
const TIMEOUT = 60_000;

/** The Rust decoder for a decoder config, through a tokenizer.json that has nothing else. */
function rustDecoder(config: unknown): { decode(tokens: string[]): string } {
  return rustTokenizerWith({ decoder: config }).getDecoder()!;
}

function ours(config: unknown): (tokens: string[]) => string {
  const decoder = decoderFromJSON(config)!;
  return (tokens) => decoder.decodeChain(tokens).join('');
}

interface Vocab {
  name: TokenizerName;
  decoder: unknown;
  tokens: string[];
  /** Tokens that exercise the corner cases: byte tokens, "▁"-only, "##" pieces, partial UTF-8, whitespace. */
  odd: string[];
}

const vocabs = new Map<TokenizerName, Vocab>();

function vocab(name: TokenizerName): Vocab {
  let v = vocabs.get(name);
  if (v) return v;
  const json = JSON.parse(loadTokenizerFiles(name).json);
  const model = json.model.vocab;
  const tokens: string[] = Array.isArray(model) ? model.map((e: [string, number]) => e[0]) : Object.keys(model);
  for (const t of json.added_tokens) tokens.push(t.content);
  const odd = tokens.filter(
    (t) =>
      /^<0x[0-9A-F]{2}>$/.test(t) ||
      /^[▁ Ġ]+$/.test(t) ||
      t.startsWith('##') ||
      /[\u0080-\u00bf\u00c2-\u00f4\u0100-\u0143]$/.test(t) ||
      /[\ufffd\ufeff]/.test(t),
  );
  v = { name, decoder: json.decoder, tokens, odd };
  vocabs.set(name, v);
  return v;
}

/** `count` seeded random token lists from `v`, a third of the picks from the corner-case tokens. */
function randomTokenLists(v: Vocab, seed: number, count = SEQUENCES, extra: string[] = []): string[][] {
  const r = rng(seed);
  const pick = (list: string[]) => list[Math.floor(r() * list.length)];
  const lists: string[][] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(r() * (MAX_TOKENS + 1));
    const list: string[] = [];
    for (let k = 0; k < n; k++) {
      const u = r();
      if (extra.length > 0 && u < 0.15) list.push(pick(extra));
      else if (v.odd.length > 0 && u < 0.4) list.push(pick(v.odd));
      else list.push(pick(v.tokens));
    }
    lists.push(list);
  }
  return lists;
}

/** Decodes every list both ways; returns the first few mismatches. */
function compare(config: unknown, lists: string[][]): Array<{ tokens: string[]; rust: string; ours: string }> {
  const theirs = rustDecoder(config);
  const mine = ours(config);
  const bad = [];
  for (const tokens of lists) {
    const expected = theirs.decode(tokens);
    const got = mine(tokens);
    if (got !== expected) bad.push({ tokens, rust: expected, ours: got });
    if (bad.length >= 5) break;
  }
  return bad;
}

describe('real decoders match Rust on random token sequences', () => {
  for (const name of TOKENIZER_NAMES) {
    it(name, { timeout: TIMEOUT }, () => {
      const v = vocab(name);
      expect(compare(v.decoder, randomTokenLists(v, 100 + TOKENIZER_NAMES.indexOf(name)))).toEqual([]);
    });
  }
});

// Other configurations, fed with the tokens of a vocabulary they suit.
const CONFIGS: Array<{ label: string; from: TokenizerName; config: unknown; extra?: string[] }> = [
  { label: 'ByteFallback alone', from: 'llama2', config: { type: 'ByteFallback' } },
  { label: 'Fuse alone', from: 'gpt2', config: { type: 'Fuse' } },
  {
    label: 'Metaspace first',
    from: 't5',
    config: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
  },
  {
    label: 'Metaspace never',
    from: 'llama2',
    config: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true },
  },
  { label: 'Metaspace legacy add_prefix_space', from: 't5', config: { type: 'Metaspace', replacement: '▁', add_prefix_space: true } },
  { label: 'Metaspace with "e"', from: 'bert', config: { type: 'Metaspace', replacement: 'e', prepend_scheme: 'always' } },
  {
    label: 'Metaspace with an astral replacement',
    from: 't5',
    config: { type: 'Metaspace', replacement: '😀', prepend_scheme: 'always' },
    extra: ['😀', '😀a😀', 'x😀'],
  },
  { label: 'WordPiece without cleanup', from: 'bert', config: { type: 'WordPiece', prefix: '##', cleanup: false } },
  { label: 'WordPiece prefix "e"', from: 'bert', config: { type: 'WordPiece', prefix: 'e', cleanup: true } },
  { label: 'WordPiece empty prefix', from: 'bert', config: { type: 'WordPiece', prefix: '', cleanup: true } },
  { label: 'BPEDecoder </w>', from: 'gpt2', config: { type: 'BPEDecoder', suffix: '</w>' }, extra: ['</w>', 'a</w>', 'x</w>y</w>', ''] },
  { label: 'BPEDecoder empty suffix', from: 'bert', config: { type: 'BPEDecoder', suffix: '' }, extra: ['😀', ''] },
  {
    label: 'CTC with cleanup',
    from: 'bert',
    config: { type: 'CTC', pad_token: '[PAD]', word_delimiter_token: '|', cleanup: true },
    extra: ['[PAD]', '|', 'a|b', '.', "'", 'do', 'not', ' do not', 'x[PAD]y'],
  },
  {
    label: 'CTC without cleanup',
    from: 'bert',
    config: { type: 'CTC', pad_token: '[PAD]', word_delimiter_token: '|', cleanup: false },
    extra: ['[PAD]', '|', 'a|b', '.', "'"],
  },
  {
    label: 'CTC with empty pad and delimiter',
    from: 'bert',
    config: { type: 'CTC', pad_token: '', word_delimiter_token: '', cleanup: true },
    extra: ['😀', ''],
  },
  { label: 'Strip leading spaces', from: 'llama2', config: { type: 'Strip', content: ' ', start: 3, stop: 0 }, extra: [' ', '  a', '    '] },
  { label: 'Strip "▁" both sides', from: 't5', config: { type: 'Strip', content: '▁', start: 1, stop: 2 } },
  { label: 'Replace a string', from: 'llama2', config: { type: 'Replace', pattern: { String: '▁' }, content: '$& ' } },
  { label: 'Replace an empty string', from: 'bert', config: { type: 'Replace', pattern: { String: '' }, content: '-' } },
  { label: 'Replace a regex', from: 'bert', config: { type: 'Replace', pattern: { Regex: '[aeiou]+' }, content: '_' } },
  { label: 'Replace a regex with empty matches', from: 'bert', config: { type: 'Replace', pattern: { Regex: 'a*' }, content: '-' } },
  { label: 'Replace a lookahead', from: 'bert', config: { type: 'Replace', pattern: { Regex: '(?=e)' }, content: '^' } },
  {
    label: 'Sequence ByteFallback, Metaspace',
    from: 'llama2',
    config: {
      type: 'Sequence',
      decoders: [{ type: 'ByteFallback' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }],
    },
  },
  {
    label: 'Sequence CTC, Metaspace',
    from: 't5',
    config: {
      type: 'Sequence',
      decoders: [
        { type: 'CTC', pad_token: '<pad>', word_delimiter_token: '▁', cleanup: true },
        { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always' },
      ],
    },
  },
  { label: 'ByteLevel on SentencePiece tokens', from: 'llama2', config: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true } },
  { label: 'empty Sequence', from: 'gpt2', config: { type: 'Sequence', decoders: [] } },
];

/**
 * Rust 0.22 panics (taking the process down) when Strip's trailing cut would pass the start of the token or run
 * into its leading cut; newer versions stop there.
 */
function stripWouldPanic(token: string, content: string, start: number, stop: number): boolean {
  const chars = Array.from(token);
  let startCut = 0;
  while (startCut < Math.min(start, chars.length) && chars[startCut] === content) startCut++;
  let trailing = 0;
  while (trailing < Math.min(stop, chars.length) && chars[chars.length - 1 - trailing] === content) trailing++;
  if (trailing === chars.length && stop > chars.length) return true;
  return chars.length - trailing < startCut;
}

describe('other decoder configurations match Rust', () => {
  CONFIGS.forEach(({ label, from, config, extra }, i) => {
    it(label, { timeout: TIMEOUT }, () => {
      let lists = randomTokenLists(vocab(from), 200 + i, SEQUENCES, extra ?? []);
      const c = config as { type: string; content?: string; start?: number; stop?: number };
      if (c.type === 'Strip') lists = lists.filter((l) => !l.some((t) => stripWouldPanic(t, c.content!, c.start!, c.stop!)));
      expect(compare(config, lists)).toEqual([]);
    });
  });
});

describe('edge cases match Rust', () => {
  const LLAMA_DECODER = {
    type: 'Sequence',
    decoders: [
      { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
      { type: 'ByteFallback' },
      { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ],
  };
  const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  const METASPACE = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
  const WORDPIECE = { type: 'WordPiece', prefix: '##', cleanup: true };
  const cases: Array<[string, unknown, string[][]]> = [
    ['empty lists', LLAMA_DECODER, [[], ['']]],
    ['empty lists', BYTE_LEVEL, [[], ['']]],
    ['empty lists', METASPACE, [[], ['']]],
    ['empty lists', WORDPIECE, [[], ['']]],
    ['empty lists', { type: 'BPEDecoder', suffix: '</w>' }, [[], ['']]],
    ['empty lists', { type: 'CTC', pad_token: '<pad>', word_delimiter_token: '|', cleanup: true }, [[]]],
    [
      'byte tokens',
      LLAMA_DECODER,
      [
        ['<0xE2>'],
        ['<0xE2>', '<0x82>'],
        ['<0xE2>', '<0x82>', '<0xAC>'],
        ['<0x41>', '<0xE2>', '▁b'],
        ['<0xE2>', '▁', '<0x82>', '<0xAC>'],
        ['<0xEF>', '<0xBB>', '<0xBF>', 'a'],
        ['<0x+A>', '<0x0a>', '<0xa>', '<0X41>', '<0x-1>', '<0x4G>', '<0x++>', '<0xé>'],
        ['<0x20>', 'a'],
        ['▁', '<0x20>'],
        ['<0xF0>', '<0x9F>', '<0x98>', '<0x80>', '<0xF0>', '<0x9F>'],
        ['<0xC0>', '<0xAF>', '<0xED>', '<0xA0>', '<0x80>'],
      ],
    ],
    [
      'partial UTF-8',
      BYTE_LEVEL,
      [
        ['â'],
        ['âĤ'],
        ['âĤ', '¬'],
        ['Ġâ', 'Ĥ', '¬a'],
        ['ï»¿', 'a', 'ï»¿'],
        ['ð', 'Ł', 'ĺ', 'Ģ'],
        ['ð', 'a', 'Ł'],
        ['Ã', 'Ã', 'Ã'],
        ['ÀĨ', 'íł', 'Ģ'],
        ['▁mixed', 'Ġa'],
        ['Ċ', 'ĉ', 'Ġ'],
      ],
    ],
    ['replacement characters only', METASPACE, [['▁'], ['▁', '▁'], ['▁▁', '▁a▁b▁'], ['a', '▁'], ['▁a▁b▁', '▁c▁']]],
    ['replacement characters only', LLAMA_DECODER, [['▁'], ['▁', '▁'], ['▁▁', 'a'], ['▁▁▁']]],
    [
      '"##" first',
      WORDPIECE,
      [['##a'], ['##a', '##b', 'c'], ['##', '##'], ['a', '.', 'b', '?', "'", 's', 'do', 'not'], ['a', ' .', " n't"], ['do not']],
    ],
  ];
  cases.forEach(([label, config, lists], i) => {
    it(`${label} (${(config as { type: string }).type}, #${i})`, () => {
      expect(compare(config, lists)).toEqual([]);
    });
  });

  it('Strip where Rust 0.22 would panic gives what newer versions give', () => {
    const strip = ours({ type: 'Strip', content: ' ', start: 1, stop: 5 });
    expect(strip(['  '])).toBe('');
    expect(ours({ type: 'Strip', content: ' ', start: 1, stop: 1 })([' '])).toBe('');
    expect(ours({ type: 'Strip', content: 'x', start: 0, stop: 3 })(['axxxx'])).toBe('ax');
  });

  it('decodeChain keeps the pieces of each step, as Rust does', () => {
    expect(decoderFromJSON(WORDPIECE)!.decodeChain(['a', '##b', 'c'])).toEqual(['a', 'b', ' c']);
    expect(decoderFromJSON({ type: 'ByteFallback' })!.decodeChain(['<0xE2>', '<0x82>', 'a'])).toEqual(['\ufffd', '\ufffd', 'a']);
    expect(decoderFromJSON({ type: 'Fuse' })!.decodeChain([])).toEqual(['']);
    expect(wordPieceCleanup("a . b ' c do not d 's")).toBe("a. b'c don't d's");
  });
});

describe('decoderFromJSON', () => {
  it('returns null for no decoder', () => {
    expect(decoderFromJSON(null)).toBeNull();
    expect(decoderFromJSON(undefined)).toBeNull();
  });

  const errors: Array<[unknown, RegExp]> = [
    [{ type: 'Nope' }, /decoder\.type "Nope" is not a supported decoder \(supported: ByteLevel, Metaspace, .*CTC, Sequence\)/],
    [{}, /decoder\.type must name the decoder type/],
    ['ByteLevel', /decoder must be an object/],
    [{ type: 'WordPiece', prefix: '##' }, /decoder\.cleanup must be true or false/],
    [{ type: 'BPEDecoder' }, /decoder\.suffix must be a string/],
    [{ type: 'Metaspace' }, /decoder\.replacement must be a string/],
    [{ type: 'Metaspace', replacement: '▁▁' }, /decoder\.replacement must be a single character/],
    [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'sometimes' }, /decoder\.prepend_scheme must be/],
    [{ type: 'Metaspace', replacement: '▁', add_prefix_space: false }, /decoder\.add_prefix_space is false/],
    [{ type: 'Strip', content: ' ', start: 1 }, /decoder\.stop must be a number/],
    [{ type: 'Strip', content: ' ', start: -1, stop: 0 }, /decoder\.start must be a non-negative integer/],
    [{ type: 'Replace', pattern: { Glob: '*' }, content: '' }, /decoder\.pattern must be \{"String"/],
    [{ type: 'Replace', pattern: { Regex: '(' }, content: '' }, /decoder\.pattern\.Regex is not a (valid|supported) regular expression/],
    [{ type: 'CTC', pad_token: '<pad>' }, /decoder\.word_delimiter_token must be a string/],
    [{ type: 'Sequence', decoders: [{ type: 'Fuse' }, { type: 'Bad' }] }, /decoder\.decoders\[1\]\.type "Bad"/],
    [{ type: 'Sequence', decoders: [null] }, /decoder\.decoders\[0\] must be a decoder/],
    [{ type: 'Sequence' }, /decoder\.decoders must be an array/],
  ];
  errors.forEach(([json, message], i) => {
    it(`rejects bad config #${i} naming the field`, () => {
      expect(() => decoderFromJSON(json)).toThrow(TokenizerError);
      expect(() => decoderFromJSON(json)).toThrow(message);
    });
  });

  it('accepts what Rust accepts for Metaspace', () => {
    const never = ours({ type: 'Metaspace', replacement: '▁', add_prefix_space: false, prepend_scheme: 'never' });
    expect(never(['▁a', '▁b'])).toBe(rustDecoder({ type: 'Metaspace', replacement: '▁', add_prefix_space: false, prepend_scheme: 'never' }).decode(['▁a', '▁b']));
    expect(() => rustDecoder({ type: 'Metaspace', replacement: '▁', add_prefix_space: false })).toThrow();
  });
});
