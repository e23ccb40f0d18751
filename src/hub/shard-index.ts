/**
 * `model.safetensors.index.json`: the map from tensor name to the shard file that holds it, for checkpoints split
 * across several safetensors files. Parsed strictly (shard names must be plain file names in the same folder), and
 * checked against the shards' own headers once those are known. Every failure is a SafetensorsError naming the
 * file and the tensor or field at fault.
 */
import { SafetensorsError } from '../errors.js';
import { fail, show, type SafetensorsHeader, type SafetensorsTensor } from './safetensors.js';

export const SHARD_INDEX_FILE = 'model.safetensors.index.json';

export interface ShardIndex {
  /** Shard file names, in the order they first appear in `weight_map`. */
  shards: string[];
  /** Tensor names of each shard, in `weight_map` order. */
  tensorsByShard: Map<string, string[]>;
  /** Tensor name → shard file name. */
  weightMap: Map<string, string>;
  /** `metadata.total_size`: bytes of tensor data over all shards, when the index gives it. */
  totalSize: number | null;
  /** The index's own file name, for messages. */
  file: string;
}

export interface ShardTensor {
  shard: string;
  tensor: SafetensorsTensor;
}


function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A shard must be a plain file name next to the index: no folders, no parent references, no control characters. */
function isSafeFileName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && name !== '.' && name !== '..' && !/[/\\\u0000-\u001f\u007f]/.test(name) && !name.includes('..');
}

export function parseShardIndex(text: string, file = SHARD_INDEX_FILE): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${file}: is not valid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  if (!isPlainObject(json)) fail(file, `must be a JSON object, got ${show(json)}`);

  let totalSize: number | null = null;
  if (json.metadata !== undefined && json.metadata !== null) {
    const metadata = json.metadata;
    if (!isPlainObject(metadata)) fail(file, `metadata must be an object, got ${show(metadata)}`);
    const t = metadata.total_size;
    if (t !== undefined && t !== null) {
      if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) {
        fail(file, `metadata.total_size must be a non-negative integer, got ${show(t)}`);
      }
      totalSize = t;
    }
  }

  const map = json.weight_map;
  if (!isPlainObject(map)) fail(file, `weight_map must be an object of tensor name → shard file, got ${show(map)}`);
  const shards: string[] = [];
  const tensorsByShard = new Map<string, string[]>();
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (tensor === '') fail(file, 'weight_map has a tensor with an empty name');
    if (typeof shard !== 'string') fail(file, `weight_map[${show(tensor)}] must be a shard file name, got ${show(shard)}`);
    if (!isSafeFileName(shard)) {
      fail(file, `weight_map[${show(tensor)}] shard ${show(shard)} must be a plain file name (no folders or "..")`);
    }
    let list = tensorsByShard.get(shard);
    if (!list) {
      list = [];
      tensorsByShard.set(shard, list);
      shards.push(shard);
    }
    list.push(tensor);
    weightMap.set(tensor, shard);
  }
  if (weightMap.size === 0) fail(file, 'weight_map is empty');
  return { shards, tensorsByShard, weightMap, totalSize, file };
}

/**
 * Check an index against the headers of its shards (shard file name → header): every tensor of the index is in
 * exactly the shard it names, no shard holds a tensor the index does not list, and `total_size` (when given) is
 * the sum of the tensors' byte lengths. Returns where each tensor is.
 */
export function checkAgainstHeaders(index: ShardIndex, headers: Map<string, SafetensorsHeader>): Map<string, ShardTensor> {
  const file = index.file;
  for (const shard of index.shards) {
    if (!headers.has(shard)) fail(file, `shard ${show(shard)} (holding tensor ${show(index.tensorsByShard.get(shard)?.[0])}) has no header`);
  }
  const found = new Map<string, ShardTensor>();
  let total = 0;
  for (const [shard, header] of headers) {
    for (const tensor of header.tensors) {
      const named = index.weightMap.get(tensor.name);
      if (named === undefined) {
        fail(file, `tensor ${show(tensor.name)} is in shard ${show(shard)}, but weight_map does not list it`);
      }
      if (named !== shard) {
        fail(file, `tensor ${show(tensor.name)} is in shard ${show(shard)}, but weight_map names shard ${show(named)}`);
      }
      found.set(tensor.name, { shard, tensor });
      total += tensor.byteLength;
    }
  }
  for (const [tensor, shard] of index.weightMap) {
    if (!found.has(tensor)) fail(file, `tensor ${show(tensor)} is not in shard ${show(shard)}, where weight_map puts it`);
  }
  if (index.totalSize !== null && index.totalSize !== total) {
    fail(file, `metadata.total_size is ${index.totalSize}, but the shards' tensors hold ${total} bytes`);
  }
  return found;
}
