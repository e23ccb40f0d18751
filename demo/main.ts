/**
 * The demo: pick a model (the embedded one, a Hub id, a folder URL or a folder on disk), watch it download, then
 * chat with it (models whose tokenizer has a chat template) or let it continue a text, with tokens streaming in.
 *
 * It uses only the public API, and of the model only generate(), stats(), config and dispose(), so it works the
 * same whether the model runs in this thread or in a Web Worker (env.useWorker).
 */
import {
  AutoModelForCausalLM,
  AutoTokenizer,
  CausalLM,
  GPUContext,
  TextStreamer,
  env,
  modelFromFiles,
  forgetModelFiles,
  type ChatMessage,
  type ModelDtype,
  type ModelStats,
  type PreTrainedTokenizer,
} from '../src/index.js';
import { CachePanel } from './cache-panel.js';
import { $, el, errorMessage, errorName, formatBytes } from './dom.js';
import { ProgressView } from './progress-view.js';

type DemoState = 'checking' | 'no-webgpu' | 'loading' | 'ready' | 'generating' | 'error' | 'device-lost';
type Mode = 'chat' | 'completion';

/** What the end-to-end tests read: `window.__demo`. */
interface DemoHooks {
  state: DemoState;
  /** The id the loaders were given (URL, Hub id or local-files://n/). */
  model: string | null;
  mode: Mode | null;
  hasChatTemplate: boolean;
  dtype: ModelDtype;
  /** 'worker' when the model runs in a Web Worker, 'in-thread' when on the page's thread. */
  engine: 'worker' | 'in-thread' | null;
  /** Tokens generated so far by the current (or last) run, and their text. */
  tokens: number;
  text: string;
  /** 'done', 'stopped' or 'error' for the last run. */
  lastRun: 'done' | 'stopped' | 'error' | null;
  runs: number;
  /** performance.now() of the run's start, first token and end: the decode phase lies between the last two. */
  startedAt: number;
  firstTokenAt: number;
  endedAt: number;
  lastStats: ModelStats | null;
  error: string | null;
  /** Destroys the GPU device of a model that runs on this thread, as a driver reset would (for tests). */
  loseDevice: () => boolean;
}

declare global {
  interface Window {
    __demo: DemoHooks;
  }
}

const hooks: DemoHooks = {
  state: 'checking',
  model: null,
  mode: null,
  hasChatTemplate: false,
  dtype: 'auto',
  engine: null,
  tokens: 0,
  text: '',
  lastRun: null,
  runs: 0,
  startedAt: 0,
  firstTokenAt: 0,
  endedAt: 0,
  lastStats: null,
  error: null,
  loseDevice: () => {
    if (!(model instanceof CausalLM)) return false;
    model.ctx.device.destroy();
    return true;
  },
};
window.__demo = hooks;

/** The embedded default model, models/kjv-llama-tiny, served next to the page (Vite's public folder). */
const DEFAULT_MODEL = 'kjv-llama-tiny';
const DTYPES: ModelDtype[] = ['auto', 'f16', 'q8', 'q4'];

/**
 * A model name as typed: a full URL stays as it is; `owner/name` is a Hub id; a bare name is a folder next to the
 * page, as a URL (so the embedded model goes through the same hub code, and the same cache, as any model).
 */
function resolveModel(name: string): string {
  if (/^[a-z][a-z\d+.-]*:\/\//i.test(name)) return name.replace(/\/+$/, '');
  if (name.includes('/')) return name;
  return new URL(`${name}/`, location.href).href.replace(/\/$/, '');
}

/** The short name of a model id: the folder name for folders next to the page, else the id itself. */
function shortName(id: string): string {
  const here = new URL('./', location.href).href;
  return id.startsWith(here) ? id.slice(here.length) : id;
}

// ── the page's parts ────────────────────────────────────────────────────────────────────────────────────────

const status = $('status');
const modelInput = $<HTMLInputElement>('model-input');
const folderInput = $<HTMLInputElement>('model-folder');
const modelState = $('model-state');
const generateButton = $<HTMLButtonElement>('generate');
const stopButton = $<HTMLButtonElement>('stop');
const promptInput = $<HTMLTextAreaElement>('prompt');
const output = $('output');
const chatInput = $<HTMLTextAreaElement>('chat-input');
const messagesList = $<HTMLOListElement>('messages');
const dtypeSelect = $<HTMLSelectElement>('dtype');
const progress = new ProgressView();
const cachePanel = new CachePanel(shortName);

function setState(state: DemoState, message = ''): void {
  hooks.state = state;
  document.body.dataset.state = state;
  modelState.dataset.state = state;
  const text: Partial<Record<DemoState, string>> = { loading: 'Loading…', ready: 'Ready', generating: 'Generating…' };
  modelState.textContent = message || text[state] || '';
  const busy = state === 'loading' || state === 'generating';
  generateButton.disabled = state !== 'ready';
  stopButton.disabled = state !== 'generating';
  $<HTMLButtonElement>('model-load').disabled = state === 'generating';
  folderInput.disabled = state === 'generating';
  dtypeSelect.disabled = busy;
}

function showScreen(id: 'no-webgpu' | 'device-lost' | 'app'): void {
  for (const screen of ['no-webgpu', 'device-lost', 'app']) $(screen).hidden = screen !== id;
}

// ── WebGPU check ────────────────────────────────────────────────────────────────────────────────────────────

/** Asks for an adapter and a device once, to tell early (and kindly) when this browser cannot run a model. */
async function checkWebGPU(): Promise<boolean> {
  if (!('gpu' in navigator) || !navigator.gpu) {
    return noWebGPU('This browser does not offer WebGPU (navigator.gpu is missing).');
  }
  try {
    const ctx = await GPUContext.create();
    const name = ctx.adapter.name + (ctx.adapter.isFallbackAdapter ? ' (software)' : '');
    status.dataset.state = 'ready';
    status.textContent = `WebGPU · ${name}`;
    status.title = `Features: ${[...ctx.features].join(', ') || 'none of shader-f16, subgroups, timestamp-query'}; ` +
      `max storage binding ${formatBytes(ctx.limits.maxStorageBufferBindingSize)}, max buffer ${formatBytes(ctx.limits.maxBufferSize)}`;
    ctx.dispose();
    return true;
  } catch (e) {
    return noWebGPU(errorMessage(e));
  }
}

function noWebGPU(reason: string): false {
  status.dataset.state = 'unavailable';
  status.textContent = 'No WebGPU';
  $('no-webgpu-reason').textContent = reason;
  showScreen('no-webgpu');
  setState('no-webgpu', reason);
  return false;
}

// ── loading ─────────────────────────────────────────────────────────────────────────────────────────────────

/** A `CausalLM`, or its Worker proxy with the same API (`env.useWorker`). */
type LoadedModel = Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>;

let model: LoadedModel | null = null;
let tokenizer: PreTrainedTokenizer | null = null;
let loadController: AbortController | null = null;
/** The last model asked for, to load again after a dtype change or a lost device. */
let current: { id: string; name: string; local: boolean } | null = null;

async function loadModel(id: string, name: string, local = false): Promise<void> {
  loadController?.abort();
  const controller = new AbortController();
  loadController = controller;
  if (current?.local && current.id !== id) forgetModelFiles(current.id);
  current = { id, name, local };
  hooks.model = id;
  hooks.error = null;
  const previous = model;
  model = null;
  tokenizer = null;
  $('model-name').textContent = name;
  $('model-name').title = id;
  $('model-mode').textContent = '';
  $('model-details').textContent = '';
  setState('loading');
  progress.reset(local);
  if (previous) await previous.dispose();
  const options = { progress_callback: progress.handle, signal: controller.signal };
  try {
    const tok = await AutoTokenizer.from_pretrained(id, options);
    const lm = await AutoModelForCausalLM.from_pretrained(id, { ...options, dtype: hooks.dtype });
    if (controller.signal.aborted) {
      lm.dispose();
      return;
    }
    model = lm;
    tokenizer = tok;
    progress.finish();
    hooks.engine = lm instanceof CausalLM ? 'in-thread' : 'worker';
    hooks.hasChatTemplate = tok.chat_template !== null;
    setMode(hooks.hasChatTemplate ? 'chat' : 'completion');
    describeModel(lm);
    setState('ready');
    if (!local) rememberInUrl(id);
  } catch (e) {
    if (controller.signal.aborted) return;
    failed(e, `Could not load ${name}`);
  } finally {
    if (loadController === controller) loadController = null;
    void cachePanel.refresh();
  }
}

function describeModel(lm: LoadedModel): void {
  const c = lm.config;
  const s = lm.stats();
  hooks.lastStats = s;
  const params = c.numLayers * (4 * c.hiddenSize * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize) + c.vocabSize * c.hiddenSize;
  $('model-details').textContent =
    `${c.modelType} · ~${(params / 1e6).toFixed(params < 1e7 ? 1 : 0)}M parameters · ${c.numLayers} layers · ` +
    `vocabulary ${c.vocabSize.toLocaleString()} · ${hooks.dtype === 'auto' ? 'weights as stored' : hooks.dtype} · ` +
    `${formatBytes(s.weightBytes)} of weights`;
  $('stat-memory').textContent = formatBytes(s.gpuMemoryBytes);
  $('engine-note').textContent =
    hooks.engine === 'worker' ? 'The model runs in a Web Worker; this page stays responsive while it generates.' : 'The model runs on this page’s thread.';
}

/** Keeps the model (and dtype) in the address, so a reload or a shared link opens the same one. */
function rememberInUrl(id: string): void {
  const url = new URL(location.href);
  const name = shortName(id);
  if (name === DEFAULT_MODEL) url.searchParams.delete('model');
  else url.searchParams.set('model', name);
  if (hooks.dtype === 'auto') url.searchParams.delete('dtype');
  else url.searchParams.set('dtype', hooks.dtype);
  history.replaceState(null, '', url);
}

function failed(e: unknown, what: string): void {
  hooks.error = errorMessage(e);
  if (errorName(e) === 'DeviceLostError') {
    const lost = model;
    model = null;
    if (lost) void Promise.resolve().then(() => lost.dispose()).catch(() => {});
    $('device-lost-reason').textContent = errorMessage(e);
    showScreen('device-lost');
    setState('device-lost', errorMessage(e));
    return;
  }
  if (errorName(e) === 'GPUUnavailableError') {
    noWebGPU(errorMessage(e));
    return;
  }
  setState(model ? 'ready' : 'error', `${what}: ${errorMessage(e)}`);
  modelState.dataset.state = 'error';
}

// ── modes ───────────────────────────────────────────────────────────────────────────────────────────────────

let messages: ChatMessage[] = [];

function setMode(mode: Mode): void {
  hooks.mode = mode;
  $('completion-view').hidden = mode !== 'completion';
  $('chat-view').hidden = mode !== 'chat';
  $('model-mode').textContent = mode === 'chat' ? 'chat' : 'completion';
  generateButton.textContent = mode === 'chat' ? 'Send' : 'Generate';
  for (const b of $('mode-switch').querySelectorAll<HTMLButtonElement>('button')) {
    b.setAttribute('aria-selected', String(b.dataset.mode === mode));
    b.disabled = b.dataset.mode === 'chat' && !hooks.hasChatTemplate;
    b.title = b.disabled ? 'This model’s tokenizer has no chat template.' : '';
  }
}

function addMessage(role: ChatMessage['role'], content: string): HTMLSpanElement {
  const body = el('span', { className: 'content', text: content });
  messagesList.append(el('li', { className: `message ${role}`, data: { role, testid: `message-${role}` } }, el('span', { className: 'role', text: role }), body));
  messagesList.scrollTop = messagesList.scrollHeight;
  return body;
}

function clearConversation(): void {
  messages = [];
  messagesList.replaceChildren();
  output.querySelector('.prompt-echo')!.textContent = '';
  output.querySelector('.continuation')!.textContent = '';
  output.dataset.state = 'idle';
}

// ── generation ──────────────────────────────────────────────────────────────────────────────────────────────

let generation: AbortController | null = null;

function numberSetting(id: string, fallback: number): number {
  const value = Number($<HTMLInputElement>(id).value);
  return Number.isFinite(value) && $<HTMLInputElement>(id).value !== '' ? value : fallback;
}

function generationSettings() {
  return {
    max_new_tokens: Math.max(1, Math.round(numberSetting('max-new-tokens', 64))),
    do_sample: $<HTMLInputElement>('do-sample').checked,
    temperature: numberSetting('temperature', 0.8),
    top_p: numberSetting('top-p', 1),
    top_k: Math.round(numberSetting('top-k', 0)),
    repetition_penalty: numberSetting('repetition-penalty', 1),
    seed: Math.round(numberSetting('seed', 0)),
  };
}

function showLiveStats(promptTokens: number): void {
  const now = performance.now();
  $('stat-tokens').textContent = String(hooks.tokens);
  if (hooks.firstTokenAt > 0) {
    $('stat-prefill').textContent = (promptTokens / ((hooks.firstTokenAt - hooks.startedAt) / 1000)).toFixed(1);
  }
  if (hooks.tokens > 1) $('stat-decode').textContent = ((hooks.tokens - 1) / ((now - hooks.firstTokenAt) / 1000)).toFixed(1);
}

function showFinalStats(lm: LoadedModel): void {
  const s = lm.stats();
  hooks.lastStats = s;
  if (s.prefill.tokensPerSecond > 0) $('stat-prefill').textContent = s.prefill.tokensPerSecond.toFixed(1);
  if (s.decode.tokensPerSecond > 0) $('stat-decode').textContent = s.decode.tokensPerSecond.toFixed(1);
  $('stat-memory').textContent = formatBytes(s.gpuMemoryBytes);
}

async function generate(): Promise<void> {
  const lm = model;
  const tok = tokenizer;
  if (!lm || !tok || hooks.state !== 'ready') return;
  let inputIds: number[];
  let sink: HTMLElement;
  const chat = hooks.mode === 'chat';
  if (chat) {
    const text = chatInput.value.trim();
    if (!text) return;
    chatInput.value = '';
    messages.push({ role: 'user', content: text });
    addMessage('user', text);
    try {
      inputIds = tok.apply_chat_template(messages, { add_generation_prompt: true });
    } catch (e) {
      messages.pop();
      messagesList.lastElementChild?.remove();
      chatInput.value = text;
      failed(e, 'The chat template failed');
      return;
    }
    sink = addMessage('assistant', '');
    sink.parentElement!.dataset.state = 'generating';
  } else {
    const prompt = promptInput.value;
    inputIds = tok(prompt).input_ids;
    output.querySelector('.prompt-echo')!.textContent = prompt;
    sink = output.querySelector<HTMLElement>('.continuation')!;
    sink.textContent = '';
    output.dataset.state = 'generating';
  }

  const settings = generationSettings();
  // The KV cache holds maxContext positions: the prompt and the new tokens must fit.
  const room = lm.maxContext - inputIds.length;
  if (room < 1) {
    if (chat) {
      // Take the turn back (its bubbles too) and leave the text in the box.
      const taken = messages.pop()?.content;
      chatInput.value = typeof taken === 'string' ? taken : '';
      messagesList.lastElementChild?.remove();
      messagesList.lastElementChild?.remove();
    }
    setState('ready', `The ${chat ? 'conversation' : 'prompt'} fills the model's context of ${lm.maxContext} tokens; ${chat ? 'Clear it' : 'shorten it'} to go on.`);
    modelState.dataset.state = 'error';
    return;
  }
  settings.max_new_tokens = Math.min(settings.max_new_tokens, room);

  const controller = new AbortController();
  generation = controller;
  hooks.error = null;
  Object.assign(hooks, { tokens: 0, text: '', lastRun: null, startedAt: performance.now(), firstTokenAt: 0, endedAt: 0 });
  hooks.runs++;
  $('stat-tokens').textContent = '0';
  $('stat-prefill').textContent = '…';
  $('stat-decode').textContent = '…';
  setState('generating');
  const streamer = new TextStreamer(tok, {
    skip_prompt: true,
    callback_function: (text) => {
      hooks.text += text;
      sink.textContent += text;
      if (chat) messagesList.scrollTop = messagesList.scrollHeight;
    },
    token_callback_function: (ids) => {
      if (hooks.tokens === 0) hooks.firstTokenAt = performance.now();
      hooks.tokens += ids.length;
      showLiveStats(inputIds.length);
    },
  });
  let outcome: 'done' | 'stopped' | 'error' = 'done';
  try {
    await lm.generate({ input_ids: [inputIds], ...settings, streamer, signal: controller.signal });
  } catch (e) {
    if (errorName(e) === 'AbortError') outcome = 'stopped';
    else {
      outcome = 'error';
      failed(e, 'Generation failed');
    }
  }
  hooks.endedAt = performance.now();
  generation = null;
  if (chat) {
    if (outcome === 'error') messages.pop(); // the user's turn, unanswered: it is not sent again
    else messages.push({ role: 'assistant', content: hooks.text });
    sink.parentElement!.dataset.state = outcome;
  } else {
    output.dataset.state = outcome;
  }
  if (model === lm) {
    showFinalStats(lm);
    if ((hooks.state as DemoState) === 'generating') setState('ready');
  }
  hooks.lastRun = outcome;
}

// ── wiring ──────────────────────────────────────────────────────────────────────────────────────────────────

generateButton.addEventListener('click', () => void generate());
stopButton.addEventListener('click', () => generation?.abort());
$('clear').addEventListener('click', clearConversation);
chatInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    void generate();
  }
});
promptInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void generate();
});
for (const b of $('mode-switch').querySelectorAll<HTMLButtonElement>('button')) {
  b.addEventListener('click', () => setMode(b.dataset.mode as Mode));
}
$('model-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = modelInput.value.trim() || DEFAULT_MODEL;
  void loadModel(resolveModel(name), name);
});
folderInput.addEventListener('change', () => {
  const files = folderInput.files;
  if (!files || files.length === 0) return;
  const folder = (files[0] as File & { webkitRelativePath?: string }).webkitRelativePath?.split('/')[0] || 'local folder';
  modelInput.value = '';
  void loadModel(modelFromFiles(files, folder), `${folder} (from disk)`, true);
  folderInput.value = '';
});
dtypeSelect.addEventListener('change', () => {
  hooks.dtype = dtypeSelect.value as ModelDtype;
  if (current) void loadModel(current.id, current.name, current.local);
});
$('device-lost-reload').addEventListener('click', () => {
  showScreen('app');
  if (current) void loadModel(current.id, current.name, current.local);
});
for (const b of document.querySelectorAll<HTMLButtonElement>('[data-action="reload-page"]')) b.addEventListener('click', () => location.reload());

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const dtype = params.get('dtype') as ModelDtype | null;
  if (dtype && DTYPES.includes(dtype)) hooks.dtype = dtype;
  dtypeSelect.value = hooks.dtype;
  // `?worker=0` runs the model on the page's thread, to compare.
  if (params.get('worker') === '0') env.useWorker = false;
  if (!(await checkWebGPU())) return;
  showScreen('app');
  void cachePanel.refresh();
  const name = params.get('model') ?? DEFAULT_MODEL;
  modelInput.value = name;
  await loadModel(resolveModel(name), name);
}

void main();
