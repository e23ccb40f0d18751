// Test data and I/O helpers for the file cache, shared by the Node and browser cache tests (no Node APIs here).
import type { FileCache, FileKey } from '../../src/hub/cache.js';

export const CHUNK = 1024;
export const KEY: FileKey = { model: 'org/tiny', revision: 'main', file: 'model.safetensors' };

/** `n` deterministic pseudo-random bytes. */
export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Appends `data` in pieces of 1, 7, then chunk-spanning sizes. */
export async function appendOddly(w: { append(b: Uint8Array): Promise<void> }, data: Uint8Array): Promise<void> {
  const sizes = [1, 7, CHUNK + 13, 3 * CHUNK - 5, 500];
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = Math.min(sizes[i++ % sizes.length], data.length - off);
    await w.append(data.subarray(off, off + n));
    off += n;
  }
}

/** A complete cached file, read back whole. */
export async function readAll(cache: FileCache, key: FileKey): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of cache.read(key)) parts.push(c);
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
