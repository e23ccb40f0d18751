// A model folder picked in the browser: `File`s registered with modelFromFiles, read by the same loaders as any
// other model id. The files are the hf-tiny llama fixture, fetched through the dev server.
import { beforeAll, describe, expect, it } from 'vitest';
import { AutoTokenizer } from '../../src/api/auto-tokenizer.js';
import { env } from '../../src/api/env.js';
import { ModelCache } from '../../src/api/model-cache.js';
import { DownloadError } from '../../src/errors.js';
import { openMemoryCache } from '../../src/hub/cache.js';
import { forgetModelFiles, modelFromFiles } from '../../src/hub/local-files.js';
import { streamModelTensors, type ModelTensor } from '../../src/hub/load-weights.js';
import { openModelFile, readModelFileText, type ProgressInfo } from '../../src/hub/model-files.js';
import { parseSafetensorsHeader } from '../../src/hub/safetensors.js';
import { parseShardIndex, SHARD_INDEX_FILE } from '../../src/hub/shard-index.js';

const URLS = import.meta.glob('../fixtures/hf-tiny/llama/*', { query: '?url', import: 'default', eager: true }) as Record<string, string>;
const SHARDS = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];

const bytesByName = new Map<string, Uint8Array>();

/** The fixture as a folder picked with `<input webkitdirectory>`: each file's relative path starts with the folder. */
function pickedFolder(folder = 'llama', skip: string[] = []): File[] {
  const out: File[] = [];
  for (const [name, bytes] of bytesByName) {
    if (skip.includes(name)) continue;
    const file = new File([bytes.slice()], name);
    Object.defineProperty(file, 'webkitRelativePath', { value: `${folder}/${name}` });
    out.push(file);
  }
  return out;
}

beforeAll(async () => {
  for (const [path, url] of Object.entries(URLS)) {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const res = await fetch(url);
    expect(res.ok).toBe(true);
    bytesByName.set(name, new Uint8Array(await res.arrayBuffer()));
  }
  expect([...bytesByName.keys()]).toEqual(expect.arrayContaining([...SHARDS, 'model.safetensors.index.json', 'tokenizer.json']));
});

async function collect(model: string, options = {}): Promise<ModelTensor[]> {
  const out: ModelTensor[] = [];
  for await (const t of streamModelTensors(model, options)) out.push(t);
  return out;
}

describe('a picked folder as a model', () => {
  it('registers under a local-files:// id', () => {
    const a = modelFromFiles(pickedFolder());
    const b = modelFromFiles(pickedFolder());
    expect(a).toMatch(/^local-files:\/\/\d+\/$/);
    expect(b).not.toBe(a);
  });

  it('streams the same tensors as the shard headers say, byte for byte', async () => {
    const model = modelFromFiles(pickedFolder(), 'llama');
    const tensors = await collect(model);
    const expected: Array<{ shard: string; name: string; dtype: string; shape: number[]; bytes: Uint8Array }> = [];
    // In the index's shard order.
    const index = parseShardIndex(new TextDecoder().decode(bytesByName.get(SHARD_INDEX_FILE)!));
    expect([...index.shards].sort()).toEqual(SHARDS);
    for (const shard of index.shards) {
      const data = bytesByName.get(shard)!;
      for (const t of parseSafetensorsHeader(data, data.byteLength, shard).tensors) {
        expected.push({ shard, name: t.name, dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.byteOffset, t.byteOffset + t.byteLength) });
      }
    }
    expect(tensors.map((t) => [t.shard, t.name, t.dtype, t.shape])).toEqual(expected.map((t) => [t.shard, t.name, t.dtype, t.shape]));
    for (let i = 0; i < expected.length; i++) expect(tensors[i].bytes).toEqual(expected[i].bytes);
  });

  it('loads the tokenizer', async () => {
    const model = modelFromFiles(pickedFolder());
    const tokenizer = await AutoTokenizer.from_pretrained(model);
    const ids = tokenizer.encode('Hello world');
    expect(ids.length).toBeGreaterThan(0);
    expect(tokenizer.decode(ids, { skip_special_tokens: true })).toContain('world');
  });

  it('is never cached, reports progress, and takes files without a relative path by name', async () => {
    const cache = openMemoryCache(1024);
    const files = [...bytesByName].map(([name, bytes]) => new File([bytes.slice()], name));
    const model = modelFromFiles(files);
    const events: ProgressInfo[] = [];
    const tensors = await collect(model, { cache, progress_callback: (e: ProgressInfo) => events.push(e) });
    expect(tensors.length).toBeGreaterThan(0);
    expect(await cache.list()).toEqual([]);
    const opened = await openModelFile(model, 'config.json', { cache });
    expect(opened.fromCache).toBe(false);
    expect(opened.size).toBe(bytesByName.get('config.json')!.byteLength);
    expect(events.some((e) => e.status === 'download')).toBe(false);
    const total = SHARDS.reduce((s, f) => s + bytesByName.get(f)!.byteLength, 0);
    expect(events.filter((e) => e.status === 'progress_total').at(-1)).toMatchObject({ loaded: total, total, progress: 100 });
  });

  it('a missing file is a 404 DownloadError; a forgotten id fails', async () => {
    const model = modelFromFiles(pickedFolder('llama', ['tokenizer_config.json']));
    const err = await readModelFileText(model, 'tokenizer_config.json').catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).status).toBe(404);
    // The tokenizer's config is optional: it still loads.
    await expect(AutoTokenizer.from_pretrained(model)).resolves.toBeDefined();
    expect(forgetModelFiles(model)).toBe(true);
    const gone = await readModelFileText(model, 'config.json').catch((e) => e);
    expect(gone).toBeInstanceOf(DownloadError);
    expect((gone as DownloadError).status).toBeUndefined();
  });
});

describe('ModelCache in the browser', () => {
  it('reads storage use from navigator.storage.estimate() and lists the IndexedDB cache', async () => {
    const saved = env.cacheName;
    env.cacheName = `webslm-model-cache-test-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    try {
      const { usage, quota } = await ModelCache.usage();
      expect(typeof usage).toBe('number');
      expect(typeof quota).toBe('number');
      expect(await ModelCache.list()).toEqual([]);
      await ModelCache.clear();
    } finally {
      env.cacheName = saved;
    }
  });
});
