// The tokenizer in the browser it ships for: every hf-tiny case's goldens (from Python transformers and the Rust
// library) reproduced in Chromium, plus a chat template. No GPU needed; it lives in this suite for the browser.
import { describe, expect, it } from 'vitest';
import { PreTrainedTokenizer } from '../../src/tokenizer/tokenizer.js';
import { IncrementalDecoder } from '../../src/tokenizer/streaming.js';

const texts = import.meta.glob('../fixtures/hf-tiny/*/{tokenizer.json,tokenizer_config.json,golden.json}', {
  query: '?raw',
  import: 'default',
  eager: true,
}) as Record<string, string>;

const cases = [...new Set(Object.keys(texts).map((p) => p.split('/').at(-2)!))].sort();
const file = (name: string, f: string) => texts[`../fixtures/hf-tiny/${name}/${f}`];

describe('tokenizer in Chromium', () => {
  it('finds the fixtures', () => expect(cases.length).toBeGreaterThanOrEqual(10));

  for (const name of cases) {
    it(`${name}: ids, decode and streaming as in the goldens`, () => {
      const tok = PreTrainedTokenizer.fromJSON(file(name, 'tokenizer.json'), JSON.parse(file(name, 'tokenizer_config.json')));
      const golden = JSON.parse(file(name, 'golden.json'));
      for (const c of golden.tokenizer_cases) {
        expect(tok.encode(c.text, { add_special_tokens: c.add_special_tokens }), JSON.stringify(c.text)).toEqual(c.ids);
        expect(tok.decode(c.ids)).toBe(c.decoded);
        const stream = new IncrementalDecoder((ids) => tok.decode(ids, { clean_up_tokenization_spaces: false }), {
          idToToken: (id) => tok.id_to_token(id),
        });
        const streamed = c.ids.map((id: number) => stream.push(id)).join('') + stream.flush();
        expect(streamed).toBe(tok.decode(c.ids, { clean_up_tokenization_spaces: false }));
      }
      if (golden.chat) {
        const text = tok.apply_chat_template(golden.chat.messages, { tokenize: false, add_generation_prompt: golden.chat.add_generation_prompt });
        expect(text).toBe(golden.chat.rendered);
      }
    });
  }
});
