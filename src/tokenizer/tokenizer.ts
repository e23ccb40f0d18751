/**
 * A tokenizer built from `tokenizer.json` (+ `tokenizer_config.json`), producing exactly the ids of the Rust
 * Hugging Face `tokenizers` library, with the call / encode / decode API of transformers.
 *
 *   text ─ added tokens cut out ─ normalizer ─ pre-tokenizer ─ model ─ truncation ─ post-processor ─ padding
 */
import { TokenizerError } from '../errors.js';
import { AddedVocabulary, addedTokensFromJSON } from './added-tokens.js';
import { Callable } from './callable.js';
import { renderChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat-template.js';
import {
  emptyEncoding,
  type Decoder,
  type Encoding,
  type Model,
  type Normalizer,
  type PostProcessor,
  type PreTokenizer,
} from './components.js';
import { decoderFromJSON } from './decoders.js';
import { fail, obj, optStr, type JsonObject } from './json.js';
import { modelFromJSON } from './models/index.js';
import { normalizerFromJSON } from './normalizers.js';
import { postProcessorFromJSON } from './post-processors.js';
import { preTokenizerFromJSON } from './pre-tokenizers.js';

export type { Encoding } from './components.js';

export interface EncodeOptions {
  /** Add BOS/EOS/[CLS]... as the post-processor says (default true). */
  add_special_tokens?: boolean;
  /** Second sequence of a pair. */
  text_pair?: string | null;
}

export interface CallOptions extends EncodeOptions {
  text_pair?: string | null;
  /** true / 'longest': pad to the longest in the batch; 'max_length': pad to `max_length`. */
  padding?: boolean | 'longest' | 'max_length' | 'do_not_pad';
  /** Cut sequences longer than `max_length` (default: `model_max_length`). */
  truncation?: boolean | 'longest_first' | 'only_first' | 'only_second' | 'do_not_truncate';
  max_length?: number;
  /** Also return `offset_mapping`: [start, end) of each token in the input, in UTF-16 units. */
  return_offsets_mapping?: boolean;
  return_token_type_ids?: boolean;
}

export interface BatchEncoding<T> {
  input_ids: T;
  attention_mask: T;
  token_type_ids?: T;
  offset_mapping?: T extends number[][] ? Array<Array<[number, number]>> : Array<[number, number]>;
}

export interface DecodeOptions {
  skip_special_tokens?: boolean;
  /** Remove spaces before punctuation as transformers' `clean_up_tokenization` does (default from tokenizer_config). */
  clean_up_tokenization_spaces?: boolean;
}

type Side = 'left' | 'right';

/** Special-token names transformers exposes as attributes and as chat-template variables. */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;
type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];

// A very large model_max_length in a config means "no limit" (transformers writes 1e30).
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

export interface PreTrainedTokenizer {
  /** `tokenizer(text)` as in transformers: `{ input_ids, attention_mask }` (number[] for one text, number[][] for a list). */
  (text: string, options?: CallOptions): BatchEncoding<number[]>;
  (text: string[], options?: CallOptions): BatchEncoding<number[][]>;
}

export class PreTrainedTokenizer extends Callable<[string | string[], CallOptions?], BatchEncoding<number[] | number[][]>> {
  readonly normalizer: Normalizer | null;
  readonly preTokenizer: PreTokenizer | null;
  readonly model: Model;
  readonly postProcessor: PostProcessor | null;
  readonly decoder: Decoder | null;
  readonly addedVocabulary: AddedVocabulary;
  /** tokenizer_config.json as given. */
  readonly config: Record<string, unknown>;
  padding_side: Side;
  truncation_side: Side;
  model_max_length: number;
  chat_template: string | Record<string, string> | null;
  bos_token: string | null = null;
  eos_token: string | null = null;
  unk_token: string | null = null;
  sep_token: string | null = null;
  pad_token: string | null = null;
  cls_token: string | null = null;
  mask_token: string | null = null;
  additional_special_tokens: string[] = [];
  clean_up_tokenization_spaces: boolean;

  protected constructor(json: JsonObject, config: Record<string, unknown>) {
    super();
    this.normalizer = normalizerFromJSON(json.normalizer ?? null, 'normalizer');
    this.preTokenizer = preTokenizerFromJSON(json.pre_tokenizer ?? null, 'pre_tokenizer');
    if (json.model === undefined || json.model === null) {
      throw new TokenizerError('tokenizer.json: model is missing; every tokenizer.json needs a "model" section.');
    }
    this.model = modelFromJSON(json.model, 'model');
    this.postProcessor = postProcessorFromJSON(json.post_processor ?? null, 'post_processor');
    this.decoder = decoderFromJSON(json.decoder ?? null, 'decoder');
    this.addedVocabulary = new AddedVocabulary(addedTokensFromJSON(json.added_tokens, 'added_tokens'), this.normalizer);
    this.config = config;
    if (json.version !== undefined && typeof json.version !== 'string') fail('version', 'must be a string');
    // As in transformers, tokenizer.json's own padding/truncation settings only supply defaults.
    const padding = json.padding === undefined || json.padding === null ? null : obj(json.padding, 'padding');
    const truncation = json.truncation === undefined || json.truncation === null ? null : obj(json.truncation, 'truncation');
    const padDirection = padding ? optStr(padding, 'direction', 'padding') : null;
    const truncDirection = truncation ? optStr(truncation, 'direction', 'truncation') : null;

    this.padding_side = sideOf(config.padding_side ?? padDirection?.toLowerCase(), 'padding_side');
    this.truncation_side = sideOf(config.truncation_side ?? truncDirection?.toLowerCase(), 'truncation_side');
    const maxLength = config.model_max_length;
    this.model_max_length = typeof maxLength === 'number' && maxLength < NO_LIMIT ? maxLength : NO_LIMIT;
    this.chat_template = chatTemplateOf(config.chat_template);
    this.clean_up_tokenization_spaces = config.clean_up_tokenization_spaces === true;
    for (const key of SPECIAL_TOKEN_KEYS) this[key] = tokenContent(config[key], key);
    if (this.pad_token === null && padding) this.pad_token = optStr(padding, 'pad_token', 'padding');
    const extra = config.additional_special_tokens;
    if (Array.isArray(extra)) {
      this.additional_special_tokens = extra.map((t, i) => tokenContent(t, `additional_special_tokens[${i}]`)).filter((t): t is string => t !== null);
    }
  }

  /** Builds a tokenizer from tokenizer.json (text or parsed) and tokenizer_config.json (parsed, optional). */
  static fromJSON(tokenizerJson: string | object, tokenizerConfig: Record<string, unknown> = {}): PreTrainedTokenizer {
    let parsed: unknown = tokenizerJson;
    if (typeof tokenizerJson === 'string') {
      try {
        parsed = JSON.parse(tokenizerJson);
      } catch (e) {
        throw new TokenizerError(`tokenizer.json is not valid JSON: ${e instanceof Error ? e.message : e}`);
      }
    }
    if (tokenizerConfig === null || typeof tokenizerConfig !== 'object' || Array.isArray(tokenizerConfig)) {
      throw new TokenizerError('tokenizer_config.json must hold a JSON object.');
    }
    return new PreTrainedTokenizer(obj(parsed, '(top level)'), tokenizerConfig);
  }

  // ── ids and tokens ────────────────────────────────────────────────────────────────────────────────────────

  /** Model vocabulary plus added tokens. */
  get vocab_size(): number {
    let max = this.model.vocabSize - 1;
    for (const t of this.addedVocabulary.tokens) if (t.id > max) max = t.id;
    return max + 1;
  }

  get_vocab(): Map<string, number> {
    const vocab = new Map(this.model.getVocab());
    for (const t of this.addedVocabulary.tokens) vocab.set(t.content, t.id);
    return vocab;
  }

  token_to_id(token: string): number | undefined {
    return this.addedVocabulary.idOf(token) ?? this.model.tokenToId(token);
  }

  id_to_token(id: number): string | undefined {
    return this.addedVocabulary.tokenOf(id)?.content ?? this.model.idToToken(id);
  }

  convert_tokens_to_ids(tokens: string[]): Array<number | undefined> {
    return tokens.map((t) => this.token_to_id(t));
  }

  convert_ids_to_tokens(ids: ArrayLike<number>): Array<string | undefined> {
    return Array.from(ids, (id) => this.id_to_token(id));
  }

  get bos_token_id(): number | undefined {
    return this.bos_token === null ? undefined : this.token_to_id(this.bos_token);
  }
  get eos_token_id(): number | undefined {
    return this.eos_token === null ? undefined : this.token_to_id(this.eos_token);
  }
  get pad_token_id(): number | undefined {
    return this.pad_token === null ? undefined : this.token_to_id(this.pad_token);
  }
  get unk_token_id(): number | undefined {
    return this.unk_token === null ? undefined : this.token_to_id(this.unk_token);
  }

  /** Ids of every token marked special in tokenizer.json. */
  get all_special_ids(): number[] {
    return this.addedVocabulary.tokens.filter((t) => t.special).map((t) => t.id);
  }

  // ── encoding ──────────────────────────────────────────────────────────────────────────────────────────────

  /** Token ids of `text` (with special tokens unless `add_special_tokens: false`). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.encodeWithOffsets(text, options).ids;
  }

  /** Everything about the encoding of `text`: ids, tokens, offsets, type ids, special-token mask. */
  encodeWithOffsets(text: string, options: EncodeOptions & { max_length?: number; truncation?: CallOptions['truncation'] } = {}): Encoding {
    checkText(text, 'text');
    const addSpecial = options.add_special_tokens ?? true;
    const first = this.encodeSequence(text, 0);
    let pair: Encoding | null = null;
    if (options.text_pair !== undefined && options.text_pair !== null) {
      checkText(options.text_pair, 'text_pair');
      pair = this.encodeSequence(options.text_pair, 1);
    }
    const truncation = options.truncation ?? false;
    if (truncation !== false && truncation !== 'do_not_truncate') {
      const max = options.max_length ?? this.model_max_length;
      const added = addSpecial && this.postProcessor ? this.postProcessor.addedTokens(pair !== null) : 0;
      truncateEncodings(first, pair, Math.max(0, max - added), truncation === true ? 'longest_first' : truncation, this.truncation_side);
    }
    if (this.postProcessor) return this.postProcessor.process(first, pair, addSpecial);
    if (pair) return mergeEncodings(first, pair);
    return first;
  }

  /** One sequence through added tokens, normalizer, pre-tokenizer and model. */
  private encodeSequence(text: string, typeId: number): Encoding {
    const enc = emptyEncoding();
    const model = this.model;
    // Word-local [start, end) of the current word's tokens, for the token strings.
    const local: number[] = [];
    const sink = {
      push(id: number, start: number, end: number) {
        enc.ids.push(id);
        local.push(start, end);
      },
    };
    for (const segment of this.addedVocabulary.split(text, this.normalizer)) {
      if (segment.tokenId >= 0) {
        enc.ids.push(segment.tokenId);
        enc.tokens.push(segment.piece.text);
        enc.offsets.push(segment.piece.originalRange(0, segment.piece.length));
        continue;
      }
      const words = this.preTokenizer ? this.preTokenizer.preTokenize([segment.piece]) : [segment.piece];
      for (const word of words) {
        if (word.length === 0) continue;
        const first = enc.ids.length;
        local.length = 0;
        model.tokenize(word.text, sink);
        for (let i = first, j = 0; i < enc.ids.length; i++, j += 2) {
          const id = enc.ids[i];
          const start = local[j];
          const end = local[j + 1];
          enc.offsets.push(word.originalRange(start, end));
          enc.tokens.push(model.tokenValue ? model.tokenValue(id, word.text, start, end) : (model.idToToken(id) ?? ''));
        }
      }
    }
    const n = enc.ids.length;
    enc.typeIds = new Array(n).fill(typeId);
    enc.specialTokensMask = new Array(n).fill(0);
    enc.attentionMask = new Array(n).fill(1);
    return enc;
  }

  protected _call(text: string | string[], options: CallOptions = {}): BatchEncoding<number[] | number[][]> {
    const batched = Array.isArray(text);
    const texts = batched ? text : [text];
    if (texts.length === 0) throw new TokenizerError('tokenizer() needs at least one text.');
    const padding = options.padding ?? false;
    let truncation = options.truncation ?? false;
    // transformers: max_length with padding 'max_length' or truncation; truncation=true without max_length uses model_max_length.
    if (truncation === true || truncation === 'longest_first' || truncation === 'only_first' || truncation === 'only_second') {
      if (options.max_length === undefined && this.model_max_length === NO_LIMIT) truncation = false;
    }
    const encodings = texts.map((t) =>
      this.encodeWithOffsets(t, {
        add_special_tokens: options.add_special_tokens,
        text_pair: options.text_pair,
        truncation,
        max_length: options.max_length,
      }),
    );
    if (padding !== false && padding !== 'do_not_pad') {
      let target: number;
      if (padding === 'max_length') {
        target = options.max_length ?? this.model_max_length;
        if (target === NO_LIMIT) throw new TokenizerError("padding: 'max_length' needs max_length (this tokenizer has no model_max_length).");
      } else {
        target = Math.max(...encodings.map((e) => e.ids.length));
      }
      const padId = this.pad_token_id;
      if (padId === undefined) {
        throw new TokenizerError(
          'Padding needs a pad token, and this tokenizer has none: set tokenizer.pad_token (e.g. to tokenizer.eos_token) first.',
        );
      }
      for (const e of encodings) padEncoding(e, target, padId, this.pad_token!, this.padding_side);
    }
    const pick = <T>(f: (e: Encoding) => T): T | T[] => (batched ? encodings.map(f) : f(encodings[0]));
    const out: BatchEncoding<number[] | number[][]> = {
      input_ids: pick((e) => e.ids) as number[] | number[][],
      attention_mask: pick((e) => e.attentionMask) as number[] | number[][],
    };
    if (options.return_token_type_ids) out.token_type_ids = pick((e) => e.typeIds) as number[] | number[][];
    if (options.return_offsets_mapping) out.offset_mapping = pick((e) => e.offsets) as never;
    return out;
  }

  // ── decoding ──────────────────────────────────────────────────────────────────────────────────────────────

  /** Text of `ids`, as the Rust library decodes it (unknown ids are skipped). */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skip = options.skip_special_tokens ?? false;
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const token = this.id_to_token(ids[i]);
      if (token === undefined) continue;
      if (skip && this.addedVocabulary.isSpecial(token)) continue;
      tokens.push(token);
    }
    const text = this.decoder ? this.decoder.decodeChain(tokens).join('') : tokens.join(' ');
    return options.clean_up_tokenization_spaces ?? this.clean_up_tokenization_spaces ? cleanUpTokenization(text) : text;
  }

  batch_decode(batch: ArrayLike<number>[], options: DecodeOptions = {}): string[] {
    return Array.from(batch, (ids) => this.decode(ids, options));
  }

  // ── chat ──────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Renders `messages` with the model's chat template (from tokenizer_config.json) as transformers does; returns
   * token ids (the default, `tokenize: true`, encoded without adding special tokens) or the text.
   */
  apply_chat_template(messages: ChatMessage[], options: ChatTemplateOptions & { tokenize: false }): string;
  apply_chat_template(messages: ChatMessage[], options?: ChatTemplateOptions & { tokenize?: true }): number[];
  apply_chat_template(messages: ChatMessage[], options: ChatTemplateOptions & { tokenize?: boolean } = {}): string | number[] {
    const specialTokens: Record<string, string | string[]> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const v = this[key];
      if (v !== null) specialTokens[key] = v;
    }
    specialTokens.additional_special_tokens = this.additional_special_tokens;
    const text = renderChatTemplate(this.chat_template, messages, options, specialTokens);
    if (options.tokenize === false) return text;
    return this.encode(text, { add_special_tokens: false });
  }
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────────────────

function checkText(text: unknown, what: string): asserts text is string {
  if (typeof text !== 'string') throw new TokenizerError(`${what} must be a string, got ${text === null ? 'null' : typeof text}.`);
}

function sideOf(value: unknown, field: string): Side {
  if (value === undefined || value === null) return 'right';
  if (value === 'left' || value === 'right') return value;
  throw new TokenizerError(`tokenizer_config.json: ${field} must be "left" or "right", got ${JSON.stringify(value)}.`);
}

/** A special token in tokenizer_config.json is a string or an AddedToken object `{ content, ... }`. */
function tokenContent(value: unknown, field: SpecialTokenKey | string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  throw new TokenizerError(`tokenizer_config.json: ${field} must be a string or an object with "content".`);
}

function chatTemplateOf(value: unknown): string | Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  // The named form: [{ name: 'default', template: '...' }, { name: 'tool_use', template: '...' }]
  if (Array.isArray(value)) {
    const named: Record<string, string> = {};
    value.forEach((entry, i) => {
      const e = entry as { name?: unknown; template?: unknown };
      if (typeof e?.name !== 'string' || typeof e?.template !== 'string') {
        throw new TokenizerError(`tokenizer_config.json: chat_template[${i}] must be { "name": string, "template": string }.`);
      }
      named[e.name] = e.template;
    });
    return named;
  }
  throw new TokenizerError('tokenizer_config.json: chat_template must be a string or a list of named templates.');
}

function mergeEncodings(a: Encoding, b: Encoding): Encoding {
  return {
    ids: [...a.ids, ...b.ids],
    tokens: [...a.tokens, ...b.tokens],
    offsets: [...a.offsets, ...b.offsets],
    typeIds: [...a.typeIds, ...b.typeIds],
    specialTokensMask: [...a.specialTokensMask, ...b.specialTokensMask],
    attentionMask: [...a.attentionMask, ...b.attentionMask],
  };
}

const FIELDS = ['ids', 'tokens', 'offsets', 'typeIds', 'specialTokensMask', 'attentionMask'] as const;

function cut(e: Encoding, keep: number, side: Side): void {
  if (e.ids.length <= keep) return;
  for (const f of FIELDS) {
    const list = e[f] as unknown[];
    if (side === 'right') list.length = keep;
    else list.splice(0, list.length - keep);
  }
}

/** Truncates in place so the lengths add up to at most `max`, with transformers' strategies. */
function truncateEncodings(
  first: Encoding,
  pair: Encoding | null,
  max: number,
  strategy: 'longest_first' | 'only_first' | 'only_second',
  side: Side,
): void {
  if (!pair) {
    if (strategy === 'only_second') throw new TokenizerError("truncation 'only_second' needs a text_pair.");
    cut(first, max, side);
    return;
  }
  const total = first.ids.length + pair.ids.length;
  if (total <= max) return;
  if (strategy === 'only_first') {
    cut(first, Math.max(0, max - pair.ids.length), side);
  } else if (strategy === 'only_second') {
    cut(pair, Math.max(0, max - first.ids.length), side);
  } else {
    // Remove from the longer sequence first, one token at a time (transformers' longest_first).
    let a = first.ids.length;
    let b = pair.ids.length;
    while (a + b > max) {
      if (a > b) a--;
      else b--;
    }
    cut(first, a, side);
    cut(pair, b, side);
  }
}

function padEncoding(e: Encoding, target: number, padId: number, padToken: string, side: Side): void {
  const n = target - e.ids.length;
  if (n <= 0) return;
  const fill = <T>(list: T[], v: T) => {
    const pad = new Array<T>(n).fill(v);
    if (side === 'right') list.push(...pad);
    else list.unshift(...pad);
  };
  fill(e.ids, padId);
  fill(e.tokens, padToken);
  fill(e.offsets, [0, 0] as [number, number]);
  fill(e.typeIds, 0);
  fill(e.specialTokensMask, 1);
  fill(e.attentionMask, 0);
}

/** transformers' `clean_up_tokenization`: no space before punctuation and in common English contractions. */
function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
