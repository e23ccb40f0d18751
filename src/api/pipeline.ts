/**
 * `pipeline('text-generation', id, options)`, as in transformers.js / Python transformers: loads the tokenizer and the
 * model, then `await gen(input, options)` tokenizes (plain text, or a chat through the tokenizer's chat template),
 * generates and decodes.
 *
 *   const gen = await pipeline('text-generation', 'HuggingFaceTB/SmolLM2-135M-Instruct', { dtype: 'q4' });
 *   const [{ generated_text }] = await gen('In the beginning', { max_new_tokens: 20 });   // prompt + continuation
 *   const [{ generated_text: chat }] = await gen([{ role: 'user', content: 'Hi!' }]);    // messages + the reply
 *
 * The pipeline uses only the model's public API (`generate`, `dispose`, `generation_config`), so it works the same
 * with a model that runs elsewhere (e.g. behind a Worker) and exposes that API.
 */
import { ConfigError } from '../errors.js';
import type { GenerateOptions } from '../runtime/causal-lm.js';
import { Callable } from '../tokenizer/callable.js';
import type { ChatMessage, ChatTemplateOptions } from '../tokenizer/chat-template.js';
import type { DecodeOptions, PreTrainedTokenizer } from '../tokenizer/tokenizer.js';
import { AutoModelForCausalLM, type ModelLoadOptions } from './auto-model.js';
import { AutoTokenizer } from './auto-tokenizer.js';
import type { GenerationOptions } from './generation-config.js';
import { BaseStreamer } from './streamers.js';

/** The tasks `pipeline()` knows. */
export const SUPPORTED_TASKS = ['text-generation'] as const;
export type PipelineTask = (typeof SUPPORTED_TASKS)[number];

/** Load options of `pipeline()`: those of `AutoModelForCausalLM.from_pretrained` (the tokenizer takes the file options). */
export type PipelineOptions = ModelLoadOptions;

/** What the pipeline needs of a model: `AutoModelForCausalLM.from_pretrained`'s result, or anything with its API. */
export interface TextGenerationModel {
  generate(options: GenerateOptions): Promise<number[][]>;
  dispose(): void | Promise<void>;
  readonly generation_config?: GenerationOptions | null;
}

/** The model `pipeline()` loads. */
export type LoadedCausalLM = Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>;

/** Options of one call: every `generate()` option, plus how the input is tokenized and the output decoded. */
export interface TextGenerationCallOptions
  extends Omit<GenerateOptions, 'input_ids' | 'attention_mask' | 'tokenizer'>,
    Pick<ChatTemplateOptions, 'tools' | 'documents' | 'chat_template'> {
  /**
   * true (default): text input gives prompt + continuation, chat input the messages with the reply appended.
   * false: only the new text (for chat input too, as in Python transformers).
   */
  return_full_text?: boolean;
  /** Add BOS/EOS as the tokenizer's post-processor says: default true for text, false for chat (templated) input. */
  add_special_tokens?: boolean;
  /**
   * Chat input: continue the last message instead of opening a new assistant turn; the reply is appended to that
   * message. Default: true when the last message is the assistant's.
   */
  continue_final_message?: boolean;
  /** Passed to `tokenizer.decode` (default: the tokenizer's own setting). */
  clean_up_tokenization_spaces?: boolean;
}

export interface TextGenerationOutput {
  generated_text: string;
}

export interface ChatGenerationOutput {
  /** The messages with the reply appended; only the reply's text when `return_full_text` is false. */
  generated_text: ChatMessage[] | string;
}

export interface TextGenerationPipeline<M extends TextGenerationModel = LoadedCausalLM> {
  /** One text → one output per `num_return_sequences`. */
  (text: string, options?: TextGenerationCallOptions): Promise<TextGenerationOutput[]>;
  /** A batch of texts → one list of outputs per text. */
  (texts: string[], options?: TextGenerationCallOptions): Promise<TextGenerationOutput[][]>;
  /** One chat (a list of `{ role, content }`) → one output per `num_return_sequences`. */
  (messages: ChatMessage[], options?: TextGenerationCallOptions): Promise<ChatGenerationOutput[]>;
  /** A batch of chats → one list of outputs per chat. */
  (chats: ChatMessage[][], options?: TextGenerationCallOptions): Promise<ChatGenerationOutput[][]>;
}

type Input = string | ChatMessage[];
type Output = TextGenerationOutput | ChatGenerationOutput;

const INPUT_HELP = 'a string, a list of strings, a chat (a list of { role, content }) or a list of chats';

function isMessage(value: unknown): value is ChatMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { role?: unknown }).role === 'string';
}

function checkChat(messages: unknown[], where: string): ChatMessage[] {
  messages.forEach((m, i) => {
    if (!isMessage(m)) throw new ConfigError(`text-generation input${where}[${i}] is not a chat message { role, content }: ${describe(m)}.`);
  });
  return messages as ChatMessage[];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return typeof value;
}

/** Splits a call's input into items and says whether it was a batch. */
function itemsOf(input: unknown): { items: Input[]; batch: boolean } {
  if (typeof input === 'string') return { items: [input], batch: false };
  if (!Array.isArray(input)) throw new ConfigError(`text-generation input must be ${INPUT_HELP}, got ${describe(input)}.`);
  if (input.length === 0) return { items: [], batch: true };
  if (isMessage(input[0])) return { items: [checkChat(input, '')], batch: false };
  return {
    batch: true,
    items: input.map((item: unknown, i) => {
      if (typeof item === 'string') return item;
      if (Array.isArray(item)) return checkChat(item, `[${i}]`);
      throw new ConfigError(`text-generation input[${i}] must be a string or a chat (a list of { role, content }), got ${describe(item)}.`);
    }),
  };
}

/**
 * Forwards to the caller's streamer and makes sure it sees `end()` once, also when generation fails before it
 * started streaming (so a `for await` over a `TextIteratorStreamer` ends instead of waiting forever).
 */
class EndingStreamer extends BaseStreamer {
  ended = false;
  constructor(private readonly target: BaseStreamer) {
    super();
  }
  put(value: number[][]): void {
    this.ended = false;
    this.target.put(value);
  }
  end(): void {
    this.ended = true;
    this.target.end();
  }
}

export class TextGenerationPipeline<M extends TextGenerationModel = LoadedCausalLM> extends Callable<
  [Input | Input[], TextGenerationCallOptions?],
  Promise<Output[] | Output[][]>
> {
  readonly task = 'text-generation' as const;
  readonly model!: M;
  readonly tokenizer!: PreTrainedTokenizer;

  constructor(model: M, tokenizer: PreTrainedTokenizer) {
    super();
    (this as { model: M }).model = model;
    (this as { tokenizer: PreTrainedTokenizer }).tokenizer = tokenizer;
  }

  protected async _call(input: Input | Input[], options: TextGenerationCallOptions = {}): Promise<Output[] | Output[][]> {
    const { items, batch } = itemsOf(input);
    // One prompt per generate() call (transformers' default batch_size 1): no padding, and streamers work.
    const results: Output[][] = [];
    for (const item of items) results.push(await this.generateOne(item, options));
    return batch ? results : results[0]!;
  }

  /** Frees the model (its GPU memory). */
  async dispose(): Promise<void> {
    await this.model.dispose();
  }

  private promptIds(input: Input, options: TextGenerationCallOptions): number[] {
    const tok = this.tokenizer;
    if (typeof input === 'string') return tok.encode(input, { add_special_tokens: options.add_special_tokens ?? true });
    const continueFinal = options.continue_final_message ?? input.at(-1)?.role === 'assistant';
    const text = tok.apply_chat_template(input, {
      add_generation_prompt: !continueFinal,
      continue_final_message: continueFinal,
      tools: options.tools,
      documents: options.documents,
      chat_template: options.chat_template,
      tokenize: false,
    });
    // The template writes the special tokens itself.
    return tok.encode(text, { add_special_tokens: options.add_special_tokens ?? false });
  }

  private async generateOne(input: Input, options: TextGenerationCallOptions): Promise<Output[]> {
    const {
      return_full_text = true,
      add_special_tokens: _add,
      continue_final_message,
      tools: _tools,
      documents: _documents,
      chat_template: _template,
      clean_up_tokenization_spaces,
      streamer,
      ...generation
    } = options;
    const prompt = this.promptIds(input, options);
    const wantsStops = [generation.stop_strings, generation.generation_config?.stop_strings, this.model.generation_config?.stop_strings].some(
      (s) => s !== undefined && s !== null,
    );
    const guard = streamer ? new EndingStreamer(streamer) : undefined;
    let rows: number[][];
    try {
      rows = await this.model.generate({
        ...generation,
        input_ids: [prompt],
        ...(guard ? { streamer: guard } : {}),
        ...(wantsStops ? { tokenizer: this.tokenizer } : {}),
      });
    } catch (e) {
      if (guard && !guard.ended) guard.end();
      throw e;
    }

    const decodeOptions: DecodeOptions = { skip_special_tokens: true };
    if (clean_up_tokenization_spaces !== undefined) decodeOptions.clean_up_tokenization_spaces = clean_up_tokenization_spaces;
    const promptText = this.tokenizer.decode(prompt, decodeOptions);
    return rows.map((row) => {
      // As transformers: the new text is the whole decode past the decoded prompt (so a leading space survives).
      const all = this.tokenizer.decode(row, decodeOptions);
      const text = all.startsWith(promptText) ? all.slice(promptText.length) : this.tokenizer.decode(row.slice(prompt.length), decodeOptions);
      if (!return_full_text) return { generated_text: text };
      if (typeof input === 'string') return { generated_text: input + text };
      return { generated_text: withReply(input, text, continue_final_message ?? input.at(-1)?.role === 'assistant') };
    });
  }
}

/** The messages (copied) with the reply as a new assistant message, or appended to the last message. */
function withReply(messages: ChatMessage[], reply: string, continueFinal: boolean): ChatMessage[] {
  const out = messages.map((m) => ({ ...m }));
  const last = out.at(-1);
  if (!continueFinal || !last) return [...out, { role: 'assistant', content: reply }];
  last.content = typeof last.content === 'string' ? last.content + reply : [...last.content, { type: 'text', text: reply }];
  return out;
}

/**
 * `pipeline(task, model, options)`: the tokenizer (`AutoTokenizer`) and the model (`AutoModelForCausalLM`) of `model`
 * (a Hub id, a folder URL or, in Node, a local folder), loaded with `options` (one `progress_callback` sees every file).
 */
export async function pipeline(task: PipelineTask, model: string, options: PipelineOptions = {}): Promise<TextGenerationPipeline> {
  if (!(SUPPORTED_TASKS as readonly string[]).includes(task)) {
    throw new ConfigError(`Unknown pipeline task ${JSON.stringify(task)}; supported tasks: ${SUPPORTED_TASKS.join(', ')}.`);
  }
  if (typeof model !== 'string' || model.length === 0) {
    throw new ConfigError(`pipeline("${task}") needs a model: a Hub id, a folder URL or a local folder, got ${describe(model)}.`);
  }
  const [tokenizer, lm] = await Promise.allSettled([AutoTokenizer.from_pretrained(model, options), AutoModelForCausalLM.from_pretrained(model, options)]);
  if (tokenizer.status === 'rejected' || lm.status === 'rejected') {
    if (lm.status === 'fulfilled') await lm.value.dispose();
    throw tokenizer.status === 'rejected' ? tokenizer.reason : (lm as PromiseRejectedResult).reason;
  }
  return new TextGenerationPipeline(lm.value, tokenizer.value);
}
