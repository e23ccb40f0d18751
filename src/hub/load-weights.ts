/**
 * A checkpoint's tensors, streamed: `model.safetensors`, or every shard named by `model.safetensors.index.json`,
 * each tensor handed out as soon as its bytes have arrived (from cache or network). The consumer (the GPU upload)
 * pulls one tensor at a time, so at most one chunk and one tensor are held in memory.
 */
import { DownloadError, SafetensorsError } from '../errors.js';
import { openModelFile, readModelFileText, type ModelFileOptions, type ProgressInfo } from './model-files.js';
import { parseShardIndex, SHARD_INDEX_FILE, type ShardIndex } from './shard-index.js';
import { readTensors, type StreamedTensor } from './tensor-stream.js';

export const SINGLE_FILE = 'model.safetensors';

export interface ModelTensor extends StreamedTensor {
  /** The file it came from. */
  shard: string;
}

/** The shard index, or null when the checkpoint is a single `model.safetensors`. */
export async function readShardIndex(model: string, options: ModelFileOptions = {}): Promise<ShardIndex | null> {
  let text: string;
  try {
    text = await readModelFileText(model, SHARD_INDEX_FILE, options);
  } catch (e) {
    if (e instanceof DownloadError && e.status === 404) return null;
    throw e;
  }
  return parseShardIndex(text, SHARD_INDEX_FILE);
}

/**
 * The checkpoint's tensors in file order. With a `progress_callback`, besides the per-file events, each progress
 * step also gives a 'progress_total' event summed over all the weight files: `total` is exact once every file has
 * been opened; before that it is the sizes known so far, or the index's `total_size` when that is larger.
 */
export async function* streamModelTensors(model: string, options: ModelFileOptions = {}): AsyncGenerator<ModelTensor> {
  const index = await readShardIndex(model, options);
  const shards = index ? index.shards : [SINGLE_FILE];
  const total = totalProgress(model, shards.length, index?.totalSize ?? null, options);
  let totalBytes = 0;
  for (const shard of shards) {
    const { size, chunks } = await openModelFile(model, shard, total.optionsFor(shard));
    total.opened(size ?? 0);
    if (size === null) {
      throw new DownloadError(`The server does not say how large ${shard} of "${model}" is; safetensors files need their size.`);
    }
    const checkHeader = index
      ? (header: { tensors: Array<{ name: string }> }) => checkShard(index, shard, header.tensors.map((t) => t.name))
      : undefined;
    for await (const tensor of readTensors(chunks, size, shard, checkHeader)) {
      totalBytes += tensor.bytes.byteLength;
      yield { ...tensor, shard };
    }
    total.finished();
  }
  if (index && index.totalSize !== null && index.totalSize !== totalBytes) {
    throw new SafetensorsError(
      `${SHARD_INDEX_FILE}: metadata.total_size is ${index.totalSize}, but the shards hold ${totalBytes} bytes of tensors.`,
    );
  }
}

/**
 * Sums per-file progress over the weight files. `optionsFor(shard)` passes every per-file event through unchanged
 * and follows the shard's 'progress' events with a 'progress_total' one.
 */
function totalProgress(model: string, fileCount: number, indexTotal: number | null, options: ModelFileOptions) {
  const emit = options.progress_callback;
  let openedCount = 0;
  let knownSize = 0; // bytes of the files opened so far
  let doneBytes = 0; // bytes of the files read to the end
  let currentSize = 0;
  let current = 0;
  const totalNow = () => (openedCount >= fileCount ? knownSize : Math.max(knownSize, indexTotal ?? 0));
  return {
    optionsFor(shard: string): ModelFileOptions {
      if (!emit) return options;
      return {
        ...options,
        progress_callback: (info: ProgressInfo) => {
          emit(info);
          if (info.status !== 'progress' || info.file !== shard || info.loaded === undefined) return;
          current = Math.min(info.loaded, currentSize);
          const loaded = doneBytes + current;
          const total = totalNow();
          emit({ status: 'progress_total', name: model, file: shard, loaded, total, progress: total > 0 ? Math.min(100, (loaded / total) * 100) : 100 });
        },
      };
    },
    opened(size: number): void {
      openedCount++;
      knownSize += size;
      currentSize = size;
      current = 0;
    },
    finished(): void {
      doneBytes += currentSize;
      currentSize = 0;
      current = 0;
    },
  };
}

/** A shard must hold exactly the tensors the index assigns to it. */
function checkShard(index: ShardIndex, shard: string, names: string[]): void {
  const expected = new Set(index.tensorsByShard.get(shard) ?? []);
  for (const name of names) {
    if (!expected.has(name)) {
      const elsewhere = index.weightMap.get(name);
      throw new SafetensorsError(
        elsewhere
          ? `${shard}: tensor "${name}" is here, but ${SHARD_INDEX_FILE} puts it in ${elsewhere}.`
          : `${shard}: tensor "${name}" is not listed in ${SHARD_INDEX_FILE}.`,
      );
    }
    expected.delete(name);
  }
  const [missing] = expected;
  if (missing !== undefined) throw new SafetensorsError(`${shard}: tensor "${missing}" is missing; ${SHARD_INDEX_FILE} puts it here.`);
}
