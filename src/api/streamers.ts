/**
 * Streamers with the API of transformers.js / Python transformers: `generate({ streamer })` calls `put` once with
 * the prompt ids, then once per generated token with `[[id]]`, and `end()` when generation stops.
 *
 * `TextStreamer` turns ids into text the way transformers' `TextStreamer` does: it decodes the ids cached since
 * the last line break and emits text only up to a word boundary (a newline flushes everything, otherwise text up
 * to the last space; a trailing CJK character is emitted at once), so a word's text never changes after it was
 * emitted. A trailing U+FFFD (an incomplete UTF-8 sequence from byte tokens) is never emitted before `end()`.
 */
import { ConfigError } from '../errors.js';
import type { DecodeOptions } from '../tokenizer/tokenizer.js';

/** What a streamer needs of a tokenizer (a `PreTrainedTokenizer` fits). */
export interface StreamerTokenizer {
  decode(ids: number[], options?: DecodeOptions): string;
}

export abstract class BaseStreamer {
  /** `value`: a batch of one row: the prompt ids on the first call, then `[[newToken]]` per step. */
  abstract put(value: number[][]): void;
  /** Generation finished. */
  abstract end(): void;
}

export interface TextStreamerOptions {
  /** Do not emit the prompt (the first `put`). Default false. */
  skip_prompt?: boolean;
  /** Default true. */
  skip_special_tokens?: boolean;
  /** Receives each piece of text; default: `process.stdout.write` in Node, `console.log` elsewhere. */
  callback_function?: ((text: string) => void) | null;
  /** Receives the ids of each `put` that is not skipped. */
  token_callback_function?: ((tokens: number[]) => void) | null;
  /** Further options of `tokenizer.decode`. */
  decode_kwargs?: DecodeOptions;
}

interface NodeLikeProcess {
  stdout?: { write?: (text: string) => unknown };
}

function nodeStdout(): ((text: string) => void) | null {
  const proc = (globalThis as { process?: NodeLikeProcess }).process;
  const write = proc?.stdout?.write;
  if (typeof write !== 'function') return null;
  return (text: string) => {
    write.call(proc!.stdout, text);
  };
}

/** transformers' `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana). */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function lastCodePoint(text: string): number {
  if (text.length === 0) return -1;
  const last = text.charCodeAt(text.length - 1);
  if (last >= 0xdc00 && last <= 0xdfff && text.length >= 2) {
    const cp = text.codePointAt(text.length - 2)!;
    if (cp > 0xffff) return cp;
  }
  return last;
}

export class TextStreamer extends BaseStreamer {
  readonly tokenizer: StreamerTokenizer;
  readonly skip_prompt: boolean;
  readonly callback_function: (text: string) => void;
  readonly token_callback_function: ((tokens: number[]) => void) | null;
  readonly decode_kwargs: DecodeOptions;
  private readonly writesStdout: boolean;

  private tokenCache: number[] = [];
  private printLen = 0;
  private nextTokensArePrompt = true;

  constructor(tokenizer: StreamerTokenizer, options: TextStreamerOptions = {}) {
    super();
    this.tokenizer = tokenizer;
    this.skip_prompt = options.skip_prompt ?? false;
    this.decode_kwargs = { ...options.decode_kwargs, skip_special_tokens: options.skip_special_tokens ?? true };
    this.token_callback_function = options.token_callback_function ?? null;
    if (options.callback_function) {
      this.callback_function = options.callback_function;
      this.writesStdout = false;
    } else {
      const stdout = nodeStdout();
      this.writesStdout = stdout !== null;
      this.callback_function = stdout ?? ((text: string) => console.log(text));
    }
  }

  put(value: number[][]): void {
    if (!Array.isArray(value)) throw new ConfigError('TextStreamer.put expects a batch of token id lists (number[][])');
    if (value.length > 1) throw new ConfigError(`TextStreamer only supports batch size 1, got ${value.length} sequences`);
    const tokens = Array.from(value[0] ?? [], Number);
    const isPrompt = this.nextTokensArePrompt;
    if (isPrompt) {
      this.nextTokensArePrompt = false;
      if (this.skip_prompt) return;
    }
    this.token_callback_function?.(tokens);
    for (const t of tokens) this.tokenCache.push(t);

    const text = this.tokenizer.decode(this.tokenCache, this.decode_kwargs);
    if (text.endsWith('\n')) {
      // After a line break everything is final: flush and start a new cache.
      const out = text.slice(this.printLen);
      this.tokenCache = [];
      this.printLen = 0;
      this.on_finalized_text(out, false);
      return;
    }
    let end: number;
    if (isPrompt || isChineseChar(lastCodePoint(text))) end = text.length;
    else end = text.lastIndexOf(' ') + 1;
    // Half a UTF-8 character decodes as U+FFFD until its last byte arrives: hold it back.
    while (end > this.printLen && text.charCodeAt(end - 1) === 0xfffd) end--;
    if (end > this.printLen) {
      const out = text.slice(this.printLen, end);
      this.printLen = end;
      this.on_finalized_text(out, false);
    }
  }

  end(): void {
    let out = '';
    if (this.tokenCache.length > 0) {
      const text = this.tokenizer.decode(this.tokenCache, this.decode_kwargs);
      out = text.slice(this.printLen);
    }
    this.tokenCache = [];
    this.printLen = 0;
    this.nextTokensArePrompt = true;
    this.on_finalized_text(out, true);
  }

  /** Called with each piece of final text; `stream_end` on the last call of a generation. */
  on_finalized_text(text: string, stream_end: boolean): void {
    if (text.length > 0) this.callback_function(text);
    if (stream_end && this.writesStdout) this.callback_function('\n');
  }
}

const END: unique symbol = Symbol('end of stream');

/**
 * A `TextStreamer` that is also an async iterable of the text pieces:
 *
 *   const streamer = new TextIteratorStreamer(tokenizer, { skip_prompt: true });
 *   const done = model.generate({ ...inputs, streamer });
 *   for await (const text of streamer) show(text);
 *
 * Iteration ends after `end()`. Pieces are queued, so nothing is lost if the consumer is slower than generation.
 * A `callback_function`, if given, is called as well.
 */
export class TextIteratorStreamer extends TextStreamer implements AsyncIterable<string> {
  private readonly queue: Array<string | typeof END> = [];
  private waiter: (() => void) | null = null;
  private readonly userCallback: ((text: string) => void) | null;

  constructor(tokenizer: StreamerTokenizer, options: TextStreamerOptions = {}) {
    super(tokenizer, { ...options, callback_function: () => {} });
    this.userCallback = options.callback_function ?? null;
  }

  override on_finalized_text(text: string, stream_end: boolean): void {
    if (text.length > 0) {
      this.userCallback?.(text);
      this.queue.push(text);
    }
    if (stream_end) this.queue.push(END);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      while (this.queue.length === 0) {
        await new Promise<void>((resolve) => (this.waiter = resolve));
      }
      const item = this.queue.shift()!;
      if (item === END) return;
      yield item;
    }
  }
}
