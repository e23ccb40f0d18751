/** Where a model's files are: the URL of a file of a Hub repo id or of a folder URL. */
import { DownloadError } from '../errors.js';
import { env } from '../api/env.js';

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
