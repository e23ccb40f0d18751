// Safetensors headers, shard indexes and the streaming tensor reader: every hf-tiny checkpoint parses and matches
// its golden.json, streaming in any chunking gives the same bytes as slicing the whole file, and each rule of the
// format has a hand-made file that breaks it and must fail with a SafetensorsError naming the file, tensor and field.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsError } from '../../../src/errors.js';
import {
  DTYPE_SIZES,
  MAX_HEADER_LENGTH,
  parseSafetensorsHeader,
  readHeaderLength,
  type SafetensorsHeader,
} from '../../../src/hub/safetensors.js';
import { checkAgainstHeaders, parseShardIndex } from '../../../src/hub/shard-index.js';
import { readTensors, type StreamedTensor } from '../../../src/hub/tensor-stream.js';
import { HF_TINY, HF_TINY_CASES, readJson } from '../../helpers/hf-tiny.js';

interface Checkpoint {
  storage_dtype: string;
  files: string[];
  num_shards: number;
  num_parameters: number;
  sha256: Record<string, string>;
}

const STORAGE_DTYPES: Record<string, string> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

function checkpoint(caseName: string): Checkpoint {
  return readJson<{ checkpoint: Checkpoint }>(caseName, 'golden.json').checkpoint;
}

function shardFiles(caseName: string): string[] {
  return checkpoint(caseName).files.filter((f) => f.endsWith('.safetensors'));
}

function readBytes(caseName: string, file: string): Uint8Array {
  const b = readFileSync(join(HF_TINY, caseName, file));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** A safetensors file from a header (object or raw text), `dataLength` bytes of data, and optionally a forced length. */
function build(header: unknown, dataLength: number, length?: bigint): Uint8Array {
  let text = typeof header === 'string' ? header : JSON.stringify(header);
  while ((8 + new TextEncoder().encode(text).length) % 8 !== 0) text += ' ';
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + dataLength);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < dataLength; i++) out[8 + json.length + i] = (i * 31 + 7) & 255;
  return out;
}

function parse(bytes: Uint8Array, file = 'bad.safetensors'): SafetensorsHeader {
  return parseSafetensorsHeader(bytes, bytes.length, file);
}

/** The SafetensorsError thrown by `fn`; fails the test when there is none or it is of another kind. */
function errorOf(fn: () => unknown): SafetensorsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return e as SafetensorsError;
  }
  throw new Error('expected a SafetensorsError, nothing was thrown');
}

async function asyncErrorOf(p: Promise<unknown>): Promise<SafetensorsError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return e as SafetensorsError;
  }
  throw new Error('expected a SafetensorsError, nothing was thrown');
}

function* chunked(bytes: Uint8Array, sizes: number[] | number): Generator<Uint8Array> {
  let pos = 0;
  let i = 0;
  while (pos < bytes.length) {
    const size = typeof sizes === 'number' ? sizes : sizes[i++ % sizes.length];
    yield bytes.subarray(pos, pos + size);
    pos += size;
  }
}

async function* asAsync(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

async function collect(chunks: Iterable<Uint8Array>, fileSize: number, file: string): Promise<StreamedTensor[]> {
  const out: StreamedTensor[] = [];
  for await (const t of readTensors(asAsync(chunks), fileSize, file)) out.push(t);
  return out;
}

/** Streamed tensors must equal the slices of the whole file, in file order. */
function expectSameAsWhole(streamed: StreamedTensor[], bytes: Uint8Array, header: SafetensorsHeader): void {
  expect(streamed.map((t) => t.name)).toEqual(header.tensors.map((t) => t.name));
  for (let i = 0; i < streamed.length; i++) {
    const h = header.tensors[i];
    const s = streamed[i];
    expect(s.dtype).toBe(h.dtype);
    expect(s.shape).toEqual(h.shape);
    expect(s.bytes.byteLength).toBe(h.byteLength);
    expect(s.bytes.buffer.byteLength).toBe(h.byteLength); // its own buffer of exactly its size
    expect(Buffer.compare(s.bytes, bytes.subarray(h.byteOffset, h.byteOffset + h.byteLength))).toBe(0);
  }
}

describe('hf-tiny checkpoints', () => {
  for (const caseName of HF_TINY_CASES) {
    it(`${caseName}: every shard parses and matches golden.json`, () => {
      const cp = checkpoint(caseName);
      const files = shardFiles(caseName);
      expect(files.length).toBe(cp.num_shards);
      let count = 0;
      let elements = 0;
      for (const f of files) {
        const bytes = readBytes(caseName, f);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(cp.sha256[f]);
        const header = parseSafetensorsHeader(bytes, bytes.length, f);
        expect(header.dataOffset).toBe(8 + header.headerLength);
        expect(header.metadata.format).toBe('pt');
        let at = header.dataOffset;
        for (const t of header.tensors) {
          expect(t.byteOffset).toBe(at);
          expect(t.dtype).toBe(STORAGE_DTYPES[cp.storage_dtype]);
          const n = t.shape.reduce((a, b) => a * b, 1);
          expect(t.byteLength).toBe(n * DTYPE_SIZES[t.dtype]);
          at += t.byteLength;
          elements += n;
        }
        expect(at).toBe(bytes.length);
        count += header.tensors.length;
      }
      expect(count).toBeGreaterThan(0);
      expect(elements).toBe(cp.num_parameters);
    });

    it(`${caseName}: streaming gives the bytes of the whole-file parse`, async () => {
      for (const f of shardFiles(caseName)) {
        const bytes = readBytes(caseName, f);
        const header = parseSafetensorsHeader(bytes, bytes.length, f);
        const sizes: Array<number | number[]> = [bytes.length, 4097, 7, [3, 1, 65536, 13, 2, 100000]];
        if (caseName === 'llama') sizes.push(1);
        for (const s of sizes) expectSameAsWhole(await collect(chunked(bytes, s), bytes.length, f), bytes, header);
      }
    });
  }

  it('llama: the index matches the three shards', () => {
    const text = readFileSync(join(HF_TINY, 'llama', 'model.safetensors.index.json'), 'utf8');
    const index = parseShardIndex(text);
    expect(index.shards).toEqual([
      'model-00003-of-00003.safetensors',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
    ]);
    expect([...index.tensorsByShard.values()].flat().length).toBe(index.weightMap.size);
    const headers = new Map<string, SafetensorsHeader>();
    for (const f of [...index.shards].sort()) {
      const bytes = readBytes('llama', f);
      headers.set(f, parseSafetensorsHeader(bytes, bytes.length, f));
    }
    const found = checkAgainstHeaders(index, headers);
    expect(found.size).toBe(index.weightMap.size);
    expect(index.totalSize).toBe([...found.values()].reduce((a, b) => a + b.tensor.byteLength, 0));
    for (const [tensor, shard] of index.weightMap) expect(found.get(tensor)?.shard).toBe(shard);
  });

  it('parses a header given alone, without the data', () => {
    const bytes = readBytes('qwen2', 'model.safetensors');
    const length = readHeaderLength(bytes.subarray(0, 8));
    const alone = parseSafetensorsHeader(bytes.slice(0, 8 + length), bytes.length, 'model.safetensors');
    expect(alone).toEqual(parseSafetensorsHeader(bytes, bytes.length, 'model.safetensors'));
  });
});

describe('valid hand-made files', () => {
  it('accepts every dtype, zero-size tensors, scalars and metadata, and sorts by offset', () => {
    const header: Record<string, unknown> = { __metadata__: { format: 'pt', note: '' } };
    let at = 0;
    const names = Object.keys(DTYPE_SIZES).reverse();
    for (const dtype of names) {
      const size = DTYPE_SIZES[dtype as keyof typeof DTYPE_SIZES];
      header[`t.${dtype}`] = { dtype, shape: [2, 3], data_offsets: [at, at + 6 * size] };
      at += 6 * size;
    }
    header.empty = { dtype: 'F32', shape: [4, 0, 1e15], data_offsets: [at, at] };
    header.scalar = { dtype: 'F64', shape: [], data_offsets: [at, at + 8] };
    header['z.first'] = { dtype: 'U8', shape: [0], data_offsets: [0, 0] };
    const bytes = build(header, at + 8);
    const h = parse(bytes);
    expect(h.metadata).toEqual({ format: 'pt', note: '' });
    expect(h.tensors.map((t) => t.name)).toEqual(['z.first', ...names.map((d) => `t.${d}`), 'empty', 'scalar']);
    expect(h.tensors.at(-1)).toEqual({ name: 'scalar', dtype: 'F64', shape: [], byteOffset: h.dataOffset + at, byteLength: 8 });
  });

  it('accepts a file with no tensors and an empty header object', () => {
    expect(parse(build({}, 0)).tensors).toEqual([]);
    expect(parse(build({ __metadata__: {} }, 0)).metadata).toEqual({});
  });

  it('reads the header length from the first 8 bytes', () => {
    const bytes = build({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, 1);
    expect(readHeaderLength(bytes.subarray(0, 8))).toBe(bytes.length - 9);
    expect(readHeaderLength(bytes)).toBe(bytes.length - 9);
  });
});

describe('malformed headers', () => {
  const F = 'bad.safetensors';
  const ok = (extra: Record<string, unknown> = {}) => ({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ...extra });

  function expectError(bytes: Uint8Array, ...parts: Array<string | RegExp>): SafetensorsError {
    const e = errorOf(() => parse(bytes, F));
    expect(e.message).toContain(F);
    for (const p of parts) expect(e.message).toMatch(p);
    return e;
  }
  const tensor = (value: unknown, data = 8) => build({ w: value }, data);

  it('header length: too short, zero, beyond 2^53, over 100 MB, past the end of the file', () => {
    expect(errorOf(() => parseSafetensorsHeader(new Uint8Array(4), 4, F)).message).toMatch(/bad\.safetensors.*too short/);
    expect(errorOf(() => readHeaderLength(new Uint8Array(5), F)).message).toMatch(/too short/);
    expectError(build({}, 0, 0n), /header length is 0/);
    expectError(build(ok(), 8, 2n ** 64n - 1n), /beyond 2\^53/);
    expectError(build(ok(), 8, 2n ** 53n), /beyond 2\^53/);
    expectError(build(ok(), 8, 2n ** 40n), /exceeds the 100000000-byte limit/);
    expectError(build(ok(), 8, BigInt(MAX_HEADER_LENGTH + 1)), /exceeds/);
    const b = build(ok(), 8);
    expectError(b.subarray(0, 30), /does not fit in the file/);
    // A length that fits the claimed file size, but the bytes given stop short of it.
    expect(errorOf(() => parseSafetensorsHeader(b.subarray(0, 20), b.length, F)).message).toMatch(/cut short/);
    expect(errorOf(() => parseSafetensorsHeader(b, -1, F)).message).toMatch(/file size/);
    expect(errorOf(() => parseSafetensorsHeader(b, 1.5, F)).message).toMatch(/file size/);
  });

  it('a 2^40-byte header length is rejected from the first 8 bytes alone', () => {
    const first8 = new Uint8Array(8);
    new DataView(first8.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(errorOf(() => readHeaderLength(first8, F, 2 ** 41)).message).toMatch(/exceeds/);
    expect(errorOf(() => parseSafetensorsHeader(first8, 2 ** 41, F)).message).toMatch(/exceeds/);
  });

  it('header text: invalid UTF-8, not JSON, not an object', () => {
    const bytes = build('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":"\u00e9"}', 8);
    const at = bytes.indexOf(0xc3);
    bytes[at] = 0xff;
    expectError(bytes, /not valid UTF-8/);
    expectError(build('{"w": ', 0), /not valid JSON/);
    expectError(build('{}{}', 0), /not valid JSON/);
    expectError(build('[]', 0), /must be a JSON object/);
    expectError(build('null', 0), /must be a JSON object/);
    expectError(build('  {}', 0), /must be a JSON object starting with/);
    expectError(build('"x"', 0), /must be a JSON object/);
  });

  it('tensor entries: not an object, unknown fields, empty names', () => {
    expectError(tensor([1, 2]), /tensor "w" must be an object/);
    expectError(tensor('F32'), /tensor "w" must be an object/);
    expectError(tensor({ dtype: 'F32', shape: [2], data_offsets: [0, 8], extra: 1 }), /tensor "w" has an unknown field "extra"/);
    expectError(build({ '': { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8), /empty name/);
    expectError(build({ __other__: 'x', ...ok() }, 8), /tensor "__other__" must be an object/);
  });

  it('dtype: missing, not a string, unknown', () => {
    expectError(tensor({ shape: [2], data_offsets: [0, 8] }), /tensor "w" dtype must be a string, got nothing/);
    expectError(tensor({ dtype: 4, shape: [2], data_offsets: [0, 8] }), /tensor "w" dtype must be a string/);
    expectError(tensor({ dtype: 'F128', shape: [2], data_offsets: [0, 8] }), /tensor "w" dtype "F128" is not a known dtype/);
    expectError(tensor({ dtype: 'f32', shape: [2], data_offsets: [0, 8] }), /dtype "f32" is not a known/);
    expectError(tensor({ dtype: 'toString', shape: [2], data_offsets: [0, 8] }), /dtype "toString" is not a known/);
  });

  it('shape: missing, not an array, bad dimensions, too many elements', () => {
    expectError(tensor({ dtype: 'F32', data_offsets: [0, 8] }), /tensor "w" shape must be an array/);
    expectError(tensor({ dtype: 'F32', shape: 2, data_offsets: [0, 8] }), /tensor "w" shape must be an array/);
    expectError(tensor({ dtype: 'F32', shape: [-2], data_offsets: [0, 8] }), /tensor "w" shape\[0\] must be a non-negative integer, got -2/);
    expectError(tensor({ dtype: 'F32', shape: [1, 2.5], data_offsets: [0, 8] }), /shape\[1\] must be a non-negative integer, got 2.5/);
    expectError(tensor({ dtype: 'F32', shape: ['2'], data_offsets: [0, 8] }), /shape\[0\] must be a non-negative integer, got "2"/);
    expectError(tensor({ dtype: 'F32', shape: [2 ** 53], data_offsets: [0, 8] }), /shape\[0\] must be a non-negative integer/);
    expectError(tensor({ dtype: 'F32', shape: [1e300], data_offsets: [0, 8] }), /shape\[0\]/);
    expectError(tensor({ dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] }), /tensor "w" shape .* too many elements/);
    expectError(tensor({ dtype: 'F64', shape: [2 ** 51], data_offsets: [0, 8] }), /tensor "w" shape .* too many elements/);
  });

  it('data_offsets: missing, wrong length, bad numbers, reversed, past the data, wrong byte count', () => {
    expectError(tensor({ dtype: 'F32', shape: [2] }), /tensor "w" data_offsets must be \[begin, end\], got nothing/);
    expectError(tensor({ dtype: 'F32', shape: [2], data_offsets: [0] }), /tensor "w" data_offsets must be \[begin, end\], got 1 values/);
    expectError(tensor({ dtype: 'F32', shape: [2], data_offsets: [0, 4, 8] }), /data_offsets must be \[begin, end\]/);
    expectError(tensor({ dtype: 'F32', shape: [2], data_offsets: { 0: 0, 1: 8 } }), /data_offsets must be \[begin, end\], got an object/);
    expectError(tensor({ dtype: 'F32', shape: [2], data_offsets: [-1, 8] }), /tensor "w" data_offsets\[0\] must be a non-negative integer/);
    expectError(tensor({ dtype: 'F32', shape: [2], data_offsets: [0, '8'] }), /tensor "w" data_offsets\[1\] must be a non-negative integer/);
    expectError(tensor({ dtype: 'F32', shape: [2], data_offsets: [0, 8.5] }), /data_offsets\[1\]/);
    expectError(tensor({ dtype: 'F32', shape: [2], data_offsets: [0, 2 ** 60] }), /data_offsets\[1\]/);
    expectError(tensor({ dtype: 'F32', shape: [0], data_offsets: [8, 0] }), /tensor "w" data_offsets \[8, 0\] end before they begin/);
    expectError(tensor({ dtype: 'F32', shape: [4], data_offsets: [0, 16] }), /tensor "w" data_offsets \[0, 16\] run past the data section \(8 bytes\)/);
    expectError(tensor({ dtype: 'F32', shape: [3], data_offsets: [0, 8] }), /tensor "w" data_offsets \[0, 8\] hold 8 bytes, but shape \[3\] of F32 needs 12/);
    expectError(tensor({ dtype: 'BF16', shape: [2], data_offsets: [0, 8] }), /needs 4/);
  });

  it('layout: overlaps, gaps, uncovered trailing bytes, data with no tensors', () => {
    const a = (begin: number, end: number) => ({ dtype: 'U8', shape: [end - begin], data_offsets: [begin, end] });
    expectError(build({ a: a(0, 8), b: a(4, 12) }, 12), /tensor "b" data_offsets overlap those of tensor "a"/);
    expectError(build({ a: a(0, 8), b: a(0, 8) }, 8), /overlap/);
    expectError(build({ a: a(0, 4), b: a(6, 10) }, 10), /2 bytes after tensor "a" belong to no tensor \(tensor "b"/);
    expectError(build({ a: a(2, 10) }, 10), /2 bytes at the start of the data section belong to no tensor \(tensor "a"/);
    expectError(build({ a: a(0, 4) }, 6), /last 2 bytes of the data section \(after tensor "a"\) belong to no tensor/);
    expectError(build({ __metadata__: {} }, 3), /last 3 bytes .* no tensors/);
  });

  it('__metadata__: not an object, non-string values', () => {
    expectError(build(ok({ __metadata__: 'pt' }), 8), /__metadata__ must be an object of strings/);
    expectError(build(ok({ __metadata__: ['pt'] }), 8), /__metadata__ must be an object/);
    expectError(build(ok({ __metadata__: null }), 8), /__metadata__ must be an object/);
    expectError(build(ok({ __metadata__: { format: 1 } }), 8), /__metadata__\."format" must be a string, got 1/);
    expectError(build(ok({ __metadata__: { nested: { a: 'b' } } }), 8), /__metadata__\."nested" must be a string, got an object/);
  });

  it('keeps hostile names short in messages', () => {
    const name = 'x'.repeat(100_000);
    const e = expectError(build({ [name]: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, 8), /tensor "x+…"/);
    expect(e.message.length).toBeLessThan(300);
  });
});

describe('shard index', () => {
  const IDX = 'model.safetensors.index.json';
  const index = (weightMap: unknown, metadata: unknown = { total_size: 8 }) => JSON.stringify({ metadata, weight_map: weightMap });
  const header = (names: Record<string, number>): SafetensorsHeader => {
    const tensors: Record<string, unknown> = {};
    let at = 0;
    for (const [n, len] of Object.entries(names)) {
      tensors[n] = { dtype: 'U8', shape: [len], data_offsets: [at, at + len] };
      at += len;
    }
    return parse(build(tensors, at), 'shard');
  };
  function expectError(fn: () => unknown, ...parts: Array<string | RegExp>): void {
    const e = errorOf(fn);
    expect(e.message).toContain(IDX);
    for (const p of parts) expect(e.message).toMatch(p);
  }

  it('parses shards in first-appearance order, with or without total_size', () => {
    const i = parseShardIndex(index({ a: 's2', b: 's1', c: 's2' }, { total_size: 12, total_parameters: 12 }));
    expect(i.shards).toEqual(['s2', 's1']);
    expect(i.tensorsByShard.get('s2')).toEqual(['a', 'c']);
    expect(i.totalSize).toBe(12);
    expect(parseShardIndex(JSON.stringify({ weight_map: { a: 's' } })).totalSize).toBeNull();
    expect(parseShardIndex(index({ a: 's' }, {})).totalSize).toBeNull();
  });

  it('rejects malformed indexes, naming the file, tensor and field', () => {
    expectError(() => parseShardIndex('{'), /not valid JSON/);
    expectError(() => parseShardIndex('[]'), /must be a JSON object/);
    expectError(() => parseShardIndex('{}'), /weight_map must be an object/);
    expectError(() => parseShardIndex(index([])), /weight_map must be an object/);
    expectError(() => parseShardIndex(index({})), /weight_map is empty/);
    expectError(() => parseShardIndex(index({ a: 3 })), /weight_map\["a"\] must be a shard file name, got 3/);
    expectError(() => parseShardIndex(index({ '': 's' })), /empty name/);
    for (const bad of ['', '.', '..', '../x.safetensors', 'sub/x.safetensors', 'x\\y', '/etc/passwd', 'a..b', 'x\u0000y']) {
      expectError(() => parseShardIndex(index({ w: bad })), /weight_map\["w"\] shard .* must be a plain file name/);
    }
    expectError(() => parseShardIndex(index({ a: 's' }, 'x')), /metadata must be an object/);
    expectError(() => parseShardIndex(index({ a: 's' }, { total_size: -1 })), /metadata\.total_size must be a non-negative integer/);
    expectError(() => parseShardIndex(index({ a: 's' }, { total_size: '8' })), /metadata\.total_size/);
    expectError(() => parseShardIndex(index({ a: 's' }, { total_size: 1.5 })), /metadata\.total_size/);
    const e = errorOf(() => parseShardIndex('{', 'other.index.json'));
    expect(e.message).toMatch(/^other\.index\.json: /);
  });

  it('checks the index against the shard headers', () => {
    const good = parseShardIndex(index({ a: 's1', b: 's2', c: 's1' }, { total_size: 6 }));
    const headers = new Map([
      ['s1', header({ a: 1, c: 3 })],
      ['s2', header({ b: 2 })],
    ]);
    expect(checkAgainstHeaders(good, headers).get('c')?.shard).toBe('s1');

    expectError(() => checkAgainstHeaders(good, new Map([['s1', header({ a: 1, c: 3 })]])), /shard "s2" .* has no header/);
    expectError(
      () => checkAgainstHeaders(good, new Map([['s1', header({ a: 1 })], ['s2', header({ b: 2, c: 3 })]])),
      /tensor "c" is in shard "s2", but weight_map names shard "s1"/,
    );
    expectError(
      () => checkAgainstHeaders(good, new Map([['s1', header({ a: 1, c: 3, d: 1 })], ['s2', header({ b: 2 })]])),
      /tensor "d" is in shard "s1", but weight_map does not list it/,
    );
    expectError(
      () => checkAgainstHeaders(good, new Map([['s1', header({ a: 1 })], ['s2', header({ b: 2 })]])),
      /tensor "c" is not in shard "s1"/,
    );
    expectError(
      () => checkAgainstHeaders(good, new Map([...headers, ['s3', header({ z: 1 })]])),
      /tensor "z" is in shard "s3", but weight_map does not list it/,
    );
    const wrongTotal = parseShardIndex(index({ a: 's1', b: 's2', c: 's1' }, { total_size: 7 }));
    expectError(() => checkAgainstHeaders(wrongTotal, headers), /metadata\.total_size is 7, but the shards' tensors hold 6 bytes/);
  });
});

describe('streaming reader', () => {
  const F = 'stream.safetensors';
  const sample = () =>
    build(
      {
        __metadata__: { format: 'pt' },
        a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
        z0: { dtype: 'F32', shape: [0], data_offsets: [12, 12] },
        b: { dtype: 'U8', shape: [1], data_offsets: [12, 13] },
        c: { dtype: 'F16', shape: [2, 50], data_offsets: [13, 213] },
        z1: { dtype: 'I8', shape: [0, 2], data_offsets: [213, 213] },
      },
      213,
    );

  it('yields every tensor for every chunking, zero-size ones included, through onHeader first', async () => {
    const bytes = sample();
    const header = parse(bytes, F);
    for (const s of [1, 2, 3, 5, 8, 13, 64, 100, 211, 500, [1, 300, 2], [250, 1]]) {
      expectSameAsWhole(await collect(chunked(bytes, s), bytes.length, F), bytes, header);
    }
    const seen: string[] = [];
    for await (const t of readTensors([bytes], bytes.length, F, (h) => seen.push(`header ${h.tensors.length}`))) seen.push(t.name);
    expect(seen).toEqual(['header 5', 'a', 'z0', 'b', 'c', 'z1']);
  });

  it('accepts a file with no tensors, and zero-length chunks', async () => {
    const empty = build({ __metadata__: {} }, 0);
    expect(await collect([empty], empty.length, F)).toEqual([]);
    const bytes = sample();
    const withEmpty = [new Uint8Array(0), bytes.subarray(0, 10), new Uint8Array(0), bytes.subarray(10), new Uint8Array(0)];
    expect((await collect(withEmpty, bytes.length, F)).length).toBe(5);
  });

  it('yields each tensor as soon as its bytes are in, pulling no further (back-pressure)', async () => {
    const bytes = sample();
    const header = parse(bytes, F);
    let pulled = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (const c of chunked(bytes, 1)) {
        pulled += c.length;
        yield c;
      }
    }
    const it = readTensors(source(), bytes.length, F);
    for (const t of header.tensors) {
      const r = await it.next();
      expect(r.done).toBe(false);
      expect((r.value as StreamedTensor).name).toBe(t.name);
      expect(pulled).toBe(t.byteOffset + t.byteLength);
    }
    expect((await it.next()).done).toBe(true);
  });

  it('stops reading the source when the consumer stops', async () => {
    const bytes = sample();
    let closed = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      try {
        yield* chunked(bytes, 7);
      } finally {
        closed = true;
      }
    }
    for await (const t of readTensors(source(), bytes.length, F)) {
      expect(t.name).toBe('a');
      break;
    }
    expect(closed).toBe(true);
  });

  it('detects truncation, excess bytes and bad headers, naming the file', async () => {
    const bytes = sample();
    for (const cut of [0, 5, 8, 40, bytes.length - 214, bytes.length - 100, bytes.length - 1]) {
      const e = await asyncErrorOf(collect(chunked(bytes.subarray(0, cut), 9), bytes.length, F));
      expect(e.message).toMatch(new RegExp(`^${F}: stream ended after ${cut} of ${bytes.length} bytes`));
    }
    expect((await asyncErrorOf(collect(chunked(bytes.subarray(0, bytes.length - 100), 9), bytes.length, F))).message).toMatch(/in tensor "c"/);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect((await asyncErrorOf(collect(chunked(longer, 50), bytes.length, F))).message).toMatch(/stream holds more than the expected/);
    expect((await asyncErrorOf(collect([bytes], bytes.length - 1, F))).message).toMatch(/stream\.safetensors/);
    expect((await asyncErrorOf(collect([bytes], 4, F))).message).toMatch(/too small/);
    const bad = build({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8);
    expect((await asyncErrorOf(collect(chunked(bad, 3), bad.length, F))).message).toMatch(/tensor "w" data_offsets \[0, 8\] hold 8 bytes/);
    const notBytes = [bytes.subarray(0, 8), 'text' as unknown as Uint8Array];
    expect((await asyncErrorOf(collect(notBytes, bytes.length, F))).message).toMatch(/not a Uint8Array/);
  });

  it('rejects a 2^40-byte header length from the first chunk, before allocating', async () => {
    const first8 = new Uint8Array(8);
    new DataView(first8.buffer).setBigUint64(0, 2n ** 40n, true);
    let pulled = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      pulled++;
      yield first8;
      pulled++;
      yield new Uint8Array(1 << 20);
    }
    const e = await asyncErrorOf(readTensors(source(), 2 ** 41, F).next());
    expect(e.message).toMatch(/exceeds the 100000000-byte limit/);
    expect(pulled).toBe(1);
  });
});
