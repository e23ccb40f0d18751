/**
 * A chunked cache for downloaded model files, where a partial download never looks complete.
 *
 * A file is stored as numbered chunks of `chunkSize` bytes. A chunk is written only once it is full (the last,
 * shorter one at `commit`), and after each stored chunk a small "partial" record says how many chunks are in, so an
 * interrupted download resumes at a chunk boundary. The manifest is written last: a file without a manifest is
 * never read as complete, whatever chunks are present.
 *
 * Three places to keep files:
 *  - `openIndexedDBCache`: browsers and workers (keys `chunk:<model>@<revision>/<file>#<n>`, `partial:...`,
 *    `manifest:...` in one IndexedDB object store);
 *  - `openFolderCache`: Node, one folder per file with `<n>.chunk` files, `partial.json` and `manifest.json`
 *    (each written under a temporary name, then renamed);
 *  - `openMemoryCache`: tests, and `env.useBrowserCache = false`.
 */
import { createStore, clear as idbClear, del as idbDel, delMany as idbDelMany, get as idbGet, keys as idbKeys, set as idbSet } from 'idb-keyval';
import { env } from '../api/env.js';
import { DownloadError, QuotaError } from '../errors.js';

export interface FileKey {
  model: string;
  revision: string;
  file: string;
}

export interface FileManifest extends FileKey {
  url: string;
  size: number;
  etag: string | null;
  sha256: string | null;
  chunkSize: number;
  chunkCount: number;
  /** When the file was completed (ms since the epoch). */
  storedAt: number;
}

export interface PartialState {
  /** Bytes stored so far: always a whole number of chunks. */
  storedBytes: number;
  size: number;
  etag: string | null;
}

export interface CacheWriter {
  /** Bytes already stored before this writer (resume point). */
  readonly startAt: number;
  /**
   * The bytes stored before this writer (the first `startAt`), chunk by chunk: a resumed download replays them to its
   * reader before the network takes over. A missing chunk is a `DownloadError` and drops the file's entry.
   */
  readStored(): AsyncIterable<Uint8Array>;
  /** Appends downloaded bytes; full chunks are stored as they fill (the partial state is updated after each stored chunk). */
  append(bytes: Uint8Array): Promise<void>;
  /** Stores the last chunk, then writes the manifest LAST: only now is the file complete. */
  commit(info: { sha256: string | null }): Promise<FileManifest>;
  /** Drops everything of this file (e.g. after a checksum mismatch). */
  discard(): Promise<void>;
}

export interface CachedModel {
  model: string;
  revision: string;
  files: Array<{ file: string; size: number }>;
  /** Total bytes of the complete files. */
  size: number;
}

export interface FileCache {
  /** The manifest of a complete file, or null. */
  getManifest(key: FileKey): Promise<FileManifest | null>;
  /** How far an unfinished download of the file got, or null. */
  getPartial(key: FileKey): Promise<PartialState | null>;
  /**
   * The chunks of a complete file, in order. A missing or damaged chunk is a `DownloadError` naming the file, and
   * the file's entry is then removed so that it is fetched again.
   */
  read(key: FileKey): AsyncIterable<Uint8Array>;
  /**
   * Starts (or resumes) storing a file. An unfinished download with the same size, chunk size and (non-null) ETag
   * is resumed from its last stored chunk; anything else of the file is dropped first. Throws a `QuotaError` when
   * the free space is known and smaller than the bytes still to store.
   */
  write(key: FileKey, info: { url: string; size: number; etag: string | null }): Promise<CacheWriter>;
  /** The complete files, grouped by model and revision. */
  list(): Promise<CachedModel[]>;
  /** Drops every file (complete or not) of a model, or of one revision of it. */
  delete(model: string, revision?: string): Promise<void>;
  /** Drops everything. */
  clear(): Promise<void>;
}

export const DEFAULT_CHUNK_SIZE = 32 * 2 ** 20;

// ---------------------------------------------------------------------------------------------------------------
// Storage back ends: the cache logic below is shared, each back end only stores and finds records.

interface PartialRecord extends FileKey {
  url: string;
  size: number;
  etag: string | null;
  chunkSize: number;
  storedChunks: number;
}

interface Backend {
  readChunk(key: FileKey, n: number): Promise<Uint8Array | null>;
  writeChunk(key: FileKey, n: number, bytes: Uint8Array): Promise<void>;
  readPartial(key: FileKey): Promise<PartialRecord | null>;
  writePartial(record: PartialRecord): Promise<void>;
  removePartial(key: FileKey): Promise<void>;
  readManifest(key: FileKey): Promise<FileManifest | null>;
  writeManifest(manifest: FileManifest): Promise<void>;
  /** Removes the manifest first, then the chunks and partial record. */
  removeFile(key: FileKey): Promise<void>;
  manifests(): Promise<FileManifest[]>;
  removeModel(model: string, revision?: string): Promise<void>;
  removeAll(): Promise<void>;
  /** Free bytes for new chunks, or null when unknown. */
  freeBytes(): Promise<number | null>;
  /** Called before each `write`. */
  beforeWrite?(): Promise<void>;
}

function describe(key: FileKey): string {
  return `${key.file} of "${key.model}"@${key.revision}`;
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${n} bytes (${v.toFixed(1)} ${units[u]})`;
}

function quotaError(key: FileKey, needed: number, free: number, cause?: unknown): QuotaError {
  return new QuotaError(
    `Not enough storage to cache ${describe(key)}: it needs ${formatBytes(needed)} more, but only ` +
      `${formatBytes(Math.max(0, free))} is free. Free some space (e.g. delete cached models) and try again.`,
    cause === undefined ? {} : { cause },
  );
}

function chunkCountOf(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

function chunkLength(n: number, size: number, chunkSize: number): number {
  return Math.min(chunkSize, size - n * chunkSize);
}

// ---------------------------------------------------------------------------------------------------------------
// The cache itself.

class ChunkedCache implements FileCache {
  constructor(
    private readonly backend: Backend,
    private readonly chunkSize: number,
  ) {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  }

  getManifest(key: FileKey): Promise<FileManifest | null> {
    return this.backend.readManifest(key);
  }

  async getPartial(key: FileKey): Promise<PartialState | null> {
    const p = await this.backend.readPartial(key);
    if (!p) return null;
    return { storedBytes: Math.min(p.size, p.storedChunks * p.chunkSize), size: p.size, etag: p.etag };
  }

  read(key: FileKey): AsyncIterable<Uint8Array> {
    const backend = this.backend;
    return {
      async *[Symbol.asyncIterator]() {
        const m = await backend.readManifest(key);
        if (!m) throw new DownloadError(`${describe(key)} is not in the cache.`);
        for (let n = 0; n < m.chunkCount; n++) {
          const bytes = await backend.readChunk(key, n);
          const expected = chunkLength(n, m.size, m.chunkSize);
          if (!bytes || bytes.byteLength !== expected) {
            await backend.removeFile(key);
            const what = bytes ? `has ${bytes.byteLength} bytes instead of ${expected}` : 'is missing';
            throw new DownloadError(
              `Chunk ${n + 1} of ${m.chunkCount} of cached ${describe(key)} ${what}; the cache entry was removed, so fetch the file again.`,
            );
          }
          yield bytes;
        }
      },
    };
  }

  async write(key: FileKey, info: { url: string; size: number; etag: string | null }): Promise<CacheWriter> {
    if (!Number.isSafeInteger(info.size) || info.size < 0) throw new RangeError(`Invalid size ${info.size} for ${describe(key)}`);
    await this.backend.beforeWrite?.();
    const partial = await this.backend.readPartial(key);
    const manifest = await this.backend.readManifest(key);
    let record: PartialRecord;
    const resumable =
      !manifest &&
      partial !== null &&
      partial.size === info.size &&
      partial.etag !== null &&
      partial.etag === info.etag &&
      partial.chunkSize === this.chunkSize;
    if (resumable) {
      record = { ...partial, url: info.url };
    } else {
      if (partial || manifest) await this.backend.removeFile(key);
      record = { model: key.model, revision: key.revision, file: key.file, url: info.url, size: info.size, etag: info.etag, chunkSize: this.chunkSize, storedChunks: 0 };
    }
    const startAt = Math.min(info.size, record.storedChunks * this.chunkSize);
    const free = await this.backend.freeBytes();
    const needed = info.size - startAt;
    if (free !== null && needed > free) throw quotaError(key, needed, free);
    await this.backend.writePartial(record);
    return new Writer(this.backend, key, record, startAt);
  }

  async list(): Promise<CachedModel[]> {
    const groups = new Map<string, CachedModel>();
    for (const m of await this.backend.manifests()) {
      const id = JSON.stringify([m.model, m.revision]);
      let g = groups.get(id);
      if (!g) groups.set(id, (g = { model: m.model, revision: m.revision, files: [], size: 0 }));
      g.files.push({ file: m.file, size: m.size });
      g.size += m.size;
    }
    const out = [...groups.values()];
    for (const g of out) g.files.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    out.sort((a, b) => (a.model !== b.model ? (a.model < b.model ? -1 : 1) : a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
    return out;
  }

  delete(model: string, revision?: string): Promise<void> {
    return this.backend.removeModel(model, revision);
  }

  clear(): Promise<void> {
    return this.backend.removeAll();
  }
}

class Writer implements CacheWriter {
  private nextChunk: number;
  private written: number;
  private buffer: Uint8Array | null = null;
  private filled = 0;
  private done: 'committed' | 'discarded' | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly backend: Backend,
    private readonly key: FileKey,
    private readonly record: PartialRecord,
    readonly startAt: number,
  ) {
    this.nextChunk = record.storedChunks;
    this.written = startAt;
    this.storedAtStart = record.storedChunks;
  }

  private readonly storedAtStart: number;

  async *readStored(): AsyncIterable<Uint8Array> {
    const { chunkSize, size } = this.record;
    for (let n = 0; n < this.storedAtStart; n++) {
      const bytes = await this.backend.readChunk(this.key, n);
      const expected = chunkLength(n, size, chunkSize);
      if (!bytes || bytes.byteLength !== expected) {
        await this.backend.removeFile(this.key);
        throw new DownloadError(
          `Chunk ${n + 1} of the unfinished download of ${describe(this.key)} is missing or damaged; the entry was removed, so load again.`,
        );
      }
      yield bytes;
    }
  }

  append(bytes: Uint8Array): Promise<void> {
    return this.serial(() => this.doAppend(bytes));
  }

  commit(info: { sha256: string | null }): Promise<FileManifest> {
    return this.serial(() => this.doCommit(info));
  }

  discard(): Promise<void> {
    return this.serial(async () => {
      this.done = 'discarded';
      this.buffer = null;
      await this.backend.removeFile(this.key);
    });
  }

  /** Runs operations one after another, in call order. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.queue.then(op);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private checkOpen(): void {
    if (this.done) throw new Error(`This writer for ${describe(this.key)} was already ${this.done}.`);
  }

  private async doAppend(bytes: Uint8Array): Promise<void> {
    this.checkOpen();
    const { size, chunkSize } = this.record;
    if (this.written + bytes.byteLength > size) {
      throw new DownloadError(`${describe(this.key)} delivered more than its ${size} bytes.`);
    }
    let offset = 0;
    while (offset < bytes.byteLength) {
      if (!this.buffer) {
        this.buffer = new Uint8Array(chunkLength(this.nextChunk, size, chunkSize));
        this.filled = 0;
      }
      const take = Math.min(this.buffer.byteLength - this.filled, bytes.byteLength - offset);
      this.buffer.set(bytes.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      this.written += take;
      if (this.filled === chunkSize) await this.storeChunk();
    }
  }

  private async storeChunk(): Promise<void> {
    const chunk = this.buffer!;
    await this.backend.writeChunk(this.key, this.nextChunk, chunk);
    this.nextChunk++;
    this.buffer = null;
    this.filled = 0;
    this.record.storedChunks = this.nextChunk;
    await this.backend.writePartial(this.record);
  }

  private async doCommit(info: { sha256: string | null }): Promise<FileManifest> {
    this.checkOpen();
    const { size, chunkSize } = this.record;
    if (this.written !== size) {
      throw new DownloadError(`${describe(this.key)} is incomplete: got ${this.written} of ${size} bytes.`);
    }
    if (this.buffer && this.filled > 0) {
      await this.backend.writeChunk(this.key, this.nextChunk, this.buffer);
      this.nextChunk++;
      this.buffer = null;
      this.filled = 0;
    }
    const manifest: FileManifest = {
      model: this.key.model,
      revision: this.key.revision,
      file: this.key.file,
      url: this.record.url,
      size,
      etag: this.record.etag,
      sha256: info.sha256,
      chunkSize,
      chunkCount: chunkCountOf(size, chunkSize),
      storedAt: Date.now(),
    };
    await this.backend.writeManifest(manifest);
    this.done = 'committed';
    await this.backend.removePartial(this.key);
    return manifest;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Key-value back end (memory and IndexedDB).

interface KeyValue {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
  delMany(keys: string[]): Promise<void>;
  keys(): Promise<string[]>;
  clear(): Promise<void>;
}

/** `<model>@<revision>/<file>`, with the separators escaped inside each part so prefixes are unambiguous. */
function fileId(key: FileKey): string {
  return `${modelPrefix(key.model)}${revisionPart(key.revision)}/${key.file.replace(/[%#]/g, pct)}`;
}
function pct(c: string): string {
  return `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
}
function modelPrefix(model: string): string {
  return `${model.replace(/[%@#]/g, pct)}@`;
}
function revisionPart(revision: string): string {
  return revision.replace(/[%@#/]/g, pct);
}
const KINDS = ['chunk:', 'partial:', 'manifest:'] as const;

class KeyValueBackend implements Backend {
  constructor(
    private readonly kv: KeyValue,
    readonly freeBytes: () => Promise<number | null>,
    readonly beforeWrite?: () => Promise<void>,
  ) {}

  async readChunk(key: FileKey, n: number): Promise<Uint8Array | null> {
    const v = await this.kv.get(`chunk:${fileId(key)}#${n}`);
    if (v instanceof Uint8Array) return v;
    if (v instanceof ArrayBuffer) return new Uint8Array(v);
    return null;
  }

  async writeChunk(key: FileKey, n: number, bytes: Uint8Array): Promise<void> {
    // A view into a larger buffer would store the whole buffer: store exactly the chunk.
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    try {
      await this.kv.set(`chunk:${fileId(key)}#${n}`, own);
    } catch (e) {
      if (e instanceof QuotaError) throw e;
      if ((e as { name?: string } | null)?.name === 'QuotaExceededError') {
        const free = (await this.freeBytes().catch(() => null)) ?? 0;
        throw quotaError(key, own.byteLength, free, e);
      }
      throw e;
    }
  }

  async readPartial(key: FileKey): Promise<PartialRecord | null> {
    return ((await this.kv.get(`partial:${fileId(key)}`)) as PartialRecord | undefined) ?? null;
  }

  writePartial(record: PartialRecord): Promise<void> {
    return this.kv.set(`partial:${fileId(record)}`, { ...record });
  }

  removePartial(key: FileKey): Promise<void> {
    return this.kv.del(`partial:${fileId(key)}`);
  }

  async readManifest(key: FileKey): Promise<FileManifest | null> {
    return ((await this.kv.get(`manifest:${fileId(key)}`)) as FileManifest | undefined) ?? null;
  }

  writeManifest(manifest: FileManifest): Promise<void> {
    return this.kv.set(`manifest:${fileId(manifest)}`, { ...manifest });
  }

  async removeFile(key: FileKey): Promise<void> {
    const id = fileId(key);
    await this.kv.del(`manifest:${id}`);
    const chunkPrefix = `chunk:${id}#`;
    const doomed = (await this.kv.keys()).filter((k) => k.startsWith(chunkPrefix));
    doomed.push(`partial:${id}`);
    await this.kv.delMany(doomed);
  }

  async manifests(): Promise<FileManifest[]> {
    const names = (await this.kv.keys()).filter((k) => k.startsWith('manifest:'));
    const values = await Promise.all(names.map((k) => this.kv.get(k)));
    return values.filter((v): v is FileManifest => v !== undefined && v !== null);
  }

  async removeModel(model: string, revision?: string): Promise<void> {
    const prefix = modelPrefix(model) + (revision === undefined ? '' : `${revisionPart(revision)}/`);
    const all = await this.kv.keys();
    const ours = (kind: string) => all.filter((k) => k.startsWith(kind) && k.slice(kind.length).startsWith(prefix));
    await this.kv.delMany(ours('manifest:'));
    await this.kv.delMany([...ours('chunk:'), ...ours('partial:')]);
  }

  async removeAll(): Promise<void> {
    const all = await this.kv.keys();
    await this.kv.delMany(all.filter((k) => k.startsWith('manifest:')));
    await this.kv.clear();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Memory.

/**
 * A cache in memory: for tests, and for `env.useBrowserCache = false`. With `quotaBytes`, chunk storage beyond it
 * fails with a `QuotaError` (and `write` checks it up front).
 */
export function openMemoryCache(chunkSize = DEFAULT_CHUNK_SIZE, quotaBytes?: number): FileCache {
  const map = new Map<string, unknown>();
  let used = 0;
  const sizeOf = (v: unknown) => (v instanceof Uint8Array ? v.byteLength : 0);
  const free = async () => (quotaBytes === undefined ? null : Math.max(0, quotaBytes - used));
  const kv: KeyValue = {
    async get(key) {
      // A copy, so that a reader transferring or changing the bytes cannot damage the stored chunk.
      const v = map.get(key);
      return v instanceof Uint8Array ? v.slice() : v;
    },
    async set(key, value) {
      const delta = sizeOf(value) - sizeOf(map.get(key));
      if (quotaBytes !== undefined && delta > 0 && used + delta > quotaBytes) {
        const e = new Error('quota exceeded');
        e.name = 'QuotaExceededError';
        throw e;
      }
      map.set(key, value);
      used += delta;
    },
    async del(key) {
      used -= sizeOf(map.get(key));
      map.delete(key);
    },
    async delMany(keys) {
      for (const k of keys) await kv.del(k);
    },
    async keys() {
      return [...map.keys()];
    },
    async clear() {
      map.clear();
      used = 0;
    },
  };
  return new ChunkedCache(new KeyValueBackend(kv, free), chunkSize);
}

// ---------------------------------------------------------------------------------------------------------------
// IndexedDB.

interface StorageLike {
  estimate?: () => Promise<{ quota?: number; usage?: number }>;
  persist?: () => Promise<boolean>;
}

function storageManager(): StorageLike | null {
  const nav = (globalThis as { navigator?: { storage?: StorageLike } }).navigator;
  return nav?.storage ?? null;
}

let persistRequested = false;

/**
 * A cache in IndexedDB database `name` (browsers and workers). The first write asks the browser to keep the
 * site's storage (`navigator.storage.persist()`), and free space is `quota - usage` from
 * `navigator.storage.estimate()` when the browser tells.
 */
export function openIndexedDBCache(name: string = env.cacheName, chunkSize = DEFAULT_CHUNK_SIZE): FileCache {
  const store = createStore(name, 'files');
  const kv: KeyValue = {
    get: (key) => idbGet(key, store),
    set: (key, value) => idbSet(key, value, store),
    del: (key) => idbDel(key, store),
    delMany: (keys) => (keys.length === 0 ? Promise.resolve() : idbDelMany(keys, store)),
    keys: async () => (await idbKeys(store)).filter((k): k is string => typeof k === 'string' && KINDS.some((p) => k.startsWith(p))),
    clear: () => idbClear(store),
  };
  const free = async (): Promise<number | null> => {
    const storage = storageManager();
    if (!storage?.estimate) return null;
    try {
      const { quota, usage } = await storage.estimate();
      if (typeof quota !== 'number' || typeof usage !== 'number') return null;
      return Math.max(0, quota - usage);
    } catch {
      return null;
    }
  };
  const beforeWrite = async () => {
    if (persistRequested) return;
    persistRequested = true;
    const storage = storageManager();
    if (typeof storage?.persist === 'function') {
      // Not awaited: some browsers ask the user, and the download need not wait for the answer. Refused or not
      // available (workers), the cache still works; the browser may just evict it under storage pressure.
      try {
        storage.persist().catch(() => undefined);
      } catch {
        // as above
      }
    }
  };
  return new ChunkedCache(new KeyValueBackend(kv, free, beforeWrite), chunkSize);
}

// ---------------------------------------------------------------------------------------------------------------
// A folder (Node).

// The Node built-ins used here, typed locally so the browser build needs no Node types, and imported through
// variables so bundlers for the browser leave them alone.
interface NodeFsPromises {
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  readFile(path: string): Promise<Uint8Array>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { recursive?: boolean; force?: boolean }): Promise<void>;
  rmdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  statfs?(path: string): Promise<{ bavail: number | bigint; bsize: number | bigint }>;
}
interface NodePath {
  join(...parts: string[]): string;
  dirname(path: string): string;
}
const NODE_FS_PROMISES = 'node:fs/promises';
const NODE_PATH = 'node:path';
let nodeModulesPromise: Promise<{ fs: NodeFsPromises; path: NodePath }> | null = null;
function nodeModules(): Promise<{ fs: NodeFsPromises; path: NodePath }> {
  nodeModulesPromise ??= Promise.all([import(/* @vite-ignore */ NODE_FS_PROMISES), import(/* @vite-ignore */ NODE_PATH)]).then(
    ([fs, path]) => ({ fs: fs as NodeFsPromises, path: path as NodePath }),
  );
  return nodeModulesPromise;
}

function isMissing(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** One path segment: percent-escaped so it cannot hold separators, `.`/`..` or characters Windows rejects. */
function segment(s: string): string {
  if (s === '') return '%';
  const enc = encodeURIComponent(s).replace(/[*!'()~]/g, pct);
  return /^\.+$/.test(enc) ? enc.replace(/\./g, '%2E') : enc;
}

class FolderBackend implements Backend {
  constructor(private readonly root: string) {}

  private async dir(key: FileKey): Promise<string> {
    const { path } = await nodeModules();
    return path.join(this.root, segment(key.model), segment(key.revision), segment(key.file));
  }

  private async writeAtomic(target: string, data: Uint8Array | string): Promise<void> {
    const { fs, path } = await nodeModules();
    const tmp = `${target}.tmp`;
    try {
      await fs.writeFile(tmp, data);
    } catch (e) {
      if (!isMissing(e)) throw e;
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(tmp, data);
    }
    await fs.rename(tmp, target);
  }

  private async readJson<T>(file: string): Promise<T | null> {
    const { fs } = await nodeModules();
    try {
      return JSON.parse(await fs.readFile(file, 'utf8')) as T;
    } catch (e) {
      if (isMissing(e) || e instanceof SyntaxError) return null;
      throw e;
    }
  }

  async readChunk(key: FileKey, n: number): Promise<Uint8Array | null> {
    const { fs, path } = await nodeModules();
    try {
      const b = await fs.readFile(path.join(await this.dir(key), `${n}.chunk`));
      // A plain Uint8Array that owns its whole buffer (safe to transfer).
      return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? new Uint8Array(b.buffer) : new Uint8Array(b);
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async writeChunk(key: FileKey, n: number, bytes: Uint8Array): Promise<void> {
    const { path } = await nodeModules();
    try {
      await this.writeAtomic(path.join(await this.dir(key), `${n}.chunk`), bytes);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOSPC') throw quotaError(key, bytes.byteLength, (await this.freeBytes()) ?? 0, e);
      throw e;
    }
  }

  async readPartial(key: FileKey): Promise<PartialRecord | null> {
    const { path } = await nodeModules();
    return this.readJson<PartialRecord>(path.join(await this.dir(key), 'partial.json'));
  }

  async writePartial(record: PartialRecord): Promise<void> {
    const { path } = await nodeModules();
    await this.writeAtomic(path.join(await this.dir(record), 'partial.json'), JSON.stringify(record));
  }

  async removePartial(key: FileKey): Promise<void> {
    const { fs, path } = await nodeModules();
    await fs.rm(path.join(await this.dir(key), 'partial.json'), { force: true });
  }

  async readManifest(key: FileKey): Promise<FileManifest | null> {
    const { path } = await nodeModules();
    return this.readJson<FileManifest>(path.join(await this.dir(key), 'manifest.json'));
  }

  async writeManifest(manifest: FileManifest): Promise<void> {
    const { path } = await nodeModules();
    await this.writeAtomic(path.join(await this.dir(manifest), 'manifest.json'), JSON.stringify(manifest));
  }

  async removeFile(key: FileKey): Promise<void> {
    await this.removeFileDir(await this.dir(key));
  }

  private async removeFileDir(dir: string): Promise<void> {
    const { fs, path } = await nodeModules();
    await fs.rm(path.join(dir, 'manifest.json'), { force: true });
    await fs.rm(dir, { recursive: true, force: true });
  }

  private async children(dir: string): Promise<string[]> {
    const { fs } = await nodeModules();
    try {
      return await fs.readdir(dir);
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  /** The folders that hold a file of this cache (with a manifest or a partial record), under model/revision. */
  private async fileDirs(model?: string, revision?: string): Promise<string[]> {
    const { path } = await nodeModules();
    const out: string[] = [];
    const models = model === undefined ? await this.children(this.root) : [segment(model)];
    for (const m of models) {
      const revisions = revision === undefined ? await this.children(path.join(this.root, m)) : [segment(revision)];
      for (const r of revisions) {
        for (const f of await this.children(path.join(this.root, m, r))) {
          const names = await this.children(path.join(this.root, m, r, f));
          if (names.includes('manifest.json') || names.includes('partial.json') || names.some((n) => n.endsWith('.chunk'))) {
            out.push(path.join(this.root, m, r, f));
          }
        }
      }
    }
    return out;
  }

  async manifests(): Promise<FileManifest[]> {
    const { path } = await nodeModules();
    const out: FileManifest[] = [];
    for (const dir of await this.fileDirs()) {
      const m = await this.readJson<FileManifest>(path.join(dir, 'manifest.json'));
      if (m) out.push(m);
    }
    return out;
  }

  private async removeDirs(dirs: string[]): Promise<void> {
    const { fs, path } = await nodeModules();
    for (const d of dirs) await this.removeFileDir(d);
    // Drop revision and model folders left empty (rmdir refuses non-empty ones, which are kept).
    const revisions = new Set(dirs.map((d) => path.dirname(d)));
    for (const rev of revisions) await fs.rmdir(rev).catch(() => undefined);
    for (const model of new Set([...revisions].map((r) => path.dirname(r)))) await fs.rmdir(model).catch(() => undefined);
  }

  async removeModel(model: string, revision?: string): Promise<void> {
    await this.removeDirs(await this.fileDirs(model, revision));
  }

  async removeAll(): Promise<void> {
    await this.removeDirs(await this.fileDirs());
  }

  async freeBytes(): Promise<number | null> {
    const { fs } = await nodeModules();
    if (typeof fs.statfs !== 'function') return null;
    await fs.mkdir(this.root, { recursive: true });
    try {
      const s = await fs.statfs(this.root);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      return null;
    }
  }
}

/**
 * A cache in a local folder (Node): `<folder>/<model>/<revision>/<file>/` holds `<n>.chunk` files, `partial.json`
 * while a download is unfinished, and `manifest.json` once it is complete (each path part percent-escaped).
 */
export function openFolderCache(folder: string, chunkSize = DEFAULT_CHUNK_SIZE): FileCache {
  return new ChunkedCache(new FolderBackend(folder), chunkSize);
}
