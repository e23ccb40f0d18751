// The tokenizer end to end: goldens from Python transformers (hf-tiny), real chat templates, the call API.
import { describe, expect, it } from 'vitest';
import { PreTrainedTokenizer } from '../../../src/tokenizer/tokenizer.js';
import { TokenizerError } from '../../../src/errors.js';
import { IncrementalDecoder } from '../../../src/tokenizer/streaming.js';
import { HF_TINY_CASES, readJson, readText } from '../../helpers/hf-tiny.js';
import { loadTokenizerFiles } from '../../helpers/tokenizer-files.js';

interface TokenizerCase {
  text: string;
  add_special_tokens: boolean;
  ids: number[];
  tokens: string[];
  decoded: string;
  decoded_skip_special: string;
}
interface ChatGolden {
  messages: Array<{ role: string; content: string }>;
  add_generation_prompt: boolean;
  rendered: string;
  input_ids: number[];
}

function hfTiny(name: string): PreTrainedTokenizer {
  return PreTrainedTokenizer.fromJSON(readText(name, 'tokenizer.json'), readJson(name, 'tokenizer_config.json'));
}

function real(name: Parameters<typeof loadTokenizerFiles>[0]): PreTrainedTokenizer {
  const f = loadTokenizerFiles(name);
  return PreTrainedTokenizer.fromJSON(f.json, f.config);
}

describe('hf-tiny goldens from Python transformers', () => {
  for (const name of HF_TINY_CASES) {
    const golden = readJson<{ tokenizer_cases: TokenizerCase[]; chat: ChatGolden | null }>(name, 'golden.json');
    it(`${name}: tokenizer cases (ids, tokens, decode)`, () => {
      const tok = hfTiny(name);
      for (const c of golden.tokenizer_cases) {
        const enc = tok.encodeWithOffsets(c.text, { add_special_tokens: c.add_special_tokens });
        expect(enc.ids, JSON.stringify(c.text)).toEqual(c.ids);
        expect(enc.tokens, JSON.stringify(c.text)).toEqual(c.tokens);
        expect(tok.decode(c.ids), JSON.stringify(c.text)).toBe(c.decoded);
        expect(tok.decode(c.ids, { skip_special_tokens: true }), JSON.stringify(c.text)).toBe(c.decoded_skip_special);
      }
    });
    if (golden.chat) {
      const chat = golden.chat;
      it(`${name}: chat template renders and encodes as transformers does`, () => {
        const tok = hfTiny(name);
        const text = tok.apply_chat_template(chat.messages, { tokenize: false, add_generation_prompt: chat.add_generation_prompt });
        expect(text).toBe(chat.rendered);
        expect(tok.apply_chat_template(chat.messages, { add_generation_prompt: chat.add_generation_prompt })).toEqual(chat.input_ids);
      });
    }
  }
});

describe('chat templates of real models (expected strings from their documented formats)', () => {
  const messages = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the capital of France?' },
  ];

  it('Llama-3', () => {
    const tok = real('llama3');
    expect(tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true })).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const ids = tok.apply_chat_template(messages, { add_generation_prompt: true });
    expect(ids[0]).toBe(tok.token_to_id('<|begin_of_text|>'));
    expect(ids.filter((id) => id === tok.token_to_id('<|eot_id|>')).length).toBe(2);
  });

  it('Qwen3: system, generation prompt, thinking switch, history without reasoning', () => {
    const tok = real('qwen3');
    const base =
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
      '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n';
    expect(tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true })).toBe(base);
    expect(
      tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true, kwargs: { enable_thinking: false } }),
    ).toBe(`${base}<think>\n\n</think>\n\n`);
    const history = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '<think>\nThe user greets me.\n</think>\n\nHello!' },
      { role: 'user', content: 'Bye' },
    ];
    expect(tok.apply_chat_template(history, { tokenize: false, add_generation_prompt: true })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('Qwen3 with tools (tojson as Python writes it)', () => {
    const tok = real('qwen3');
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Get the weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ];
    expect(
      tok.apply_chat_template([{ role: 'user', content: 'Weather in Paris?' }], { tokenize: false, add_generation_prompt: true, tools }),
    ).toBe(
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": ' +
        '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n</tools>\n\n' +
        'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('Gemma-3: system folded into the first user turn; raise_exception becomes a TokenizerError', () => {
    const tok = real('gemma3');
    expect(tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true })).toBe(
      '<bos><start_of_turn>user\nYou are a helpful assistant.\n\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n',
    );
    const bad = [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ];
    expect(() => tok.apply_chat_template(bad, { tokenize: false })).toThrow(TokenizerError);
    expect(() => tok.apply_chat_template(bad, { tokenize: false })).toThrow(/roles must alternate/);
  });

  it('continue_final_message leaves the last turn open', () => {
    const tok = real('qwen3');
    const text = tok.apply_chat_template(
      [
        { role: 'user', content: 'Count to three.' },
        { role: 'assistant', content: 'One, two,' },
      ],
      { tokenize: false, continue_final_message: true },
    );
    // Qwen3 opens the final assistant turn with an empty reasoning block, and the cut keeps the turn open.
    expect(text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\nOne, two,')).toBe(true);
    const closed = tok.apply_chat_template([{ role: 'user', content: 'Count to three.' }, { role: 'assistant', content: 'One, two,' }], {
      tokenize: false,
    });
    expect(closed.endsWith('One, two,<|im_end|>\n')).toBe(true);
  });

  it('a tokenizer without a template says how to pass one', () => {
    const tok = real('gpt2');
    expect(() => tok.apply_chat_template([{ role: 'user', content: 'x' }])).toThrow(/no chat template/);
    expect(
      tok.apply_chat_template([{ role: 'user', content: 'x' }], {
        tokenize: false,
        chat_template: '{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}',
      }),
    ).toBe('[user] x');
  });
});

describe('transformers-style API', () => {
  it('is callable and batches with padding on the configured side', () => {
    const tok = real('gemma3'); // padding_side: left, pad_token <pad>
    const single = tok('Hello world');
    expect(single.input_ids).toEqual(tok.encode('Hello world'));
    expect(single.attention_mask.every((m) => m === 1)).toBe(true);
    const batch = tok(['Hi', 'A much longer sentence here'], { padding: true });
    const [a, b] = batch.input_ids;
    expect(a.length).toBe(b.length);
    const pad = tok.pad_token_id!;
    expect(a[0]).toBe(pad); // left padding
    expect(batch.attention_mask[0][0]).toBe(0);
    expect(batch.attention_mask[1].every((m) => m === 1)).toBe(true);
    tok.padding_side = 'right';
    const right = tok(['Hi', 'A much longer sentence here'], { padding: true });
    expect(right.input_ids[0].at(-1)).toBe(pad);
  });

  it('pads to max_length and truncates from the configured side', () => {
    const tok = real('qwen3');
    const padded = tok('one two three', { padding: 'max_length', max_length: 10 });
    expect(padded.input_ids.length).toBe(10);
    const full = tok.encode('one two three four five six seven');
    const cut = tok('one two three four five six seven', { truncation: true, max_length: 3 });
    expect(cut.input_ids).toEqual(full.slice(0, 3));
    tok.truncation_side = 'left';
    expect(tok('one two three four five six seven', { truncation: true, max_length: 3 }).input_ids).toEqual(full.slice(-3));
  });

  it('keeps room for special tokens when truncating', () => {
    const tok = real('llama2'); // adds <s>
    const ids = tok('one two three four five six seven', { truncation: true, max_length: 4 }).input_ids;
    expect(ids.length).toBe(4);
    expect(ids[0]).toBe(tok.bos_token_id);
  });

  it('asks for a pad token when there is none', () => {
    const tok = real('llama3');
    expect(() => tok(['a', 'bb'], { padding: true })).toThrow(/pad token/);
    tok.pad_token = tok.eos_token;
    expect(tok(['a', 'bb b'], { padding: true }).input_ids[0].length).toBeGreaterThan(1);
  });

  it('returns offsets into the input string', () => {
    const tok = real('llama3');
    const text = 'Héllo wörld 👍🏽!';
    const out = tok(text, { return_offsets_mapping: true });
    const offsets = out.offset_mapping!;
    expect(offsets.length).toBe(out.input_ids.length);
    for (const [s, e] of offsets) {
      expect(s).toBeGreaterThanOrEqual(0);
      expect(e).toBeLessThanOrEqual(text.length);
      expect(s).toBeLessThanOrEqual(e);
    }
    // Byte-level tokens can straddle characters, so ranges may overlap, but together they cover the text in order.
    expect(offsets[0][0]).toBe(0);
    expect(offsets.at(-1)![1]).toBe(text.length);
    for (let i = 1; i < offsets.length; i++) {
      expect(offsets[i][0]).toBeGreaterThanOrEqual(offsets[i - 1][0]);
      expect(offsets[i][0]).toBeLessThanOrEqual(offsets[i - 1][1]);
    }
  });

  it('exposes special tokens and their ids from tokenizer_config.json', () => {
    const tok = real('qwen3');
    expect(tok.eos_token).toBe('<|im_end|>');
    expect(tok.eos_token_id).toBe(tok.token_to_id('<|im_end|>'));
    expect(tok.decode(tok.encode('<|im_start|>hi<|im_end|>'), { skip_special_tokens: true })).toBe('hi');
    expect(tok.batch_decode([tok.encode('a'), tok.encode('b')])).toEqual(['a', 'b']);
  });

  it('rejects bad input with TokenizerError', () => {
    const tok = real('qwen3');
    expect(() => tok.encode(42 as unknown as string)).toThrow(TokenizerError);
    expect(() => PreTrainedTokenizer.fromJSON('{')).toThrow(/not valid JSON/);
    expect(() => PreTrainedTokenizer.fromJSON('{}')).toThrow(/model is missing/);
  });
});

describe('streaming with our own decode', () => {
  const samples = [
    'Héllo wörld! 👍🏽 日本語のテキスト, مرحبا بالعالم, नमस्ते.  Two  spaces\nand a newline.',
    '  leading spaces, <special> look-alikes </s> and emoji 👨‍👩‍👧‍👦 🇫🇷',
  ];
  for (const name of ['llama2', 'llama3', 'qwen3', 'gemma3', 'gpt2', 'mistral', 'bert', 't5'] as const) {
    it(`${name}: pushes + flush equal the full decode, and no chunk ends mid-character`, () => {
      const tok = real(name);
      for (const text of samples) {
        const ids = tok.encode(text);
        const full = tok.decode(ids, { clean_up_tokenization_spaces: false });
        const stream = new IncrementalDecoder((w) => tok.decode(w, { clean_up_tokenization_spaces: false }), {
          idToToken: (id) => tok.id_to_token(id),
        });
        const chunks = ids.map((id) => stream.push(id));
        chunks.push(stream.flush());
        expect(chunks.join('')).toBe(full);
        if (!full.includes('\ufffd')) for (const chunk of chunks) expect(chunk).not.toContain('\ufffd');
      }
    });
  }
});
