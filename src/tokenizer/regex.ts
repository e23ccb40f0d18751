/**
 * Patterns in tokenizer.json are written for the Rust library's regex engine: Oniguruma, Ruby syntax, Unicode 16.0
 * tables. `compileRustRegex` translates one into a JavaScript RegExp (flags `gv`) that matches the same strings,
 * and `findMatches` walks its matches the way the Rust library does.
 *
 * What the translation takes care of:
 * - `(?i)` and `(?i:…)`: JavaScript engines before 2025 have no inline modifiers, so under case-insensitivity each
 *   letter becomes the class of the characters Oniguruma folds together with it (`s` → `[sSſ]`).
 * - Oniguruma's meaning of `\s \w \d \h \b . ^ $ \A \z \Z \R`, POSIX brackets and `\p{…}` names (they differ from
 *   JavaScript's: `\s` has U+0085 but not U+FEFF, `\w` is Unicode, `^`/`$` are line anchors for "\n" only, ...).
 * - possessive quantifiers and atomic groups, emulated with a capturing lookahead and a backreference.
 * - syntax JavaScript rejects: literal `{ } ]`, identity escapes like `\'` `\-`, `x{,n}`, stacked quantifiers
 *   `a**`, `[]a]`, set intersection `&&`, a flag group `(?i)` in the middle of a group.
 * - the Unicode version: JavaScript engines carry newer tables, so characters assigned after Unicode 16.0 are
 *   given the properties Oniguruma gives an unassigned code point.
 * - two bugs of V8 in Node 20 with the `v` flag (see ANY and complement).
 * Anything else (backreferences, \K, \X, \G, subexpression calls, conditionals, the absent operator, Unicode
 * blocks, a repeated group that prefers an empty match) is a TokenizerError naming the construct, and so are the
 * malformed patterns Oniguruma rejects (unbalanced parentheses, empty class, nothing to repeat, ...). Not covered:
 * case folding to several characters, by which Oniguruma lets `(?i)ss` match "ß" and `(?i)ß` or `(?i)[\p{L}]`
 * match "ss" (no published pattern relies on it).
 *
 * Catastrophic backtracking: both engines backtrack, so a pattern that is slow in Oniguruma is slow here too. The
 * patterns of published tokenizers only backtrack linearly (e.g. `\s+(?!\S)` gives back one character).
 */
import { fail } from './json.js';

/** Compiles a tokenizer.json pattern (`path` names its field for errors) into an equivalent global RegExp. */
export function compileRustRegex(pattern: string, path: string): RegExp {
  let source: string;
  try {
    source = new Emitter().emit(new Parser(pattern).parse());
  } catch (e) {
    if (e instanceof PatternProblem) {
      fail(path, `is not a supported regular expression: ${e.message} in ${JSON.stringify(pattern)}`);
    }
    throw e;
  }
  try {
    return new RegExp(source, 'gv');
  } catch (e) {
    fail(path, `is not a valid regular expression (${e instanceof Error ? e.message : e}): ${JSON.stringify(pattern)}`);
  }
}

/** Escapes `text` so that it matches literally in a RegExp with the `u` or `v` flag (outside a character class). */
export function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/**
 * The matches of a global RegExp in `text`, as flat [start, end, start, end, ...] UTF-16 offsets, found the way the
 * Rust library iterates them: an empty match right where the previous match ended is skipped (not reported, as
 * String.prototype.matchAll would), and the search then resumes one character further.
 */
export function findMatches(re: RegExp, text: string, out: number[] = []): number[] {
  // Tokenizer patterns mostly match back to back, so first try a sticky match where the last one ended: test()
  // allocates nothing, unlike exec().
  const sticky = stickyCopy(re);
  let from = 0;
  let lastEnd = -1;
  while (from <= text.length) {
    let start: number;
    let end: number;
    sticky.lastIndex = from;
    if (sticky.test(text)) {
      start = from;
      end = sticky.lastIndex;
    } else {
      re.lastIndex = from;
      const m = re.exec(text);
      if (m === null) break;
      start = m.index;
      end = re.lastIndex;
    }
    if (start === end && end === lastEnd) {
      const c = text.charCodeAt(from);
      from += c >= 0xd800 && c <= 0xdbff && from + 1 < text.length ? 2 : 1;
      continue;
    }
    out.push(start, end);
    from = end;
    lastEnd = end;
  }
  return out;
}

const stickyCopies = new WeakMap<RegExp, RegExp>();

function stickyCopy(re: RegExp): RegExp {
  let copy = stickyCopies.get(re);
  if (copy === undefined) {
    copy = new RegExp(re.source, re.flags.replace('g', '') + 'y');
    stickyCopies.set(re, copy);
  }
  return copy;
}

// ---------------------------------------------------------------------------------------------------------------
// Syntax tree

class PatternProblem extends Error {}

interface Flags {
  /** case-insensitive */
  i: boolean;
  /** Ruby's `m`: `.` matches "\n" too */
  m: boolean;
  /** extended: whitespace and `#` comments are ignored outside classes */
  x: boolean;
}

type Node =
  | { k: 'seq'; items: Node[] }
  | { k: 'alt'; alts: Node[] }
  | { k: 'char'; cp: number; ci: boolean }
  | { k: 'set'; set: CharSet }
  /** `plain`: written `(?:…)`, which Oniguruma sees through when it checks what a quantifier applies to */
  | { k: 'group'; body: Node; plain?: boolean }
  | { k: 'look'; op: '=' | '!' | '<=' | '<!'; body: Node }
  | { k: 'atomic'; body: Node }
  | { k: 'repeat'; body: Node; min: number; max: number; lazy: boolean; possessive: boolean }
  /** a zero-width assertion, already in JavaScript syntax */
  | { k: 'raw'; js: string };

/** A set of code points: the intersection of its `parts` (usually one), complemented when `negated`. */
interface CharSet {
  negated: boolean;
  ci: boolean;
  parts: SetUnion[];
}

interface SetUnion {
  /** flat [lo, hi, lo, hi, ...], inclusive */
  ranges: number[];
  props: Prop[];
  sets: CharSet[];
}

/** A property-like class item: a JavaScript class operand (`\p{L}`, `[\p{L}\p{M}]`, ...). */
interface Prop {
  js: string;
  /** its membership does not depend on the Unicode version (White_Space, ASCII, ...) */
  fixed: boolean;
}

const emptyUnion = (): SetUnion => ({ ranges: [], props: [], sets: [] });
const setOf = (props: Prop[], ranges: number[] = [], negated = false): CharSet => ({
  negated,
  ci: false,
  parts: [{ ranges, props, sets: [] }],
});
const prop = (js: string, fixed = false): Prop => ({ js, fixed });

// `[\p{Any}--[X]]` is how the complement of X is written here (see complement).
const ALL_BUT = '[\\p{Any}--';

// Oniguruma's character types. A bare `\w` / `\p{Word}` tests Latin-1 with a separate table that counts ² ³ ¹ ¼ ½ ¾
// as word characters; inside a bracket class the Unicode definition alone applies.
const WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}';
const LATIN1_WORD = '\\u{b2}\\u{b3}\\u{b9}\\u{bc}-\\u{be}';
const BARE_WORD = `[${WORD}${LATIN1_WORD}]`;
const GRAPH = complement('[\\p{White_Space}\\p{Cc}\\p{Cn}\\p{Cs}]');
const POSIX: Record<string, string> = {
  alnum: '[\\p{Alphabetic}\\p{Nd}]',
  alpha: '\\p{Alphabetic}',
  ascii: '\\p{ASCII}',
  blank: '[\\p{Zs}\\t]',
  cntrl: '\\p{Cc}',
  digit: '\\p{Nd}',
  graph: GRAPH,
  lower: '\\p{Lowercase}',
  print: `[${GRAPH}\\p{Zs}]`,
  punct: '[\\p{P}\\p{S}]',
  space: '\\p{White_Space}',
  upper: '\\p{Uppercase}',
  xdigit: '[0-9A-Fa-f]',
  word: `[${WORD}]`,
};
const FIXED = new Set(['\\p{White_Space}', '\\p{ASCII}', '[0-9A-Fa-f]', '\\p{Any}']);

// General categories, by loose name (lowercase, no spaces, hyphens or underscores), as JavaScript spells them.
const CATEGORIES = new Map<string, string>();
for (const name of (
  'C Other Cc Control Cf Format Cn Unassigned Co Private_Use Cs Surrogate L Letter LC Cased_Letter Ll ' +
  'Lowercase_Letter Lm Modifier_Letter Lo Other_Letter Lt Titlecase_Letter Lu Uppercase_Letter M Mark Combining_Mark ' +
  'Mc Spacing_Mark Me Enclosing_Mark Mn Nonspacing_Mark N Number Nd Decimal_Number Nl Letter_Number No Other_Number ' +
  'P Punctuation Pc Connector_Punctuation Pd Dash_Punctuation Pe Close_Punctuation Pf Final_Punctuation Pi ' +
  'Initial_Punctuation Po Other_Punctuation Ps Open_Punctuation S Symbol Sc Currency_Symbol Sk Modifier_Symbol Sm ' +
  'Math_Symbol So Other_Symbol Z Separator Zl Line_Separator Zp Paragraph_Separator Zs Space_Separator'
).split(' ')) {
  CATEGORIES.set(loose(name), name);
}

function loose(name: string): string {
  return name.toLowerCase().replace(/[\s_-]/g, '');
}

/** `\p{name}` (`negated` for `\P{name}` / `\p{^name}`), bare or inside a class. */
function property(name: string, negated: boolean, inClass: boolean): Prop {
  const key = loose(name);
  let js: string | undefined;
  if (key === 'word') js = inClass ? POSIX.word : BARE_WORD;
  else if (key === 'punct') js = '\\p{P}'; // the property is P alone; the POSIX bracket [[:punct:]] adds S
  else if (key === 'any') js = '\\p{Any}';
  else if (key === 'assigned') js = '\\P{Cn}';
  else if (POSIX[key] !== undefined) js = POSIX[key];
  else if (CATEGORIES.has(key)) js = `\\p{${CATEGORIES.get(key)}}`;
  else js = javascriptProperty(name);
  if (js === undefined) {
    if (key.startsWith('in')) throw new PatternProblem(`Unicode blocks such as \\p{${name}} are not supported`);
    throw new PatternProblem(`unknown character property \\p{${name}}`);
  }
  return prop(negated ? complement(js) : js, FIXED.has(js));
}

/** A binary property or a script, found among the spellings JavaScript accepts. */
function javascriptProperty(name: string): string | undefined {
  const words = name.trim().split(/[\s_-]+/);
  const titled = words.map((w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase()).join('_');
  const spellings = [name.trim(), words.join('_'), titled];
  for (const candidate of [...spellings, ...spellings.map((s) => `Script=${s}`)]) {
    if (!/^[A-Za-z0-9_=]+$/.test(candidate)) continue;
    try {
      // Negating it also proves it is a property of single characters (not one of the emoji sequences).
      new RegExp(`[^\\p{${candidate}}]`, 'v');
      return `\\p{${candidate}}`;
    } catch {
      // not a name JavaScript knows; try the next spelling
    }
  }
  return undefined;
}

/**
 * The complement of a class operand. Never `[^…]`: V8 (Node 20) inverts such a class inside a repeated group in
 * `v` mode, so that /(?:b[^a])+/v finds nothing in "bcbd".
 */
function complement(js: string): string {
  if (js.startsWith('\\p{')) return `\\P${js.slice(2)}`;
  if (js.startsWith('\\P{')) return `\\p${js.slice(2)}`;
  if (js.startsWith(ALL_BUT)) return js.slice(ALL_BUT.length, -1);
  return `${ALL_BUT}${js.startsWith('[') ? js : `[${js}]`}]`;
}

// ---------------------------------------------------------------------------------------------------------------
// Parser (Oniguruma, Ruby syntax)

const MAX_REPEAT = 100000;

// Any character. Not `[^]`: V8 (Node 20) mis-compiles it in `v` mode inside a repeated group, where
// /(?:1(?![^])){0,2}/v finds "1" in "_1B".
const ANY = '[\\s\\S]';

class Parser {
  private pos = 0;

  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.alternation({ i: false, m: false, x: false });
    if (this.pos < this.src.length) throw this.problem("unmatched ')'");
    return node;
  }

  private problem(what: string): PatternProblem {
    return new PatternProblem(`${what} (at offset ${this.pos})`);
  }

  private alternation(flags: Flags): Node {
    const alts = [this.sequence(flags)];
    while (this.src[this.pos] === '|') {
      this.pos++;
      alts.push(this.sequence(flags));
    }
    return alts.length === 1 ? alts[0] : { k: 'alt', alts };
  }

  private sequence(flags: Flags): Node {
    const items: Node[] = [];
    while (this.pos < this.src.length) {
      const c = this.src[this.pos];
      if (c === '|' || c === ')') break;
      if (flags.x && this.skipExtended()) continue;
      const atom = this.atom(flags);
      if (atom === null) continue;
      if ('flags' in atom) {
        // An option group without a body, `(?i)`, applies to the rest of the enclosing group, alternatives
        // included: in Oniguruma `a(?i)b|c` means `a(?i:b|c)`.
        items.push({ k: 'group', body: this.alternation(atom.flags) });
        break;
      }
      items.push(this.quantifiers(atom, flags));
    }
    return items.length === 1 ? items[0] : { k: 'seq', items };
  }

  /** Skips whitespace or a `#` comment in extended mode; false when there is none here. */
  private skipExtended(): boolean {
    const c = this.src[this.pos];
    if (c === '#') {
      const nl = this.src.indexOf('\n', this.pos);
      this.pos = nl < 0 ? this.src.length : nl + 1;
      return true;
    }
    if (/\s/.test(c)) {
      this.pos++;
      return true;
    }
    return false;
  }

  private atom(flags: Flags): Node | { flags: Flags } | null {
    const c = this.src[this.pos];
    switch (c) {
      case '(':
        return this.group(flags);
      case '[':
        this.pos++;
        return { k: 'set', set: this.charClass(flags) };
      case '.':
        this.pos++;
        return { k: 'set', set: flags.m ? setOf([], [], true) : setOf([], [10, 10], true) };
      case '^':
        // Start of a line, but not the empty "line" after a final "\n".
        this.pos++;
        return { k: 'raw', js: `(?:(?<!${ANY})|(?<=\\n)(?=${ANY}))` };
      case '$':
        this.pos++;
        return { k: 'raw', js: `(?=\\n|(?!${ANY}))` };
      case '\\':
        return this.escape(flags);
      case '*':
      case '+':
      case '?':
        throw this.problem('target of repeat operator is not specified');
      case '{':
        if (this.interval() !== null) throw this.problem('target of repeat operator is not specified');
    }
    const cp = this.src.codePointAt(this.pos)!;
    this.pos += cp > 0xffff ? 2 : 1;
    return { k: 'char', cp, ci: flags.i };
  }

  private group(flags: Flags): Node | { flags: Flags } | null {
    const src = this.src;
    this.pos++; // (
    let node: Node;
    if (src[this.pos] !== '?') {
      node = { k: 'group', body: this.alternation(flags) };
    } else {
      this.pos++;
      const c = src[this.pos];
      const two = src.slice(this.pos, this.pos + 2);
      if (c === ':') {
        this.pos++;
        node = { k: 'group', body: this.alternation(flags), plain: true };
      } else if (c === '=' || c === '!') {
        this.pos++;
        node = { k: 'look', op: c, body: this.alternation(flags) };
      } else if (two === '<=' || two === '<!') {
        this.pos += 2;
        node = { k: 'look', op: two, body: this.alternation(flags) };
      } else if (c === '>') {
        this.pos++;
        node = { k: 'atomic', body: this.alternation(flags) };
      } else if (c === '<' || c === "'") {
        // A named group. Capture does not matter: backreferences are not supported.
        const close = src.indexOf(c === '<' ? '>' : "'", this.pos + 1);
        if (close < 0 || !/^[A-Za-z_]\w*$/.test(src.slice(this.pos + 1, close))) throw this.problem('invalid group name');
        this.pos = close + 1;
        node = { k: 'group', body: this.alternation(flags) };
      } else if (c === '#') {
        const close = src.indexOf(')', this.pos);
        if (close < 0) throw this.problem('end pattern in group');
        this.pos = close + 1;
        return null;
      } else if (c === '~') {
        throw this.problem('the absent operator (?~...) is not supported');
      } else if (c === '(') {
        throw this.problem('conditional groups (?(...)...) are not supported');
      } else {
        const options = this.options(flags);
        if (src[this.pos] === ')') {
          this.pos++;
          return { flags: options };
        }
        this.pos++; // :
        node = { k: 'group', body: this.alternation(options) };
      }
    }
    if (src[this.pos] !== ')') throw this.problem('end pattern with unmatched parenthesis');
    this.pos++;
    return node;
  }

  /** Parses `imx-imx` up to `:` or `)`. */
  private options(flags: Flags): Flags {
    const out = { ...flags };
    let on = true;
    for (;;) {
      const c = this.src[this.pos];
      if (c === ':' || c === ')') return out;
      if (c === '-') on = false;
      else if (c === 'i' || c === 'm' || c === 'x') out[c] = on;
      else throw this.problem(c === undefined ? 'end pattern in group' : `undefined group option '${c}'`);
      this.pos++;
    }
  }

  private quantifiers(atom: Node, flags: Flags): Node {
    for (;;) {
      if (flags.x) while (this.pos < this.src.length && this.skipExtended());
      const c = this.src[this.pos];
      let min: number;
      let max: number;
      let lazy = false;
      let possessive = false;
      if (c === '?' || c === '*' || c === '+') {
        this.pos++;
        min = c === '+' ? 1 : 0;
        max = c === '?' ? 1 : Infinity;
        // Ruby syntax: `?` after these makes them lazy, `+` possessive.
        if (this.src[this.pos] === '?') lazy = true;
        else if (this.src[this.pos] === '+') possessive = true;
        if (lazy || possessive) this.pos++;
      } else if (c === '{') {
        const iv = this.interval();
        if (iv === null) return atom;
        this.pos = iv.end;
        [min, max] = [iv.min, iv.max];
        if (min > max) {
          // Oniguruma reads {n,m} with n > m as the possessive {m,n}.
          [min, max] = [max, min];
          possessive = true;
        } else if (this.src[this.pos] === '?' && !iv.exact) {
          // `{n}?` is `(?:x{n})?` in Ruby syntax, so only the ranges take a lazy `?`.
          lazy = true;
          this.pos++;
        }
      } else {
        return atom;
      }
      if (zeroWidth(atom)) throw this.problem('target of repeat operator is invalid');
      if (max > min && nullable(atom) && prefersEmpty(atom)) {
        // Oniguruma ends a loop on an empty iteration; JavaScript rejects the iteration and tries the next choice
        // inside it, so the two differ where an empty choice comes before a longer one, as in (?:|a)*.
        throw this.problem('a repeated group that can match the empty string before a longer match is not supported');
      }
      atom = { k: 'repeat', body: atom, min, max, lazy, possessive };
    }
  }

  /** A repeat interval `{n}` `{n,}` `{,m}` `{n,m}` at the current position, or null (then `{` is literal). */
  private interval(): { min: number; max: number; exact: boolean; end: number } | null {
    const m = /^\{(\d*)(,(\d*))?\}/.exec(this.src.slice(this.pos, this.pos + 24));
    if (m === null || (m[1] === '' && (m[3] ?? '') === '')) return null;
    const min = m[1] === '' ? 0 : Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) throw this.problem('too big number for repeat range');
    return { min, max, exact: m[2] === undefined, end: this.pos + m[0].length };
  }

  private escape(flags: Flags): Node {
    const src = this.src;
    this.pos++; // backslash
    const c = src[this.pos];
    if (c === undefined) throw this.problem('end pattern at escape');
    const bare = (p: Prop | CharSet): Node => ({ k: 'set', set: 'js' in p ? setOf([p]) : p });
    switch (c) {
      case 'w':
      case 'W':
      case 's':
      case 'S':
      case 'd':
      case 'D':
      case 'h':
      case 'H':
      case 'p':
      case 'P':
        return bare(this.classEscape(false));
      case 'b':
      case 'B': {
        this.pos++;
        const w = emitSet(setOf([prop(BARE_WORD)]));
        return {
          k: 'raw',
          js: c === 'b' ? `(?:(?<=${w})(?!${w})|(?<!${w})(?=${w}))` : `(?:(?<=${w})(?=${w})|(?<!${w})(?!${w}))`,
        };
      }
      case 'A':
        this.pos++;
        return { k: 'raw', js: `(?<!${ANY})` };
      case 'z':
        this.pos++;
        return { k: 'raw', js: `(?!${ANY})` };
      case 'Z':
        this.pos++;
        return { k: 'raw', js: `(?=\\n?(?!${ANY}))` };
      case 'R': {
        this.pos++;
        const crlf: Node = { k: 'seq', items: [{ k: 'char', cp: 13, ci: false }, { k: 'char', cp: 10, ci: false }] };
        const single = setOf([], [10, 13, 0x85, 0x85, 0x2028, 0x2029]);
        return { k: 'atomic', body: { k: 'alt', alts: [crlf, { k: 'set', set: single }] } };
      }
      case 'N':
        this.pos++;
        return { k: 'set', set: setOf([], [10, 10], true) };
      case 'O':
        this.pos++;
        return { k: 'set', set: setOf([], [], true) };
      case 'G':
        throw this.problem('\\G is not supported');
      case 'K':
        throw this.problem('\\K is not supported');
      case 'X':
        throw this.problem('\\X is not supported');
      case 'y':
      case 'Y':
        throw this.problem(`\\${c} is not supported`);
      case 'g':
        throw this.problem('subexpression calls \\g<...> are not supported');
      case 'k':
        throw this.problem('backreferences are not supported');
    }
    if (c >= '1' && c <= '9') {
      const digits = /^\d+/.exec(src.slice(this.pos))![0];
      // Oniguruma reads \1-\9 (and a number up to the group count) as a backreference, a longer one as octal.
      if (digits.length === 1 || !/^[0-7]{2}/.test(digits)) throw this.problem('backreferences are not supported');
    }
    return { k: 'char', cp: this.escapedChar(), ci: flags.i };
  }

  /** `\w \W \s \S \d \D \h \H \p{…} \P{…}` at the position of the letter. */
  private classEscape(inClass: boolean): Prop | CharSet {
    const c = this.src[this.pos++];
    switch (c) {
      case 'w':
        return prop(inClass ? POSIX.word : BARE_WORD);
      case 'W':
        return prop(complement(inClass ? POSIX.word : BARE_WORD));
      case 's':
        return prop('\\p{White_Space}', true);
      case 'S':
        return prop('\\P{White_Space}', true);
      case 'd':
        return prop('\\p{Nd}');
      case 'D':
        return prop('\\P{Nd}');
      case 'h':
      case 'H':
        return setOf([], [0x30, 0x39, 0x41, 0x46, 0x61, 0x66], c === 'H');
    }
    // \p{...} / \P{...} / \p{^...}
    if (this.src[this.pos] !== '{') throw this.problem(`invalid character property \\${c}`);
    const close = this.src.indexOf('}', this.pos);
    if (close < 0) throw this.problem('invalid character property name');
    let name = this.src.slice(this.pos + 1, close);
    let negated = c === 'P';
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    this.pos = close + 1;
    return property(name, negated, inClass);
  }

  /** A single escaped character (`\t`, `\x41`, `\u00e9`, `\101`, `\'`, ...) at the position after the backslash. */
  private escapedChar(): number {
    const src = this.src;
    const c = src[this.pos++];
    const simple: Record<string, number> = { t: 9, n: 10, r: 13, f: 12, v: 11, a: 7, e: 27 };
    if (simple[c] !== undefined) return simple[c];
    if (c === 'x') {
      if (src[this.pos] === '{') return this.braced(16, /^[0-9a-fA-F]{1,8}$/);
      const m = /^[0-9a-fA-F]{1,2}/.exec(src.slice(this.pos, this.pos + 2));
      if (m === null) return 0x78; // a lone \x stands for "x"
      this.pos += m[0].length;
      return parseInt(m[0], 16);
    }
    if (c === 'u') {
      const m = /^[0-9a-fA-F]{4}/.exec(src.slice(this.pos, this.pos + 4));
      if (m === null) throw this.problem('invalid code point value');
      this.pos += 4;
      return parseInt(m[0], 16);
    }
    if (c === 'o' && src[this.pos] === '{') return this.braced(8, /^[0-7]{1,11}$/);
    if (c >= '0' && c <= '7') {
      const m = /^[0-7]{0,2}/.exec(src.slice(this.pos, this.pos + 2))!;
      this.pos += m[0].length;
      return parseInt(c + m[0], 8);
    }
    if (c === 'c' || (c === 'C' && src[this.pos] === '-')) {
      if (c === 'C') this.pos++;
      const target = src.codePointAt(this.pos);
      if (target === undefined) throw this.problem('end pattern at control');
      this.pos += target > 0xffff ? 2 : 1;
      return target === 0x3f ? 0x7f : target & 0x1f;
    }
    if (c === 'M' && src[this.pos] === '-') throw this.problem('meta escapes \\M-x are not supported');
    // Any other escaped character stands for itself.
    const cp = src.codePointAt(this.pos - 1)!;
    if (cp > 0xffff) this.pos++;
    return cp;
  }

  private braced(radix: number, digits: RegExp): number {
    const close = this.src.indexOf('}', this.pos);
    const text = close < 0 ? '' : this.src.slice(this.pos + 1, close);
    const cp = parseInt(text, radix);
    if (!digits.test(text) || cp > 0x10ffff) throw this.problem('invalid code point value');
    this.pos = close + 1;
    return cp;
  }

  /** A bracket class, after its `[`. */
  private charClass(flags: Flags): CharSet {
    const src = this.src;
    const set: CharSet = { negated: false, ci: flags.i, parts: [] };
    if (src[this.pos] === '^') {
      set.negated = true;
      this.pos++;
    }
    let cur = emptyUnion();
    let first = true;
    let afterRange = false;
    for (;;) {
      if (this.pos >= src.length) throw this.problem('premature end of char-class');
      const c = src[this.pos];
      if (c === ']' && !(first && src.indexOf(']', this.pos + 1) >= 0)) {
        // `]` right after `[` or `[^` is a literal when another `]` follows: `[]a]`.
        if (first) throw this.problem('empty char-class');
        this.pos++;
        break;
      }
      first = false;
      if (src.startsWith('&&', this.pos)) {
        this.pos += 2;
        set.parts.push(cur);
        cur = emptyUnion();
        afterRange = false;
        continue;
      }
      if (c === '[') {
        const posix = this.posixBracket();
        if (posix !== null) cur.props.push(posix);
        else {
          this.pos++;
          cur.sets.push(this.charClass(flags));
        }
        afterRange = false;
        continue;
      }
      const start = this.pos;
      const item = this.classAtom();
      if (typeof item !== 'number') {
        if (src[this.pos] === '-' && src[this.pos + 1] !== ']') throw this.problem('unmatched range specifier in char-class');
        if ('js' in item) cur.props.push(item);
        else cur.sets.push({ ...item, ci: flags.i });
        afterRange = false;
        continue;
      }
      // A `-` right after a range is a literal: `[a-c-e]` is a-c, '-', 'e'.
      const literalDash = afterRange && src[start] === '-';
      if (!literalDash && src[this.pos] === '-' && this.pos + 1 < src.length && src[this.pos + 1] !== ']') {
        this.pos++;
        const hi = src[this.pos] === '[' ? null : this.classAtom();
        if (typeof hi !== 'number') throw this.problem('unmatched range specifier in char-class');
        if (hi < item) throw this.problem('empty range in char class');
        cur.ranges.push(item, hi);
        afterRange = true;
      } else {
        cur.ranges.push(item, item);
        afterRange = false;
      }
    }
    set.parts.push(cur);
    return set;
  }

  /** `[:alpha:]` / `[:^alpha:]` at `[`, or null when this `[` opens a nested class. */
  private posixBracket(): Prop | null {
    const m = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos, this.pos + 16));
    if (m === null) return null;
    const js = POSIX[m[2]];
    if (js === undefined) throw this.problem(`invalid POSIX bracket type [:${m[2]}:]`);
    this.pos += m[0].length;
    return prop(m[1] ? complement(js) : js, FIXED.has(js));
  }

  /** One class member: a code point, or a property / nested set from an escape. */
  private classAtom(): number | Prop | CharSet {
    const src = this.src;
    if (src[this.pos] === '\\') {
      const e = src[this.pos + 1];
      if (e !== undefined && 'wWsSdDhHpP'.includes(e)) {
        this.pos++;
        return this.classEscape(true);
      }
      if (e === 'b') {
        this.pos += 2;
        return 8; // backspace inside a class
      }
      this.pos++;
      if (e === undefined) throw this.problem('end pattern at escape');
      return this.escapedChar();
    }
    const cp = src.codePointAt(this.pos)!;
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }
}

/** An anchor or lookaround, also inside `(?:…)` or as one of its alternatives: Oniguruma will not repeat it. */
function zeroWidth(n: Node): boolean {
  if (n.k === 'look' || n.k === 'raw') return true;
  if (n.k === 'group' && n.plain) return zeroWidth(n.body);
  return n.k === 'alt' && n.alts.some(zeroWidth);
}

/** Whether the node can match the empty string. */
function nullable(n: Node): boolean {
  switch (n.k) {
    case 'char':
    case 'set':
      return false;
    case 'look':
    case 'raw':
      return true;
    case 'seq':
      return n.items.every(nullable);
    case 'alt':
      return n.alts.some(nullable);
    case 'group':
    case 'atomic':
      return nullable(n.body);
    case 'repeat':
      return n.min === 0 || nullable(n.body);
  }
}

/** Whether the node may try an empty match before a longer one (conservatively). */
function prefersEmpty(n: Node): boolean {
  switch (n.k) {
    case 'char':
    case 'set':
    case 'look':
    case 'raw':
    case 'atomic': // only its first match counts
      return false;
    case 'seq':
      return n.items.some(prefersEmpty);
    case 'alt':
      return n.alts.some((a, i) => prefersEmpty(a) || (i < n.alts.length - 1 && nullable(a)));
    case 'group':
      return prefersEmpty(n.body);
    case 'repeat':
      return !n.possessive && ((n.lazy && n.min === 0) || prefersEmpty(n.body));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Emitter (JavaScript, `v` flag)

class Emitter {
  private atomics = 0;

  emit(node: Node, inLookbehind = false): string {
    switch (node.k) {
      case 'seq':
        return node.items.map((n) => (n.k === 'alt' ? `(?:${this.emit(n, inLookbehind)})` : this.emit(n, inLookbehind))).join('');
      case 'alt':
        return node.alts.map((n) => this.emit(n, inLookbehind)).join('|');
      case 'char': {
        const variants = node.ci ? caseVariants(node.cp) : [node.cp];
        return variants.length === 1 ? lit(node.cp) : `[${variants.map(lit).join('')}]`;
      }
      case 'set':
        return emitSet(node.set);
      case 'group':
        return `(?:${this.emit(node.body, inLookbehind)})`;
      case 'look':
        return `(?${node.op}${this.emit(node.body, inLookbehind || node.op.startsWith('<'))})`;
      case 'atomic':
        return this.atomic(this.emit(node.body, inLookbehind), inLookbehind);
      case 'repeat': {
        const body = node.body;
        const single = body.k === 'char' || body.k === 'set' || body.k === 'group';
        const atom = single ? this.emit(body, inLookbehind) : `(?:${this.emit(body, inLookbehind)})`;
        const repeated = atom + quantifier(node.min, node.max) + (node.lazy ? '?' : '');
        return node.possessive ? this.atomic(repeated, inLookbehind) : repeated;
      }
      case 'raw':
        return node.js;
    }
  }

  /** Atomic group: the lookahead matches once, the backreference consumes exactly that, and nothing backtracks into it. */
  private atomic(body: string, inLookbehind: boolean): string {
    if (inLookbehind) {
      throw new PatternProblem('atomic groups and possessive quantifiers inside a lookbehind are not supported');
    }
    const name = `a${++this.atomics}`;
    return `(?:(?=(?<${name}>${body}))\\k<${name}>)`;
  }
}

function quantifier(min: number, max: number): string {
  if (max === Infinity) return min === 0 ? '*' : min === 1 ? '+' : `{${min},}`;
  if (min === max) return `{${min}}`;
  return min === 0 && max === 1 ? '?' : `{${min},${max}}`;
}

function lit(cp: number): string {
  return (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a)
    ? String.fromCharCode(cp)
    : `\\u{${cp.toString(16)}}`;
}

function rangesText(ranges: number[]): string {
  let out = '';
  for (let i = 0; i < ranges.length; i += 2) {
    out += ranges[i] === ranges[i + 1] ? lit(ranges[i]) : `${lit(ranges[i])}-${lit(ranges[i + 1])}`;
  }
  return out;
}

function emitSet(set: CharSet): string {
  const simple = set.parts.length === 1 && set.parts[0].sets.length === 0 && set.parts[0].props.length === 0;
  if (set.ci && !simple) return foldedSet(set);
  const parts = set.parts.map((u) => emitUnion(u, set.ci));
  if (set.negated && parts.length === 1 && parts[0] === '') return ANY;
  const positive = `[${parts.length === 1 ? parts[0] : parts.map((p) => `[${p}]`).join('&&')}]`;
  return set.negated ? complement(positive) : positive;
}

/**
 * A case-insensitive class with properties, nested classes or intersections. Oniguruma computes the set without
 * regard to case, adds everything that folds with one of its members, and only then applies the outer `^`:
 * `(?i)[[^a]]` matches "a" (as "A" is in [^a]), `(?i)[\p{L}]` matches U+0345 (which folds with ι).
 */
function foldedSet(set: CharSet): string {
  const caseSensitive = (s: CharSet): CharSet => ({
    negated: s.negated,
    ci: false,
    parts: s.parts.map((u) => ({ ranges: u.ranges, props: u.props, sets: u.sets.map(caseSensitive) })),
  });
  const base = emitSet(caseSensitive({ ...set, negated: false }));
  const re = new RegExp(base, 'v');
  const extra: number[] = [];
  for (const cp of casedCharacters()) {
    if (!re.test(String.fromCodePoint(cp))) continue;
    for (const v of caseVariants(cp)) if (!re.test(String.fromCodePoint(v))) extra.push(v, v);
  }
  const positive = `[${base}${rangesText(mergeRanges(extra))}]`;
  return set.negated ? complement(positive) : positive;
}

let cased: number[] | null = null;

/** The characters that have a case mapping; none lies above U+1E943 (Adlam). */
function casedCharacters(): number[] {
  if (cased === null) {
    cased = [];
    for (let cp = 0x41; cp <= 0x1e943; cp++) {
      if (cp === 0xd800) cp = 0xe000;
      const s = String.fromCodePoint(cp);
      if (s.toLowerCase() !== s || s.toUpperCase() !== s) cased.push(cp);
    }
  }
  return cased;
}

/**
 * The content of a JavaScript class for one union of items (`ci`: its letters fold, which only plain characters and
 * ranges do here, see foldedSet). Items whose meaning depends on the Unicode version are corrected to Unicode
 * 16.0: Oniguruma sees the characters added since as unassigned code points, and knows the few characters whose
 * properties changed with their old ones.
 */
function emitUnion(u: SetUnion, ci: boolean): string {
  let exact = rangesText(ci ? caseClosure(u.ranges) : u.ranges);
  for (const s of u.sets) exact += emitSet(s);
  let versioned = '';
  let unassignedIn = false;
  for (const p of u.props) {
    if (p.fixed) exact += p.js;
    else {
      versioned += p.js;
      if (matchesUnassigned(p.js)) unassignedIn = true;
    }
  }
  if (versioned === '') return exact;
  let add = '';
  let remove = '';
  for (const [cp, standIn] of CHANGED_SINCE_16) {
    const inExact = exact !== '' && classRegex(exact).test(String.fromCodePoint(cp));
    const onig = inExact || classRegex(versioned).test(String.fromCodePoint(standIn));
    const js = inExact || classRegex(versioned).test(String.fromCodePoint(cp));
    if (onig && !js) add += lit(cp);
    else if (!onig && js) remove += lit(cp);
  }
  const subtract = (unassignedIn ? '' : addedText()) + remove;
  return exact + (subtract === '' ? versioned : `[[${versioned}]--[${subtract}]]`) + add + (unassignedIn ? addedText() : '');
}

const classRegexes = new Map<string, RegExp>();

function classRegex(content: string): RegExp {
  let re = classRegexes.get(content);
  if (re === undefined) {
    re = new RegExp(`[${content}]`, 'v');
    classRegexes.set(content, re);
  }
  return re;
}

/** Whether a property matches code points that no Unicode version has assigned (U+0378 stands for them). */
function matchesUnassigned(js: string): boolean {
  return classRegex(js).test('\u0378');
}

function mergeRanges(ranges: number[]): number[] {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i], ranges[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    if (out.length > 0 && lo <= out[out.length - 1] + 1) out[out.length - 1] = Math.max(out[out.length - 1], hi);
    else out.push(lo, hi);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Case folding, as Oniguruma does it for one character

// The characters that fold together beyond what toLowerCase / toUpperCase relate (Kelvin sign, long s, Greek
// symbol variants, titlecase digraphs, Cyrillic small letter variants, ...). Each word is one fold class.
const FOLD_GROUPS =
  'Kk\u212a Ss\u017f \u00b5\u039c\u03bc \u00c5\u00e5\u212b \u00df\u1e9e \u01c4\u01c5\u01c6 \u01c7\u01c8\u01c9 ' +
  '\u01ca\u01cb\u01cc \u01f1\u01f2\u01f3 \u0345\u0399\u03b9\u1fbe \u0390\u1fd3 \u0392\u03b2\u03d0 \u0395\u03b5\u03f5 ' +
  '\u0398\u03b8\u03d1\u03f4 \u039a\u03ba\u03f0 \u03a0\u03c0\u03d6 \u03a1\u03c1\u03f1 \u03a3\u03c2\u03c3 ' +
  '\u03a6\u03c6\u03d5 \u03a9\u03c9\u2126 \u03b0\u1fe3 \u0412\u0432\u1c80 \u0414\u0434\u1c81 \u041e\u043e\u1c82 ' +
  '\u0421\u0441\u1c83 \u0422\u0442\u1c84\u1c85 \u042a\u044a\u1c86 \u0462\u0463\u1c87 \u1c88\ua64a\ua64b ' +
  '\u1e60\u1e61\u1e9b \u1fb3\u1fbc \u1fc3\u1fcc \u1ff3\u1ffc \ufb05\ufb06';

let foldGroups: number[][] | null = null;
let foldGroupOf: Map<number, number[]> | null = null;

function foldGroupList(): number[][] {
  if (foldGroups === null) {
    foldGroups = FOLD_GROUPS.split(' ').map((g) => [...g].map((ch) => ch.codePointAt(0)!));
    // Greek with ypogegrammeni: ᾀ..ᾇ fold with ᾈ..ᾏ, and the same for the η and ω rows.
    for (const row of [0x1f80, 0x1f90, 0x1fa0]) for (let i = 0; i < 8; i++) foldGroups.push([row + i, row + 8 + i]);
  }
  return foldGroups;
}

function foldGroup(cp: number): number[] | undefined {
  if (foldGroupOf === null) {
    foldGroupOf = new Map();
    for (const g of foldGroupList()) for (const c of g) foldGroupOf.set(c, g);
  }
  return foldGroupOf.get(cp);
}

function singleCodePoint(s: string): number | undefined {
  const cp = s.codePointAt(0);
  return cp !== undefined && s.length === (cp > 0xffff ? 2 : 1) ? cp : undefined;
}

/** The characters that `cp` matches case-insensitively (one-to-one folding; "ß" ~ "ss" is not covered). */
export function caseVariants(cp: number): number[] {
  if (!assigned16(cp)) return [cp];
  const group = foldGroup(cp);
  if (group !== undefined) return group.filter(assigned16);
  const lower = (c: number) => singleCodePoint(String.fromCodePoint(c).toLowerCase()) ?? c;
  const upper = (c: number) => singleCodePoint(String.fromCodePoint(c).toUpperCase());
  const key = lower(cp);
  const out = [cp];
  // Same lowercase, same class; this keeps dotless ı apart from I and i.
  for (const c of [key, upper(cp), upper(key)]) {
    if (c !== undefined && !out.includes(c) && assigned16(c) && lower(c) === key) out.push(c);
  }
  return out;
}

/** Adds every case variant of the code points in `ranges` (flat, inclusive). */
function caseClosure(ranges: number[]): number[] {
  const out = ranges.slice();
  for (let i = 0; i < ranges.length; i += 2) {
    // No cased character lies above U+1E943 (Adlam).
    for (let cp = ranges[i]; cp <= Math.min(ranges[i + 1], 0x1e943); cp++) {
      for (const v of caseVariants(cp)) if (v < ranges[i] || v > ranges[i + 1]) out.push(v, v);
    }
  }
  return mergeRanges(out);
}

// ---------------------------------------------------------------------------------------------------------------
// Unicode version

// The characters added in Unicode 17.0, which JavaScript engines may know and Oniguruma's Unicode 16.0 tables do
// not (inclusive hex ranges). A later Unicode version would add its own here.
const ADDED_AFTER_16 =
  '88f c5c cdc 1acf-1add 1ae0-1aeb 20c1 2b96 a7ce-a7cf a7d2 a7d4 a7f1 fbc3-fbd2 fd90-fd91 fdc8-fdce 10940-10959 ' +
  '10ec5-10ec7 10ed0-10ed8 10efa-10efb 11b60-11b67 11db0-11ddb 11de0-11de9 16ea0-16eb8 16ebb-16ed3 16ff2-16ff6 ' +
  '187f8-187ff 18d09-18d1e 18d80-18df2 1ccfa-1ccfc 1ceba-1ced0 1cee0-1cef0 1e6c0-1e6de 1e6e0-1e6f5 1e6fe-1e6ff ' +
  '1f6d8 1f777-1f77a 1f8d0-1f8d8 1fa54-1fa57 1fa8a 1fa8e 1fac8 1facd 1faea 1faef 1fbfa 2b73a-2b73f 2cea2-2cead ' +
  '323b0-33479';

// Characters whose properties changed in Unicode 17.0, each with a character that has its Unicode 16.0 ones in
// every version: ʕ went from Ll to Lo, ʖ is still Ll.
const CHANGED_SINCE_16: ReadonlyArray<[number, number]> = [[0x295, 0x296]];

let added: number[] | null = null;

function addedRanges(): number[] {
  added ??= ADDED_AFTER_16.split(' ').flatMap((r) => {
    const [lo, hi = lo] = r.split('-');
    return [parseInt(lo, 16), parseInt(hi, 16)];
  });
  return added;
}

let addedClass: string | null = null;

function addedText(): string {
  addedClass ??= rangesText(addedRanges());
  return addedClass;
}

/** Whether Unicode 16.0 has `cp` (or it is unassigned in every version, which makes no difference here). */
function assigned16(cp: number): boolean {
  const r = addedRanges();
  for (let i = 0; i < r.length; i += 2) if (cp >= r[i] && cp <= r[i + 1]) return false;
  return true;
}
