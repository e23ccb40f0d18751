// pipeline('text-generation') on the CPU: a scripted model (the public model API: generate, dispose,
// generation_config) behind real tokenizers, so tokenization, option pass-through, decoding and the output shapes
// are checked without a GPU. The same behaviour on real models is in tests/gpu/pipeline.test.ts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AutoTokenizer } from '../../src/api/auto-tokenizer.js';
import type { GenerationOptions } from '../../src/api/generation-config.js';
import { pipeline, TextGenerationPipeline, type TextGenerationModel } from '../../src/api/pipeline.js';
import { BaseStreamer, TextIteratorStreamer, TextStreamer } from '../../src/api/streamers.js';
import { AbortError, ConfigError, TokenizerError } from '../../src/errors.js';
import type { GenerateOptions } from '../../src/runtime/causal-lm.js';
import type { ChatMessage } from '../../src/tokenizer/chat-template.js';
import type { PreTrainedTokenizer } from '../../src/tokenizer/tokenizer.js';
import { HF_TINY } from '../helpers/hf-tiny.js';

const KJV = join(HF_TINY, '..', '..', '..', 'models', 'kjv-llama-tiny');

/** Appends `reply` (then, per extra sequence, `reply` with its last token dropped) to the prompt; streams like generate(). */
class ScriptedModel implements TextGenerationModel {
  calls: GenerateOptions[] = [];
  disposed = 0;
  failWith: Error | null = null;
  constructor(
    private readonly reply: number[],
    readonly generation_config: GenerationOptions | null = null,
  ) {}
  async generate(options: GenerateOptions): Promise<number[][]> {
    this.calls.push(options);
    if (this.failWith) throw this.failWith;
    const prompt = (options.input_ids as number[][])[0]!;
    const n = options.num_return_sequences ?? 1;
    const rows = Array.from({ length: n }, (_, i) => [...prompt, ...this.reply.slice(0, this.reply.length - i)]);
    options.streamer?.put([prompt]);
    for (const id of rows[0]!.slice(prompt.length)) options.streamer?.put([[id]]);
    options.streamer?.end();
    return rows;
  }
  dispose(): void {
    this.disposed++;
  }
}

let kjv: PreTrainedTokenizer;
let qwen: PreTrainedTokenizer;
async function tokenizers() {
  kjv ??= await AutoTokenizer.from_pretrained(KJV);
  qwen ??= await AutoTokenizer.from_pretrained(join(HF_TINY, 'qwen2'));
  return { kjv, qwen };
}

async function textPipeline(replyText = ' and God said, Let there be light') {
  const { kjv } = await tokenizers();
  const reply = kjv.encode(replyText, { add_special_tokens: false });
  const model = new ScriptedModel(reply);
  return { gen: new TextGenerationPipeline(model, kjv), model, reply, tok: kjv };
}

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hi.' },
];

describe('pipeline: text input', () => {
  it('returns the prompt plus the decoded continuation, prompt tokenized with special tokens', async () => {
    const { gen, model, tok } = await textPipeline();
    const out = await gen('In the beginning', { max_new_tokens: 9, do_sample: false });
    expect(out).toEqual([{ generated_text: 'In the beginning and God said, Let there be light' }]);
    expect(model.calls[0]!.input_ids).toEqual([tok.encode('In the beginning')]);
    expect((model.calls[0]!.input_ids as number[][])[0]![0]).toBe(tok.token_to_id('<s>'));
    expect(gen.task).toBe('text-generation');
    expect(gen.model).toBe(model);
    expect(gen.tokenizer).toBe(tok);
  });

  it('return_full_text: false gives the continuation only, its leading space kept', async () => {
    const { gen } = await textPipeline();
    expect(await gen('In the beginning', { return_full_text: false })).toEqual([{ generated_text: ' and God said, Let there be light' }]);
  });

  it('add_special_tokens: false tokenizes without BOS', async () => {
    const { gen, model, tok } = await textPipeline();
    await gen('In the beginning', { add_special_tokens: false });
    expect(model.calls[0]!.input_ids).toEqual([tok.encode('In the beginning', { add_special_tokens: false })]);
  });

  it('passes every generation option through to generate() and adds no tokenizer without stop strings', async () => {
    const { gen, model } = await textPipeline();
    const signal = new AbortController().signal;
    const token_callback = () => {};
    const opts = {
      max_new_tokens: 5,
      do_sample: true,
      temperature: 0.7,
      top_k: 3,
      top_p: 0.9,
      min_p: 0.05,
      repetition_penalty: 1.2,
      seed: 42,
      eos_token_id: [2, 3],
      signal,
      token_callback,
      generation_config: { max_length: 30 },
    };
    await gen('In the beginning', opts);
    const call = model.calls[0]!;
    for (const [key, value] of Object.entries(opts)) expect(call[key as keyof GenerateOptions], key).toBe(value);
    expect(call.tokenizer).toBeUndefined();
    expect('return_full_text' in call).toBe(false);
    expect('add_special_tokens' in call).toBe(false);
  });

  it('passes the tokenizer along with stop_strings (from the call or a generation_config)', async () => {
    const { gen, model, tok } = await textPipeline();
    await gen('In the beginning', { stop_strings: ['light'] });
    expect(model.calls[0]!.tokenizer).toBe(tok);
    expect(model.calls[0]!.stop_strings).toEqual(['light']);
    await gen('In the beginning', { generation_config: { stop_strings: 'God' } });
    expect(model.calls[1]!.tokenizer).toBe(tok);
    const withDefaults = new TextGenerationPipeline(new ScriptedModel([5], { stop_strings: ['x'] }), tok);
    await withDefaults('In');
    expect((withDefaults.model as ScriptedModel).calls[0]!.tokenizer).toBe(tok);
  });

  it('gives one output per num_return_sequences', async () => {
    const { gen, tok, reply } = await textPipeline();
    const out = await gen('In the beginning', { num_return_sequences: 2, do_sample: true, seed: 1 });
    expect(out).toHaveLength(2);
    expect(out[1]!.generated_text).toBe('In the beginning' + tok.decode(reply.slice(0, -1)));
  });

  it('a batch of texts gives one list per text, one generate() call each', async () => {
    const { gen, model, tok } = await textPipeline(' amen');
    const out = await gen(['In the beginning', 'And the earth'], { num_return_sequences: 1 });
    expect(out).toEqual([[{ generated_text: 'In the beginning amen' }], [{ generated_text: 'And the earth amen' }]]);
    expect(model.calls.map((c) => c.input_ids)).toEqual([[tok.encode('In the beginning')], [tok.encode('And the earth')]]);
    expect(await gen([])).toEqual([]);
  });

  it('streams through TextStreamer and TextIteratorStreamer, with and without the prompt', async () => {
    const { gen, tok } = await textPipeline();
    for (const skip_prompt of [true, false]) {
      const pieces: string[] = [];
      const [out] = await gen('In the beginning', { streamer: new TextStreamer(tok, { skip_prompt, callback_function: (t) => pieces.push(t) }) });
      const expected = skip_prompt ? out!.generated_text.slice('In the beginning'.length) : tok.decode(tok.encode(out!.generated_text), { skip_special_tokens: true });
      expect(pieces.join('')).toBe(expected);

      const iter = new TextIteratorStreamer(tok, { skip_prompt });
      const done = gen('In the beginning', { streamer: iter });
      let text = '';
      for await (const piece of iter) text += piece;
      await done;
      expect(text).toBe(expected);
    }
  });

  it('ends the streamer when generate() fails before streaming, and rethrows', async () => {
    const { gen, model, tok } = await textPipeline();
    model.failWith = new AbortError('Generation was aborted before it started.');
    const iter = new TextIteratorStreamer(tok, { skip_prompt: true });
    const done = gen('In the beginning', { streamer: iter });
    const pieces: string[] = [];
    for await (const piece of iter) pieces.push(piece);
    await expect(done).rejects.toBeInstanceOf(AbortError);
    expect(pieces).toEqual([]);

    let ends = 0;
    class Counting extends BaseStreamer {
      put(): void {}
      end(): void {
        ends++;
      }
    }
    model.failWith = null;
    await gen('In', { streamer: new Counting() });
    expect(ends).toBe(1);
  });

  it('rejects inputs that are neither text nor chats', async () => {
    const { gen } = await textPipeline();
    await expect(gen(42 as unknown as string)).rejects.toBeInstanceOf(ConfigError);
    await expect(gen([{ content: 'no role' }] as unknown as string[])).rejects.toThrow(/input\[0\]/);
    await expect(gen([MESSAGES[0]!, 'text'] as unknown as ChatMessage[])).rejects.toThrow(/input\[1\] is not a chat message/);
  });

  it('dispose() frees the model', async () => {
    const { gen, model } = await textPipeline();
    await gen.dispose();
    expect(model.disposed).toBe(1);
  });
});

describe('pipeline: chat input', () => {
  async function chatPipeline(replyText = 'Hi there') {
    const { qwen } = await tokenizers();
    const end = qwen.token_to_id('<|im_end|>')!;
    const model = new ScriptedModel([...qwen.encode(replyText, { add_special_tokens: false }), end]);
    return { gen: new TextGenerationPipeline(model, qwen), model, tok: qwen };
  }

  it('applies the chat template with the generation prompt and appends the reply as an assistant message', async () => {
    const { gen, model, tok } = await chatPipeline();
    const out = await gen(MESSAGES, { max_new_tokens: 8 });
    expect(model.calls[0]!.input_ids).toEqual([tok.apply_chat_template(MESSAGES, { add_generation_prompt: true, tokenize: true })]);
    expect(out).toEqual([{ generated_text: [...MESSAGES, { role: 'assistant', content: 'Hi there' }] }]);
    expect(MESSAGES).toHaveLength(2); // the input is not changed
  });

  it('return_full_text: false gives the reply text only', async () => {
    const { gen } = await chatPipeline();
    expect(await gen(MESSAGES, { return_full_text: false })).toEqual([{ generated_text: 'Hi there' }]);
  });

  it('continues a final assistant message (continue_final_message)', async () => {
    const { gen, model, tok } = await chatPipeline(' friend');
    const messages: ChatMessage[] = [...MESSAGES, { role: 'assistant', content: 'Hello' }];
    const [out] = await gen(messages);
    expect(model.calls[0]!.input_ids).toEqual([tok.apply_chat_template(messages, { continue_final_message: true, tokenize: true })]);
    expect(out!.generated_text).toEqual([...MESSAGES, { role: 'assistant', content: 'Hello friend' }]);
  });

  it('a batch of chats gives one list per chat', async () => {
    const { gen } = await chatPipeline();
    const other: ChatMessage[] = [{ role: 'user', content: 'Again.' }];
    const out = await gen([MESSAGES, other]);
    expect(out).toHaveLength(2);
    expect(out[1]).toEqual([{ generated_text: [...other, { role: 'assistant', content: 'Hi there' }] }]);
  });

  it('a tokenizer without a chat template refuses messages with a TokenizerError', async () => {
    const { gen, model } = await textPipeline();
    await expect(gen(MESSAGES)).rejects.toBeInstanceOf(TokenizerError);
    await expect(gen(MESSAGES)).rejects.toThrow(/no chat template/);
    expect(model.calls).toHaveLength(0);
  });
});

describe('pipeline()', () => {
  it('refuses an unknown task with the list of supported tasks', async () => {
    await expect(pipeline('summarization' as never, KJV)).rejects.toBeInstanceOf(ConfigError);
    await expect(pipeline('summarization' as never, KJV)).rejects.toThrow(/supported tasks: text-generation/);
  });

  it('refuses a missing model id', async () => {
    await expect(pipeline('text-generation', '' as string)).rejects.toThrow(/needs a model/);
  });
});
