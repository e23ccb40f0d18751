import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { BaseStreamer, TextIteratorStreamer, TextStreamer } from '../../src/api/streamers.js';
import { PreTrainedTokenizer } from '../../src/tokenizer/tokenizer.js';
import { readJson, readText } from '../helpers/hf-tiny.js';

const tokenizers = new Map<string, PreTrainedTokenizer>();
function tokenizer(c: string): PreTrainedTokenizer {
  let t = tokenizers.get(c);
  if (!t) {
    t = PreTrainedTokenizer.fromJSON(readText(c, 'tokenizer.json'), readJson(c, 'tokenizer_config.json'));
    tokenizers.set(c, t);
  }
  return t;
}

/** Runs a streamer as generate() would: the prompt in one put, then one put per new token, then end(). */
function stream(streamer: BaseStreamer, prompt: number[], generated: number[]): void {
  streamer.put([prompt]);
  for (const id of generated) streamer.put([[id]]);
  streamer.end();
}

function collect(c: string, text: string, promptTokens: number, options: ConstructorParameters<typeof TextStreamer>[1] = {}) {
  const tok = tokenizer(c);
  const ids = tok.encode(text);
  const prompt = ids.slice(0, promptTokens);
  const generated = ids.slice(promptTokens);
  const chunks: string[] = [];
  const streamer = new TextStreamer(tok, { callback_function: (t) => chunks.push(t), ...options });
  stream(streamer, prompt, generated);
  return { tok, ids, prompt, generated, chunks };
}

const TEXT = 'Hello world, 日本 é 😀 end of the line\nAnd a second line of text';

describe('TextStreamer', () => {
  for (const c of ['llama', 'gpt2', 'qwen2', 'gemma']) {
    it(`${c}: the pieces add up to the decoded text, break at word boundaries and never split a character`, () => {
      const { tok, ids, chunks } = collect(c, TEXT, 1);
      expect(chunks.join('')).toBe(tok.decode(ids, { skip_special_tokens: true }));
      for (const piece of chunks) expect(piece).not.toContain('\ufffd');
      // Every piece but the first (prompt) and the last (end) ends at a space, a line break or a CJK character.
      for (const piece of chunks.slice(1, -1)) expect(piece, JSON.stringify(chunks)).toMatch(/[ \n\u4e00-\u9fff]$/u);
      expect(chunks.some((p) => p.endsWith('日'))).toBe(true);
    });
  }

  it('holds back a character split over byte-fallback tokens (llama)', () => {
    const tok = tokenizer('llama');
    const ids = tok.encode('x 😀', { add_special_tokens: false });
    expect(tok.convert_ids_to_tokens(ids).filter((t) => t?.startsWith('<0x'))).toHaveLength(4);
    const chunks: string[] = [];
    const streamer = new TextStreamer(tok, { callback_function: (t) => chunks.push(t), skip_prompt: true });
    streamer.put([[]]);
    for (const id of ids) streamer.put([[id]]);
    expect(chunks.join('')).toBe('x '); // the emoji's bytes are still pending
    streamer.end();
    expect(chunks.join('')).toBe('x 😀');
  });

  it('byte-level BPE (gpt2): a CJK character split over three tokens is emitted once complete', () => {
    const tok = tokenizer('gpt2');
    const ids = tok.encode('ab 日', { add_special_tokens: false });
    const chunks: string[] = [];
    const streamer = new TextStreamer(tok, { callback_function: (t) => chunks.push(t), skip_prompt: true });
    streamer.put([[]]);
    const after: string[] = [];
    for (const id of ids) {
      streamer.put([[id]]);
      after.push(chunks.join(''));
    }
    expect(after.at(-1)).toBe('ab 日'); // flushed at once, before end()
    expect(after.every((s) => !s.includes('\ufffd'))).toBe(true);
    streamer.end();
    expect(chunks.join('')).toBe('ab 日');
  });

  it('a trailing incomplete character is emitted at end() as decode gives it', () => {
    const tok = tokenizer('gpt2');
    const ids = tok.encode('ab 日', { add_special_tokens: false });
    const chunks: string[] = [];
    const streamer = new TextStreamer(tok, { callback_function: (t) => chunks.push(t), skip_prompt: true });
    streamer.put([[]]);
    for (const id of ids.slice(0, -1)) streamer.put([[id]]);
    expect(chunks.join('')).toBe('ab ');
    streamer.end();
    expect(chunks.join('')).toBe(tok.decode(ids.slice(0, -1)));
  });

  it('skip_prompt', () => {
    const { tok, generated, prompt, chunks } = collect('gpt2', TEXT, 3, { skip_prompt: true });
    expect(chunks.join('')).toBe(tok.decode(generated));
    expect(chunks.join('')).not.toContain(tok.decode(prompt));
    const all = collect('gpt2', TEXT, 3);
    expect(all.chunks[0]).toBe(tok.decode(prompt)); // the prompt comes out at once
  });

  it('skip_special_tokens (default true)', () => {
    const tok = tokenizer('llama');
    const prompt = tok.encode('In the beginning'); // starts with <s>
    const generated = [...tok.encode(' God created', { add_special_tokens: false }), tok.eos_token_id!];
    const skip: string[] = [];
    stream(new TextStreamer(tok, { callback_function: (t) => skip.push(t) }), prompt, generated);
    expect(skip.join('')).not.toContain('<s>');
    expect(skip.join('')).not.toContain('</s>');
    const keep: string[] = [];
    stream(new TextStreamer(tok, { callback_function: (t) => keep.push(t), skip_special_tokens: false }), prompt, generated);
    expect(keep.join('')).toContain('<s>');
    expect(keep.join('')).toMatch(/<\/s>$/);
  });

  it('token_callback_function sees the ids of every put that is not skipped', () => {
    const tok = tokenizer('qwen2');
    const seen: number[][] = [];
    const s = new TextStreamer(tok, { callback_function: () => {}, token_callback_function: (t) => seen.push(t), skip_prompt: true });
    stream(s, [1, 2, 3], [4, 5]);
    expect(seen).toEqual([[4], [5]]);
  });

  it('a streamer can be reused for a second generation', () => {
    const tok = tokenizer('gpt2');
    const chunks: string[] = [];
    const s = new TextStreamer(tok, { callback_function: (t) => chunks.push(t), skip_prompt: true });
    const a = tok.encode('one two', { add_special_tokens: false });
    const b = tok.encode('three four', { add_special_tokens: false });
    stream(s, [1], a);
    stream(s, [1], b);
    expect(chunks.join('|')).toBe(`${tok.decode(a).split(' ')[0]} |two|three |four`);
  });

  it('batch size > 1 is an error', () => {
    const s = new TextStreamer(tokenizer('gpt2'), { callback_function: () => {} });
    expect(() => s.put([[1], [2]])).toThrow(ConfigError);
    expect(() => s.put([[1], [2]])).toThrow('batch size 1');
  });

  it('writes to process.stdout by default in Node, with a newline at the end', () => {
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const tok = tokenizer('gpt2');
      stream(new TextStreamer(tok, { skip_prompt: true }), [1], tok.encode('hi there', { add_special_tokens: false }));
      const written = spy.mock.calls.map((c) => String(c[0])).join('');
      expect(written).toBe('hi there\n');
    } finally {
      spy.mockRestore();
    }
  });
});

describe('TextIteratorStreamer', () => {
  it('yields the pieces and ends after end()', async () => {
    const tok = tokenizer('llama');
    const ids = tok.encode(TEXT);
    const streamer = new TextIteratorStreamer(tok, { skip_prompt: true });
    const producer = (async () => {
      streamer.put([ids.slice(0, 2)]);
      for (const id of ids.slice(2)) {
        await new Promise((r) => setTimeout(r, 0));
        streamer.put([[id]]);
      }
      streamer.end();
    })();
    const pieces: string[] = [];
    for await (const piece of streamer) pieces.push(piece);
    await producer;
    expect(pieces.length).toBeGreaterThan(3);
    expect(pieces.join('')).toBe(tok.decode(ids.slice(2), { skip_special_tokens: true }));
  });

  it('queues pieces produced before iteration starts, and calls a callback too', async () => {
    const tok = tokenizer('gpt2');
    const seen: string[] = [];
    const streamer = new TextIteratorStreamer(tok, { skip_prompt: true, callback_function: (t) => seen.push(t) });
    stream(streamer, [1], tok.encode('a b c', { add_special_tokens: false }));
    const pieces: string[] = [];
    for await (const piece of streamer) pieces.push(piece);
    expect(pieces.join('')).toBe('a b c');
    expect(seen).toEqual(pieces);
    // A second generation on the same streamer is a second iteration.
    stream(streamer, [1], tok.encode('d', { add_special_tokens: false }));
    const again: string[] = [];
    for await (const piece of streamer) again.push(piece);
    expect(again).toEqual(['d']);
  });
});
