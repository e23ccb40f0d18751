import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFolderCache, openMemoryCache, type FileCache, type FileKey } from '../../../src/hub/cache.js';
import { DownloadError, QuotaError } from '../../../src/errors.js';
import { appendOddly, bytes, CHUNK, KEY, readAll } from '../../helpers/cache-data.js';

async function store(cache: FileCache, key: FileKey, data: Uint8Array, etag = '"e1"') {
  const w = await cache.write(key, { url: `https://x/${key.file}`, size: data.length, etag });
  await appendOddly(w, data.subarray(w.startAt));
  return w.commit({ sha256: null });
}

interface Setup {
  open(): FileCache;
  /** Removes chunk `n` of a stored file behind the cache's back. */
  dropChunk?(key: FileKey, n: number): Promise<void>;
}

function coreTests(name: string, setup: () => Promise<Setup>, canDropChunk: boolean) {
  describe(name, () => {
    let s: Setup;
    let cache: FileCache;
    beforeEach(async () => {
      s = await setup();
      cache = s.open();
    });

    it('reads back byte-identical what odd-sized appends wrote', async () => {
      for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 321, 4 * CHUNK]) {
        const key = { ...KEY, file: `f${size}.bin` };
        const data = bytes(size, size + 3);
        const m = await store(cache, key, data);
        expect(m).toMatchObject({ ...key, size, chunkSize: CHUNK, chunkCount: Math.ceil(size / CHUNK), etag: '"e1"', sha256: null });
        const back = await readAll(cache, key);
        expect(back.length).toBe(size);
        expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
        const chunks: number[] = [];
        for await (const c of cache.read(key)) chunks.push(c.length);
        expect(chunks.every((n, i) => n === (i < chunks.length - 1 ? CHUNK : size - (chunks.length - 1) * CHUNK))).toBe(true);
        expect(await cache.getPartial(key)).toBeNull();
      }
    });

    it('writes the manifest only at commit', async () => {
      const data = bytes(3 * CHUNK + 100);
      const w = await cache.write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
      expect(w.startAt).toBe(0);
      await w.append(data.subarray(0, 3 * CHUNK + 50));
      expect(await cache.getManifest(KEY)).toBeNull();
      expect(await cache.list()).toEqual([]);
      await w.append(data.subarray(3 * CHUNK + 50));
      expect(await cache.getManifest(KEY)).toBeNull();
      await expect(cache.read(KEY)[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(DownloadError);
      const m = await w.commit({ sha256: 'abc' });
      expect(await cache.getManifest(KEY)).toEqual(m);
      expect(m.sha256).toBe('abc');
    });

    it('refuses a commit short of the size and appends beyond it', async () => {
      const w = await cache.write(KEY, { url: 'u', size: 10, etag: null });
      await w.append(bytes(4));
      await expect(w.commit({ sha256: null })).rejects.toThrow(/4 of 10 bytes/);
      await expect(w.append(bytes(7))).rejects.toBeInstanceOf(DownloadError);
      expect(await cache.getManifest(KEY)).toBeNull();
    });

    it('resumes an abandoned write at a chunk boundary with the same size and etag', async () => {
      const data = bytes(4 * CHUNK + 77, 9);
      const w1 = await cache.write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
      await appendOddly(w1, data.subarray(0, 2 * CHUNK + 500)); // abandoned midway
      const p = await cache.getPartial(KEY);
      expect(p).toEqual({ storedBytes: 2 * CHUNK, size: data.length, etag: '"e1"' });
      expect(await cache.getManifest(KEY)).toBeNull();

      const reopened = s.open();
      const w2 = await reopened.write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
      expect(w2.startAt).toBe(2 * CHUNK);
      await appendOddly(w2, data.subarray(w2.startAt));
      await w2.commit({ sha256: null });
      expect(Buffer.from(await readAll(reopened, KEY)).equals(Buffer.from(data))).toBe(true);
      expect(await reopened.getPartial(KEY)).toBeNull();
    });

    it('starts over when the etag or size differs', async () => {
      const old = bytes(3 * CHUNK, 1);
      const w1 = await cache.write(KEY, { url: 'u', size: old.length, etag: '"old"' });
      await w1.append(old.subarray(0, 2 * CHUNK + 1));
      expect((await cache.getPartial(KEY))?.storedBytes).toBe(2 * CHUNK);

      const bigger = await cache.write(KEY, { url: 'u', size: old.length + 1, etag: '"old"' });
      expect(bigger.startAt).toBe(0);
      await bigger.append(bytes(CHUNK, 5));
      expect((await cache.getPartial(KEY))?.storedBytes).toBe(CHUNK);

      const fresh = bytes(3 * CHUNK + 5, 2);
      const w2 = await cache.write(KEY, { url: 'u', size: fresh.length, etag: '"new"' });
      expect(w2.startAt).toBe(0);
      expect(await cache.getPartial(KEY)).toEqual({ storedBytes: 0, size: fresh.length, etag: '"new"' });
      await appendOddly(w2, fresh);
      await w2.commit({ sha256: null });
      expect(Buffer.from(await readAll(cache, KEY)).equals(Buffer.from(fresh))).toBe(true);
    });

    it('resumes a file whose chunks are all stored straight to commit', async () => {
      const data = bytes(2 * CHUNK, 4);
      const w1 = await cache.write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
      await w1.append(data);
      const w2 = await s.open().write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
      expect(w2.startAt).toBe(2 * CHUNK);
      await w2.commit({ sha256: null });
      expect(Buffer.from(await readAll(cache, KEY)).equals(Buffer.from(data))).toBe(true);
    });

    it('changing a chunk read back does not change the cache', async () => {
      const data = bytes(CHUNK + 1, 6);
      await store(cache, KEY, data);
      for await (const c of cache.read(KEY)) c.fill(0);
      expect(Buffer.from(await readAll(cache, KEY)).equals(Buffer.from(data))).toBe(true);
    });

    it('does not resume without an etag', async () => {
      const w1 = await cache.write(KEY, { url: 'u', size: 3 * CHUNK, etag: null });
      await w1.append(bytes(2 * CHUNK));
      expect((await cache.getPartial(KEY))?.storedBytes).toBe(2 * CHUNK);
      const w2 = await cache.write(KEY, { url: 'u', size: 3 * CHUNK, etag: null });
      expect(w2.startAt).toBe(0);
    });

    it('rewriting a complete file removes its manifest until the new commit', async () => {
      await store(cache, KEY, bytes(2 * CHUNK + 3));
      const w = await cache.write(KEY, { url: 'u', size: 10, etag: '"e2"' });
      expect(w.startAt).toBe(0);
      expect(await cache.getManifest(KEY)).toBeNull();
      await w.append(bytes(10, 4));
      await w.commit({ sha256: null });
      expect(Array.from(await readAll(cache, KEY))).toEqual(Array.from(bytes(10, 4)));
    });

    it('discard drops everything of the file', async () => {
      const w = await cache.write(KEY, { url: 'u', size: 3 * CHUNK, etag: '"e1"' });
      await w.append(bytes(3 * CHUNK));
      await w.discard();
      expect(await cache.getPartial(KEY)).toBeNull();
      expect(await cache.getManifest(KEY)).toBeNull();
      await expect(w.commit({ sha256: null })).rejects.toThrow(/discarded/);
      const again = await cache.write(KEY, { url: 'u', size: 3 * CHUNK, etag: '"e1"' });
      expect(again.startAt).toBe(0);
    });

    it('list, delete and clear', async () => {
      await store(cache, { model: 'org/a', revision: 'main', file: 'x.bin' }, bytes(100));
      await store(cache, { model: 'org/a', revision: 'main', file: 'sub/y.bin' }, bytes(CHUNK + 1));
      await store(cache, { model: 'org/a', revision: 'v2', file: 'x.bin' }, bytes(50));
      await store(cache, { model: 'org/b', revision: 'main', file: 'x.bin' }, bytes(7));
      const unfinished = await cache.write({ model: 'org/b', revision: 'main', file: 'big.bin' }, { url: 'u', size: 3 * CHUNK, etag: '"e"' });
      await unfinished.append(bytes(CHUNK));

      expect(await cache.list()).toEqual([
        { model: 'org/a', revision: 'main', files: [{ file: 'sub/y.bin', size: CHUNK + 1 }, { file: 'x.bin', size: 100 }], size: CHUNK + 101 },
        { model: 'org/a', revision: 'v2', files: [{ file: 'x.bin', size: 50 }], size: 50 },
        { model: 'org/b', revision: 'main', files: [{ file: 'x.bin', size: 7 }], size: 7 },
      ]);

      await cache.delete('org/a', 'v2');
      expect((await cache.list()).map((m) => `${m.model}@${m.revision}`)).toEqual(['org/a@main', 'org/b@main']);
      await cache.delete('org/b');
      expect(await cache.getPartial({ model: 'org/b', revision: 'main', file: 'big.bin' })).toBeNull();
      expect((await cache.list()).map((m) => `${m.model}@${m.revision}`)).toEqual(['org/a@main']);
      await cache.clear();
      expect(await cache.list()).toEqual([]);
      expect(await cache.getManifest({ model: 'org/a', revision: 'main', file: 'x.bin' })).toBeNull();
    });

    it('keeps models whose names share a prefix apart', async () => {
      await store(cache, { model: 'org/a', revision: 'main', file: 'x' }, bytes(10));
      await store(cache, { model: 'org/a@b', revision: 'main', file: 'x' }, bytes(20));
      await store(cache, { model: 'org/ab', revision: 'main', file: 'x' }, bytes(30));
      await cache.delete('org/a');
      expect((await cache.list()).map((m) => m.model)).toEqual(['org/a@b', 'org/ab']);
      expect((await readAll(cache, { model: 'org/a@b', revision: 'main', file: 'x' })).length).toBe(20);
    });

    if (canDropChunk) {
      it('a missing chunk is a DownloadError naming the file, and the manifest is removed', async () => {
        const data = bytes(3 * CHUNK + 9);
        await store(cache, KEY, data);
        await s.dropChunk!(KEY, 1);
        const seen: number[] = [];
        let error: unknown;
        try {
          for await (const c of cache.read(KEY)) seen.push(c.length);
        } catch (e) {
          error = e;
        }
        expect(seen).toEqual([CHUNK]);
        expect(error).toBeInstanceOf(DownloadError);
        expect(String((error as Error).message)).toContain('model.safetensors');
        expect(await cache.getManifest(KEY)).toBeNull();
        const w = await cache.write(KEY, { url: 'u', size: data.length, etag: '"e1"' });
        expect(w.startAt).toBe(0);
      });
    }
  });
}

coreTests(
  'memory cache',
  async () => {
    const cache = openMemoryCache(CHUNK);
    return { open: () => cache };
  },
  false,
);

let dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});

coreTests(
  'folder cache',
  async () => {
    const folder = await mkdtemp(join(tmpdir(), 'webslm-cache-'));
    dirs.push(folder);
    return {
      open: () => openFolderCache(folder, CHUNK),
      async dropChunk(key, n) {
        const fileDir = join(folder, encodeURIComponent(key.model), encodeURIComponent(key.revision), encodeURIComponent(key.file));
        await unlink(join(fileDir, `${n}.chunk`));
      },
    };
  },
  true,
);

describe('folder cache layout', () => {
  it('keeps one folder per file with chunk files and manifest.json, and no temp files', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'webslm-cache-'));
    dirs.push(folder);
    const cache = openFolderCache(folder, CHUNK);
    await store(cache, { model: 'org/tiny', revision: 'main', file: 'onnx/model.onnx' }, bytes(2 * CHUNK + 1));
    const fileDir = join(folder, 'org%2Ftiny', 'main', 'onnx%2Fmodel.onnx');
    expect((await readdir(fileDir)).sort()).toEqual(['0.chunk', '1.chunk', '2.chunk', 'manifest.json']);
    await cache.delete('org/tiny');
    expect(await readdir(folder)).toEqual([]);
  });

  it('clear leaves unrelated files in the folder alone', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'webslm-cache-'));
    dirs.push(folder);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(folder, 'notes.txt'), 'keep me');
    const cache = openFolderCache(folder, CHUNK);
    await store(cache, KEY, bytes(10));
    await cache.clear();
    expect(await readdir(folder)).toEqual(['notes.txt']);
  });

  it('path parts cannot escape the folder', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'webslm-cache-'));
    dirs.push(folder);
    const cache = openFolderCache(join(folder, 'root'), CHUNK);
    const key = { model: '..', revision: '..', file: '../../x' };
    await store(cache, key, bytes(5));
    expect(await readdir(folder)).toEqual(['root']);
    expect((await readAll(cache, key)).length).toBe(5);
  });
});

describe('memory cache quota', () => {
  it('QuotaError names the bytes needed and free, and leaves no manifest', async () => {
    const cache = openMemoryCache(CHUNK, 3000);
    await store(cache, { ...KEY, file: 'small.bin' }, bytes(1000));
    let error: unknown;
    try {
      await cache.write(KEY, { url: 'u', size: 5000, etag: '"e"' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QuotaError);
    expect((error as Error).message).toMatch(/5000 bytes/);
    expect((error as Error).message).toMatch(/2000 bytes/);
    expect((error as Error).message).toContain('model.safetensors');
    expect(await cache.getManifest(KEY)).toBeNull();
    // What fits still fits.
    await store(cache, { ...KEY, file: 'fits.bin' }, bytes(2000));
    expect((await cache.list())[0].size).toBe(3000);
  });

  it('counts only the bytes still to store when resuming', async () => {
    const cache = openMemoryCache(CHUNK, 3 * CHUNK);
    const w = await cache.write(KEY, { url: 'u', size: 3 * CHUNK, etag: '"e"' });
    await w.append(bytes(2 * CHUNK));
    const resumed = await cache.write(KEY, { url: 'u', size: 3 * CHUNK, etag: '"e"' });
    expect(resumed.startAt).toBe(2 * CHUNK);
    await resumed.append(bytes(CHUNK));
    await resumed.commit({ sha256: null });
    await expect(cache.write({ ...KEY, file: 'more' }, { url: 'u', size: 1, etag: null })).rejects.toBeInstanceOf(QuotaError);
  });

  it('chunk storage beyond the quota is a QuotaError too (two writers at once)', async () => {
    const cache = openMemoryCache(CHUNK, 3 * CHUNK);
    const a = await cache.write({ ...KEY, file: 'a' }, { url: 'u', size: 2 * CHUNK, etag: null });
    const b = await cache.write({ ...KEY, file: 'b' }, { url: 'u', size: 2 * CHUNK, etag: null });
    await a.append(bytes(2 * CHUNK));
    await a.commit({ sha256: null });
    await b.append(bytes(CHUNK));
    await expect(b.append(bytes(CHUNK))).rejects.toBeInstanceOf(QuotaError);
    expect(await cache.getManifest({ ...KEY, file: 'b' })).toBeNull();
    expect((await cache.getPartial({ ...KEY, file: 'b' }))?.storedBytes).toBe(CHUNK);
  });
});
