/**
 * The safetensors header: an 8-byte little-endian u64 length, then that many bytes of UTF-8 JSON describing every
 * tensor, then the data section. The header is checked strictly before any tensor byte is trusted: every failure is
 * a SafetensorsError naming the file and, where there is one, the tensor and field at fault, e.g.
 * `model.safetensors: tensor "lm_head.weight" data_offsets [0, 12] hold 12 bytes, but shape [2, 3] of F32 needs 24`.
 */
import { SafetensorsError } from '../errors.js';

/** Bytes per element of each dtype the format defines. */
export const DTYPE_SIZES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_SIZES;

/** The largest header the reference implementation accepts (100 MB). */
export const MAX_HEADER_LENGTH = 100_000_000;

export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Where the tensor's bytes start, counted from the start of the file. */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  /** In file order (by offset). */
  tensors: SafetensorsTensor[];
  metadata: Record<string, string>;
  /** Length of the JSON header, without the 8 length bytes. */
  headerLength: number;
  /** Where the data section starts: 8 + headerLength. */
  dataOffset: number;
}

const METADATA_KEY = '__metadata__';
const TENSOR_FIELDS = ['dtype', 'shape', 'data_offsets'];
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Throws the SafetensorsError for `file` (shared with the shard index parser). */
export function fail(file: string, problem: string): never {
  throw new SafetensorsError(`${file}: ${problem}`);
}

/** A value for a message, cut short when long (names and values can come from hostile files). */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  return String(v);
}

function isSize(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The header length from a file's first 8 bytes, so a streaming reader knows how many bytes to wait for. Rejects
 * lengths over 100 MB (and any u64 beyond 2^53) before anything is allocated; with `fileSize`, also lengths that
 * do not fit in the file.
 */
export function readHeaderLength(first8: Uint8Array, file = 'safetensors file', fileSize?: number): number {
  if (first8.length < 8) fail(file, `is too short to hold the 8-byte header length (${first8.length} bytes)`);
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high >= 0x200000) {
    fail(file, `header length ${(BigInt(high) << 32n) | BigInt(low)} is beyond 2^53 (not a safetensors file?)`);
  }
  const length = high * 0x100000000 + low;
  if (length > MAX_HEADER_LENGTH) fail(file, `header length ${length} exceeds the ${MAX_HEADER_LENGTH}-byte limit`);
  if (length === 0) fail(file, 'header length is 0: the header must be a JSON object');
  if (fileSize !== undefined && length > fileSize - 8) {
    fail(file, `header length ${length} does not fit in the file (${fileSize} bytes, ${Math.max(0, fileSize - 8)} after the length)`);
  }
  return length;
}

/** Number of elements of `shape`, or null when it is not a safe integer (a zero dimension gives 0). */
function elementCount(shape: number[]): number | null {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

function readTensor(file: string, name: string, value: unknown, dataLength: number, dataOffset: number): SafetensorsTensor {
  const where = `tensor ${show(name)}`;
  if (!isPlainObject(value)) fail(file, `${where} must be an object with dtype, shape and data_offsets, got ${show(value)}`);
  for (const key of Object.keys(value)) {
    if (!TENSOR_FIELDS.includes(key)) fail(file, `${where} has an unknown field ${show(key)} (expected dtype, shape, data_offsets)`);
  }

  const dtype = value.dtype;
  if (typeof dtype !== 'string') fail(file, `${where} dtype must be a string, got ${show(dtype)}`);
  if (!Object.hasOwn(DTYPE_SIZES, dtype)) {
    fail(file, `${where} dtype ${show(dtype)} is not a known dtype (known: ${Object.keys(DTYPE_SIZES).join(', ')})`);
  }
  const size = DTYPE_SIZES[dtype as SafetensorsDtype];

  const shapeValue = value.shape;
  if (!Array.isArray(shapeValue)) fail(file, `${where} shape must be an array of dimensions, got ${show(shapeValue)}`);
  const shape: number[] = [];
  for (let i = 0; i < shapeValue.length; i++) {
    const d: unknown = shapeValue[i];
    if (!isSize(d)) fail(file, `${where} shape[${i}] must be a non-negative integer, got ${show(d)}`);
    shape.push(d + 0); // + 0 turns -0 into 0
  }

  const offsets = value.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    fail(file, `${where} data_offsets must be [begin, end], got ${Array.isArray(offsets) ? `${offsets.length} values` : show(offsets)}`);
  }
  const [rawBegin, rawEnd] = offsets as unknown[];
  if (!isSize(rawBegin)) fail(file, `${where} data_offsets[0] must be a non-negative integer, got ${show(rawBegin)}`);
  if (!isSize(rawEnd)) fail(file, `${where} data_offsets[1] must be a non-negative integer, got ${show(rawEnd)}`);
  const begin = rawBegin + 0;
  const end = rawEnd + 0;
  if (begin > end) fail(file, `${where} data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLength) {
    fail(file, `${where} data_offsets [${begin}, ${end}] run past the data section (${dataLength} bytes)`);
  }

  const count = elementCount(shape);
  const need = count === null ? null : count * size;
  if (need === null || !Number.isSafeInteger(need)) {
    fail(file, `${where} shape [${shape.join(', ')}] has too many elements`);
  }
  if (need !== end - begin) {
    fail(file, `${where} data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape [${shape.join(', ')}] of ${dtype} needs ${need}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape, byteOffset: dataOffset + begin, byteLength: end - begin };
}

function readMetadata(file: string, value: unknown): Record<string, string> {
  if (!isPlainObject(value)) fail(file, `${METADATA_KEY} must be an object of strings, got ${show(value)}`);
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') fail(file, `${METADATA_KEY}.${show(key)} must be a string, got ${show(v)}`);
    metadata[key] = v;
  }
  return metadata;
}

/**
 * Parse and check the header of a safetensors file. `bytes` is the start of the file: at least the 8 length bytes
 * and the whole JSON header (more, up to the whole file, is fine); `fileSize` is the size of the whole file.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  if (!isSize(fileSize)) fail(file, `file size ${show(fileSize)} is not a non-negative integer`);
  if (fileSize < 8) fail(file, `is ${fileSize} bytes, too short to be a safetensors file`);
  const headerLength = readHeaderLength(bytes, file, fileSize);
  const dataOffset = 8 + headerLength;
  if (bytes.length < dataOffset) {
    fail(file, `header is cut short: it needs ${dataOffset} bytes, only ${bytes.length} were given`);
  }
  const dataLength = fileSize - dataOffset;

  let text: string;
  try {
    text = utf8.decode(bytes.subarray(8, dataOffset));
  } catch (e) {
    throw new SafetensorsError(`${file}: header is not valid UTF-8`, { cause: e });
  }
  if (!text.startsWith('{')) fail(file, `header must be a JSON object starting with "{", got ${show(text.slice(0, 20))}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${file}: header is not valid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  if (!isPlainObject(json)) fail(file, `header must be a JSON object, got ${show(json)}`);

  let metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const tensors: SafetensorsTensor[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      metadata = readMetadata(file, value);
      continue;
    }
    if (name === '') fail(file, 'has a tensor with an empty name');
    tensors.push(readTensor(file, name, value, dataLength, dataOffset));
  }

  // The format requires the tensors to tile the data section exactly: sorted by offset, each starts where the
  // previous one ended, and the last ends at the end of the file.
  tensors.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let at = dataOffset;
  let previous: SafetensorsTensor | null = null;
  for (const t of tensors) {
    if (t.byteOffset < at) {
      fail(file, `tensor ${show(t.name)} data_offsets overlap those of tensor ${show(previous?.name)} (${t.byteOffset - dataOffset} < ${at - dataOffset})`);
    }
    if (t.byteOffset > at) {
      const after = previous ? `after tensor ${show(previous.name)}` : 'at the start of the data section';
      fail(file, `${t.byteOffset - at} bytes ${after} belong to no tensor (tensor ${show(t.name)} data_offsets begin at ${t.byteOffset - dataOffset})`);
    }
    at = t.byteOffset + t.byteLength;
    previous = t;
  }
  if (at !== fileSize) {
    const after = previous ? `after tensor ${show(previous.name)}` : 'in a file with no tensors';
    fail(file, `the last ${fileSize - at} bytes of the data section (${after}) belong to no tensor`);
  }
  return { tensors, metadata, headerLength, dataOffset };
}
