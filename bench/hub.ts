// Model file loading under Node: a synthetic safetensors checkpoint served over HTTP on 127.0.0.1 (the Range server
// of the download tests), loaded through openModelFile into a folder cache, read again from the cache, and streamed
// tensor by tensor from the cache. Median of the runs; MB = 10^6 bytes.
//   npx vite build --config bench/hub.vite.config.ts && node dist-bench/hub.mjs [--mb N] [--runs N] [--json FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFolderCache, type FileCache } from '../src/hub/cache.js';
import { streamModelTensors } from '../src/hub/load-weights.js';
import { openModelFile } from '../src/hub/model-files.js';
import { Sha256 } from '../src/hub/sha256.js';
import { startFaultServer } from '../tests/helpers/fault-server.js';
import { writeSafetensors, type TensorToWrite } from '../tests/helpers/safetensors-writer.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const sizeMiB = option('--mb', 64);
const runs = option('--runs', 3);
const jsonAt = args.indexOf('--json');

const FILE = 'model.safetensors';
const TENSOR_BYTES = 4 * 2 ** 20;

/** Pseudo-random bytes (xorshift32), so nothing along the way can take a shortcut over zeros. */
function noise(length: number, seed: number): Uint8Array {
  const words = new Uint32Array(length / 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return new Uint8Array(words.buffer);
}

function checkpoint(totalBytes: number): Uint8Array {
  const tensors: TensorToWrite[] = [];
  for (let i = 0, left = totalBytes; left > 0; i++, left -= TENSOR_BYTES) {
    const bytes = noise(Math.min(TENSOR_BYTES, left), i + 1);
    tensors.push({ name: `model.layers.${i}.weight`, dtype: 'F32', shape: [bytes.byteLength / 4 / 256, 256], bytes });
  }
  return writeSafetensors(tensors);
}

async function drain(chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of chunks) n += chunk.byteLength;
  return n;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const root = mkdtempSync(join(tmpdir(), 'webslm-bench-hub-'));
const served = join(root, 'served', 'bench-model');
await mkdir(served, { recursive: true });
const data = checkpoint(sizeMiB * 2 ** 20);
writeFileSync(join(served, FILE), data);
const server = await startFaultServer(join(root, 'served'));
const model = `${server.url}/bench-model`;
const size = data.byteLength;
const mb = size / 1e6;

interface Run {
  rawFetchMs: number;
  sha256Ms: number;
  networkOnlyMs: number;
  downloadMs: number;
  warmMs: number;
  streamMs: number;
  tensors: number;
}
const results: Run[] = [];
try {
  for (let r = 0; r < runs; r++) {
    const cacheDir = mkdtempSync(join(root, 'cache-'));
    const cache: FileCache = openFolderCache(cacheDir);
    try {
      // Baselines: the server and HTTP stack alone (plain fetch), and the checksum alone (in memory).
      let t = performance.now();
      const res = await fetch(`${model}/${FILE}`);
      if (!res.body || (await drain(res.body as unknown as AsyncIterable<Uint8Array>)) !== size) throw new Error('short fetch');
      const rawFetchMs = performance.now() - t;
      t = performance.now();
      const sha = new Sha256();
      for (let at = 0; at < size; at += 4 * 2 ** 20) sha.update(data.subarray(at, at + 4 * 2 ** 20));
      sha.hex();
      const sha256Ms = performance.now() - t;

      t = performance.now();
      const plain = await openModelFile(model, FILE, { cache: null });
      if ((await drain(plain.chunks)) !== size) throw new Error('short read without cache');
      const networkOnlyMs = performance.now() - t;

      t = performance.now();
      const cold = await openModelFile(model, FILE, { cache });
      if (cold.fromCache) throw new Error('the first read came from the cache');
      if ((await drain(cold.chunks)) !== size) throw new Error('short download');
      const downloadMs = performance.now() - t;

      t = performance.now();
      const warm = await openModelFile(model, FILE, { cache });
      if (!warm.fromCache) throw new Error('the second read did not come from the cache');
      if ((await drain(warm.chunks)) !== size) throw new Error('short read from the cache');
      const warmMs = performance.now() - t;

      t = performance.now();
      let tensors = 0;
      for await (const tensor of streamModelTensors(model, { cache })) tensors += tensor.bytes.byteLength > 0 ? 1 : 0;
      const streamMs = performance.now() - t;
      results.push({ rawFetchMs, sha256Ms, networkOnlyMs, downloadMs, warmMs, streamMs, tensors });
      console.log(
        `run ${r + 1}/${runs}: network ${networkOnlyMs.toFixed(0)} ms, download+cache ${downloadMs.toFixed(0)} ms, ` +
          `warm ${warmMs.toFixed(0)} ms, stream ${streamMs.toFixed(0)} ms (${tensors} tensors)`,
      );
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }
} finally {
  await server.close();
  rmSync(root, { recursive: true, force: true });
}

const row = (what: string, ms: number[]) => {
  const m = median(ms);
  return `| ${what} | ${(mb / (m / 1000)).toFixed(0)} | ${m.toFixed(0)} | ${ms.map((x) => x.toFixed(0)).join(', ')} |`;
};
console.log(`\nmodel file loading: one ${mb.toFixed(1)} MB safetensors file (${results[0]?.tensors ?? 0} tensors), 127.0.0.1, median of ${runs}\n`);
console.log('| measure | MB/s | median ms | runs (ms) |');
console.log('|---|---:|---:|---:|');
console.log(row('baseline: plain fetch() of the file', results.map((r) => r.rawFetchMs)));
console.log(row('baseline: SHA-256 in memory (src/hub/sha256.ts)', results.map((r) => r.sha256Ms)));
console.log(row('network, no cache (openModelFile, SHA-256 checked)', results.map((r) => r.networkOnlyMs)));
console.log(row('download into folder cache (openModelFile)', results.map((r) => r.downloadMs)));
console.log(row('warm load from folder cache (openModelFile)', results.map((r) => r.warmMs)));
console.log(row('tensor streaming from cache (streamModelTensors)', results.map((r) => r.streamMs)));

if (jsonAt >= 0) {
  const file = args[jsonAt + 1];
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), bytes: size, runs: results }, null, 2));
  console.log(`\nwrote ${file}`);
}
process.exit(0);
