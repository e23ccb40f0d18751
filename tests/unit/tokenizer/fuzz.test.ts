// Malformed tokenizer.json files must fail with a TokenizerError that names the field at fault: never a crash
// (TypeError, RangeError...), never a hang. Hand-written cases for each kind of damage, every field retyped in
// turn, then a seeded mutation fuzzer; all on small versions of real tokenizers.
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenizerError } from '../../../src/errors.js';
import { PreTrainedTokenizer } from '../../../src/tokenizer/tokenizer.js';
import { rng } from '../../helpers/random.js';
import { rust } from '../../helpers/rust-tokenizers.js';
import { loadTokenizerFiles, type TokenizerName } from '../../helpers/tokenizer-files.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const MUTATIONS = 1200;
const SLOW_MS = 2000;
const SAMPLE_TEXTS = ['Hello world', " don't  stop 123,456.78 ", '日本語 🤗 é\u0301', '<s>[CLS]<|endoftext|><pad>', '', '\n\t '];
const BASE_NAMES = ['gpt2', 'llama3', 'qwen3', 'deepseek_v3', 'llama2', 'mistral', 'gemma3', 'bert', 't5'] as const;
type BaseName = (typeof BASE_NAMES)[number];

/**
 * A small copy of a real tokenizer: the first `keep` ids, byte tokens and basic Latin single characters, the
 * merges among them, and the added tokens that fit. Small enough to load in milliseconds.
 */
function shrink(name: TokenizerName, keep: number): JsonObject {
  const json = JSON.parse(loadTokenizerFiles(name).json) as JsonObject;
  const model = json.model as JsonObject;
  const wanted = (token: string, id: number) =>
    id < keep || /^<0x[0-9A-F]{2}>$/.test(token) || (token.length === 1 && token < '\u0250') || token === '▁';
  let size: number;
  if (Array.isArray(model.vocab)) {
    const entries = model.vocab as Array<[string, number]>;
    model.vocab = entries.filter(([token], id) => wanted(token, id));
    size = model.vocab.length;
  } else {
    const vocab = model.vocab as Record<string, number>;
    const kept = Object.entries(vocab).filter(([token, id]) => wanted(token, id));
    model.vocab = Object.fromEntries(kept);
    size = Math.max(...kept.map(([, id]) => id)) + 1;
  }
  if (Array.isArray(model.merges)) {
    const vocab = model.vocab as Record<string, number>;
    model.merges = model.merges.filter((merge) => {
      const [a, b] = typeof merge === 'string' ? merge.split(' ') : (merge as string[]);
      return a in vocab && b in vocab && a + b in vocab;
    });
  }
  // Added tokens past the smaller vocabulary are renumbered right after it, as the Rust library would.
  const added = ((json.added_tokens ?? []) as JsonObject[]).filter((t, i) => i < 12 || (t.id as number) < size);
  for (const t of added) if ((t.id as number) >= size) t.id = size++;
  json.added_tokens = added;
  return json;
}

const bases = new Map<BaseName, JsonObject>();
const configs = new Map<BaseName, Record<string, unknown>>();

function base(name: BaseName): JsonObject {
  return structuredClone(bases.get(name)!);
}

interface Outcome {
  loaded: boolean;
  /** The first TokenizerError, from loading or from using the tokenizer. */
  error: TokenizerError | null;
}

/** Loads `json` and, if that works, encodes (single and pair) and decodes a few strings. Other errors propagate. */
function exercise(json: string | object, config: Record<string, unknown> = {}): Outcome {
  let tok: PreTrainedTokenizer;
  try {
    tok = PreTrainedTokenizer.fromJSON(json, config);
  } catch (e) {
    if (e instanceof TokenizerError) return { loaded: false, error: e };
    throw e;
  }
  let error: TokenizerError | null = null;
  const use = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof TokenizerError)) throw e;
      error ??= e;
    }
  };
  for (const text of SAMPLE_TEXTS) {
    for (const add of [true, false]) {
      use(() => {
        const ids = tok.encode(text, { add_special_tokens: add });
        tok.decode(ids, { skip_special_tokens: add, clean_up_tokenization_spaces: false });
      });
      use(() => tok.encodeWithOffsets(text, { add_special_tokens: add, text_pair: SAMPLE_TEXTS[0] }));
      use(() => tok.decode([0, 1, 2, 3, 100, 255, 256, 10 ** 6], { skip_special_tokens: !add, clean_up_tokenization_spaces: false }));
    }
  }
  return { loaded: true, error };
}

/** Name, message and the top of the stack of any throwable. */
function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}\n${e.stack?.split('\n').slice(1, 4).join('\n')}` : String(e);
}

beforeAll(() => {
  for (const name of BASE_NAMES) {
    bases.set(name, shrink(name, name === 'bert' ? 2000 : 600)); // bert's first 1000 ids are mostly [unused]
    configs.set(name, loadTokenizerFiles(name).config);
  }
}, 60_000);

describe('small tokenizers used by the fuzzer', () => {
  for (const name of BASE_NAMES) {
    it(`${name}: loads and encodes like the Rust library`, async () => {
      const json = JSON.stringify(bases.get(name));
      const theirs = rust.Tokenizer.fromString(json);
      const ours = PreTrainedTokenizer.fromJSON(json, configs.get(name));
      for (const text of SAMPLE_TEXTS) {
        const expected = (await theirs.encode(text, null, { addSpecialTokens: true })).getIds();
        expect(ours.encode(text, { add_special_tokens: true }), JSON.stringify(text)).toEqual(expected);
      }
    });
  }
});

describe('not JSON, or not an object', () => {
  for (const input of ['not json', '', '{', '{"model": }', 'null', '[]', '42', '"text"']) {
    it(`fromJSON(${JSON.stringify(input)}) throws TokenizerError`, () => {
      expect(() => PreTrainedTokenizer.fromJSON(input)).toThrow(TokenizerError);
    });
  }
  for (const input of [null, 42, [], true] as unknown[]) {
    it(`fromJSON(${JSON.stringify(input)}) (parsed) throws TokenizerError`, () => {
      expect(() => PreTrainedTokenizer.fromJSON(input as object)).toThrow(TokenizerError);
    });
  }
  for (const config of [null, 'x', [], { padding_side: 'up' }, { bos_token: 5 }, { chat_template: 7 }] as unknown[]) {
    it(`a bad tokenizer_config ${JSON.stringify(config)} throws TokenizerError`, () => {
      expect(() => PreTrainedTokenizer.fromJSON(base('gpt2'), config as Record<string, unknown>)).toThrow(TokenizerError);
    });
  }
});

/** [what, base, damage, text the message must contain] */
type Case = [string, BaseName, (j: JsonObject) => void, string];
const obj = (j: JsonObject, ...path: Array<string | number>): JsonObject =>
  path.reduce<Json>((o, k) => (o as Record<string | number, Json>)[k], j) as JsonObject;

const CASES: Case[] = [
  // model
  ['model missing', 'gpt2', (j) => delete j.model, 'model'],
  ['model null', 'gpt2', (j) => (j.model = null), 'model'],
  ['model a string', 'gpt2', (j) => (j.model = 'BPE'), 'model'],
  ['model an array', 'gpt2', (j) => (j.model = []), 'model'],
  // unknown component types, at every level
  ['unknown model type', 'gpt2', (j) => (obj(j, 'model').type = 'Nope'), 'model'],
  ['unknown normalizer type', 'bert', (j) => (obj(j, 'normalizer').type = 'Nope'), 'normalizer'],
  ['unknown normalizer in a Sequence', 'llama2', (j) => (obj(j, 'normalizer', 'normalizers', 1).type = 'Nope'), 'normalizers'],
  ['unknown pre-tokenizer type', 'gpt2', (j) => (obj(j, 'pre_tokenizer').type = 'Nope'), 'pre_tokenizer'],
  ['unknown pre-tokenizer in a Sequence', 'llama3', (j) => (obj(j, 'pre_tokenizer', 'pretokenizers', 1).type = 'Nope'), 'pretokenizers'],
  ['unknown decoder type', 'gpt2', (j) => (obj(j, 'decoder').type = 'Nope'), 'decoder'],
  ['unknown decoder in a Sequence', 'llama2', (j) => (obj(j, 'decoder', 'decoders', 2).type = 'Nope'), 'decoders'],
  ['unknown post-processor type', 'bert', (j) => (obj(j, 'post_processor').type = 'Nope'), 'post_processor'],
  [
    'unknown post-processor in a Sequence',
    'gpt2',
    (j) => (j.post_processor = { type: 'Sequence', processors: [{ type: 'ByteLevel', trim_offsets: false }, { type: 'Nope' }] }),
    'processors',
  ],
  ['component without a type', 'bert', (j) => (j.normalizer = { lowercase: true }), 'normalizer'],
  ['component type not a string', 'gpt2', (j) => (obj(j, 'decoder').type = 3), 'decoder'],
  ['normalizer a string', 'bert', (j) => (j.normalizer = 'NFC'), 'normalizer'],
  // merges
  ['merges not an array', 'gpt2', (j) => (obj(j, 'model').merges = 'Ġ t'), 'merges'],
  ['merge not a string', 'gpt2', (j) => (obj(j, 'model').merges = [1, 2]), 'merges'],
  ['merge without a space', 'gpt2', (j) => (obj(j, 'model').merges = ['Ġt']), 'merges'],
  ['merge of unknown tokens', 'gpt2', (j) => (obj(j, 'model').merges = ['qqqz zzzq']), 'merges'],
  ['merge pair of one', 'qwen3', (j) => (obj(j, 'model').merges = [['Ġ']]), 'merges'],
  ['merge pair with a number', 'qwen3', (j) => (obj(j, 'model').merges = [['Ġ', 1]]), 'merges'],
  ['merge pair of unknown tokens', 'qwen3', (j) => (obj(j, 'model').merges = [['qqqz', 'zzzq']]), 'merges'],
  // regexes
  ['bad Split regex', 'llama3', (j) => (obj(j, 'pre_tokenizer', 'pretokenizers', 0).pattern = { Regex: '(' }), 'pattern'],
  ['bad Split regex class', 'llama3', (j) => (obj(j, 'pre_tokenizer', 'pretokenizers', 0).pattern = { Regex: '[a-' }), 'pattern'],
  ['Split pattern a number', 'llama3', (j) => (obj(j, 'pre_tokenizer', 'pretokenizers', 0).pattern = { Regex: 5 }), 'pattern'],
  ['Split pattern empty', 'llama3', (j) => (obj(j, 'pre_tokenizer', 'pretokenizers', 0).pattern = {}), 'pattern'],
  ['Split pattern a bare string', 'gemma3', (j) => (obj(j, 'pre_tokenizer').pattern = ' '), 'pattern'],
  ['bad Replace regex', 'gemma3', (j) => (obj(j, 'normalizer').pattern = { Regex: '[' }), 'pattern'],
  ['bad Replace regex in a decoder', 'llama2', (j) => (obj(j, 'decoder', 'decoders', 0).pattern = { Regex: '(?<' }), 'pattern'],
  ['Split behavior unknown', 'llama3', (j) => (obj(j, 'pre_tokenizer', 'pretokenizers', 0).behavior = 'Sideways'), 'behavior'],
  // vocab
  ['vocab an array (BPE)', 'gpt2', (j) => (obj(j, 'model').vocab = []), 'vocab'],
  ['vocab a string', 'gpt2', (j) => (obj(j, 'model').vocab = 'x'), 'vocab'],
  ['vocab null (WordPiece)', 'bert', (j) => (obj(j, 'model').vocab = null), 'vocab'],
  ['vocab an object (Unigram)', 't5', (j) => (obj(j, 'model').vocab = { a: 0 }), 'vocab'],
  ['vocab id a float', 'gpt2', (j) => (obj(j, 'model', 'vocab')['Ġt'] = 1.5), 'vocab'],
  ['vocab id a string', 'bert', (j) => (obj(j, 'model', 'vocab')['the'] = '1'), 'vocab'],
  ['vocab id negative', 'gpt2', (j) => (obj(j, 'model', 'vocab')['Ġt'] = -1), 'vocab'],
  ['Unigram entry not a pair', 't5', (j) => ((obj(j, 'model').vocab as Json[])[5] = 'a'), 'vocab'],
  ['Unigram score a string', 't5', (j) => ((obj(j, 'model').vocab as Json[])[5] = ['a', 'x']), 'vocab'],
  ['Unigram piece a number', 't5', (j) => ((obj(j, 'model').vocab as Json[])[5] = [1, -2.5]), 'vocab'],
  ['Unigram unk_id a float', 't5', (j) => (obj(j, 'model').unk_id = 1.5), 'unk_id'],
  ['Unigram unk_id past the vocab', 't5', (j) => (obj(j, 'model').unk_id = 10 ** 7), 'unk_id'],
  ['WordPiece unk_token a number', 'bert', (j) => (obj(j, 'model').unk_token = 5), 'unk_token'],
  ['BPE dropout a string', 'gpt2', (j) => (obj(j, 'model').dropout = 'high'), 'dropout'],
  // added tokens
  ['added_tokens an object', 'gpt2', (j) => (j.added_tokens = {}), 'added_tokens'],
  ['added token a number', 'gpt2', (j) => (j.added_tokens = [1]), 'added_tokens'],
  ['added token without content', 'gpt2', (j) => (j.added_tokens = [{ id: 5, special: true }]), 'content'],
  ['added token content a number', 'gpt2', (j) => (j.added_tokens = [{ id: 5, content: 5, special: true }]), 'content'],
  ['added token without id', 'gpt2', (j) => (j.added_tokens = [{ content: '<x>', special: true }]), 'id'],
  ['added token id a string', 'gpt2', (j) => (j.added_tokens = [{ id: '5', content: '<x>', special: true }]), 'id'],
  ['added token id a float', 'gpt2', (j) => (j.added_tokens = [{ id: 5.5, content: '<x>', special: true }]), 'id'],
  ['added token special a string', 'gpt2', (j) => (j.added_tokens = [{ id: 5, content: '<x>', special: 'yes' }]), 'special'],
  // wrong JSON types in component fields
  ['Metaspace replacement a number', 'mistral', (j) => (obj(j, 'pre_tokenizer').replacement = 9), 'replacement'],
  ['Metaspace prepend_scheme unknown', 'mistral', (j) => (obj(j, 'pre_tokenizer').prepend_scheme = 'sometimes'), 'prepend_scheme'],
  ['ByteLevel add_prefix_space a string', 'gpt2', (j) => (obj(j, 'pre_tokenizer').add_prefix_space = 'no'), 'add_prefix_space'],
  ['Sequence normalizers not an array', 'llama2', (j) => (obj(j, 'normalizer').normalizers = {}), 'normalizers'],
  ['Sequence pretokenizers null', 'llama3', (j) => (obj(j, 'pre_tokenizer').pretokenizers = null), 'pretokenizers'],
  ['Sequence decoders a string', 'llama2', (j) => (obj(j, 'decoder').decoders = 'x'), 'decoders'],
  ['Strip start a string', 'llama2', (j) => (obj(j, 'decoder', 'decoders', 3).start = 'one'), 'start'],
  ['Prepend prepend a number', 'llama2', (j) => (obj(j, 'normalizer', 'normalizers', 0).prepend = 1), 'prepend'],
  ['Replace content null', 'gemma3', (j) => (obj(j, 'normalizer').content = null), 'content'],
  ['BertNormalizer lowercase a string', 'bert', (j) => (obj(j, 'normalizer').lowercase = 'yes'), 'lowercase'],
  ['Precompiled charsmap not base64', 't5', (j) => (obj(j, 'normalizer').precompiled_charsmap = '!!!'), 'precompiled_charsmap'],
  ['Precompiled charsmap truncated', 't5', (j) => (obj(j, 'normalizer').precompiled_charsmap = 'AAAA'), 'precompiled_charsmap'],
  ['Precompiled charsmap a number', 't5', (j) => (obj(j, 'normalizer').precompiled_charsmap = 1), 'precompiled_charsmap'],
  ['Template single not a list', 'bert', (j) => (obj(j, 'post_processor').single = 'x'), 'single'],
  ['Template piece unknown', 'bert', (j) => ((obj(j, 'post_processor').single as Json[])[0] = { Nope: {} }), 'single'],
  [
    'Template special token missing',
    'bert',
    (j) => ((obj(j, 'post_processor').single as Json[])[0] = { SpecialToken: { id: '[NOPE]', type_id: 0 } }),
    '[NOPE]',
  ],
  ['Template special_tokens ids a string', 'bert', (j) => (obj(j, 'post_processor', 'special_tokens', '[CLS]').ids = 'x'), 'ids'],
  ['WordPiece decoder prefix a number', 'bert', (j) => (obj(j, 'decoder').prefix = 1), 'prefix'],
];

/** Loading `json` (or, failing that, using it) must give a TokenizerError about tokenizer.json naming `field`. */
function expectRejected(json: JsonObject, name: BaseName, field: string): void {
  const t0 = performance.now();
  let outcome: Outcome;
  try {
    outcome = exercise(JSON.stringify(json), configs.get(name));
  } catch (e) {
    expect.fail(`threw something other than a TokenizerError: ${describeError(e)}`);
  }
  expect(performance.now() - t0).toBeLessThan(SLOW_MS);
  expect(outcome.error, 'loaded and encoded without complaint').toBeInstanceOf(TokenizerError);
  expect(outcome.error!.message).toContain('tokenizer.json');
  expect(outcome.error!.message).toContain(field);
}

describe('malformed tokenizer.json: TokenizerError naming the field', () => {
  for (const [what, name, damage, field] of CASES) {
    it(`${what} (${name})`, () => {
      const json = base(name);
      damage(json);
      expectRejected(json, name, field);
    });
  }
});

// ── every field retyped ────────────────────────────────────────────────────────────────────────────────────

type Path = Array<string | number>;
const BULK = new Set(['vocab', 'merges', 'added_tokens']);

/**
 * Every field under `node` with the name an error about it should use: its key, or for list items the list's key.
 * Lists contribute their first item, except the vocabulary, merges and added tokens: their first three.
 */
function* fields(node: Json, path: Path, name: string): Generator<{ path: Path; name: string; value: Json }> {
  if (node === null || typeof node !== 'object') return;
  const entries: Array<[string | number, Json]> = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
  const bulk = BULK.has(name);
  for (const [key, value] of entries.slice(0, Array.isArray(node) || bulk ? (bulk ? 3 : 1) : undefined)) {
    const childName = typeof key === 'number' || bulk ? name : key;
    yield { path: [...path, key], name: childName, value };
    yield* fields(value, [...path, key], childName);
  }
}

/** A value of a JSON type the field can never have. */
function retyped(v: Json): Json {
  if (typeof v === 'boolean') return 'yes';
  if (typeof v === 'string') return 5;
  if (typeof v === 'number') return 'five';
  if (v === null) return [];
  return 7;
}

describe('every field set to a value of the wrong JSON type: TokenizerError naming the field', () => {
  for (const name of BASE_NAMES) {
    it(name, () => {
      const failures: string[] = [];
      let count = 0;
      for (const { path, name: field, value } of fields(bases.get(name)!, [], '')) {
        const json = base(name);
        const parent = path.slice(0, -1).reduce<Json>((o, k) => (o as Record<string | number, Json>)[k], json);
        // A model without "type" is whichever kind its fields fit (as in Rust): a retyped field may just pick another.
        if (parent === json.model && !('type' in (parent as JsonObject))) continue;
        (parent as Record<string | number, Json>)[path[path.length - 1]] = retyped(value);
        const where = `${path.join('.')}: ${JSON.stringify(value)?.slice(0, 30)} → ${JSON.stringify(retyped(value))}`;
        count++;
        const t0 = performance.now();
        try {
          const { error } = exercise(JSON.stringify(json), configs.get(name));
          if (!error) failures.push(`${where}\n    accepted`);
          else if (!error.message.includes('tokenizer.json') || !error.message.includes(field)) {
            failures.push(`${where}\n    message does not name "${field}": ${error.message}`);
          }
        } catch (e) {
          failures.push(`${where}\n    ${describeError(e)}`);
        }
        const ms = performance.now() - t0;
        if (ms > SLOW_MS) failures.push(`${where}\n    took ${ms.toFixed(0)} ms`);
      }
      expect(failures.length, `${failures.length} of ${count} retyped fields\n  ${failures.slice(0, 15).join('\n  ')}`).toBe(0);
    });
  }
});

// ── seeded mutation fuzzer ─────────────────────────────────────────────────────────────────────────────────

const TYPE_NAMES = [
  // normalizers
  'BertNormalizer', 'Strip', 'StripAccents', 'NFC', 'NFD', 'NFKC', 'NFKD', 'Sequence', 'Lowercase', 'Nmt', 'Precompiled',
  'Replace', 'Prepend', 'ByteLevel',
  // pre-tokenizers
  'BertPreTokenizer', 'Metaspace', 'Whitespace', 'WhitespaceSplit', 'Split', 'Punctuation', 'Digits', 'CharDelimiterSplit',
  'UnicodeScripts', 'FixedLength',
  // models
  'BPE', 'WordPiece', 'WordLevel', 'Unigram',
  // decoders and post-processors
  'ByteFallback', 'Fuse', 'CTC', 'TemplateProcessing', 'BertProcessing', 'RobertaProcessing',
  'Nope',
];
const ODD_STRINGS = ['', ' ', 'x', '(', '[', ')', '\\', '*', '?', '.*', '(?i)', '\\p{Nope}', '<s>', '▁', 'Ġ', '\u0000', '🤗', 'Regex', 'String'];
const ODD_VALUES: Json[] = [null, true, false, 0, 1, -1, 0.5, 2 ** 31, 2 ** 53 + 2, -1e300, [], [1], ['a', 'b'], [[]], {}, { type: 'Nope' }, { Regex: '(' }, { String: '' }];

/** Every (container, key) slot, found by a random walk that stops early, so structure is hit more than vocab. */
function randomSlot(root: JsonObject, r: () => number): [JsonObject | Json[], string | number] | null {
  let node: JsonObject | Json[] = root;
  for (;;) {
    const keys: Array<string | number> = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) return null;
    const key = keys[Math.floor(r() * keys.length)];
    const child: Json = (node as Record<string | number, Json>)[key];
    if (child === null || typeof child !== 'object' || r() < 0.3) return [node, key];
    node = child;
  }
}

function mutate(root: JsonObject, r: () => number): string {
  const slot = randomSlot(root, r);
  if (!slot) return 'nothing';
  const [parent, key] = slot;
  const at = (parent as Record<string | number, Json>)[key];
  const set = (v: Json) => ((parent as Record<string | number, Json>)[key] = v);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const what = r();
  if (what < 0.2) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
    return `delete ${key}`;
  }
  if (what < 0.45) {
    const v = pick(ODD_VALUES);
    set(structuredClone(v));
    return `${key} = ${JSON.stringify(v)}`;
  }
  if (key === 'type' || what < 0.55) {
    const v = pick(TYPE_NAMES);
    set(key === 'type' ? v : { ...(typeof at === 'object' && at !== null && !Array.isArray(at) ? at : {}), type: v });
    return `${key} type → ${v}`;
  }
  if (typeof at === 'string') {
    const v = r() < 0.5 ? pick(ODD_STRINGS) : at.slice(0, Math.floor(r() * at.length)) + pick(ODD_STRINGS);
    set(v);
    return `${key} = ${JSON.stringify(v.slice(0, 40))}`;
  }
  if (typeof at === 'number') {
    const v = pick([at + 1, at - 1, -at, at + 0.5, at * 1000, 0, -1]);
    set(v);
    return `${key} = ${v}`;
  }
  if (Array.isArray(at) && at.length > 0) {
    const i = Math.floor(r() * at.length);
    if (r() < 0.5) at.push(structuredClone(at[i]));
    else at.reverse();
    return `${key} duplicated/reversed`;
  }
  set(pick(ODD_STRINGS));
  return `${key} = string`;
}

describe('seeded mutation fuzzer', () => {
  it(`${MUTATIONS} mutated tokenizers load or fail with a TokenizerError`, () => {
    const r = rng(20240601);
    const failures: string[] = [];
    let loaded = 0;
    let slowest = 0;
    for (let i = 0; i < MUTATIONS; i++) {
      const name = BASE_NAMES[i % BASE_NAMES.length];
      const json = base(name);
      const steps = Array.from({ length: 1 + Math.floor(r() * 3) }, () => mutate(json, r));
      const label = `#${i} ${name}: ${steps.join('; ')}`;
      const t0 = performance.now();
      try {
        const { loaded: ok, error } = exercise(JSON.stringify(json), configs.get(name));
        if (ok) loaded++;
        else if (!error!.message.includes('tokenizer.json')) failures.push(`${label}\n  message does not say tokenizer.json: ${error!.message}`);
      } catch (e) {
        failures.push(`${label}\n  ${describeError(e)}`);
      }
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      if (ms > SLOW_MS) failures.push(`${label}\n  took ${ms.toFixed(0)} ms`);
    }
    const shown = failures.slice(0, 12).join('\n');
    expect(failures.length, `${failures.length} of ${MUTATIONS} failed (${loaded} loaded, slowest ${slowest.toFixed(0)} ms)\n${shown}`).toBe(0);
  }, 120_000);
});
