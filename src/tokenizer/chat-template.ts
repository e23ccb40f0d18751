/**
 * Chat templates: the Jinja template in tokenizer_config.json, rendered with `@huggingface/jinja` the way
 * transformers' `apply_chat_template` renders it (same variables, same template choice, same
 * `continue_final_message` cut).
 */
import { Template } from '@huggingface/jinja';
import { TokenizerError } from '../errors.js';

export interface ChatMessage {
  role: string;
  content: string | Array<{ type: string; text?: string; [key: string]: unknown }>;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** End with the prompt that opens the assistant's turn. */
  add_generation_prompt?: boolean;
  /** Leave the last message open so generation continues it (instead of a new turn). */
  continue_final_message?: boolean;
  /** Tool (function) definitions, as JSON schemas, for templates that support tool use. */
  tools?: object[] | null;
  /** Documents for retrieval-augmented templates. */
  documents?: object[] | null;
  /** A template to use instead of the tokenizer's: a Jinja string, or the name of one of its named templates. */
  chat_template?: string | null;
  /** Extra variables for the template. */
  kwargs?: Record<string, unknown>;
}

const compiled = new Map<string, Template>();
const MAX_COMPILED = 16;

function compile(source: string): Template {
  let template = compiled.get(source);
  if (!template) {
    try {
      template = new Template(source);
    } catch (e) {
      throw new TokenizerError(`The chat template does not parse: ${e instanceof Error ? e.message : e}`);
    }
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(source, template);
  }
  return template;
}

/** Picks the template as transformers' `get_chat_template` does. */
export function selectChatTemplate(
  own: string | Record<string, string> | null,
  requested: string | null | undefined,
  hasTools: boolean,
): string {
  if (own !== null && typeof own === 'object') {
    if (requested && requested in own) return own[requested];
    if (requested) return requested;
    if (hasTools && 'tool_use' in own) return own.tool_use;
    if ('default' in own) return own.default;
    throw new TokenizerError(
      `This tokenizer has several chat templates (${Object.keys(own).join(', ')}) and none is named "default": pass { chat_template: name }.`,
    );
  }
  if (requested) return requested;
  if (typeof own === 'string') return own;
  throw new TokenizerError(
    'This tokenizer has no chat template (tokenizer_config.json has no chat_template): pass one as { chat_template: "..." }.',
  );
}

export function renderChatTemplate(
  own: string | Record<string, string> | null,
  messages: ChatMessage[],
  options: ChatTemplateOptions,
  specialTokens: Record<string, string | string[]>,
): string {
  if (!Array.isArray(messages)) throw new TokenizerError('apply_chat_template: messages must be an array of { role, content }.');
  if (options.add_generation_prompt && options.continue_final_message) {
    throw new TokenizerError('apply_chat_template: add_generation_prompt and continue_final_message cannot both be set.');
  }
  const source = selectChatTemplate(own, options.chat_template, Boolean(options.tools));
  const template = compile(source);
  let rendered: string;
  try {
    rendered = template.render({
      ...specialTokens,
      ...options.kwargs,
      messages,
      add_generation_prompt: options.add_generation_prompt ?? false,
      tools: options.tools ?? null,
      documents: options.documents ?? null,
    });
  } catch (e) {
    throw new TokenizerError(`The chat template failed: ${e instanceof Error ? e.message : e}`);
  }
  if (options.continue_final_message) rendered = cutAfterFinalMessage(rendered, messages);
  return rendered;
}

/** Ends the text right after the last message's content, as transformers does for continue_final_message. */
function cutAfterFinalMessage(rendered: string, messages: ChatMessage[]): string {
  const last = messages.at(-1);
  if (!last) throw new TokenizerError('apply_chat_template: continue_final_message needs at least one message.');
  let content = last.content;
  if (Array.isArray(content)) content = String(content.at(-1)?.text ?? '');
  let at = rendered.lastIndexOf(content);
  if (at >= 0) return rendered.slice(0, at + content.length);
  // Some templates strip whitespace around content.
  const trimmed = content.trim();
  at = rendered.lastIndexOf(trimmed);
  if (at < 0) throw new TokenizerError('apply_chat_template: the final message does not appear in the rendered chat.');
  return rendered.slice(0, at + trimmed.length);
}
