// ModelCache over the default cache (env.cacheDir in Node), filled by the loaders from a local server; and the
// 'progress_total' events of streamModelTensors.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env } from '../../../src/api/env.js';
import { ModelCache } from '../../../src/api/model-cache.js';
import { AutoTokenizer } from '../../../src/api/auto-tokenizer.js';
import { openMemoryCache } from '../../../src/hub/cache.js';
import { streamModelTensors } from '../../../src/hub/load-weights.js';
import { getDefaultCache, readModelFileText, type ProgressInfo } from '../../../src/hub/model-files.js';
import { startFaultServer, type FaultServer } from '../../helpers/fault-server.js';
import { HF_TINY } from '../../helpers/hf-tiny.js';

let server: FaultServer;
let cacheDir: string;
const savedCacheDir = env.cacheDir;
const fast = { retries: 3, backoffMs: 5 };

beforeAll(async () => {
  server = await startFaultServer(HF_TINY);
});
afterAll(async () => {
  env.cacheDir = savedCacheDir;
  await server.close();
});
beforeEach(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'webslm-model-cache-'));
  env.cacheDir = cacheDir;
  server.requests.length = 0;
  return () => rmSync(cacheDir, { recursive: true, force: true });
});

const sizeOf = (model: string, file: string) => statSync(join(HF_TINY, model, file)).size;
const SHARDS = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];

async function drain(model: string, options = {}): Promise<number> {
  let n = 0;
  for await (const _ of streamModelTensors(model, { ...fast, ...options })) n++;
  return n;
}

describe('ModelCache', () => {
  it('shares one cache instance with the loaders, following env.cacheDir', () => {
    const a = getDefaultCache();
    expect(a).not.toBeNull();
    expect(getDefaultCache()).toBe(a);
    env.cacheDir = mkdtempSync(join(tmpdir(), 'webslm-model-cache-other-'));
    try {
      expect(getDefaultCache()).not.toBe(a);
    } finally {
      rmSync(env.cacheDir, { recursive: true, force: true });
      env.cacheDir = cacheDir;
    }
    env.cacheDir = '';
    expect(getDefaultCache()).toBeNull();
    env.cacheDir = cacheDir;
  });

  it('is empty before anything is loaded', async () => {
    expect(await ModelCache.list()).toEqual([]);
    expect(await ModelCache.usage()).toEqual({ usage: 0, quota: null });
  });

  it('lists what the loaders stored, per model and revision, with sizes', async () => {
    const llama = `${server.url}/llama`;
    const qwen = `${server.url}/qwen2`;
    await AutoTokenizer.from_pretrained(llama, fast);
    await drain(llama);
    await readModelFileText(qwen, 'config.json', { ...fast, revision: 'v1' });
    await readModelFileText(qwen, 'config.json', fast);

    const list = await ModelCache.list();
    const llamaFiles = ['model.safetensors.index.json', ...SHARDS, 'tokenizer.json', 'tokenizer_config.json'].sort();
    const llamaSize = llamaFiles.reduce((s, f) => s + sizeOf('llama', f), 0);
    const qwenConfig = sizeOf('qwen2', 'config.json');
    expect(list).toEqual([
      { model: llama, revision: 'main', files: llamaFiles.map((file) => ({ file, size: sizeOf('llama', file) })), size: llamaSize },
      { model: qwen, revision: 'main', files: [{ file: 'config.json', size: qwenConfig }], size: qwenConfig },
      { model: qwen, revision: 'v1', files: [{ file: 'config.json', size: qwenConfig }], size: qwenConfig },
    ]);
    expect(await ModelCache.usage()).toEqual({ usage: llamaSize + 2 * qwenConfig, quota: null });

    // A second load is served from the cache: no requests for the weights.
    server.requests.length = 0;
    await drain(llama);
    expect(server.requests.filter((r) => r.path.endsWith('.safetensors'))).toEqual([]);
  });

  it('deletes one revision, a whole model, and everything', async () => {
    const llama = `${server.url}/llama`;
    const qwen = `${server.url}/qwen2`;
    await readModelFileText(qwen, 'config.json', { ...fast, revision: 'v1' });
    await readModelFileText(qwen, 'config.json', fast);
    await readModelFileText(llama, 'config.json', fast);

    await ModelCache.delete(qwen, 'v1');
    expect((await ModelCache.list()).map((m) => [m.model, m.revision])).toEqual([
      [llama, 'main'],
      [qwen, 'main'],
    ]);
    await ModelCache.delete(qwen);
    expect((await ModelCache.list()).map((m) => m.model)).toEqual([llama]);

    // A deleted file is fetched again.
    server.requests.length = 0;
    await readModelFileText(qwen, 'config.json', fast);
    expect(server.requests.some((r) => r.method === 'GET' && r.path === '/qwen2/config.json')).toBe(true);

    await ModelCache.clear();
    expect(await ModelCache.list()).toEqual([]);
    expect(await ModelCache.usage()).toEqual({ usage: 0, quota: null });
  });

  it('with no cache configured: nothing listed, delete and clear do nothing', async () => {
    env.cacheDir = '';
    try {
      await readModelFileText(`${server.url}/qwen2`, 'config.json', fast);
      expect(await ModelCache.list()).toEqual([]);
      await ModelCache.delete(`${server.url}/qwen2`);
      await ModelCache.clear();
      expect(await ModelCache.usage()).toEqual({ usage: null, quota: null });
    } finally {
      env.cacheDir = cacheDir;
    }
  });
});

describe('total progress over the weight files', () => {
  const shardBytes = SHARDS.reduce((s, f) => s + sizeOf('llama', f), 0);
  const indexTotal = (JSON.parse(readFileSync(join(HF_TINY, 'llama', 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number } })
    .metadata.total_size;

  for (const source of ['network', 'cache'] as const) {
    it(`sums the shards, rising to 100%, alongside unchanged per-file events (${source})`, async () => {
      const cache = openMemoryCache(64 * 1024);
      const model = `${server.url}/llama`;
      if (source === 'cache') await drain(model, { cache });
      const events: ProgressInfo[] = [];
      await drain(model, { cache, progress_callback: (e: ProgressInfo) => events.push(e) });

      const totals = events.filter((e) => e.status === 'progress_total');
      expect(totals.length).toBeGreaterThan(2);
      for (const e of totals) {
        expect(e.name).toBe(model);
        expect(SHARDS).toContain(e.file);
        expect(e.loaded!).toBeLessThanOrEqual(e.total!);
        expect(e.total!).toBeGreaterThanOrEqual(indexTotal);
      }
      for (let i = 1; i < totals.length; i++) expect(totals[i].loaded!).toBeGreaterThanOrEqual(totals[i - 1].loaded!);
      expect(totals.at(-1)).toMatchObject({ loaded: shardBytes, total: shardBytes, progress: 100 });
      expect(totals[0].total).toBe(Math.max(indexTotal, sizeOf('llama', SHARDS[0])));

      // Per file: initiate, [download], progress…, done, as without the total.
      for (const file of SHARDS) {
        const own = events.filter((e) => e.file === file && e.status !== 'progress_total').map((e) => e.status);
        expect(own[0]).toBe('initiate');
        expect(own.at(-1)).toBe('done');
        expect(own.includes('download')).toBe(source === 'network');
        const last = events.filter((e) => e.file === file && e.status === 'progress').at(-1)!;
        expect(last).toMatchObject({ loaded: sizeOf('llama', file), total: sizeOf('llama', file), progress: 100 });
      }
      // The index file reports only per-file events.
      expect(events.some((e) => e.file === 'model.safetensors.index.json' && e.status === 'progress_total')).toBe(false);
    });
  }

  it('a single-file checkpoint: the total is that file', async () => {
    const events: ProgressInfo[] = [];
    await drain(`${server.url}/qwen2`, { cache: null, progress_callback: (e: ProgressInfo) => events.push(e) });
    const size = sizeOf('qwen2', 'model.safetensors');
    const totals = events.filter((e) => e.status === 'progress_total');
    expect(totals.every((e) => e.total === size)).toBe(true);
    expect(totals.at(-1)).toMatchObject({ loaded: size, progress: 100 });
  });
});
