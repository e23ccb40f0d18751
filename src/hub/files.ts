/**
 * Reading a model's small text files (config.json, tokenizer.json, ...) from wherever the model is: a Hub repo id,
 * a URL to a folder, or (in Node) a local folder. Errors are DownloadErrors that name the file.
 */
import { DownloadError } from '../errors.js';
import { env } from '../api/env.js';

export interface FileOptions {
  revision?: string;
  signal?: AbortSignal;
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** A URL: anything with a scheme, or in a browser a path ('/models/x', './x') relative to the page. */
function isUrl(source: string): boolean {
  if (/^[a-z][a-z\d+.-]*:/i.test(source)) return true;
  return !isNode() && /^(\/|\.\.?\/)/.test(source);
}

/** The URL of `file` in `model` (a Hub id or a folder URL). */
export function fileUrl(model: string, file: string, revision = 'main'): string {
  if (isUrl(model)) return `${model.replace(/\/+$/, '')}/${file}`;
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(model)) {
    throw new DownloadError(`"${model}" is neither a Hub repo id (org/name), a URL nor a local folder.`);
  }
  if (!env.allowRemoteModels) {
    throw new DownloadError(`Cannot load ${file} of "${model}": env.allowRemoteModels is false and it is not a local folder.`);
  }
  const path = env.remotePathTemplate.replaceAll('{model}', model).replaceAll('{revision}', encodeURIComponent(revision));
  return `${env.remoteHost.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}${file}`;
}

// The Node built-ins used for local folders, typed here so the browser build needs no Node types, and imported
// through variables so bundlers for the browser leave them alone.
interface NodeFs {
  statSync(path: string): { isDirectory(): boolean };
  promises: { readFile(path: string, encoding: 'utf8'): Promise<string> };
}
interface NodePath {
  join(...parts: string[]): string;
}
const NODE_FS = 'node:fs';
const NODE_PATH = 'node:path';
async function nodeModules(): Promise<{ fs: NodeFs; path: NodePath }> {
  const [fs, path] = await Promise.all([import(/* @vite-ignore */ NODE_FS), import(/* @vite-ignore */ NODE_PATH)]);
  return { fs: fs as NodeFs, path: path as NodePath };
}

/** A local folder holding the model, in Node: the path itself, or `env.localModelPath/<id>`. */
async function localFolder(model: string): Promise<string | null> {
  if (!isNode() || /^[a-z][a-z\d+.-]{1,}:\/\//i.test(model)) return null;
  const { fs, path } = await nodeModules();
  const candidates = [model];
  if (env.localModelPath) candidates.push(path.join(env.localModelPath, model));
  for (const c of candidates) {
    try {
      if (fs.statSync(c).isDirectory()) return c;
    } catch {
      // not there
    }
  }
  return null;
}

/**
 * The text of `file` in `model`. With `optional`, a missing file gives null instead of an error.
 */
export async function readModelText(
  model: string,
  file: string,
  options: FileOptions & { optional?: boolean } = {},
): Promise<string | null> {
  const folder = await localFolder(model);
  if (folder !== null) {
    const { fs, path } = await nodeModules();
    try {
      return await fs.promises.readFile(path.join(folder, file), 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT' && options.optional) return null;
      throw new DownloadError(`Cannot read ${file} in ${folder}: ${e instanceof Error ? e.message : e}`, { cause: e });
    }
  }
  const url = fileUrl(model, file, options.revision);
  let response: Response;
  try {
    response = await fetch(url, { signal: options.signal });
  } catch (e) {
    if ((e as { name?: string }).name === 'AbortError') throw e;
    throw new DownloadError(`Could not fetch ${file} of "${model}" from ${url}: ${e instanceof Error ? e.message : e}`, { cause: e });
  }
  if (response.status === 404 && options.optional) return null;
  if (!response.ok) throw new DownloadError(httpProblem(response.status, model, file, url));
  return response.text();
}

function httpProblem(status: number, model: string, file: string, url: string): string {
  if (status === 401 || status === 403) {
    return (
      `${file} of "${model}" needs permission (HTTP ${status}): the model may be gated or private. Accept its license on ` +
      'the Hub and serve the files through your own authenticated proxy (set env.remoteHost), or load them from a local folder.'
    );
  }
  if (status === 404) return `"${model}" has no file ${file} (HTTP 404 at ${url}). Check the repo id, revision and file name.`;
  return `Fetching ${file} of "${model}" failed with HTTP ${status} (${url}).`;
}
