/**
 * Post-processors: add the special tokens around one encoded sequence or a pair ([CLS] A [SEP] B [SEP], <s> A,
 * ...), set the type ids, and (byte-level) trim whitespace from offsets, as the Rust `tokenizers` library does.
 *
 * Like Rust, each processor works on the list of encodings (A, or A and B) and may return a longer list (a
 * template returns one encoding per piece); `process` concatenates the final list. This matters in a Sequence,
 * where the next processor sees that list.
 *
 * Inputs are never modified. The pair encoding is expected with type ids 1, as Rust's `encode` makes it.
 */
import type { Encoding, PostProcessor } from './components.js';
import { BYTE_TO_CHAR } from './bytes.js';
import { arr, bool, describe, fail, obj, str, typeOf, type Json, type JsonObject } from './json.js';

const PROCESSOR_TYPES = [
  'TemplateProcessing',
  'ByteLevel',
  'RobertaProcessing',
  'BertProcessing',
  'Sequence',
] as const;

/** The post-processor described by tokenizer.json's `post_processor` field, or null when there is none. */
export function postProcessorFromJSON(json: unknown, path = 'post_processor'): PostProcessor | null {
  if (json === null || json === undefined) return null;
  return processorFromJSON(json, path);
}

function processorFromJSON(json: unknown, path: string): ListProcessor {
  const o = obj(json, path);
  switch (typeOf(o, path, PROCESSOR_TYPES, 'post-processor')) {
    case 'TemplateProcessing':
      return TemplateProcessing.fromJSON(o, path);
    case 'ByteLevel':
      bool(o, 'use_regex', path, true); // only the pre-tokenizer uses it; checked as the Rust library does
      return new ByteLevelProcessing(bool(o, 'trim_offsets', path), bool(o, 'add_prefix_space', path));
    case 'RobertaProcessing':
    case 'BertProcessing': {
      const sep = tokenAndId(o, 'sep', path);
      const cls = tokenAndId(o, 'cls', path);
      // Rust reads post-processors by their fields, not their `type`: with both booleans present the object is
      // RobertaProcessing, without them BertProcessing, whatever `type` says.
      const roberta = typeof o.trim_offsets === 'boolean' && typeof o.add_prefix_space === 'boolean';
      return roberta
        ? new RobertaProcessing(sep, cls, o.trim_offsets as boolean, o.add_prefix_space as boolean)
        : new BertProcessing(sep, cls);
    }
    case 'Sequence': {
      const items = arr(o.processors, `${path}.processors`);
      return new SequenceProcessing(items.map((p, i) => processorFromJSON(p, `${path}.processors[${i}]`)));
    }
  }
  return fail(`${path}.type`, 'is not handled'); // unreachable: typeOf checked the name
}

/** A `[token, id]` pair, as BertProcessing's `sep` and `cls`. */
function tokenAndId(o: JsonObject, key: string, path: string): [string, number] {
  const v = o[key];
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || !isU32(v[1])) {
    fail(`${path}.${key}`, `must be a [token, id] pair, got ${describe(v)}`);
  }
  return [v[0], v[1] as number];
}

function isU32(v: Json | undefined): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function u32(v: Json | undefined, path: string): number {
  if (!isU32(v)) fail(path, `must be a non-negative integer, got ${describe(v)}`);
  return v as number;
}

// ---------------------------------------------------------------------------------------------------------------

abstract class ListProcessor implements PostProcessor {
  abstract addedTokens(isPair: boolean): number;
  /** Rust's `process_encodings`: the list in, the list out. */
  abstract processList(encodings: Encoding[], addSpecialTokens: boolean): Encoding[];

  process(encoding: Encoding, pair: Encoding | null, addSpecialTokens: boolean): Encoding {
    return concat(this.processList(pair ? [encoding, pair] : [encoding], addSpecialTokens));
  }
}

/** All encodings of the list, one after the other (offsets are not shifted: each part keeps its own). */
function concat(list: Encoding[]): Encoding {
  const out: Encoding = { ids: [], tokens: [], offsets: [], typeIds: [], specialTokensMask: [], attentionMask: [] };
  for (const e of list) {
    for (let i = 0; i < e.ids.length; i++) {
      out.ids.push(e.ids[i]);
      out.tokens.push(e.tokens[i]);
      out.offsets.push([e.offsets[i][0], e.offsets[i][1]]);
      out.typeIds.push(e.typeIds[i]);
      out.specialTokensMask.push(e.specialTokensMask[i]);
      out.attentionMask.push(e.attentionMask[i]);
    }
  }
  return out;
}

/** `e` with every type id set to `typeId`. */
function withTypeId(e: Encoding, typeId: number): Encoding {
  return { ...e, typeIds: new Array<number>(e.ids.length).fill(typeId) };
}

/** An encoding of added special tokens: offsets [0, 0], special mask 1. */
function specialEncoding(ids: number[], tokens: string[], typeId: number): Encoding {
  const n = ids.length;
  return {
    ids: ids.slice(),
    tokens: tokens.slice(),
    offsets: Array.from({ length: n }, (): [number, number] => [0, 0]),
    typeIds: new Array<number>(n).fill(typeId),
    specialTokensMask: new Array<number>(n).fill(1),
    attentionMask: new Array<number>(n).fill(1),
  };
}

/**
 * `e` between `before` and `after` (special tokens, [token, id]); the sequence's own tokens get special mask 0
 * (even if they were special before, as in Rust) and the given type ids.
 */
function wrap(
  e: Encoding,
  before: [string, number] | null,
  after: [string, number],
  typeIds: number[],
): Encoding {
  const n = e.ids.length;
  const pre = before ? 1 : 0;
  return {
    ids: [...(before ? [before[1]] : []), ...e.ids, after[1]],
    tokens: [...(before ? [before[0]] : []), ...e.tokens, after[0]],
    offsets: [...(before ? [[0, 0] as [number, number]] : []), ...e.offsets, [0, 0]],
    typeIds,
    specialTokensMask: [...(before ? [1] : []), ...new Array<number>(n).fill(0), 1],
    attentionMask: new Array<number>(n + pre + 1).fill(1),
  };
}

// ---------------------------------------------------------------------------------------------------------------

const SPACE_CHAR = BYTE_TO_CHAR[0x20]; // "Ġ"
const WHITESPACE = /^\p{White_Space}$/u;

function isSpaceChar(c: string): boolean {
  return c === SPACE_CHAR || WHITESPACE.test(c);
}

/**
 * Byte-level offset trimming (Rust's `process_offsets`): a token's leading and trailing spaces ("Ġ" or whitespace)
 * are cut from its offsets, except the single space `add_prefix_space` put before the first token.
 */
export function trimOffsets(e: Encoding, addPrefixSpace: boolean): Encoding {
  const offsets = e.offsets.map(([start, end], i): [number, number] => {
    const token = e.tokens[i];
    let leading = 0;
    for (const c of token) {
      if (!isSpaceChar(c)) break;
      leading++;
    }
    let trailing = 0;
    const chars = Array.from(token);
    for (let j = chars.length - 1; j >= 0 && isSpaceChar(chars[j]); j--) trailing++;
    if (i === 0 && addPrefixSpace && leading === 1) leading = 0;
    if (leading > 0) start = Math.min(start + leading, end);
    if (trailing > 0 && end >= trailing) end = Math.max(end - trailing, start);
    return [start, end];
  });
  return { ...e, offsets };
}

/** ByteLevel as a post-processor: only trims offsets (when `trim_offsets`); adds no tokens. */
export class ByteLevelProcessing extends ListProcessor {
  constructor(
    readonly trim: boolean,
    readonly addPrefixSpace: boolean,
  ) {
    super();
  }

  addedTokens(): number {
    return 0;
  }

  processList(encodings: Encoding[]): Encoding[] {
    return this.trim ? encodings.map((e) => trimOffsets(e, this.addPrefixSpace)) : encodings;
  }
}

/** BERT: [CLS] A [SEP] and B [SEP]; A keeps its type ids (0), B its own (1), B's [SEP] gets 1. */
export class BertProcessing extends ListProcessor {
  constructor(
    readonly sep: [string, number],
    readonly cls: [string, number],
  ) {
    super();
  }

  addedTokens(isPair: boolean): number {
    return isPair ? 3 : 2;
  }

  processList(encodings: Encoding[], addSpecialTokens: boolean): Encoding[] {
    if (!addSpecialTokens) return encodings;
    return encodings.map((e, i) =>
      i === 0 ? wrap(e, this.cls, this.sep, [0, ...e.typeIds, 0]) : wrap(e, null, this.sep, [...e.typeIds, 1]),
    );
  }
}

/** RoBERTa: <s> A </s> and </s> B </s>, every type id 0, with optional byte-level offset trimming. */
export class RobertaProcessing extends ListProcessor {
  constructor(
    readonly sep: [string, number],
    readonly cls: [string, number],
    readonly trim: boolean,
    readonly addPrefixSpace: boolean,
  ) {
    super();
  }

  addedTokens(isPair: boolean): number {
    return isPair ? 4 : 2;
  }

  processList(encodings: Encoding[], addSpecialTokens: boolean): Encoding[] {
    const list = encodings.map((e) => withTypeId(this.trim ? trimOffsets(e, this.addPrefixSpace) : e, 0));
    if (!addSpecialTokens) return list;
    return list.map((e, i) => wrap(e, i === 0 ? this.cls : this.sep, this.sep, new Array(e.ids.length + 2).fill(0)));
  }
}

type Piece = { seq: 0 | 1; typeId: number } | { special: string; typeId: number };

interface SpecialTokens {
  ids: number[];
  tokens: string[];
}

/**
 * A template such as `[CLS] $A [SEP] $B:1 [SEP]:1`: pieces are the sequences (A or B, with the type id for all
 * their tokens) and special tokens (looked up by name in `special_tokens`, possibly several ids each).
 * The template reorders and types the sequences even when special tokens are not added.
 */
export class TemplateProcessing extends ListProcessor {
  constructor(
    readonly single: Piece[],
    readonly pair: Piece[],
    readonly specialTokens: Map<string, SpecialTokens>,
    private readonly path = 'post_processor',
  ) {
    super();
  }

  static fromJSON(o: JsonObject, path: string): TemplateProcessing {
    const single = template(o.single, `${path}.single`);
    const pair = template(o.pair, `${path}.pair`);
    const specials = obj(o.special_tokens, `${path}.special_tokens`);
    const map = new Map<string, SpecialTokens>();
    for (const [name, value] of Object.entries(specials)) {
      const p = `${path}.special_tokens[${JSON.stringify(name)}]`;
      const t = obj(value, p);
      str(t, 'id', p);
      const ids = arr(t.ids, `${p}.ids`).map((v, i) => u32(v, `${p}.ids[${i}]`));
      const tokens = arr(t.tokens, `${p}.tokens`).map((v, i) => {
        if (typeof v !== 'string') fail(`${p}.tokens[${i}]`, `must be a string, got ${describe(v)}`);
        return v;
      });
      map.set(name, { ids, tokens });
    }
    return new TemplateProcessing(single, pair, map, path);
  }

  addedTokens(isPair: boolean): number {
    let n = 0;
    for (const p of isPair ? this.pair : this.single) {
      if ('special' in p) n += this.specialTokens.get(p.special)?.ids.length ?? 0;
    }
    return n;
  }

  processList(encodings: Encoding[], addSpecialTokens: boolean): Encoding[] {
    const which = encodings.length === 1 ? 'single' : encodings.length === 2 ? 'pair' : null;
    if (!which) fail(this.path, `applies to one or two sequences, got ${encodings.length}`);
    const out: Encoding[] = [];
    for (const piece of this[which]) {
      if ('seq' in piece) {
        const e = encodings[piece.seq];
        if (!e) fail(`${this.path}.${which}`, 'uses $B, but there is no second sequence');
        out.push(withTypeId(e, piece.typeId));
      } else if (addSpecialTokens) {
        const t = this.specialTokens.get(piece.special);
        if (!t) fail(`${this.path}.special_tokens`, `has no ${JSON.stringify(piece.special)}, used in ${which}`);
        if (t.ids.length !== t.tokens.length) {
          fail(`${this.path}.special_tokens[${JSON.stringify(piece.special)}]`, 'must have as many ids as tokens');
        }
        out.push(specialEncoding(t.ids, t.tokens, piece.typeId));
      }
    }
    return out;
  }
}

/**
 * A template: Rust's tokenizer.json form is a list of {"Sequence": {"id": "A", "type_id": 0}} and
 * {"SpecialToken": {"id": "[CLS]", "type_id": 0}}. The string forms of the Python constructor ("[CLS] $A [SEP]",
 * or a list of "$B:1"-style strings) are accepted too.
 */
function template(v: unknown, path: string): Piece[] {
  if (typeof v === 'string') return v.split(' ').map((s, i) => pieceFromString(s, `${path}[${i}]`));
  return arr(v, path).map((item, i) => {
    const p = `${path}[${i}]`;
    if (typeof item === 'string') return pieceFromString(item, p);
    const o = obj(item, p);
    const keys = Object.keys(o);
    if (keys.length !== 1 || (keys[0] !== 'Sequence' && keys[0] !== 'SpecialToken')) {
      fail(p, 'must be {"Sequence": {...}} or {"SpecialToken": {...}}');
    }
    const body = obj(o[keys[0]], `${p}.${keys[0]}`);
    const typeId = u32(body.type_id, `${p}.${keys[0]}.type_id`);
    const id = str(body, 'id', `${p}.${keys[0]}`);
    if (keys[0] === 'SpecialToken') return { special: id, typeId };
    if (id !== 'A' && id !== 'B') fail(`${p}.Sequence.id`, `must be "A" or "B", got ${describe(id)}`);
    return { seq: id === 'A' ? 0 : 1, typeId };
  });
}

/** "$A", "$B:1", "$1" (A with type id 1), "[CLS]", "[SEP]:1", following Rust's `Piece::try_from`. */
function pieceFromString(s: string, path: string): Piece {
  const bad = (): never => fail(path, `is not a template piece: ${describe(s)}`);
  const parts = s.split(':');
  if (parts.length > 2) bad();
  const [id, typeText] = parts;
  let piece: Piece;
  if (!id.startsWith('$')) {
    piece = { special: id, typeId: 0 };
  } else {
    const rest = id.slice(1);
    if (rest === '' || rest === 'A' || rest === 'a') piece = { seq: 0, typeId: 0 };
    else if (rest === 'B' || rest === 'b') piece = { seq: 1, typeId: 0 };
    else piece = { seq: 0, typeId: parseU32(rest) ?? bad() };
  }
  if (typeText !== undefined) piece.typeId = parseU32(typeText) ?? bad();
  return piece;
}

/** Rust's `str::parse::<u32>`: decimal digits, an optional leading '+'. */
function parseU32(text: string): number | null {
  if (!/^\+?\d+$/.test(text)) return null;
  const n = Number(text);
  return n <= 0xffffffff ? n : null;
}

/** Runs processors in turn on the list of encodings. */
export class SequenceProcessing extends ListProcessor {
  constructor(readonly processors: ListProcessor[]) {
    super();
  }

  addedTokens(isPair: boolean): number {
    return this.processors.reduce((n, p) => n + p.addedTokens(isPair), 0);
  }

  processList(encodings: Encoding[], addSpecialTokens: boolean): Encoding[] {
    let list = encodings;
    for (const p of this.processors) list = p.processList(list, addSpecialTokens);
    return list;
  }
}
