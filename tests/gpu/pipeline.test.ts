// pipeline('text-generation') on real models, in Chromium and Node + Dawn: completion on the embedded model against
// model.generate() run directly, return_full_text, num_return_sequences, batches, streamers, abort; chat input
// through a fixture's chat template; the typed errors. In Chromium the model runs in the Worker engine (a
// RemoteCausalLM), in Node in this thread (a CausalLM): the pipeline uses only their common API.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { env } from '../../src/api/env.js';
import { pipeline, type TextGenerationPipeline } from '../../src/api/pipeline.js';
import { BaseStreamer, TextIteratorStreamer, TextStreamer } from '../../src/api/streamers.js';
import { AbortError, ConfigError, TokenizerError, WebSLMError } from '../../src/errors.js';
import type { ProgressInfo } from '../../src/hub/model-files.js';
import type { ChatMessage } from '../../src/tokenizer/chat-template.js';

const server = inject('faultServer');
const PROMPT = 'In the beginning';
const GREEDY = { max_new_tokens: 8, do_sample: false } as const;

let gen: TextGenerationPipeline;
const events: ProgressInfo[] = [];
beforeAll(async () => {
  gen = await pipeline('text-generation', `${server}/kjv-llama-tiny`, { cache: null, progress_callback: (e) => events.push(e) });
});
afterAll(async () => {
  await gen?.dispose();
});

/** model.generate() run directly: the prompt ids and the new ids of each sequence. */
async function direct(prompt: string, options: Record<string, unknown>) {
  const ids = gen.tokenizer.encode(prompt);
  const rows = await gen.model.generate({ input_ids: [ids], ...options });
  return { ids, news: rows.map((r: number[]) => r.slice(ids.length)) };
}

const decode = (ids: number[]) => gen.tokenizer.decode(ids, { skip_special_tokens: true });

/** Captures the ids of a generation (prompt, then the new ones) as generate() streams them. */
class Capture extends BaseStreamer {
  prompt: number[] = [];
  news: number[] = [];
  private first = true;
  put(value: number[][]): void {
    if (this.first) this.prompt = [...value[0]!];
    else this.news.push(...value[0]!);
    this.first = false;
  }
  end(): void {}
}

describe('the same tokens in a Worker, in this thread and under Node', () => {
  // One reference for every environment: PyTorch's greedy ids of the model card (eval/samples.json). In Chromium the
  // pipeline runs once through the Worker engine and once in this thread; under Node in this thread.
  const modes = typeof window === 'undefined' ? [false] : [true, false];
  it.each(modes)('greedy through the pipeline = PyTorch greedy (Worker engine: %s)', { timeout: 300_000 }, async (worker) => {
    const samples = (await (await fetch(`${server}/kjv-llama-tiny/eval/samples.json`)).json()) as { prompt: string; greedy_ids: number[] }[];
    const saved = env.useWorker;
    env.useWorker = worker;
    const p = await pipeline('text-generation', `${server}/kjv-llama-tiny`, { cache: null });
    try {
      expect(p.model.constructor.name).toBe(worker ? 'RemoteCausalLM' : 'CausalLM');
      for (const sample of samples.slice(0, 2)) {
        const want = sample.greedy_ids.slice(0, 24);
        const options = { max_new_tokens: want.length, do_sample: false, repetition_penalty: 1, eos_token_id: [] };
        const [out] = await p(sample.prompt, { ...options, return_full_text: false });
        expect(out!.generated_text, sample.prompt).toBe(p.tokenizer.decode(want, { skip_special_tokens: true }));
        const capture = new Capture();
        await p(sample.prompt, { ...options, streamer: capture });
        expect(capture.news, sample.prompt).toEqual(want);
      }
    } finally {
      await p.dispose();
      env.useWorker = saved;
    }
  });
});

describe('text-generation pipeline: completion (kjv-llama-tiny)', () => {
  it('loads tokenizer and model with one progress_callback', () => {
    const files = new Set(events.map((e) => e.file));
    expect(files.has('tokenizer.json')).toBe(true);
    expect(files.has('model.safetensors')).toBe(true);
    expect(events.at(-1)?.status).toBe('ready');
    expect(gen.task).toBe('text-generation');
  });

  it('returns the prompt plus the same greedy continuation as model.generate()', async () => {
    const { news } = await direct(PROMPT, GREEDY);
    const [out, ...rest] = await gen(PROMPT, GREEDY);
    expect(rest).toHaveLength(0);
    expect(out!.generated_text.startsWith(PROMPT)).toBe(true);
    expect(out!.generated_text).toBe(PROMPT + decode(news[0]!));
    expect(news[0]!.length).toBeGreaterThan(0);
  });

  it('return_full_text: false gives only the continuation', async () => {
    const { news } = await direct(PROMPT, GREEDY);
    expect(await gen(PROMPT, { ...GREEDY, return_full_text: false })).toEqual([{ generated_text: decode(news[0]!) }]);
  });

  it('num_return_sequences 2 with sampling and a seed: two outputs, as model.generate() draws them', async () => {
    const opts = { max_new_tokens: 6, do_sample: true, temperature: 1.5, top_k: 0, seed: 1234, num_return_sequences: 2 };
    const { news } = await direct(PROMPT, opts);
    const out = await gen(PROMPT, opts);
    expect(out.map((o) => o.generated_text)).toEqual(news.map((n: number[]) => PROMPT + decode(n)));
    expect(out[0]!.generated_text).not.toBe(out[1]!.generated_text);
  });

  it('a batch of two texts gives one list per text, each as if alone', async () => {
    const texts = [PROMPT, 'And God said'];
    const out = await gen(texts, { max_new_tokens: 6, do_sample: false });
    expect(out).toHaveLength(2);
    for (let i = 0; i < 2; i++) {
      expect(out[i]).toEqual(await gen(texts[i]!, { max_new_tokens: 6, do_sample: false }));
      expect(out[i]![0]!.generated_text.startsWith(texts[i]!)).toBe(true);
    }
  });

  it('TextStreamer and TextIteratorStreamer stream the continuation (skip_prompt true) or prompt + continuation', async () => {
    const opts = { max_new_tokens: 10, do_sample: false };
    const { ids, news: [news] } = await direct(PROMPT, opts);
    const continuation = decode(news!);
    for (const skip_prompt of [true, false]) {
      const expected = skip_prompt ? continuation : decode([...ids, ...news!]);
      const pieces: string[] = [];
      await gen(PROMPT, { ...opts, streamer: new TextStreamer(gen.tokenizer, { skip_prompt, skip_special_tokens: true, callback_function: (t) => pieces.push(t) }) });
      expect(pieces.join(''), `TextStreamer skip_prompt ${skip_prompt}`).toBe(expected);

      const iter = new TextIteratorStreamer(gen.tokenizer, { skip_prompt });
      const done = gen(PROMPT, { ...opts, streamer: iter });
      let text = '';
      for await (const piece of iter) text += piece;
      expect(await done).toEqual([{ generated_text: PROMPT + continuation }]);
      expect(text, `TextIteratorStreamer skip_prompt ${skip_prompt}`).toBe(expected);
    }
  });

  it('an AbortSignal mid-generation rejects with AbortError; the pipeline works after', async () => {
    const controller = new AbortController();
    let seen = 0;
    const run = gen(PROMPT, {
      max_new_tokens: 40,
      do_sample: false,
      signal: controller.signal,
      token_callback: () => {
        if (++seen === 3) controller.abort();
      },
    });
    await expect(run).rejects.toThrow(AbortError);
    expect(seen).toBeLessThan(40);
    const { news } = await direct(PROMPT, GREEDY);
    expect(await gen(PROMPT, GREEDY)).toEqual([{ generated_text: PROMPT + decode(news[0]!) }]);
  });

  it('messages to a model without a chat template: TokenizerError', async () => {
    await expect(gen([{ role: 'user', content: 'Hi' }], GREEDY)).rejects.toThrow(TokenizerError);
  });

  it('an unknown task: ConfigError naming the supported tasks', async () => {
    await expect(pipeline('translation' as never, `${server}/kjv-llama-tiny`, { cache: null })).rejects.toThrow(ConfigError);
    await expect(pipeline('translation' as never, `${server}/kjv-llama-tiny`, { cache: null })).rejects.toThrow(/text-generation/);
  });
});

describe('text-generation pipeline: chat (qwen2 fixture)', () => {
  const messages: ChatMessage[] = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the capital of France?' },
  ];

  it('messages in: the templated prompt is generated from, and the reply is appended as an assistant message', async () => {
    const chat = await pipeline('text-generation', `${server}/qwen2`, { cache: null });
    try {
      const capture = new Capture();
      const [out, ...rest] = await chat(messages, { max_new_tokens: 8, do_sample: false, streamer: capture });
      expect(rest).toHaveLength(0);
      const templated = chat.tokenizer.apply_chat_template(messages, { add_generation_prompt: true, tokenize: true });
      expect(capture.prompt).toEqual(templated);
      const [row] = await chat.model.generate({ input_ids: [templated], max_new_tokens: 8, do_sample: false });
      expect(capture.news).toEqual(row!.slice(templated.length));
      const reply = chat.tokenizer.decode(row!.slice(templated.length), { skip_special_tokens: true });
      expect(out!.generated_text).toEqual([...messages, { role: 'assistant', content: reply }]);
      expect(await chat(messages, { max_new_tokens: 8, do_sample: false, return_full_text: false })).toEqual([{ generated_text: reply }]);
      // skip_prompt drops the whole templated prompt: the streamed text is the reply.
      const pieces: string[] = [];
      const streamer = new TextStreamer(chat.tokenizer, { skip_prompt: true, callback_function: (t) => pieces.push(t) });
      await chat(messages, { max_new_tokens: 8, do_sample: false, streamer });
      expect(pieces.join('')).toBe(reply);
    } finally {
      await chat.dispose();
    }
    await expect(chat(messages, { max_new_tokens: 2 })).rejects.toThrow(WebSLMError);
  });
});
