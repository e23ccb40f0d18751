// The Worker engine in Chromium: from_pretrained in a page with env.useWorker returns a RemoteCausalLM whose
// generate/forward give what the same model gives in this thread, with streamers, token callbacks, stop strings,
// abort, queued calls, typed errors, several models, dispose and a lost device.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { AutoModelForCausalLM } from '../../src/api/auto-model.js';
import { AutoTokenizer } from '../../src/api/auto-tokenizer.js';
import { env } from '../../src/api/env.js';
import { BaseStreamer } from '../../src/api/streamers.js';
import { AbortError, ConfigError, DeviceLostError, DownloadError } from '../../src/errors.js';
import { forgetModelFiles, modelFromFiles } from '../../src/hub/local-files.js';
import { CausalLM, type GenerateOptions } from '../../src/runtime/causal-lm.js';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { engineWorker, RemoteCausalLM } from '../../src/runtime/worker/remote-model.js';
import type { PreTrainedTokenizer } from '../../src/tokenizer/tokenizer.js';

const server = inject('faultServer');
const MODEL = `${server}/kjv-llama-tiny`;
const useWorker = env.useWorker;

let local: CausalLM;
let remote: RemoteCausalLM;
let tokenizer: PreTrainedTokenizer;
let prompt: number[];

async function loadRemote(id = MODEL, options = {}): Promise<RemoteCausalLM> {
  env.useWorker = true;
  try {
    const model = await AutoModelForCausalLM.from_pretrained(id, { cache: null, ...options });
    expect(model).toBeInstanceOf(RemoteCausalLM);
    return model as RemoteCausalLM;
  } finally {
    env.useWorker = useWorker;
  }
}

class Recorder extends BaseStreamer {
  readonly puts: number[][][] = [];
  ends = 0;
  put(value: number[][]): void {
    this.puts.push(value.map((r) => [...r]));
  }
  end(): void {
    this.ends++;
  }
}

beforeAll(async () => {
  env.useWorker = false;
  local = (await AutoModelForCausalLM.from_pretrained(MODEL, { cache: null })) as CausalLM;
  env.useWorker = useWorker;
  expect(local).toBeInstanceOf(CausalLM);
  tokenizer = await AutoTokenizer.from_pretrained(MODEL, { cache: null });
  prompt = tokenizer('And God said').input_ids as number[];
  remote = await loadRemote();
});
afterEach(() => {
  env.useWorker = useWorker;
});
afterAll(async () => {
  local?.dispose();
  await remote?.dispose();
});

describe('Worker engine', () => {
  it('is the default in a browser page and keeps the API of CausalLM', () => {
    expect(useWorker).toBe(true);
    expect(remote.config).toEqual(local.config);
    expect(remote.generation_config).toEqual(local.generation_config);
    expect(remote.maxContext).toBe(local.maxContext);
    expect(remote.stats().weightBytes).toBe(local.stats().weightBytes);
    expect(engineWorker()).not.toBeNull();
  });

  it('runs in this thread when given a GPU context', async () => {
    const ctx = await GPUContext.create();
    try {
      const model = await AutoModelForCausalLM.from_pretrained(MODEL, { cache: null, context: ctx });
      expect(model).toBeInstanceOf(CausalLM);
      model.dispose();
    } finally {
      ctx.dispose();
    }
  });

  it('generates the same tokens as in this thread (greedy and seeded sampling)', async () => {
    const greedy = { input_ids: [prompt], max_new_tokens: 10, eos_token_id: [], do_sample: false };
    expect(await remote.generate(greedy)).toEqual(await local.generate(greedy));
    const sampled = { ...greedy, do_sample: true, temperature: 1.5, top_k: 0, seed: 1234 };
    const ours = await remote.generate(sampled);
    expect(ours).toEqual(await local.generate(sampled));
    expect(ours).not.toEqual(await remote.generate(greedy));
    const stats = remote.stats();
    expect(stats.decode.steps).toBe(9);
    expect(stats.prefill.tokens).toBe(prompt.length);
  });

  it('loads a folder picked on the page (modelFromFiles) in the worker', async () => {
    const names = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
    const files = await Promise.all(
      names.map(async (name) => {
        const file = new File([await (await fetch(`${MODEL}/${name}`)).arrayBuffer()], name);
        Object.defineProperty(file, 'webkitRelativePath', { value: `kjv-llama-tiny/${name}` });
        return file;
      }),
    );
    const id = modelFromFiles(files, 'kjv-llama-tiny');
    try {
      const picked = await loadRemote(id);
      try {
        const greedy = { input_ids: [prompt], max_new_tokens: 6, eos_token_id: [], do_sample: false };
        expect(await picked.generate(greedy)).toEqual(await local.generate(greedy));
      } finally {
        await picked.dispose();
      }
    } finally {
      forgetModelFiles(id);
    }
  });

  it('gives the same logits through model({ input_ids })', async () => {
    const { logits } = await remote({ input_ids: [prompt] });
    const want = (await local({ input_ids: [prompt] })).logits;
    expect(logits.dims).toEqual(want.dims);
    let err = 0;
    for (let i = 0; i < want.data.length; i++) err = Math.max(err, Math.abs(logits.data[i]! - want.data[i]!));
    expect(err).toBe(0);
  });

  it('streams each step’s new ids to the streamer and token_callback', async () => {
    const run = async (model: CausalLM | RemoteCausalLM) => {
      const streamer = new Recorder();
      const steps: number[][] = [];
      const rows = await model.generate({
        input_ids: [prompt],
        max_new_tokens: 6,
        eos_token_id: [], do_sample: false,
        streamer,
        token_callback: (ids) => steps.push([...ids]),
      });
      return { rows, puts: streamer.puts, ends: streamer.ends, steps };
    };
    const ours = await run(remote);
    expect(ours).toEqual(await run(local));
    expect(ours.puts[0]).toEqual([prompt]);
    expect(ours.puts.slice(1)).toEqual(ours.steps.map((ids) => [ids]));
    expect(ours.steps).toHaveLength(6);
    expect(ours.ends).toBe(1);
  });

  it('stops at a stop string exactly where this thread does', async () => {
    const [full] = await local.generate({ input_ids: [prompt], max_new_tokens: 16, eos_token_id: [], do_sample: false });
    const text = tokenizer.decode(full!.slice(prompt.length), { skip_special_tokens: true });
    const stop = text.trim().split(/\s+/)[2]!; // the third word of the continuation
    const run = async (model: CausalLM | RemoteCausalLM) => {
      const streamer = new Recorder();
      const steps: number[][] = [];
      const opts: GenerateOptions = { input_ids: [prompt], max_new_tokens: 16, eos_token_id: [], do_sample: false, stop_strings: stop, tokenizer, streamer };
      const rows = await model.generate({ ...opts, token_callback: (ids) => steps.push([...ids]) });
      return { rows, puts: streamer.puts, ends: streamer.ends, steps };
    };
    const ours = await run(remote);
    expect(ours).toEqual(await run(local));
    expect(ours.rows[0]!.length).toBeLessThan(prompt.length + 16);
    await expect(remote.generate({ input_ids: [prompt], max_new_tokens: 4, stop_strings: stop })).rejects.toThrow(ConfigError);
    // Two sequences: the one that stops is padded while the other goes on, as in this thread.
    const batch = { input_ids: [prompt, prompt], max_new_tokens: 12, do_sample: true, seed: 5, top_k: 0, stop_strings: [stop, 'the'], tokenizer, eos_token_id: [] as number[] };
    expect(await remote.generate(batch)).toEqual(await local.generate(batch));
  });

  it('aborts mid-generation with AbortError and stays usable', async () => {
    const controller = new AbortController();
    let seen = 0;
    const aborted = remote.generate({
      input_ids: [prompt],
      max_new_tokens: 200,
      eos_token_id: [], do_sample: false,
      signal: controller.signal,
      token_callback: () => {
        if (++seen === 3) controller.abort();
      },
    });
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toBeLessThan(20);
    const greedy = { input_ids: [prompt], max_new_tokens: 5, eos_token_id: [], do_sample: false };
    expect(await remote.generate(greedy)).toEqual(await local.generate(greedy));
    const before = new AbortController();
    before.abort();
    await expect(remote.generate({ ...greedy, signal: before.signal })).rejects.toBeInstanceOf(AbortError);
  });

  it('queues concurrent calls on one model', async () => {
    const a = { input_ids: [prompt], max_new_tokens: 6, eos_token_id: [], do_sample: false };
    const b = { ...a, do_sample: true, seed: 9, temperature: 2, top_k: 0 };
    const [ra, rb] = await Promise.all([remote.generate(a), remote.generate(b)]);
    expect(ra).toEqual(await local.generate(a));
    expect(rb).toEqual(await local.generate(b));
  });

  it('reports errors as the typed error classes', async () => {
    const bad = loadRemote(MODEL, { dtype: 'q3' });
    await expect(bad).rejects.toBeInstanceOf(ConfigError);
    await expect(bad).rejects.toThrow(/dtype must be one of/);
    const missing = loadRemote(`${server}/no-such-model`);
    await expect(missing).rejects.toBeInstanceOf(DownloadError);
    await expect(missing).rejects.toMatchObject({ name: 'DownloadError', status: 404 });
    await expect(remote.generate({ input_ids: [[999999]] })).rejects.toBeInstanceOf(ConfigError);
    await expect(loadRemote(MODEL, { cache: { not: 'serializable' } })).rejects.toThrow(/env\.useWorker = false/);
  });

  it('aborts a load through its signal, as in this thread', async () => {
    const controller = new AbortController();
    controller.abort();
    const inThread = AutoModelForCausalLM.from_pretrained(MODEL, { cache: null, signal: controller.signal, gpu: navigator.gpu });
    const error = await inThread.then(() => null, (e: Error) => e);
    expect(error).not.toBeNull();
    const remoteError = await loadRemote(MODEL, { signal: controller.signal }).then(() => null, (e: Error) => e);
    expect(remoteError?.constructor).toBe(error!.constructor);
    expect(remoteError?.name).toBe(error!.name);
    expect(remoteError?.message).toBe(error!.message);
  });

  it('passes progress events to the page, ready last', async () => {
    const events: string[] = [];
    const model = await loadRemote(MODEL, { progress_callback: (e: { status: string }) => events.push(e.status) });
    expect(events).toContain('initiate');
    expect(events.at(-1)).toBe('ready');
    await model.dispose();
  });

  it('loads several models at once; dispose frees their GPU memory, the last one ends the worker', async () => {
    const [a, b] = await Promise.all([loadRemote(), loadRemote(MODEL, { dtype: 'q8' })]);
    const greedy = { input_ids: [prompt], max_new_tokens: 4, eos_token_id: [], do_sample: false };
    expect(await a.generate(greedy)).toEqual(await local.generate(greedy));
    await b.generate(greedy);
    const together = (await b.refreshStats()).deviceMemoryBytes;
    await a.dispose();
    const alone = (await b.refreshStats()).deviceMemoryBytes;
    expect(together - alone).toBeGreaterThanOrEqual(a.stats().weightBytes);
    await expect(a.generate(greedy)).rejects.toBeInstanceOf(DeviceLostError);
    await b.dispose();
    expect(engineWorker()).not.toBeNull(); // `remote` is still loaded
    await remote.dispose();
    expect(engineWorker()).toBeNull();
    remote = await loadRemote();
    expect(engineWorker()).not.toBeNull();
    expect(await remote.generate(greedy)).toEqual(await local.generate(greedy));
  });

  it('reports a lost device as DeviceLostError, and a new load works', async () => {
    const model = await loadRemote();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const pending = model.generate({ input_ids: [prompt], max_new_tokens: 200, eos_token_id: [], do_sample: false, token_callback: () => started() });
    await running;
    await model.loseDeviceForTesting();
    await expect(pending).rejects.toBeInstanceOf(DeviceLostError);
    await expect(model.generate({ input_ids: [prompt], max_new_tokens: 2, do_sample: false })).rejects.toBeInstanceOf(DeviceLostError);
    await expect(remote.generate({ input_ids: [prompt], max_new_tokens: 2, do_sample: false })).rejects.toBeInstanceOf(DeviceLostError);
    const fresh = await loadRemote(); // same worker, a new device
    await model.dispose();
    await remote.dispose();
    remote = fresh;
    const greedy = { input_ids: [prompt], max_new_tokens: 4, eos_token_id: [], do_sample: false };
    expect(await remote.generate(greedy)).toEqual(await local.generate(greedy));
  });
});
