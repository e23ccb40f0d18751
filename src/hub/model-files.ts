/**
 * A model's files as byte streams, from wherever they are: the cache when a complete copy is there, else the
 * network (resuming a partial copy), stored chunk by chunk as they stream past, a local folder in Node, or a folder
 * the user picked in the browser (`modelFromFiles`). Reports transformers.js-style progress events and checks a
 * download against the server's SHA-256 ETag when it has one.
 */
import { env } from '../api/env.js';
import { DownloadError } from '../errors.js';
import { openFolderCache, openIndexedDBCache, type FileCache, type FileKey } from './cache.js';
import { fetchFile, headInfo } from './fetch-file.js';
import { fileUrl } from './files.js';
import { isLocalFilesModel, openLocalFile } from './local-files.js';
import { Sha256 } from './sha256.js';

export interface ProgressInfo {
  /**
   * Per file: 'initiate', 'download' (from the network), 'progress', 'done'. 'progress_total' (from
   * `streamModelTensors`) is the progress over all the checkpoint's weight files together.
   */
  status: 'initiate' | 'download' | 'progress' | 'progress_total' | 'done' | 'ready';
  /** The model id, URL or folder. */
  name: string;
  /** The file; for 'progress_total', the file being read at the time. */
  file: string;
  loaded?: number;
  total?: number;
  /** Percent, 0 to 100. */
  progress?: number;
}
export type ProgressCallback = (info: ProgressInfo) => void;

export interface ModelFileOptions {
  revision?: string;
  signal?: AbortSignal;
  progress_callback?: ProgressCallback;
  /** Request headers, e.g. `{ Authorization: 'Bearer …' }` for gated models behind your own proxy. */
  headers?: Record<string, string>;
  /** The cache to use; `null` for none. Default: IndexedDB in browsers (env.useBrowserCache), env.cacheDir in Node. */
  cache?: FileCache | null;
  /** Passed to the downloader (tests shorten these). */
  retries?: number;
  backoffMs?: number;
}

export interface ModelFile {
  /** Bytes in the file; null when the server does not say (then nothing is cached). */
  size: number | null;
  /** The file's bytes in order; pull them to make progress (back-pressure reaches the network). */
  chunks: AsyncIterable<Uint8Array>;
  fromCache: boolean;
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

let defaultCache: { setting: string; cache: FileCache | null } | null = null;

/**
 * The cache the loaders use when given none: IndexedDB database `env.cacheName` in browsers and workers (when
 * `env.useBrowserCache`), folder `env.cacheDir` in Node, or null for no cache. One instance per setting: the same
 * object is returned until the settings change.
 */
export function getDefaultCache(): FileCache | null {
  let setting: string;
  if (isNode()) setting = env.cacheDir ? `folder:${env.cacheDir}` : '';
  else setting = env.useBrowserCache && typeof indexedDB !== 'undefined' ? `indexeddb:${env.cacheName}` : '';
  if (defaultCache?.setting !== setting) {
    let cache: FileCache | null = null;
    if (setting.startsWith('folder:')) cache = openFolderCache(env.cacheDir);
    else if (setting.startsWith('indexeddb:')) cache = openIndexedDBCache(env.cacheName);
    defaultCache = { setting, cache };
  }
  return defaultCache.cache;
}

function cacheFor(options: ModelFileOptions): FileCache | null {
  return options.cache !== undefined ? options.cache : getDefaultCache();
}

// Node built-ins for local folders, typed here so the browser build needs no Node types.
interface NodeFileHandle {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}
interface NodeFsPromises {
  open(path: string, flags: 'r'): Promise<NodeFileHandle>;
  stat(path: string): Promise<{ isDirectory(): boolean }>;
}
const NODE_FS_PROMISES = 'node:fs/promises';
const NODE_PATH = 'node:path';

async function localFile(model: string, file: string): Promise<{ path: string; fs: NodeFsPromises } | null> {
  if (!isNode() || /^[a-z][a-z\d+.-]{1,}:\/\//i.test(model)) return null;
  const fs = (await import(/* @vite-ignore */ NODE_FS_PROMISES)) as NodeFsPromises;
  const path = (await import(/* @vite-ignore */ NODE_PATH)) as { join(...p: string[]): string };
  for (const folder of env.localModelPath ? [model, path.join(env.localModelPath, model)] : [model]) {
    try {
      if ((await fs.stat(folder)).isDirectory()) return { path: path.join(folder, file), fs };
    } catch {
      // not there
    }
  }
  return null;
}

const CHUNK = 4 * 2 ** 20;

async function* readLocal(handle: NodeFileHandle, size: number, report: (loaded: number) => void) {
  try {
    for (let at = 0; at < size; ) {
      const buffer = new Uint8Array(Math.min(CHUNK, size - at));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
      if (bytesRead === 0) break;
      at += bytesRead;
      report(at);
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** Opens `file` of `model` for streaming (see the module comment). */
export async function openModelFile(model: string, file: string, options: ModelFileOptions = {}): Promise<ModelFile> {
  const emit = options.progress_callback ?? (() => {});
  const revision = options.revision ?? 'main';
  emit({ status: 'initiate', name: model, file });
  const progress = (loaded: number, total: number) =>
    emit({ status: 'progress', name: model, file, loaded, total, progress: total > 0 ? (loaded / total) * 100 : 100 });

  if (isLocalFilesModel(model)) {
    const { size, chunks } = openLocalFile(model, file, progress);
    return { size, fromCache: false, chunks: withDone(chunks, () => emit({ status: 'done', name: model, file })) };
  }

  const local = await localFile(model, file);
  if (local) {
    let handle: NodeFileHandle;
    try {
      handle = await local.fs.open(local.path, 'r');
    } catch (e) {
      const missing = (e as { code?: string }).code === 'ENOENT';
      throw new DownloadError(`Cannot read ${file} of "${model}" (${local.path}): ${e instanceof Error ? e.message : e}`, {
        cause: e,
        status: missing ? 404 : undefined,
      });
    }
    const size = (await handle.stat()).size;
    return { size, fromCache: false, chunks: withDone(readLocal(handle, size, (n) => progress(n, size)), () => emit({ status: 'done', name: model, file })) };
  }

  const cache = cacheFor(options);
  const key: FileKey = { model, revision, file };
  const manifest = cache ? await cache.getManifest(key) : null;
  if (cache && manifest) {
    const size = manifest.size;
    async function* fromCache() {
      let loaded = 0;
      for await (const chunk of cache!.read(key)) {
        loaded += chunk.length;
        progress(loaded, size);
        yield chunk;
      }
    }
    return { size, fromCache: true, chunks: withDone(fromCache(), () => emit({ status: 'done', name: model, file })) };
  }

  const url = fileUrl(model, file, revision);
  const fetchOptions = { file, model, signal: options.signal, headers: options.headers, retries: options.retries, backoffMs: options.backoffMs };
  const head = await headInfo(url, fetchOptions);
  if (head.size === null) {
    // A server that does not tell the size (some dev servers) still serves the file, uncached and unresumable.
    emit({ status: 'download', name: model, file });
    async function* plain() {
      let loaded = 0;
      for await (const chunk of fetchFile(url, fetchOptions)) {
        loaded += chunk.length;
        emit({ status: 'progress', name: model, file, loaded });
        yield chunk;
      }
    }
    return { size: null, fromCache: false, chunks: withDone(plain(), () => emit({ status: 'done', name: model, file })) };
  }
  const size = head.size;
  // The Hub's ETag of an LFS file is the SHA-256 of its content.
  const expectedSha = head.etag && /^"?[0-9a-f]{64}"?$/i.test(head.etag) ? head.etag.replaceAll('"', '').toLowerCase() : null;
  const writer = cache ? await cache.write(key, { url, size, etag: head.etag }) : null;
  emit({ status: 'download', name: model, file });

  async function* download() {
    const startAt = writer?.startAt ?? 0;
    const sha = expectedSha ? new Sha256() : null;
    // A resumed download first replays what is stored, so its reader (and the checksum) sees the file from byte 0.
    if (writer && startAt > 0) {
      let loaded = 0;
      for await (const chunk of writer.readStored()) {
        sha?.update(chunk);
        loaded += chunk.length;
        progress(loaded, size);
        yield chunk;
      }
    }
    // An interrupted download (error, abort, or the consumer stopping) never reaches the commit below: the chunks
    // stored so far stay as the writer's partial state, and the next attempt resumes from them.
    for await (const chunk of fetchFile(url, { ...fetchOptions, startAt, expectedSize: size, onProgress: (n) => progress(n, size) })) {
      sha?.update(chunk);
      if (writer) await writer.append(chunk);
      yield chunk;
    }
    const got = sha?.hex() ?? null;
    if (sha && got !== expectedSha) {
      await writer?.discard();
      throw new DownloadError(`${file} of "${model}" is corrupt: its SHA-256 is ${got}, the server says ${expectedSha}.`);
    }
    if (writer) await writer.commit({ sha256: got });
  }
  return { size, fromCache: false, chunks: withDone(download(), () => emit({ status: 'done', name: model, file })) };
}

async function* withDone(chunks: AsyncIterable<Uint8Array>, done: () => void): AsyncGenerator<Uint8Array> {
  yield* chunks;
  done();
}

/** The whole of a small file (config.json, tokenizer.json, index) as text, through the same cache and progress path. */
export async function readModelFileText(model: string, file: string, options: ModelFileOptions = {}): Promise<string> {
  const { chunks } = await openModelFile(model, file, options);
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of chunks) {
    parts.push(chunk);
    length += chunk.length;
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return new TextDecoder().decode(bytes);
}
