import {
  AbortError,
  AutoModelForCausalLM,
  AutoTokenizer,
  GPUContext,
  GPUUnavailableError,
  TextStreamer,
  type CausalLM,
  type PreTrainedTokenizer,
} from '../src/index.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/**
 * The embedded default model, models/kjv-llama-tiny, served next to the page (Vite's public folder). `?model=` picks
 * another: a folder name next to the page, a folder URL, or a Hub id.
 */
const MODEL = new URLSearchParams(location.search).get('model') ?? 'kjv-llama-tiny';

function modelId(name: string): string {
  if (/^https?:\/\//.test(name)) return name;
  if (name.includes('/')) return name; // a Hub id
  return new URL(`${name}/`, location.href).href.replace(/\/$/, '');
}

async function showGPU(): Promise<GPUContext | null> {
  const status = $('status');
  try {
    const ctx = await GPUContext.create();
    status.textContent = `WebGPU ready on ${ctx.adapter.name}`;
    status.dataset.state = 'ready';
    $('adapter').textContent = ctx.adapter.name + (ctx.adapter.isFallbackAdapter ? ' (software fallback)' : '');
    $('features').textContent = [...ctx.features].join(', ') || 'none of shader-f16, subgroups, timestamp-query';
    $('max-binding').textContent = `${(ctx.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`;
    $('max-buffer').textContent = `${(ctx.limits.maxBufferSize / 2 ** 20).toFixed(0)} MiB`;
    $('details').hidden = false;
    return ctx;
  } catch (e) {
    status.dataset.state = e instanceof GPUUnavailableError ? 'unavailable' : 'error';
    status.textContent = e instanceof Error ? e.message : String(e);
    return null;
  }
}

async function loadModel(ctx: GPUContext): Promise<{ model: CausalLM; tokenizer: PreTrainedTokenizer }> {
  const id = modelId(MODEL);
  $('model-name').textContent = MODEL;
  $('model').hidden = false;
  const progress = $<HTMLProgressElement>('model-progress');
  const progress_callback = (e: { status: string; progress?: number }) => {
    if (e.status === 'progress_total' && e.progress !== undefined) progress.value = e.progress;
  };
  const tokenizer = await AutoTokenizer.from_pretrained(id);
  const model = await AutoModelForCausalLM.from_pretrained(id, { context: ctx, progress_callback });
  progress.value = 100;
  return { model, tokenizer };
}

function wireCompletion(model: CausalLM, tokenizer: PreTrainedTokenizer): void {
  const state = $('model-state');
  const generate = $<HTMLButtonElement>('generate');
  const stop = $<HTMLButtonElement>('stop');
  const output = $('output');
  let controller: AbortController | null = null;
  state.textContent = 'ready';
  state.dataset.state = 'ready';
  generate.disabled = false;

  $('complete').addEventListener('submit', async (event) => {
    event.preventDefault();
    const prompt = $<HTMLTextAreaElement>('prompt').value;
    const temperature = Number($<HTMLInputElement>('temperature').value);
    output.textContent = prompt;
    output.dataset.state = 'generating';
    controller = new AbortController();
    generate.disabled = true;
    stop.disabled = false;
    const streamer = new TextStreamer(tokenizer, { skip_prompt: true, callback_function: (text) => (output.textContent += text) });
    try {
      const { input_ids } = tokenizer(prompt);
      await model.generate({
        input_ids: [input_ids],
        max_new_tokens: Number($<HTMLInputElement>('max-new-tokens').value),
        do_sample: temperature > 0,
        temperature: temperature > 0 ? temperature : undefined,
        seed: Number($<HTMLInputElement>('seed').value),
        streamer,
        signal: controller.signal,
      });
      output.dataset.state = 'done';
    } catch (e) {
      output.dataset.state = e instanceof AbortError ? 'stopped' : 'error';
      if (!(e instanceof AbortError)) output.textContent += `\n[${e instanceof Error ? e.message : String(e)}]`;
    } finally {
      generate.disabled = false;
      stop.disabled = true;
      const s = model.stats();
      $('stats').textContent =
        `prefill ${s.prefill.tokensPerSecond.toFixed(1)} tok/s · decode ${s.decode.tokensPerSecond.toFixed(1)} tok/s · ` +
        `GPU memory ${(s.gpuMemoryBytes / 1e6).toFixed(1)} MB`;
    }
  });
  stop.addEventListener('click', () => controller?.abort());
}

async function main(): Promise<void> {
  const ctx = await showGPU();
  if (!ctx) return;
  try {
    const { model, tokenizer } = await loadModel(ctx);
    wireCompletion(model, tokenizer);
  } catch (e) {
    const state = $('model-state');
    state.dataset.state = 'error';
    state.textContent = e instanceof Error ? e.message : String(e);
  }
}

void main();
