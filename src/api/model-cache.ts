/**
 * The downloaded-model cache, as the loaders use it by default (IndexedDB `env.cacheName` in browsers when
 * `env.useBrowserCache`, folder `env.cacheDir` in Node):
 *
 *   for (const m of await ModelCache.list()) console.log(m.model, m.revision, m.size);
 *   await ModelCache.delete('HuggingFaceTB/SmolLM2-135M-Instruct');
 *
 * With no cache configured, `list()` is empty and `delete()` / `clear()` do nothing.
 */
import type { CachedModel } from '../hub/cache.js';
import { getDefaultCache } from '../hub/model-files.js';

export type { CachedModel } from '../hub/cache.js';

export interface StorageUsage {
  /** Bytes used: the site's whole storage where the browser tells (`navigator.storage.estimate()`), else the cached files. */
  usage: number | null;
  /** Bytes the site may use, when the browser tells. */
  quota: number | null;
}

interface StorageEstimator {
  estimate?: () => Promise<{ quota?: number; usage?: number }>;
}

export class ModelCache {
  /** The complete files in the cache, grouped by model and revision (unfinished downloads are not listed). */
  static async list(): Promise<CachedModel[]> {
    const cache = getDefaultCache();
    return cache ? cache.list() : [];
  }

  /** Drops every file of `model` (complete or unfinished), or only those of one `revision`. */
  static async delete(model: string, revision?: string): Promise<void> {
    await getDefaultCache()?.delete(model, revision);
  }

  /** Drops every cached file. */
  static async clear(): Promise<void> {
    await getDefaultCache()?.clear();
  }

  /**
   * Storage use: `navigator.storage.estimate()` where there is one (browsers, workers); elsewhere (Node) the bytes
   * of the cached files, with an unknown quota.
   */
  static async usage(): Promise<StorageUsage> {
    const storage = (globalThis as { navigator?: { storage?: StorageEstimator } }).navigator?.storage;
    if (typeof storage?.estimate === 'function') {
      try {
        const { usage, quota } = await storage.estimate();
        return { usage: typeof usage === 'number' ? usage : null, quota: typeof quota === 'number' ? quota : null };
      } catch {
        // fall through
      }
    }
    const cache = getDefaultCache();
    if (!cache) return { usage: null, quota: null };
    const models = await cache.list();
    return { usage: models.reduce((sum, m) => sum + m.size, 0), quota: null };
  }
}
