// End-to-end differential test: webslm's tokenizer against the Rust `tokenizers` library on real tokenizer.json
// files, over hand-picked hard strings and seeded random text. Ids must match exactly; offsets, the other
// per-token fields, pairs and decodes are checked separately so each kind of failure is reported on its own.
import type { Encoding as RustEncoding, Tokenizer as RustTokenizer } from '@anush008/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { PreTrainedTokenizer } from '../../../src/tokenizer/tokenizer.js';
import { HARD_STRINGS } from '../../helpers/hard-strings.js';
import { rng } from '../../helpers/random.js';
import { randomText } from '../../helpers/random-text.js';
import { codePointToUtf16Offsets, rust } from '../../helpers/rust-tokenizers.js';
import { TOKENIZER_NAMES, loadTokenizerFiles, type TokenizerName } from '../../helpers/tokenizer-files.js';

const RANDOM_STRINGS = 2000;
const RANDOM_MAX_LEN = 160;
const RANDOM_SEED = 1000;
const RANDOM_ID_SEQUENCES = 500;
const PAIRS = 400;
const SHOWN = 6; // mismatches printed per check
const TIMEOUT = 120_000;

const CORPUS: readonly string[] = [
  ...HARD_STRINGS,
  ...Array.from({ length: RANDOM_STRINGS }, (_, i) => randomText(RANDOM_SEED + i, RANDOM_MAX_LEN)),
];

/** Where corpus string `i` comes from, and the string itself. */
function label(i: number): string {
  const source = i < HARD_STRINGS.length ? `HARD_STRINGS[${i}]` : `randomText(${RANDOM_SEED + i - HARD_STRINGS.length}, ${RANDOM_MAX_LEN})`;
  return `${source} ${clip(CORPUS[i])}`;
}

/** Per-token fields of one encoding, or the error our side threw. */
interface Enc {
  ids: number[];
  tokens: string[];
  offsets: Array<[number, number]>;
  typeIds: number[];
  specialTokensMask: number[];
  attentionMask: number[];
}
type Result = Enc | { error: string };

function fromRust(e: RustEncoding, text: string, pair = text): Enc {
  // Rust gives code points, relative to the sequence each token came from.
  const raw = e.getOffsets();
  const first = codePointToUtf16Offsets(text, raw);
  const second = pair === text ? first : codePointToUtf16Offsets(pair, raw);
  const sequence = pair === text ? [] : e.getSequenceIds();
  return {
    ids: e.getIds(),
    tokens: e.getTokens(),
    offsets: first.map((o, k) => (sequence[k] === 1 ? second[k] : o)),
    typeIds: e.getTypeIds(),
    specialTokensMask: e.getSpecialTokensMask(),
    attentionMask: e.getAttentionMask(),
  };
}

function attempt<T>(f: () => T): T | { error: string } {
  try {
    return f();
  } catch (e) {
    return { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

function firstDiff(a: readonly unknown[], b: readonly unknown[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) return i;
  return a.length === b.length ? -1 : n;
}

function window(list: readonly unknown[], at: number): string {
  const from = Math.max(0, at - 3);
  const shown = list.slice(from, at + 5).map((x) => JSON.stringify(x));
  return `${from > 0 ? '… ' : ''}[${shown.join(', ')}]${at + 5 < list.length ? ' …' : ''} (length ${list.length})`;
}

function clip(text: string, max = 300): string {
  const json = JSON.stringify(text);
  return json.length > max ? `${json.slice(0, max)}… (${text.length} chars)` : json;
}

/** Collects mismatches of one check and formats a capped report. */
class Mismatches {
  private readonly shown: string[] = [];
  count = 0;
  constructor(private readonly title: string) {}

  add(describe: () => string): void {
    if (this.count++ < SHOWN) this.shown.push(describe());
  }

  report(total: number): string {
    const more = this.count > SHOWN ? `\n… and ${this.count - SHOWN} more` : '';
    return `${this.title}: ${this.count} of ${total} differ\n${this.shown.join('\n')}${more}`;
  }
}

/** Compares one field of our encoding of `text` with Rust's. */
function compareField(m: Mismatches, field: keyof Enc, label: string, ours: Result, theirs: Enc): void {
  if ('error' in ours) {
    m.add(() => `  ${label}\n    ours threw ${ours.error}\n    rust ids ${window(theirs.ids, 0)}`);
    return;
  }
  const d = firstDiff(ours[field], theirs[field]);
  if (d < 0) return;
  m.add(() => {
    const lines = [
      `  ${label}`,
      `    first difference in ${field} at index ${d}`,
      `    ours ${window(ours[field], d)}`,
      `    rust ${window(theirs[field], d)}`,
    ];
    if (field !== 'tokens') lines.push(`    ours tokens ${window(ours.tokens, d)}`, `    rust tokens ${window(theirs.tokens, d)}`);
    return lines.join('\n');
  });
}

/** One past the largest id in tokenizer.json (model vocabulary and added tokens). */
function idCount(json: string): number {
  const j = JSON.parse(json) as { model: { vocab: Record<string, number> | Array<[string, number]> }; added_tokens?: Array<{ id: number }> };
  const vocab = j.model.vocab;
  let max = Array.isArray(vocab) ? vocab.length - 1 : 0;
  if (!Array.isArray(vocab)) for (const id of Object.values(vocab)) max = Math.max(max, id);
  for (const t of j.added_tokens ?? []) max = Math.max(max, t.id);
  return max + 1;
}

for (const name of TOKENIZER_NAMES) {
  describe(`${name} matches the Rust tokenizers library`, () => {
    let ours: PreTrainedTokenizer;
    let theirs: RustTokenizer;
    const rustEnc = new Map<boolean, Enc[]>();
    const ourEnc = new Map<boolean, Result[]>();
    let idLimit = 0; // one past the largest id the tokenizer knows

    beforeAll(async () => {
      const files = loadTokenizerFiles(name);
      theirs = rust.Tokenizer.fromString(files.json);
      ours = PreTrainedTokenizer.fromJSON(files.json, files.config);
      idLimit = idCount(files.json);
      for (const add of [true, false]) {
        const encs = await theirs.encodeBatch([...CORPUS], { addSpecialTokens: add });
        rustEnc.set(add, encs.map((e, i) => fromRust(e, CORPUS[i])));
        ourEnc.set(add, CORPUS.map((text) => attempt(() => ours.encodeWithOffsets(text, { add_special_tokens: add }))));
      }
    }, TIMEOUT);

    for (const add of [true, false]) {
      it(`ids, add_special_tokens=${add}`, () => {
        const m = new Mismatches(`${name} ids (add_special_tokens=${add})`);
        const r = rustEnc.get(add)!;
        const o = ourEnc.get(add)!;
        CORPUS.forEach((_, i) => compareField(m, 'ids', label(i), o[i], r[i]));
        // encode() must agree with encodeWithOffsets().ids
        HARD_STRINGS.forEach((text, i) => {
          const ids = attempt(() => ours.encode(text, { add_special_tokens: add }));
          compareField(m, 'ids', `encode() ${label(i)}`, 'error' in ids ? ids : { ...r[i], ids }, r[i]);
        });
        expect(m.count, m.report(CORPUS.length)).toBe(0);
      });

      it(`offsets, add_special_tokens=${add}`, () => {
        const m = new Mismatches(`${name} offsets (add_special_tokens=${add}, UTF-16)`);
        const r = rustEnc.get(add)!;
        const o = ourEnc.get(add)!;
        CORPUS.forEach((_, i) => compareField(m, 'offsets', label(i), o[i], r[i]));
        expect(m.count, m.report(CORPUS.length)).toBe(0);
      });

      it(`tokens, type ids and masks, add_special_tokens=${add}`, () => {
        const m = new Mismatches(`${name} tokens/typeIds/specialTokensMask/attentionMask (add_special_tokens=${add})`);
        const r = rustEnc.get(add)!;
        const o = ourEnc.get(add)!;
        for (const field of ['tokens', 'typeIds', 'specialTokensMask', 'attentionMask'] as const) {
          CORPUS.forEach((_, i) => compareField(m, field, label(i), o[i], r[i]));
        }
        expect(m.count, m.report(CORPUS.length * 4)).toBe(0);
      });
    }

    it('pairs: ids, type ids and offsets', async () => {
      const m = new Mismatches(`${name} pairs (text, text_pair)`);
      const pairs = Array.from({ length: PAIRS }, (_, i): [string, string] => [
        CORPUS[(i * 7) % CORPUS.length],
        CORPUS[(i * 13 + 5) % CORPUS.length],
      ]);
      for (const add of [true, false]) {
        // encodeBatch takes no pairs in this binding: one call each
        const encs = await Promise.all(pairs.map(([a, b]) => theirs.encode(a, b, { addSpecialTokens: add })));
        pairs.forEach(([a, b], i) => {
          const r = fromRust(encs[i], a, b);
          const o = attempt(() => ours.encodeWithOffsets(a, { add_special_tokens: add, text_pair: b }));
          const where = `add_special_tokens=${add} ${clip(a, 150)} + ${clip(b, 150)}`;
          compareField(m, 'ids', where, o, r);
          if ('error' in o) return;
          compareField(m, 'typeIds', where, o, r);
          compareField(m, 'offsets', where, o, r);
        });
      }
      expect(m.count, m.report(PAIRS * 2)).toBe(0);
    }, TIMEOUT);

    for (const skip of [false, true]) {
      it(`decode, skip_special_tokens=${skip}`, async () => {
        const m = new Mismatches(`${name} decode (skip_special_tokens=${skip})`);
        // Decode Rust's ids, so a decode failure shows even where encoding differs.
        const sequences = rustEnc.get(true)!.map((e) => e.ids);
        const random = rng(7);
        for (let k = 0; k < RANDOM_ID_SEQUENCES; k++) {
          sequences.push(Array.from({ length: 1 + Math.floor(random() * 24) }, () => Math.floor(random() * idLimit)));
        }
        const expected = await theirs.decodeBatch(sequences, skip);
        sequences.forEach((seq, i) => {
          const got = attempt(() => ours.decode(seq, { skip_special_tokens: skip, clean_up_tokenization_spaces: false }));
          if (got === expected[i]) return;
          m.add(() => {
            const source = i < CORPUS.length ? `Rust ids of ${label(i)}` : `random ids #${i - CORPUS.length}`;
            const text = typeof got === 'string' ? clip(got) : `threw ${got.error}`;
            return `  ${source}\n    ids ${clip(seq.join(','), 200)}\n    ours ${text}\n    rust ${clip(expected[i])}`;
          });
        });
        expect(m.count, m.report(sequences.length)).toBe(0);
      }, TIMEOUT);
    }
  });
}

// ── component variants ─────────────────────────────────────────────────────────────────────────────────────
// Real vocabularies with other normalizers, pre-tokenizers, models, post-processors and decoders swapped in, so
// components that none of the real files use are checked too. [base tokenizer, field (dotted), new value]

const byteLevel = (o: object = {}) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false, ...o });
const metaspace = (prepend_scheme: string, split: boolean) => ({ type: 'Metaspace', replacement: '▁', prepend_scheme, split });
const splitOn = (pattern: object, behavior: string, invert = false) => ({ type: 'Split', pattern, behavior, invert });
const sequence = (key: string, items: object[]) => ({ type: 'Sequence', [key]: items });
const BERT_SPECIALS = { sep: ['[SEP]', 102], cls: ['[CLS]', 101] };

const VARIANTS: Array<[TokenizerName, string, unknown]> = [
  ['bert', 'normalizer', { type: 'NFC' }],
  ['bert', 'normalizer', { type: 'NFKD' }],
  ['bert', 'normalizer', { type: 'Lowercase' }],
  ['bert', 'normalizer', sequence('normalizers', [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }])],
  ['bert', 'normalizer', { type: 'Strip', strip_left: true, strip_right: true }],
  ['bert', 'normalizer', { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }],
  ['bert', 'normalizer', { type: 'Prepend', prepend: '##' }],
  ['bert', 'normalizer', { type: 'Nmt' }],
  ['bert', 'normalizer', { type: 'BertNormalizer', clean_text: false, handle_chinese_chars: false, strip_accents: true, lowercase: true }],
  ['bert', 'pre_tokenizer', { type: 'Whitespace' }],
  ['bert', 'pre_tokenizer', { type: 'WhitespaceSplit' }],
  ['bert', 'pre_tokenizer', { type: 'Punctuation', behavior: 'Contiguous' }],
  ['bert', 'pre_tokenizer', { type: 'Digits', individual_digits: true }],
  ['bert', 'pre_tokenizer', { type: 'CharDelimiterSplit', delimiter: 'e' }],
  ['bert', 'pre_tokenizer', { type: 'FixedLength', length: 3 }],
  ['bert', 'pre_tokenizer', splitOn({ Regex: '\\s+' }, 'Removed')],
  ['bert', 'pre_tokenizer', splitOn({ String: 'an' }, 'MergedWithNext', true)],
  ['bert', 'pre_tokenizer', splitOn({ Regex: '[a-z]+' }, 'Contiguous')],
  ['bert', 'pre_tokenizer', metaspace('first', false)],
  ['bert', 'pre_tokenizer', null],
  ['bert', 'post_processor', { type: 'BertProcessing', ...BERT_SPECIALS }],
  ['bert', 'post_processor', { type: 'RobertaProcessing', ...BERT_SPECIALS, trim_offsets: true, add_prefix_space: true }],
  ['bert', 'post_processor', sequence('processors', [byteLevel({ trim_offsets: true }), { type: 'BertProcessing', ...BERT_SPECIALS }])],
  ['bert', 'decoder', { type: 'WordPiece', prefix: '##', cleanup: false }],
  ['bert', 'decoder', { type: 'BPEDecoder', suffix: '</w>' }],
  ['bert', 'decoder', { type: 'CTC', pad_token: '[PAD]', word_delimiter_token: '|', cleanup: true }],
  ['bert', 'decoder', metaspace('always', true)],
  ['bert', 'decoder', sequence('decoders', [{ type: 'Replace', pattern: { Regex: '^##' }, content: '' }, { type: 'Fuse' }])],
  ['bert', 'model.type', 'WordLevel'],
  ['gpt2', 'pre_tokenizer', sequence('pretokenizers', [{ type: 'Digits', individual_digits: true }, byteLevel({ use_regex: true })])],
  ['gpt2', 'pre_tokenizer', sequence('pretokenizers', [{ type: 'Punctuation', behavior: 'Isolated' }, byteLevel({ add_prefix_space: true, use_regex: true })])],
  ['gpt2', 'post_processor', { type: 'RobertaProcessing', sep: ['<|endoftext|>', 50256], cls: ['<|endoftext|>', 50256], trim_offsets: true, add_prefix_space: true }],
  ['gpt2', 'normalizer', sequence('normalizers', [{ type: 'NFKC' }, { type: 'Lowercase' }])],
  ['gpt2', 'model.ignore_merges', true],
  ['t5', 'pre_tokenizer', metaspace('never', false)],
  ['t5', 'pre_tokenizer', sequence('pretokenizers', [{ type: 'Punctuation', behavior: 'Isolated' }, metaspace('always', true)])],
  ['t5', 'model.byte_fallback', true],
  ['t5', 'normalizer', null],
  ['mistral', 'pre_tokenizer', metaspace('always', true)],
  ['mistral', 'model.byte_fallback', false],
  ['mistral', 'decoder', metaspace('first', false)],
];
const VARIANT_CORPUS = [...HARD_STRINGS, ...Array.from({ length: 200 }, (_, i) => randomText(5000 + i, RANDOM_MAX_LEN))];

describe('component variants match the Rust tokenizers library', () => {
  for (const [base, field, value] of VARIANTS) {
    it(`${base} with ${field} = ${JSON.stringify(value)}`, async () => {
      const json = JSON.parse(loadTokenizerFiles(base).json) as Record<string, Record<string, unknown>>;
      const [section, key] = field.split('.');
      if (key) json[section][key] = value;
      else (json as Record<string, unknown>)[section] = value;
      const text = JSON.stringify(json);
      const theirs = rust.Tokenizer.fromString(text);
      const ours = PreTrainedTokenizer.fromJSON(text, {});
      const m = new Mismatches(`${base} with ${field} = ${JSON.stringify(value)}`);
      const encs = await theirs.encodeBatch(VARIANT_CORPUS, { addSpecialTokens: true });
      const expected = encs.map((e, i) => fromRust(e, VARIANT_CORPUS[i]));
      VARIANT_CORPUS.forEach((s, i) => {
        const o = attempt(() => ours.encodeWithOffsets(s, { add_special_tokens: true }));
        compareField(m, 'ids', `ids of ${clip(s)}`, o, expected[i]);
        if (!('error' in o)) compareField(m, 'offsets', `offsets of ${clip(s)}`, o, expected[i]);
      });
      for (let i = 0; i < 100; i++) {
        const [a, b] = [VARIANT_CORPUS[(i * 7) % VARIANT_CORPUS.length], VARIANT_CORPUS[(i * 11 + 3) % VARIANT_CORPUS.length]];
        const r = fromRust(await theirs.encode(a, b, { addSpecialTokens: true }), a, b);
        const o = attempt(() => ours.encodeWithOffsets(a, { add_special_tokens: true, text_pair: b }));
        compareField(m, 'ids', `pair ${clip(a, 100)} + ${clip(b, 100)}`, o, r);
        if (!('error' in o)) compareField(m, 'typeIds', `pair ${clip(a, 100)} + ${clip(b, 100)}`, o, r);
      }
      const sequences = expected.map((e) => e.ids);
      for (const skip of [false, true]) {
        const decoded = await theirs.decodeBatch(sequences, skip);
        sequences.forEach((ids, i) => {
          const got = attempt(() => ours.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false }));
          if (got !== decoded[i]) {
            m.add(() => `  decode (skip_special_tokens=${skip}) of ${clip(VARIANT_CORPUS[i])}\n    ours ${typeof got === 'string' ? clip(got) : got.error}\n    rust ${clip(decoded[i])}`);
          }
        });
      }
      expect(m.count, m.report(VARIANT_CORPUS.length * 4 + 100)).toBe(0);
    }, TIMEOUT);
  }
});
