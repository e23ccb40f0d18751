/**
 * Added tokens: entries of tokenizer.json's `added_tokens` (special tokens such as `<s>` or `<|im_start|>`, and
 * ordinary tokens added after training). They are cut out of the text before the model sees it, in two passes as
 * the Rust library does: tokens with `normalized: false` are matched in the original text, the rest in the
 * normalized text (against their own normalized form). Matching is leftmost-longest; `single_word` drops a match
 * that touches a word character, `lstrip` / `rstrip` widen a match over the whitespace beside it.
 */
import type { Normalizer } from './components.js';
import { arr, bool, fail, int, obj, str } from './json.js';
import { Piece } from './piece.js';

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

export function addedTokensFromJSON(json: unknown, path = 'added_tokens'): AddedToken[] {
  if (json === undefined || json === null) return [];
  return arr(json, path).map((entry, i) => {
    const p = `${path}[${i}]`;
    const o = obj(entry, p);
    const special = bool(o, 'special', p, false);
    const token: AddedToken = {
      id: int(o, 'id', p),
      content: str(o, 'content', p),
      special,
      singleWord: bool(o, 'single_word', p, false),
      lstrip: bool(o, 'lstrip', p, false),
      rstrip: bool(o, 'rstrip', p, false),
      normalized: bool(o, 'normalized', p, !special),
    };
    if (token.content === '') fail(`${p}.content`, 'must not be empty');
    return token;
  });
}

// Rust `regex` classes used by the added-token rules: \w and \s are Unicode-aware there.
const WORD_CHAR = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const SPACE_CHAR = /\p{White_Space}/u;

interface TrieNode {
  next: Map<number, TrieNode>;
  /** Index into the matcher's token list when a token ends here. */
  token: number;
}

/** Leftmost-longest matcher over a fixed set of strings (a character trie; UTF-16 units). */
class TokenTrie {
  private readonly root: TrieNode = { next: new Map(), token: -1 };

  constructor(patterns: readonly string[]) {
    patterns.forEach((pattern, index) => {
      let node = this.root;
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern.charCodeAt(i);
        let child = node.next.get(c);
        if (!child) {
          child = { next: new Map(), token: -1 };
          node.next.set(c, child);
        }
        node = child;
      }
      // The first of equal patterns wins, as with the Rust library's automaton.
      if (node.token < 0) node.token = index;
    });
  }

  get empty(): boolean {
    return this.root.next.size === 0;
  }

  /** The leftmost match at or after `from` (longest among those starting there), or null. */
  find(text: string, from: number): { start: number; end: number; token: number } | null {
    const root = this.root;
    for (let start = from; start < text.length; start++) {
      let node = root.next.get(text.charCodeAt(start));
      if (!node) continue;
      let best = -1;
      let bestEnd = -1;
      let i = start + 1;
      for (;;) {
        if (node.token >= 0) {
          best = node.token;
          bestEnd = i;
        }
        if (i >= text.length) break;
        const child: TrieNode | undefined = node.next.get(text.charCodeAt(i));
        if (!child) break;
        node = child;
        i++;
      }
      if (best >= 0) return { start, end: bestEnd, token: best };
    }
    return null;
  }
}

/** A stretch of text: either an added token (tokenId ≥ 0) or text still to be tokenized. */
export interface Segment {
  piece: Piece;
  tokenId: number;
}

export class AddedVocabulary {
  readonly tokens: readonly AddedToken[];
  private readonly byId = new Map<number, AddedToken>();
  private readonly byContent = new Map<string, AddedToken>();
  private readonly specialContents = new Set<string>();
  private readonly rawTrie: TokenTrie;
  private readonly rawTokens: AddedToken[];
  private readonly normalizedTrie: TokenTrie;
  private readonly normalizedTokens: AddedToken[];

  constructor(tokens: readonly AddedToken[], normalizer: Normalizer | null) {
    this.tokens = tokens;
    for (const t of tokens) {
      this.byId.set(t.id, t);
      if (!this.byContent.has(t.content)) this.byContent.set(t.content, t);
      if (t.special) this.specialContents.add(t.content);
    }
    this.rawTokens = tokens.filter((t) => !t.normalized);
    this.normalizedTokens = tokens.filter((t) => t.normalized);
    this.rawTrie = new TokenTrie(this.rawTokens.map((t) => t.content));
    // Normalized tokens are matched as the normalizer would write them.
    this.normalizedTrie = new TokenTrie(
      this.normalizedTokens.map((t) => (normalizer ? normalizer.normalize(Piece.of(t.content)).text : t.content)),
    );
  }

  idOf(content: string): number | undefined {
    return this.byContent.get(content)?.id;
  }

  tokenOf(id: number): AddedToken | undefined {
    return this.byId.get(id);
  }

  isSpecial(content: string): boolean {
    return this.specialContents.has(content);
  }

  /**
   * Cuts added tokens out of `text`: first the non-normalized ones in the original, then each remaining stretch
   * is normalized and searched for the normalized ones. Returns segments in order, text segments normalized.
   */
  split(text: string, normalizer: Normalizer | null): Segment[] {
    const out: Segment[] = [];
    for (const seg of this.splitPiece(Piece.of(text), this.rawTrie, this.rawTokens)) {
      if (seg.tokenId >= 0) {
        out.push(seg);
        continue;
      }
      const normalized = normalizer ? normalizer.normalize(seg.piece) : seg.piece;
      for (const s of this.splitPiece(normalized, this.normalizedTrie, this.normalizedTokens)) out.push(s);
    }
    return out;
  }

  private splitPiece(piece: Piece, trie: TokenTrie, tokens: readonly AddedToken[]): Segment[] {
    if (trie.empty || piece.length === 0) return [{ piece, tokenId: -1 }];
    const text = piece.text;
    const segments: Segment[] = [];
    let startOffset = 0;
    let from = 0;
    for (let m = trie.find(text, 0); m; m = trie.find(text, from)) {
      from = m.end;
      const token = tokens[m.token];
      let start = m.start;
      let stop = m.end;
      if (token.singleWord) {
        const wordBefore = start > 0 && WORD_CHAR.test(lastCodePoint(text, start));
        const wordAfter = stop < text.length && WORD_CHAR.test(firstCodePoint(text, stop));
        if (wordBefore || wordAfter) continue;
      }
      if (token.lstrip) {
        let s = start;
        while (s > 0 && SPACE_CHAR.test(lastCodePoint(text, s))) s -= lastCodePoint(text, s).length;
        start = Math.max(s, startOffset);
      }
      if (token.rstrip) {
        while (stop < text.length && SPACE_CHAR.test(firstCodePoint(text, stop))) stop += firstCodePoint(text, stop).length;
      }
      if (startOffset < start) segments.push({ piece: piece.slice(startOffset, start), tokenId: -1 });
      segments.push({ piece: piece.slice(start, stop), tokenId: token.id });
      startOffset = stop;
    }
    if (startOffset < text.length) segments.push({ piece: piece.slice(startOffset), tokenId: -1 });
    return segments;
  }
}

function lastCodePoint(text: string, end: number): string {
  const c = text.charCodeAt(end - 1);
  if (c >= 0xdc00 && c <= 0xdfff && end >= 2) {
    const h = text.charCodeAt(end - 2);
    if (h >= 0xd800 && h <= 0xdbff) return text.slice(end - 2, end);
  }
  return text[end - 1];
}

function firstCodePoint(text: string, start: number): string {
  return String.fromCodePoint(text.codePointAt(start)!);
}
