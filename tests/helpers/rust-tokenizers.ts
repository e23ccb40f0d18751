// The oracle: the Rust Hugging Face `tokenizers` library (0.22.2) through its Node binding. Node only.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const rust = require('@anush008/tokenizers') as typeof import('@anush008/tokenizers');

/**
 * Converts offsets in Unicode code points (what the Rust binding returns) into UTF-16 offsets in `text` (what
 * webslm returns, so that `text.slice(start, end)` works in JavaScript).
 */
export function codePointToUtf16Offsets(text: string, offsets: number[][]): Array<[number, number]> {
  const at: number[] = [];
  for (let i = 0; i < text.length; ) {
    at.push(i);
    i += text.codePointAt(i)! > 0xffff ? 2 : 1;
  }
  at.push(text.length);
  return offsets.map(([s, e]) => [at[s] ?? -1, at[e] ?? -1]);
}

/**
 * A Rust tokenizer built from a tokenizer.json holding only the given parts (the rest null, no added tokens; the
 * model defaults to a one-entry WordLevel), to test one stage at a time against the Rust library.
 */
export function rustTokenizerWith(parts: Record<string, unknown>) {
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: { '[UNK]': 0 }, unk_token: '[UNK]' },
    ...parts,
  };
  return rust.Tokenizer.fromString(JSON.stringify(json));
}
