/**
 * A model folder the user picked in the browser (`<input type="file" webkitdirectory>`, drag and drop, or the
 * entries of `showDirectoryPicker()`), registered under a model id that the loaders accept like any other:
 *
 *   const id = modelFromFiles(input.files);           // 'local-files://1/'
 *   const tokenizer = await AutoTokenizer.from_pretrained(id);
 *
 * The files are read straight from the `File` objects, a slice at a time, and never copied into the cache.
 */
import { DownloadError } from '../errors.js';

export const LOCAL_FILES_SCHEME = 'local-files://';

interface Registered {
  name: string;
  files: Map<string, File>;
}

const registry = new Map<number, Registered>();
let nextId = 1;

/** A file's path inside the picked folder: its relative path (or name), without the picked folder itself. */
function relativePath(file: File): string {
  const rel = (file as { webkitRelativePath?: string }).webkitRelativePath;
  const path = (rel && rel.length > 0 ? rel : file.name).replace(/\\/g, '/').replace(/^\/+/, '');
  const slash = rel && rel.length > 0 ? path.indexOf('/') : -1;
  return slash >= 0 ? path.slice(slash + 1) : path;
}

/**
 * Registers `files` (a `FileList` or any iterable of `File`s) as a model and returns its id, `local-files://<n>/`.
 * A file is found by its path below the picked folder (`webkitRelativePath` without its first part), or by its
 * name when it has no relative path. `name` is kept for messages.
 */
export function modelFromFiles(files: Iterable<File> | FileList, name = 'local'): string {
  const map = new Map<string, File>();
  for (const file of files as Iterable<File>) {
    const path = relativePath(file);
    if (path !== '') map.set(path, file);
  }
  return modelFromFileMap(map, name);
}

/**
 * The files of a model registered by `modelFromFiles`, by path, with its name (null for other ids): what the Worker
 * engine sends across (`File`s are structured-cloneable; their bytes are not copied) to register them there.
 */
export function localModelFiles(model: string): { name: string; files: [string, File][] } | null {
  const id = parseId(model);
  const entry = id === null ? undefined : registry.get(id);
  return entry ? { name: entry.name, files: [...entry.files] } : null;
}

/** Registers files already keyed by their path in the model folder (the other side of `localModelFiles`). */
export function modelFromFileMap(files: Iterable<[string, File]>, name = 'local'): string {
  const id = nextId++;
  registry.set(id, { name, files: new Map(files) });
  return `${LOCAL_FILES_SCHEME}${id}/`;
}

/** Drops a model registered by `modelFromFiles` (its `File`s can then be garbage collected). */
export function forgetModelFiles(model: string): boolean {
  const id = parseId(model);
  return id !== null && registry.delete(id);
}

function parseId(model: string): number | null {
  if (!model.startsWith(LOCAL_FILES_SCHEME)) return null;
  const m = /^(\d+)\/*$/.exec(model.slice(LOCAL_FILES_SCHEME.length));
  return m ? Number(m[1]) : null;
}

export function isLocalFilesModel(model: string): boolean {
  return model.startsWith(LOCAL_FILES_SCHEME);
}

const CHUNK = 4 * 2 ** 20;

/**
 * `file` of a registered model: its size and a reader of its bytes in chunks of at most 4 MiB, each slice read only
 * when the consumer asks for it. A file the folder does not hold is a `DownloadError` with status 404; an id that
 * was never registered (or was forgotten) is a `DownloadError` without a status.
 */
export function openLocalFile(
  model: string,
  file: string,
  onProgress: (loaded: number, size: number) => void,
): { size: number; chunks: AsyncIterable<Uint8Array> } {
  const id = parseId(model);
  const entry = id === null ? undefined : registry.get(id);
  if (!entry) {
    throw new DownloadError(`"${model}" is not a registered set of local files (register them with modelFromFiles first).`);
  }
  const found = entry.files.get(file.replace(/^\/+/, ''));
  if (!found) throw new DownloadError(`The picked folder "${entry.name}" (${model}) has no file ${file}.`, { status: 404 });
  const size = found.size;
  async function* read(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < size; ) {
      const end = Math.min(size, at + CHUNK);
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await found!.slice(at, end).arrayBuffer());
      } catch (e) {
        throw new DownloadError(`Cannot read ${file} of the picked folder "${entry!.name}": ${e instanceof Error ? e.message : e}`, { cause: e });
      }
      if (bytes.byteLength === 0) {
        throw new DownloadError(`${file} of the picked folder "${entry!.name}" ended at byte ${at} of ${size} (was it changed on disk?).`);
      }
      at += bytes.byteLength;
      onProgress(at, size);
      yield bytes;
    }
  }
  return { size, chunks: read() };
}
