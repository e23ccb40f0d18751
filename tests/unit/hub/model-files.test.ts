// Loading a checkpoint through the network path: cache, resume, retries, corruption, progress, and the sharded
// fixture against a single-file twin. The fault server serves a copy of the hf-tiny fixtures on 127.0.0.1.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DownloadError, SafetensorsError } from '../../../src/errors.js';
import { openMemoryCache, type FileCache } from '../../../src/hub/cache.js';
import { streamModelTensors, type ModelTensor } from '../../../src/hub/load-weights.js';
import { openModelFile, readModelFileText, type ProgressInfo } from '../../../src/hub/model-files.js';
import { startFaultServer, type FaultServer } from '../../helpers/fault-server.js';
import { HF_TINY } from '../../helpers/hf-tiny.js';
import { writeSafetensors } from '../../helpers/safetensors-writer.js';

let root: string;
let server: FaultServer;
let cache: FileCache;
const fast = { retries: 3, backoffMs: 5 };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'webslm-models-'));
  cpSync(HF_TINY, root, { recursive: true });
  server = await startFaultServer(root);
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});
beforeEach(() => {
  server.clearFaults();
  server.requests.length = 0;
  cache = openMemoryCache(1024);
});

async function collect(model: string, options = {}): Promise<ModelTensor[]> {
  const out: ModelTensor[] = [];
  for await (const t of streamModelTensors(model, { cache, ...fast, ...options })) out.push(t);
  return out;
}

const byName = (tensors: ModelTensor[]) => new Map(tensors.map((t) => [t.name, t]));
const weightRequests = () => server.requests.filter((r) => r.path.endsWith('.safetensors') && r.method === 'GET');

describe('streaming a checkpoint from a server', () => {
  it('single file and sharded, identical to reading the files from disk', async () => {
    const local = await collect(join(root, 'llama'), { cache: null });
    const remote = await collect(`${server.url}/llama`);
    expect(remote.map((t) => t.name)).toEqual(local.map((t) => t.name));
    for (let i = 0; i < local.length; i++) expect(remote[i].bytes).toEqual(local[i].bytes);
    expect(new Set(remote.map((t) => t.shard)).size).toBe(3);
    const single = await collect(`${server.url}/qwen2`);
    expect(single.length).toBeGreaterThan(5);
    expect(single.every((t) => t.shard === 'model.safetensors')).toBe(true);
  });

  it('the sharded fixture equals its single-file twin, tensor for tensor', async () => {
    const shards = await collect(join(root, 'llama'), { cache: null });
    const twin = join(root, 'llama-single');
    cpSync(join(root, 'llama'), twin, { recursive: true });
    rmSync(join(twin, 'model.safetensors.index.json'));
    for (const f of ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']) {
      rmSync(join(twin, f));
    }
    writeFileSync(join(twin, 'model.safetensors'), writeSafetensors([...shards].sort((a, b) => a.name.localeCompare(b.name))));
    const single = byName(await collect(`${server.url}/llama-single`));
    expect(single.size).toBe(shards.length);
    for (const t of shards) {
      const s = single.get(t.name)!;
      expect(s.dtype).toBe(t.dtype);
      expect(s.shape).toEqual(t.shape);
      expect(s.bytes).toEqual(t.bytes);
    }
  });

  it('a second load comes from the cache: zero requests for weight files', async () => {
    const first = await collect(`${server.url}/llama`);
    expect(weightRequests().length).toBeGreaterThan(0);
    server.requests.length = 0;
    const second = await collect(`${server.url}/llama`);
    expect(weightRequests()).toEqual([]);
    expect(second.map((t) => t.bytes)).toEqual(first.map((t) => t.bytes));
    const file = await openModelFile(`${server.url}/llama`, 'model-00002-of-00003.safetensors', { cache });
    expect(file.fromCache).toBe(true);
  });

  it('resumes after the connection drops mid-file, byte-identical', async () => {
    const expected = await collect(join(root, 'qwen2'), { cache: null });
    server.setFault('/qwen2/model.safetensors', { kind: 'drop', afterBytes: 150_000, times: 1 });
    const got = await collect(`${server.url}/qwen2`);
    expect(got.map((t) => t.bytes)).toEqual(expected.map((t) => t.bytes));
    const gets = weightRequests();
    expect(gets.length).toBe(2);
    expect(gets[1].range).toMatch(/^bytes=\d+-$/);
  });

  it('retries a 500 and succeeds', async () => {
    server.setFault('/qwen2/model.safetensors', { kind: 'status', status: 500, times: 2 });
    expect((await collect(`${server.url}/qwen2`)).length).toBeGreaterThan(5);
    // The size probe (HEAD) meets the two 500s and retries; the download then succeeds.
    expect(server.requests.filter((r) => r.path === '/qwen2/model.safetensors' && r.status === 500).length).toBe(2);
  });

  it('an interrupted load resumes from the stored chunks on the next load', async () => {
    const file = 'model.safetensors';
    const { chunks, size } = await openModelFile(`${server.url}/qwen2`, file, { cache, ...fast });
    let received = 0;
    for await (const chunk of chunks) {
      received += chunk.length;
      if (received > size! / 2) break; // the consumer gives up half way (page closed, abort, ...)
    }
    const partial = await cache.getPartial({ model: `${server.url}/qwen2`, revision: 'main', file });
    expect(partial!.storedBytes).toBeGreaterThan(0);
    expect(await cache.getManifest({ model: `${server.url}/qwen2`, revision: 'main', file })).toBeNull();
    server.requests.length = 0;
    const text = await collect(`${server.url}/qwen2`);
    expect(text.length).toBeGreaterThan(5);
    expect(weightRequests()[0].range).toBe(`bytes=${partial!.storedBytes}-`);
  });

  it('a bit-flipped shard fails its SHA-256 check and nothing is cached as complete', async () => {
    server.setFault('/qwen2/model.safetensors', { kind: 'corrupt', offset: 100_000 });
    const err = await collect(`${server.url}/qwen2`).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/model\.safetensors.*corrupt/);
    expect(await cache.getManifest({ model: `${server.url}/qwen2`, revision: 'main', file: 'model.safetensors' })).toBeNull();
  });

  it('names a missing file', async () => {
    const err = await collect(`${server.url}/no-such-model`).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/model\.safetensors/);
    expect(err.status).toBe(404);
  });

  it('rejects a shard that disagrees with the index', async () => {
    const bad = join(root, 'llama-bad-index');
    cpSync(join(root, 'llama'), bad, { recursive: true });
    const index = JSON.parse(readFileSync(join(bad, 'model.safetensors.index.json'), 'utf8'));
    const [first] = Object.keys(index.weight_map);
    index.weight_map[first] = index.weight_map[first] === 'model-00001-of-00003.safetensors' ? 'model-00002-of-00003.safetensors' : 'model-00001-of-00003.safetensors';
    writeFileSync(join(bad, 'model.safetensors.index.json'), JSON.stringify(index));
    await expect(collect(`${server.url}/llama-bad-index`)).rejects.toThrow(SafetensorsError);
  });

  it('reports progress per file: initiate, download, progress up to 100, done', async () => {
    const events: ProgressInfo[] = [];
    await readModelFileText(`${server.url}/qwen2`, 'config.json', { cache, progress_callback: (e) => events.push(e) });
    expect(events[0].status).toBe('initiate');
    expect(events.some((e) => e.status === 'download')).toBe(true);
    const progress = events.filter((e) => e.status === 'progress').map((e) => e.progress!);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(100);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
    expect(events.at(-1)!.status).toBe('done');
    expect(events.every((e) => e.file === 'config.json')).toBe(true);
  });
});
