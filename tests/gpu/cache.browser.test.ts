// The IndexedDB file cache in Chromium: the same core checks as the Node caches, plus quota and reopening.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createStore, del, keys } from 'idb-keyval';
import { openIndexedDBCache, type FileCache, type FileKey } from '../../src/hub/cache.js';
import { DownloadError, QuotaError } from '../../src/errors.js';
import { appendOddly, bytes, CHUNK, KEY, readAll } from '../helpers/cache-data.js';

let counter = 0;
const used: string[] = [];
function uniqueName(): string {
  const name = `webslm-cache-test-${Date.now()}-${counter++}-${Math.random().toString(36).slice(2)}`;
  used.push(name);
  return name;
}

afterEach(async () => {
  vi.restoreAllMocks();
  for (const name of used.splice(0)) await openIndexedDBCache(name, CHUNK).clear();
});

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

async function store(cache: FileCache, key: FileKey, data: Uint8Array, etag = '"e1"') {
  const w = await cache.write(key, { url: `https://x/${key.file}`, size: data.length, etag });
  await appendOddly(w, data.subarray(w.startAt));
  return w.commit({ sha256: null });
}

describe('IndexedDB file cache', () => {
  // First in the file: the request is made once per page, on the first write.
  it('asks for persistent storage once', async () => {
    const persist = vi.spyOn(navigator.storage, 'persist').mockResolvedValue(true);
    const a = openIndexedDBCache(uniqueName(), CHUNK);
    const b = openIndexedDBCache(uniqueName(), CHUNK);
    await store(a, KEY, bytes(10));
    await store(b, KEY, bytes(10));
    await store(a, { ...KEY, file: 'more' }, bytes(10));
    expect(persist).toHaveBeenCalledTimes(1);
  });

  it('reads back byte-identical what odd-sized appends wrote', async () => {
    const cache = openIndexedDBCache(uniqueName(), CHUNK);
    for (const size of [0, 1, CHUNK, 5 * CHUNK + 321]) {
      const key = { ...KEY, file: `f${size}.bin` };
      const data = bytes(size, size + 3);
      const m = await store(cache, key, data);
      expect(m).toMatchObject({ ...key, size, chunkSize: CHUNK, chunkCount: Math.ceil(size / CHUNK) });
      expect(same(await readAll(cache, key), data)).toBe(true);
    }
  });

  it('uses chunk:, partial: and manifest: keys, and writes the manifest only at commit', async () => {
    const name = uniqueName();
    const cache = openIndexedDBCache(name, CHUNK);
    const data = bytes(2 * CHUNK + 10);
    const w = await cache.write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
    await w.append(data);
    expect(await cache.getManifest(KEY)).toBeNull();
    const raw = createStore(name, 'files');
    expect(((await keys(raw)) as string[]).sort()).toEqual([
      'chunk:org/tiny@main/model.safetensors#0',
      'chunk:org/tiny@main/model.safetensors#1',
      'partial:org/tiny@main/model.safetensors',
    ]);
    await w.commit({ sha256: 'abc' });
    expect((await cache.getManifest(KEY))?.sha256).toBe('abc');
    expect(((await keys(raw)) as string[]).sort()).toEqual([
      'chunk:org/tiny@main/model.safetensors#0',
      'chunk:org/tiny@main/model.safetensors#1',
      'chunk:org/tiny@main/model.safetensors#2',
      'manifest:org/tiny@main/model.safetensors',
    ]);
  });

  it('resumes an abandoned write (same size and etag) and starts over otherwise', async () => {
    const name = uniqueName();
    const data = bytes(4 * CHUNK + 77, 9);
    const w1 = await openIndexedDBCache(name, CHUNK).write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
    await appendOddly(w1, data.subarray(0, 2 * CHUNK + 500));

    const cache = openIndexedDBCache(name, CHUNK);
    expect(await cache.getPartial(KEY)).toEqual({ storedBytes: 2 * CHUNK, size: data.length, etag: '"e1"' });
    const other = await cache.write({ ...KEY, file: 'other' }, { url: 'u', size: 1, etag: null });
    expect(other.startAt).toBe(0);
    const w2 = await cache.write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
    expect(w2.startAt).toBe(2 * CHUNK);
    await appendOddly(w2, data.subarray(w2.startAt, w2.startAt + CHUNK + 3)); // abandoned again
    expect((await cache.getPartial(KEY))?.storedBytes).toBe(3 * CHUNK);

    const w3 = await cache.write(KEY, { url: 'u', size: data.length, etag: '"e2"' });
    expect(w3.startAt).toBe(0);
    await appendOddly(w3, data);
    await w3.commit({ sha256: null });
    expect(same(await readAll(cache, KEY), data)).toBe(true);
    expect(await cache.getPartial(KEY)).toBeNull();
  });

  it('discard drops everything of the file', async () => {
    const name = uniqueName();
    const cache = openIndexedDBCache(name, CHUNK);
    const w = await cache.write(KEY, { url: 'u', size: 3 * CHUNK, etag: '"e1"' });
    await w.append(bytes(3 * CHUNK));
    await w.discard();
    expect(await cache.getPartial(KEY)).toBeNull();
    expect(await cache.getManifest(KEY)).toBeNull();
    expect(await keys(createStore(name, 'files'))).toEqual([]);
  });

  it('a missing chunk is a DownloadError naming the file, and the manifest is removed', async () => {
    const name = uniqueName();
    const cache = openIndexedDBCache(name, CHUNK);
    await store(cache, KEY, bytes(3 * CHUNK + 9));
    await del('chunk:org/tiny@main/model.safetensors#2', createStore(name, 'files'));
    let error: unknown;
    try {
      await readAll(cache, KEY);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toContain('model.safetensors');
    expect(await cache.getManifest(KEY)).toBeNull();
  });

  it('list, delete and clear', async () => {
    const cache = openIndexedDBCache(uniqueName(), CHUNK);
    await store(cache, { model: 'org/a', revision: 'main', file: 'x.bin' }, bytes(100));
    await store(cache, { model: 'org/a', revision: 'main', file: 'sub/y.bin' }, bytes(CHUNK + 1));
    await store(cache, { model: 'org/a', revision: 'v2', file: 'x.bin' }, bytes(50));
    await store(cache, { model: 'org/b', revision: 'main', file: 'x.bin' }, bytes(7));
    expect(await cache.list()).toEqual([
      { model: 'org/a', revision: 'main', files: [{ file: 'sub/y.bin', size: CHUNK + 1 }, { file: 'x.bin', size: 100 }], size: CHUNK + 101 },
      { model: 'org/a', revision: 'v2', files: [{ file: 'x.bin', size: 50 }], size: 50 },
      { model: 'org/b', revision: 'main', files: [{ file: 'x.bin', size: 7 }], size: 7 },
    ]);
    await cache.delete('org/a', 'v2');
    await cache.delete('org/b');
    expect((await cache.list()).map((m) => `${m.model}@${m.revision}`)).toEqual(['org/a@main']);
    await cache.clear();
    expect(await cache.list()).toEqual([]);
  });

  it('QuotaError when navigator.storage.estimate reports almost no free space', async () => {
    const cache = openIndexedDBCache(uniqueName(), CHUNK);
    vi.spyOn(navigator.storage, 'estimate').mockResolvedValue({ quota: 10_000_000, usage: 10_000_000 - 100 });
    let error: unknown;
    try {
      await cache.write(KEY, { url: 'u', size: 5000, etag: '"e"' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QuotaError);
    expect((error as Error).message).toMatch(/5000 bytes/);
    expect((error as Error).message).toMatch(/100 bytes/);
    expect(await cache.getManifest(KEY)).toBeNull();
    const small = await cache.write(KEY, { url: 'u', size: 50, etag: '"e"' });
    expect(small.startAt).toBe(0);
  });

  it('data survives closing and reopening the cache', async () => {
    const name = uniqueName();
    const data = bytes(3 * CHUNK + 5, 7);
    await store(openIndexedDBCache(name, CHUNK), KEY, data);
    const reopened = openIndexedDBCache(name, CHUNK);
    expect(await reopened.getManifest(KEY)).toMatchObject({ size: data.length, chunkCount: 4 });
    expect(same(await readAll(reopened, KEY), data)).toBe(true);
    // Another chunk size for new writes still reads files stored with the old one.
    const otherChunks = openIndexedDBCache(name, 4 * CHUNK);
    expect(same(await readAll(otherChunks, KEY), data)).toBe(true);
  });
});
