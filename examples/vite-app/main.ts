// The smallest useful page: load a model through `pipeline`, stream a completion into the page, stop it.
// The model runs in webslm's Web Worker, so the page stays responsive while it generates.
import { pipeline, TextStreamer, type ProgressInfo } from 'webslm';

// `?model=` picks another model: a Hub id (e.g. HuggingFaceTB/SmolLM2-135M-Instruct) or a URL of a model folder.
const model = new URLSearchParams(location.search).get('model') ?? 'HuggingFaceTB/SmolLM2-135M-Instruct';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const out = $('out');
const go = $<HTMLButtonElement>('go');
const stop = $<HTMLButtonElement>('stop');
const prompt = $<HTMLTextAreaElement>('prompt');

const loaded = new Map<string, number>();
const onProgress = (e: ProgressInfo) => {
  if (e.status === 'progress' && e.file) loaded.set(e.file, e.loaded ?? 0);
  const mb = [...loaded.values()].reduce((a, b) => a + b, 0) / 1e6;
  status.textContent = e.status === 'ready' ? `${model} ready` : `Loading ${model}: ${mb.toFixed(1)} MB`;
};

const generator = await pipeline('text-generation', model, { dtype: 'q4', progress_callback: onProgress }).catch((e: Error) => {
  status.textContent = `Could not load ${model}: ${e.message}`;
  throw e;
});
go.disabled = false;

let controller: AbortController | null = null;
go.onclick = async () => {
  controller = new AbortController();
  go.disabled = true;
  stop.disabled = false;
  out.textContent = '';
  const streamer = new TextStreamer(generator.tokenizer, { skip_prompt: true, callback_function: (text) => (out.textContent += text) });
  try {
    await generator(prompt.value, { max_new_tokens: 64, do_sample: true, top_p: 0.9, streamer, signal: controller.signal });
  } catch (e) {
    if ((e as Error).name !== 'AbortError') status.textContent = (e as Error).message;
  } finally {
    go.disabled = false;
    stop.disabled = true;
  }
};
stop.onclick = () => controller?.abort();
