// Loading checkpoints in Chromium from a server of another origin into the IndexedDB cache: byte-identical loads,
// resuming after a dropped connection or an abort, retries, missing and corrupt files, reloads from the cache and
// a full disk. The server (started in Node, see fault-server.setup.ts) serves a copy of the hf-tiny fixtures.
import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { AbortError, DownloadError, QuotaError } from '../../src/errors.js';
import { openIndexedDBCache, type FileCache, type FileKey } from '../../src/hub/cache.js';
import { streamModelTensors, type ModelTensor } from '../../src/hub/load-weights.js';
import type { ModelFileOptions } from '../../src/hub/model-files.js';
import type { Fault, LoggedRequest } from '../helpers/fault-server.js';

const server = inject('faultServer');
const CHUNK = 4096;
const fast = { retries: 3, backoffMs: 5 };
const LLAMA_SHARDS = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];

async function control(action: string, body?: unknown): Promise<Response> {
  const response = await fetch(`${server}/__control/${action}`, {
    method: body === undefined && action === 'requests' ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`control ${action}: HTTP ${response.status} ${await response.text()}`);
  return response;
}
const setFault = (path: string, fault: Fault | Fault[]) => control('fault', { path, fault });
const requests = async (): Promise<LoggedRequest[]> => (await (await control('requests')).json()) as LoggedRequest[];
const resetLog = () => control('reset-log', {});
const weightRequests = async (method?: string) =>
  (await requests()).filter((r) => r.path.endsWith('.safetensors') && (method === undefined || r.method === method));

let counter = 0;
const used: string[] = [];
function uniqueName(): string {
  const name = `webslm-load-test-${Date.now()}-${counter++}-${Math.random().toString(36).slice(2)}`;
  used.push(name);
  return name;
}

beforeEach(async () => {
  await control('clear', {});
  await resetLog();
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const name of used.splice(0)) await openIndexedDBCache(name, CHUNK).clear();
});

async function collect(model: string, cache: FileCache, options: ModelFileOptions = {}): Promise<ModelTensor[]> {
  const out: ModelTensor[] = [];
  for await (const t of streamModelTensors(model, { cache, ...fast, ...options })) out.push(t);
  return out;
}

/** A file's bytes as the server has them, fetched directly (no faults are set when this is called). */
async function raw(path: string): Promise<Uint8Array> {
  const response = await fetch(`${server}/${path}`, { cache: 'no-store' });
  expect(response.status).toBe(200);
  return new Uint8Array(await response.arrayBuffer());
}

/** The tensors of a safetensors file, by name, as views of its data section (read straight from the format). */
function tensorsOf(file: Uint8Array): Map<string, Uint8Array> {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength))) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const data = 8 + headerLength;
  const out = new Map<string, Uint8Array>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, file.subarray(data + info.data_offsets[0], data + info.data_offsets[1]));
  }
  return out;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Every tensor of every file in `files` was loaded, once, with exactly the file's bytes. */
async function expectIdentical(folder: string, files: string[], loaded: ModelTensor[]): Promise<void> {
  const expected = new Map<string, { shard: string; bytes: Uint8Array }>();
  for (const file of files) {
    for (const [name, bytes] of tensorsOf(await raw(`${folder}/${file}`))) expected.set(name, { shard: file, bytes });
  }
  expect(loaded.length).toBe(expected.size);
  expect(new Set(loaded.map((t) => t.name)).size).toBe(loaded.length);
  for (const t of loaded) {
    const want = expected.get(t.name);
    expect(want, t.name).toBeDefined();
    expect(t.shard).toBe(want!.shard);
    expect(same(t.bytes, want!.bytes), `${t.name} differs`).toBe(true);
  }
}

/** The cache holds `file` complete, byte for byte as the server has it. */
async function expectCached(cache: FileCache, model: string, folder: string, file: string): Promise<void> {
  const key: FileKey = { model, revision: 'main', file };
  const manifest = await cache.getManifest(key);
  expect(manifest, file).not.toBeNull();
  expect(manifest!.chunkSize).toBe(CHUNK);
  // The server's ETag (a SHA-256) reached the page, so the download was checked against it.
  expect(manifest!.sha256).toMatch(/^[0-9a-f]{64}$/);
  const parts: Uint8Array[] = [];
  for await (const chunk of cache.read(key)) parts.push(chunk);
  const stored = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    stored.set(p, at);
    at += p.byteLength;
  }
  expect(same(stored, await raw(`${folder}/${file}`)), `${file} in the cache differs`).toBe(true);
}

describe('loading checkpoints in the browser', () => {
  it('loads the sharded llama and the single-file qwen2 byte-identical, and caches the files whole', async () => {
    const llama = `${server}/llama`;
    const cache = openIndexedDBCache(uniqueName(), CHUNK);
    const sharded = await collect(llama, cache);
    expect(new Set(sharded.map((t) => t.shard)).size).toBe(3);
    await expectIdentical('llama', LLAMA_SHARDS, sharded);
    for (const shard of LLAMA_SHARDS) await expectCached(cache, llama, 'llama', shard);

    const qwen2 = `${server}/qwen2`;
    const single = await collect(qwen2, cache);
    expect(single.every((t) => t.shard === 'model.safetensors')).toBe(true);
    await expectIdentical('qwen2', ['model.safetensors'], single);
    await expectCached(cache, qwen2, 'qwen2', 'model.safetensors');
  });

  it('resumes after the connection drops mid-file, byte-identical, with a ranged second request', async () => {
    // Sent in paced pieces, so the page has read some of them when the connection drops: Chromium discards the
    // bytes of a response it has not handed out yet once the connection fails (a drop right after a fast burst
    // leaves nothing to resume from, and the retry starts at byte 0).
    await setFault('/qwen2/model.safetensors', [
      { kind: 'drop', afterBytes: 150_000, times: 1 },
      { kind: 'trickle', chunkSize: 16_384, intervalMs: 5, times: 1 },
    ]);
    const cache = openIndexedDBCache(uniqueName(), CHUNK);
    const got = await collect(`${server}/qwen2`, cache);
    const gets = await weightRequests('GET');
    expect(gets.length, JSON.stringify(gets)).toBe(2);
    expect(gets[0].range).toBeNull();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? '')?.[1]);
    expect(resumedAt, JSON.stringify(gets)).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(150_000);
    await control('clear', {});
    await expectIdentical('qwen2', ['model.safetensors'], got);
    await expectCached(cache, `${server}/qwen2`, 'qwen2', 'model.safetensors');
  });

  it('retries a 500 and succeeds', async () => {
    await setFault('/qwen2/model.safetensors', { kind: 'status', status: 500, times: 2 });
    const got = await collect(`${server}/qwen2`, openIndexedDBCache(uniqueName(), CHUNK));
    const failed = (await requests()).filter((r) => r.path === '/qwen2/model.safetensors' && r.status === 500);
    expect(failed.length).toBe(2);
    await expectIdentical('qwen2', ['model.safetensors'], got);
  });

  it('a missing file is a DownloadError that names it', async () => {
    const cache = openIndexedDBCache(uniqueName(), CHUNK);
    const err = await collect(`${server}/no-such-model`, cache).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).message).toMatch(/model\.safetensors/);
    expect((err as DownloadError).status).toBe(404);

    await setFault(`/llama/${LLAMA_SHARDS[1]}`, { kind: 'status', status: 404 });
    const shardErr = await collect(`${server}/llama`, cache).catch((e: unknown) => e);
    expect(shardErr).toBeInstanceOf(DownloadError);
    expect((shardErr as DownloadError).message).toContain(LLAMA_SHARDS[1]);
    expect((shardErr as DownloadError).status).toBe(404);
  });

  it('a bit-flipped shard fails its SHA-256 check and leaves no manifest (nor partial) in the cache', async () => {
    const llama = `${server}/llama`;
    const shard = LLAMA_SHARDS[1];
    await setFault(`/llama/${shard}`, { kind: 'corrupt', offset: 100_000 });
    const cache = openIndexedDBCache(uniqueName(), CHUNK);
    const err = await collect(llama, cache).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toContain(shard);
    expect((err as Error).message).toMatch(/corrupt.*SHA-256/);
    const key: FileKey = { model: llama, revision: 'main', file: shard };
    expect(await cache.getManifest(key)).toBeNull();
    expect(await cache.getPartial(key)).toBeNull();
    // The index lists shard 3, 1, then 2: the two loaded before the bad one are complete and stay.
    const [cached] = await cache.list();
    const shards = cached.files.map((f) => f.file).filter((f) => f.endsWith('.safetensors'));
    expect(shards).toEqual([LLAMA_SHARDS[0], LLAMA_SHARDS[2]]);
  });

  it('an aborted load resumes from its stored chunks in a new cache object on the same database', async () => {
    const qwen2 = `${server}/qwen2`;
    const file = 'model.safetensors';
    const key: FileKey = { model: qwen2, revision: 'main', file };
    const name = uniqueName();
    // Small pieces, so the abort lands mid-file rather than after one big read.
    await setFault(`/qwen2/${file}`, { kind: 'trickle', chunkSize: 16_384, intervalMs: 2 });
    const controller = new AbortController();
    const first = openIndexedDBCache(name, CHUNK);
    const options: ModelFileOptions = {
      signal: controller.signal,
      progress_callback: (e) => {
        if (e.file === file && e.status === 'progress' && (e.loaded ?? 0) >= 150_000) controller.abort();
      },
    };
    const err = await collect(qwen2, first, options).catch((e: unknown) => e);
    expect(controller.signal.aborted).toBe(true);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as Error).message).toContain(file);
    expect(await first.getManifest(key)).toBeNull();
    const partial = await first.getPartial(key);
    expect(partial).not.toBeNull();
    expect(partial!.storedBytes).toBeGreaterThan(0);
    expect(partial!.storedBytes % CHUNK).toBe(0);
    expect(partial!.storedBytes).toBeLessThan(partial!.size);

    await control('clear', {});
    await resetLog();
    const second = openIndexedDBCache(name, CHUNK);
    const got = await collect(qwen2, second);
    const gets = await weightRequests('GET');
    expect(gets.length).toBe(1);
    expect(gets[0].range).toBe(`bytes=${partial!.storedBytes}-`);
    await expectIdentical('qwen2', [file], got);
    await expectCached(second, qwen2, 'qwen2', file);
    expect(await second.getPartial(key)).toBeNull();
  });

  it('a reload (a new cache object on the same database) makes no request for weight files', async () => {
    const llama = `${server}/llama`;
    const name = uniqueName();
    const first = await collect(llama, openIndexedDBCache(name, CHUNK));
    expect((await weightRequests()).length).toBeGreaterThan(0);
    await resetLog();
    const second = await collect(llama, openIndexedDBCache(name, CHUNK));
    expect(await weightRequests()).toEqual([]);
    expect(await requests()).toEqual([]); // the index is cached too
    expect(second.map((t) => t.name)).toEqual(first.map((t) => t.name));
    for (let i = 0; i < first.length; i++) expect(same(second[i].bytes, first[i].bytes)).toBe(true);
    await expectIdentical('llama', LLAMA_SHARDS, second);
  });

  it('with almost no free storage, the load is a QuotaError and leaves nothing behind', async () => {
    vi.spyOn(navigator.storage, 'estimate').mockResolvedValue({ quota: 1000, usage: 990 });
    const qwen2 = `${server}/qwen2`;
    const key: FileKey = { model: qwen2, revision: 'main', file: 'model.safetensors' };
    const cache = openIndexedDBCache(uniqueName(), CHUNK);
    const err = await collect(qwen2, cache).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaError);
    expect((err as Error).message).toContain('model.safetensors');
    expect(await cache.getManifest(key)).toBeNull();
    expect(await cache.getPartial(key)).toBeNull();
    expect(await cache.list()).toEqual([]);
    expect(await weightRequests('GET')).toEqual([]);
  });
});
