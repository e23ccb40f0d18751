// Post-processors against the Rust `tokenizers` library. Each configuration goes into a tokenizer.json with a
// simple model (WordLevel over whitespace- or byte-level-split words), so only the post-processor differs: Rust
// encodes single texts and pairs with it, and we feed our processor the same encodings Rust made without one.
import { describe, expect, it } from 'vitest';
import type { Encoding as RustEncoding } from '@anush008/tokenizers';
import type { Encoding } from '../../../src/tokenizer/components.js';
import { postProcessorFromJSON } from '../../../src/tokenizer/post-processors.js';
import { TokenizerError } from '../../../src/errors.js';
import { codePointToUtf16Offsets, rust } from '../../helpers/rust-tokenizers.js';
import { loadTokenizerFiles, type TokenizerName } from '../../helpers/tokenizer-files.js';

const TEXTS = [
  'hello world',
  '  hello   world  ',
  '',
  ' ',
  'a',
  'The quick brown fox, jumps!',
  'naïve café 😀 👍🏽 end',
  '日本語 テキスト',
  '\thello\nworld\u3000x',
  'unknownword hello',
  '\u0085next line\u0085',
  '\ufeffbom ',
];

/**
 * How the test tokenizers split text into WordLevel words: on whitespace, byte-level (GPT-2 regex), or not at
 * all (whole texts as tokens, raw or byte-level, so tokens have several leading and trailing spaces).
 */
type Split = 'whitespace' | 'bytelevel' | 'whole' | 'bytelevel-whole';

function preTokenizer(split: Split): unknown {
  if (split === 'whitespace') return { type: 'WhitespaceSplit' };
  if (split === 'whole') return null;
  return { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: split === 'bytelevel' };
}

/** Every word of TEXTS as `split` splits it, except those with "unknownword", left out to give [UNK]. */
function vocabFor(split: Split): Record<string, number> {
  const vocab: Record<string, number> = { '[UNK]': 0 };
  const pre =
    split === 'whitespace'
      ? rust.whitespaceSplitPreTokenizer()
      : split === 'whole'
        ? { preTokenizeString: (t: string) => [[t]] }
        : rust.byteLevelPreTokenizer(true, split === 'bytelevel');
  for (const text of TEXTS) {
    for (const [word] of pre.preTokenizeString(text)) {
      if (!word.includes('unknownword') && !(word in vocab)) vocab[word] = Object.keys(vocab).length;
    }
  }
  return vocab;
}

const VOCABS = new Map<Split, Record<string, number>>();

function tokenizerJSON(postProcessor: unknown, split: Split): string {
  if (!VOCABS.has(split)) VOCABS.set(split, vocabFor(split));
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: preTokenizer(split),
    post_processor: postProcessor,
    decoder: null,
    model: { type: 'WordLevel', vocab: VOCABS.get(split), unk_token: '[UNK]' },
  });
}

const isBMP = (text: string | null) => text === null || !/[\u{10000}-\u{10ffff}]/u.test(text);

/** A Rust encoding in our form: UTF-16 offsets, each relative to the text its token came from. */
function fromRust(e: RustEncoding, text: string, pair: string | null): Encoding {
  const sequence = e.getSequenceIds();
  const bmp = isBMP(text) && isBMP(pair); // code points are UTF-16 units
  return {
    ids: e.getIds(),
    tokens: e.getTokens(),
    offsets: e.getOffsets().map((o, k): [number, number] =>
      bmp ? [o[0], o[1]] : codePointToUtf16Offsets(sequence[k] === 1 ? pair! : text, [o])[0],
    ),
    typeIds: e.getTypeIds(),
    specialTokensMask: e.getSpecialTokensMask(),
    attentionMask: e.getAttentionMask(),
  };
}

const PAIRS: Array<[string, string | null]> = [
  ...TEXTS.map((t): [string, null] => [t, null]),
  ...TEXTS.map((t, i): [string, string] => [t, TEXTS[(i * 3 + 1) % TEXTS.length]]),
];

/** Runs `config` both ways over every text and pair, with and without special tokens; returns the differences. */
async function compare(config: unknown, split: Split = 'whitespace', bmpOnly = false): Promise<string[]> {
  const withProcessor = rust.Tokenizer.fromString(tokenizerJSON(config, split));
  const without = rust.Tokenizer.fromString(tokenizerJSON(null, split));
  const ours = postProcessorFromJSON(config)!;
  const bad: string[] = [];
  for (const [text, pair] of PAIRS) {
    if (bmpOnly && !(isBMP(text) && isBMP(pair))) continue;
    const a = fromRust(await without.encode(text), text, null);
    let b: Encoding | null = null;
    if (pair !== null) {
      b = fromRust(await without.encode(pair), pair, null);
      b.typeIds = b.typeIds.map(() => 1); // as Rust's encode types the second sequence
    }
    for (const add of [true, false]) {
      const expected = fromRust(await withProcessor.encode(text, pair, { addSpecialTokens: add }), text, pair);
      const aCopy = structuredClone(a);
      const bCopy = structuredClone(b);
      const got = ours.process(a, b, add);
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        bad.push(`${JSON.stringify([text, pair])} add=${add}\n  ours ${JSON.stringify(got)}\n  rust ${JSON.stringify(expected)}`);
      }
      expect(a).toEqual(aCopy); // inputs untouched
      expect(b).toEqual(bCopy);
      // The tokens a processor adds are the ones it marks special (these inputs have none); in a Sequence, a later
      // processor may unmark them, so only single processors are checked.
      const added = got.specialTokensMask.filter((m) => m === 1).length;
      if (add && (config as { type: string }).type !== 'Sequence' && added !== ours.addedTokens(b !== null)) {
        bad.push(`addedTokens(${b !== null}) = ${ours.addedTokens(b !== null)}, process added ${added}`);
      }
    }
    if (bad.length > 4) break;
  }
  return bad;
}

const S = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
const T = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
const special = (id: string, ids: number[], tokens = ids.map(() => id)) => ({ [id]: { id, ids, tokens } });

const BERT_TEMPLATE = {
  type: 'TemplateProcessing',
  single: [T('[CLS]', 0), S('A', 0), T('[SEP]', 0)],
  pair: [T('[CLS]', 0), S('A', 0), T('[SEP]', 0), S('B', 1), T('[SEP]', 1)],
  special_tokens: { ...special('[CLS]', [101]), ...special('[SEP]', [102]) },
};

const BERT = { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] };
const roberta = (trim: boolean, prefixSpace: boolean) => ({
  type: 'RobertaProcessing',
  sep: ['</s>', 2],
  cls: ['<s>', 0],
  trim_offsets: trim,
  add_prefix_space: prefixSpace,
});
const byteLevel = (trim: boolean, prefixSpace: boolean) => ({ type: 'ByteLevel', add_prefix_space: prefixSpace, trim_offsets: trim });

const CONFIGS: Array<[string, unknown, Split?, boolean?]> = [
  ['Template, BERT style', BERT_TEMPLATE],
  [
    'Template, Llama style',
    {
      type: 'TemplateProcessing',
      single: [T('<s>', 0), S('A', 0)],
      pair: [T('<s>', 0), S('A', 0), T('<s>', 1), S('B', 1)],
      special_tokens: special('<s>', [1]),
    },
  ],
  [
    'Template with multi-token specials, B first, odd type ids',
    {
      type: 'TemplateProcessing',
      single: [T('[X]', 5), S('A', 2), T('[Y]', 3)],
      pair: [S('B', 2), T('[Y]', 1), S('A', 0), T('[X]', 7)],
      special_tokens: { ...special('[X]', [7, 8, 9], ['x1', 'x2', 'x3']), ...special('[Y]', [], []) },
    },
  ],
  [
    'Template whose pair repeats A and drops B',
    {
      type: 'TemplateProcessing',
      single: [S('A', 0), T('[S]', 1), S('A', 2)],
      pair: [S('A', 0), S('A', 1)],
      special_tokens: special('[S]', [3]),
    },
  ],
  ['Template, empty', { type: 'TemplateProcessing', single: [], pair: [], special_tokens: {} }],
  [
    'Template keyed by map key, not inner id',
    {
      type: 'TemplateProcessing',
      single: [T('[K]', 0), S('A', 0)],
      pair: [S('A', 0), S('B', 1)],
      special_tokens: { '[K]': { id: '[other]', ids: [4], tokens: ['[K]'] } },
    },
  ],
  ['BertProcessing', BERT],
  ['RobertaProcessing trim, prefix space', roberta(true, true), 'bytelevel'],
  ['RobertaProcessing trim, no prefix space', roberta(true, false), 'bytelevel'],
  ['RobertaProcessing no trim', roberta(false, true), 'bytelevel'],
  ['RobertaProcessing on whitespace words', roberta(true, true)],
  ['RobertaProcessing trim on whole byte-level texts', roberta(true, true), 'bytelevel-whole'],
  ['RobertaProcessing without its booleans reads as Bert', { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0] }],
  ['BertProcessing with both booleans reads as Roberta', { ...roberta(true, false), type: 'BertProcessing' }, 'bytelevel'],
  ['ByteLevel trim, prefix space', byteLevel(true, true), 'bytelevel'],
  ['ByteLevel trim, no prefix space', byteLevel(true, false), 'bytelevel'],
  ['ByteLevel no trim', byteLevel(false, true), 'bytelevel'],
  ['ByteLevel trim on whitespace words', byteLevel(true, true)],
  ['ByteLevel trim on whole byte-level texts', byteLevel(true, true), 'bytelevel-whole'],
  ['ByteLevel trim on whole byte-level texts, no prefix space', byteLevel(true, false), 'bytelevel-whole'],
  ['ByteLevel trim on whole raw texts (Unicode whitespace)', byteLevel(true, true), 'whole'],
  ['Sequence ByteLevel, Template', { type: 'Sequence', processors: [byteLevel(true, true), BERT_TEMPLATE] }, 'bytelevel'],
  ['Sequence Roberta, Template', { type: 'Sequence', processors: [roberta(true, true), BERT_TEMPLATE] }, 'bytelevel'],
  ['Sequence Bert, Bert', { type: 'Sequence', processors: [BERT, BERT] }],
  // Rust marks every piece after the first as sequence 1 here, so only BMP texts, whose offsets need no mapping.
  ['Sequence Template, Bert (Bert sees one encoding per piece)', { type: 'Sequence', processors: [BERT_TEMPLATE, BERT] }, 'whitespace', true],
  ['Sequence, empty', { type: 'Sequence', processors: [] }],
];

describe('post-processors match Rust', () => {
  for (const [label, config, split, bmpOnly] of CONFIGS) {
    it(label, async () => {
      expect(await compare(config, split, bmpOnly)).toEqual([]);
    });
  }
});

describe('real post-processors match Rust', () => {
  const NAMES: TokenizerName[] = ['bert', 't5', 'llama2', 'mistral', 'gemma3', 'gpt2', 'llama3'];
  for (const name of NAMES) {
    it(`${name} (on a simple model)`, async () => {
      const config = JSON.parse(loadTokenizerFiles(name).json).post_processor;
      expect(await compare(config, config.type === 'ByteLevel' ? 'bytelevel' : 'whitespace')).toEqual([]);
    });
  }

  // The real tokenizers end to end: our processor gets what Rust's encoding is before post-processing.
  for (const name of ['bert', 'gpt2'] as const) {
    it(`${name} (on its own model)`, async () => {
      const json = JSON.parse(loadTokenizerFiles(name).json);
      const config = name === 'gpt2' ? { ...json.post_processor, trim_offsets: true } : json.post_processor;
      const withProcessor = rust.Tokenizer.fromString(JSON.stringify({ ...json, post_processor: config }));
      const without = rust.Tokenizer.fromString(JSON.stringify({ ...json, post_processor: null }));
      const ours = postProcessorFromJSON(config)!;
      for (const [text, pair] of PAIRS) {
        const a = fromRust(await without.encode(text), text, null);
        const b = pair === null ? null : { ...fromRust(await without.encode(pair), pair, null) };
        if (b) b.typeIds = b.typeIds.map(() => 1);
        for (const add of [true, false]) {
          const expected = fromRust(await withProcessor.encode(text, pair, { addSpecialTokens: add }), text, pair);
          expect(ours.process(a, b, add), JSON.stringify([text, pair, add])).toEqual(expected);
        }
      }
    });
  }
});

describe('postProcessorFromJSON', () => {
  it('returns null for no post-processor', () => {
    expect(postProcessorFromJSON(null)).toBeNull();
    expect(postProcessorFromJSON(undefined)).toBeNull();
  });

  it('reads templates written as strings, as the Python constructor takes them', () => {
    const fromStrings = postProcessorFromJSON({
      type: 'TemplateProcessing',
      single: '[CLS] $A [SEP]',
      pair: ['[CLS]:0', '$A:0', '[SEP]', '$B:1', '[SEP]:1'],
      special_tokens: BERT_TEMPLATE.special_tokens,
    })!;
    const fromObjects = postProcessorFromJSON(BERT_TEMPLATE)!;
    const a = enc([5, 6], 0);
    const b = enc([7], 1);
    expect(fromStrings.process(a, b, true)).toEqual(fromObjects.process(a, b, true));
    expect(fromStrings.process(a, null, true)).toEqual(fromObjects.process(a, null, true));
    const shorthand = postProcessorFromJSON({ type: 'TemplateProcessing', single: '$ $0 $a $1:2', pair: '$b:3 $A', special_tokens: {} })!;
    expect(shorthand.process(a, null, true).typeIds).toEqual([0, 0, 0, 0, 0, 0, 2, 2]);
    expect(shorthand.process(a, b, true)).toMatchObject({ ids: [7, 5, 6], typeIds: [3, 0, 0] });
    expect(() => postProcessorFromJSON({ type: 'TemplateProcessing', single: '$C', pair: '$A $B', special_tokens: {} })).toThrow(
      /post_processor\.single\[0\] is not a template piece/,
    );
    expect(() => postProcessorFromJSON({ type: 'TemplateProcessing', single: '$A:x', pair: '$A $B', special_tokens: {} })).toThrow(TokenizerError);
  });

  it('fails at use, naming the field, where Rust panics', () => {
    const missing = postProcessorFromJSON({ type: 'TemplateProcessing', single: [T('[X]', 0), S('A', 0)], pair: [S('A', 0), S('B', 1)], special_tokens: {} })!;
    expect(missing.process(enc([1], 0), null, false).ids).toEqual([1]);
    expect(() => missing.process(enc([1], 0), null, true)).toThrow(/post_processor\.special_tokens has no "\[X\]"/);
    const usesB = postProcessorFromJSON({ type: 'TemplateProcessing', single: [S('B', 0)], pair: [S('A', 0), S('B', 1)], special_tokens: {} })!;
    expect(() => usesB.process(enc([1], 0), null, true)).toThrow(/post_processor\.single uses \$B/);
    const uneven = postProcessorFromJSON({ type: 'TemplateProcessing', single: [T('[X]', 0)], pair: [S('A', 0), S('B', 1)], special_tokens: special('[X]', [1, 2], ['x']) })!;
    expect(() => uneven.process(enc([1], 0), null, true)).toThrow(TokenizerError);
    const twice = postProcessorFromJSON({ type: 'Sequence', processors: [BERT_TEMPLATE, BERT_TEMPLATE] })!;
    expect(() => twice.process(enc([1], 0), null, true)).toThrow(/applies to one or two sequences, got 3/);
  });

  const errors: Array<[unknown, RegExp]> = [
    [{ type: 'Nope' }, /post_processor\.type "Nope" is not a supported post-processor \(supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence\)/],
    [{ type: 'BertProcessing', sep: '[SEP]', cls: ['[CLS]', 1] }, /post_processor\.sep must be a \[token, id\] pair/],
    [{ type: 'BertProcessing', sep: ['[SEP]', -1], cls: ['[CLS]', 1] }, /post_processor\.sep must be a \[token, id\] pair/],
    [{ type: 'ByteLevel', trim_offsets: true }, /post_processor\.add_prefix_space must be true or false/],
    [{ type: 'TemplateProcessing', single: [S('A', 0)], special_tokens: {} }, /post_processor\.pair must be an array/],
    [{ type: 'TemplateProcessing', single: [S('A', 0)], pair: [], special_tokens: null }, /post_processor\.special_tokens must be an object/],
    [{ type: 'TemplateProcessing', single: [{ Sequence: { id: 'A' } }], pair: [], special_tokens: {} }, /post_processor\.single\[0\]\.Sequence\.type_id must be a non-negative integer/],
    [{ type: 'TemplateProcessing', single: [{ Sequence: { id: 'a', type_id: 0 } }], pair: [], special_tokens: {} }, /post_processor\.single\[0\]\.Sequence\.id must be "A" or "B"/],
    [{ type: 'TemplateProcessing', single: [{ Other: {} }], pair: [], special_tokens: {} }, /post_processor\.single\[0\] must be \{"Sequence"/],
    [{ type: 'TemplateProcessing', single: [], pair: [], special_tokens: { x: { id: 'x', ids: [1.5], tokens: ['x'] } } }, /special_tokens\["x"\]\.ids\[0\] must be a non-negative integer/],
    [{ type: 'Sequence', processors: [{ type: 'Bad' }] }, /post_processor\.processors\[0\]\.type "Bad"/],
  ];
  errors.forEach(([json, message], i) => {
    it(`rejects bad config #${i} naming the field`, () => {
      expect(() => postProcessorFromJSON(json)).toThrow(TokenizerError);
      expect(() => postProcessorFromJSON(json)).toThrow(message);
    });
  });
});

function enc(ids: number[], typeId: number): Encoding {
  return {
    ids,
    tokens: ids.map((i) => `t${i}`),
    offsets: ids.map((_, k): [number, number] => [k, k + 1]),
    typeIds: ids.map(() => typeId),
    specialTokensMask: ids.map(() => 0),
    attentionMask: ids.map(() => 1),
  };
}
