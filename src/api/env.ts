/**
 * Global settings, named as in transformers.js. Change them before loading anything:
 *   import { env } from 'webslm'; env.remoteHost = 'https://my-mirror.example';
 */
const inBrowserPage = typeof window !== 'undefined' && typeof document !== 'undefined';

export const env = {
  /** Where Hub ids are fetched from. */
  remoteHost: 'https://huggingface.co',
  /** Path of a repo's files under `remoteHost`; `{model}` and `{revision}` are filled in. */
  remotePathTemplate: '{model}/resolve/{revision}/',
  /** Allow fetching from `remoteHost` (set false to use only local folders and URLs you give). */
  allowRemoteModels: true,
  /** In Node: a folder searched for `<id>/` before the Hub. */
  localModelPath: '',
  /** Keep downloaded files in IndexedDB. */
  useBrowserCache: true,
  /** IndexedDB database name for the file cache. */
  cacheName: 'webslm-cache',
  /** In Node: a folder to keep downloaded files in ('' = no cache). */
  cacheDir: '',
  /**
   * Browser pages: `AutoModelForCausalLM.from_pretrained` runs the model, its GPU device and the generation loop in
   * a dedicated module Worker and returns a proxy with the model's API (default true in pages). Set it to false to
   * run models in the calling thread. Node and code already running in a Worker always run models in-thread.
   */
  useWorker: inBrowserPage,
};

export type Env = typeof env;
