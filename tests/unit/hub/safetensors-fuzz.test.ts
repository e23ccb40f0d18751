// Seeded mutation fuzzing of safetensors headers, shard indexes and the streaming reader. Each damaged input must
// either parse into something that still obeys the format (tensors tiling the data section exactly) or fail with a
// SafetensorsError naming the file: never another error, never a hang, and never an allocation sized by an
// unchecked header length.
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
import { readTensors } from '../../../src/hub/tensor-stream.js';
import { HF_TINY, HF_TINY_CASES } from '../../helpers/hf-tiny.js';
import { rng } from '../../helpers/random.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const HEADER_MUTATIONS = 4000;
const INDEX_MUTATIONS = 1500;
const STREAM_MUTATIONS = 400;
const SLOW_MS = 1000;
const FILE = 'fuzz.safetensors';
const INDEX_FILE = 'fuzz.index.json';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A file prefix (length bytes + header) and the size of the whole file it claims to start. */
interface Sample {
  prefix: Uint8Array;
  fileSize: number;
}

function withLength(json: Uint8Array, length: bigint = BigInt(json.length)): Uint8Array {
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, length, true);
  out.set(json, 8);
  return out;
}

/** Replace the header text of a sample, keeping its data section size. */
function retext(s: Sample, text: string): Sample {
  const json = encoder.encode(text);
  const dataLength = s.fileSize - s.prefix.length;
  return { prefix: withLength(json), fileSize: 8 + json.length + dataLength };
}

function headerText(s: Sample): string {
  return decoder.decode(s.prefix.subarray(8));
}

function synthetic(r: () => number): Sample {
  const dtypes = Object.keys(DTYPE_SIZES) as Array<keyof typeof DTYPE_SIZES>;
  const header: Record<string, Json> = {};
  if (r() < 0.5) header.__metadata__ = { format: 'pt', k: String(Math.floor(r() * 1000)) };
  const n = Math.floor(r() * 6);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const dtype = dtypes[Math.floor(r() * dtypes.length)];
    const shape = Array.from({ length: Math.floor(r() * 4) }, () => Math.floor(r() * 5));
    const bytes = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[dtype];
    header[`t${i}.${dtype.toLowerCase()}`] = { dtype, shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  const json = encoder.encode(JSON.stringify(header));
  return { prefix: withLength(json), fileSize: 8 + json.length + at };
}

function fixtureSamples(): Sample[] {
  const out: Sample[] = [];
  for (const c of HF_TINY_CASES) {
    for (const f of readdirSafetensors(c)) {
      const bytes = readFileSync(join(HF_TINY, c, f));
      const length = readHeaderLength(bytes.subarray(0, 8));
      out.push({ prefix: new Uint8Array(bytes.subarray(0, 8 + length)), fileSize: bytes.length });
    }
  }
  return out;
}

function readdirSafetensors(caseName: string): string[] {
  const golden = JSON.parse(readFileSync(join(HF_TINY, caseName, 'golden.json'), 'utf8')) as { checkpoint: { files: string[] } };
  return golden.checkpoint.files.filter((f) => f.endsWith('.safetensors'));
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const ODD_NUMBERS = ['0', '1', '-1', '-0', '1.5', '1e3', '1e308', '-1e308', '9007199254740992', '9007199254740993', '18446744073709551615', '4294967296', '99999999999999999999999', '0.0000001', '2e-400'];

function randomValue(r: () => number, depth = 0): Json {
  const k = Math.floor(r() * (depth > 2 ? 6 : 8));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return pick(r, ['', 'F32', 'BF16', 'x', '__metadata__', '../x', 'F8_E4M3', 'toString', '__proto__']);
    case 3:
      return Number(pick(r, ODD_NUMBERS));
    case 4:
      return Math.floor(r() * 300);
    case 5:
      return -Math.floor(r() * 10);
    case 6:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, Json> = {};
      for (let i = Math.floor(r() * 3); i > 0; i--) o[pick(r, ['dtype', 'shape', 'data_offsets', 'a', ''])] = randomValue(r, depth + 1);
      return o;
    }
  }
}

/** Every (container, key) pair in a JSON value, so one can be replaced or removed. */
function slots(v: Json, out: Array<[Json[] | Record<string, Json>, string | number]> = [], depth = 0): typeof out {
  if (depth > 16) return out; // earlier mutations may have nested values very deeply
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push([v, i]);
      slots(x, out, depth + 1);
    });
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push([v, k]);
      slots(x, out, depth + 1);
    }
  }
  return out;
}

function deepNest(r: () => number): string {
  const depth = 1 + Math.floor(r() * 50_000);
  return r() < 0.5 ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** Text-level damage shared by headers and index files. */
function mutateText(r: () => number, text: string): string {
  const kind = Math.floor(r() * 8);
  switch (kind) {
    case 0: // truncate
      return text.slice(0, Math.floor(r() * text.length));
    case 1: {
      // change a number
      const nums = [...text.matchAll(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g)];
      if (nums.length === 0) return text;
      const m = pick(r, nums);
      const old = Number(m[0]);
      const next = r() < 0.4 ? pick(r, ODD_NUMBERS) : String(old + pick(r, [-8, -4, -2, -1, 1, 2, 4, 8]));
      return text.slice(0, m.index) + next + text.slice((m.index ?? 0) + m[0].length);
    }
    case 2: {
      // retype, remove or add a field
      let json: Json;
      try {
        json = JSON.parse(text) as Json;
      } catch {
        return text;
      }
      const all = slots(json);
      if (all.length === 0) return JSON.stringify(randomValue(r));
      const [container, key] = pick(r, all);
      const action = r();
      if (action < 0.6) (container as Record<string, Json>)[key] = randomValue(r);
      else if (action < 0.8) {
        if (Array.isArray(container)) container.splice(key as number, 1);
        else delete container[key as string];
      } else if (!Array.isArray(container)) container[`${String(key)}_copy`] = container[key as string];
      else container.push(container[key as number]);
      try {
        return JSON.stringify(json);
      } catch {
        return text; // too deep to print back
      }
    }
    case 3: {
      // deep nesting spliced into a value position
      const at = text.indexOf(':', Math.floor(r() * text.length));
      if (at < 0) return deepNest(r);
      return `${text.slice(0, at + 1)}${deepNest(r)},${text.slice(at + 1)}`;
    }
    case 4: {
      // swap two characters
      const i = Math.floor(r() * text.length);
      const j = Math.floor(r() * text.length);
      const a = [...text];
      [a[i], a[j]] = [a[j], a[i]];
      return a.join('');
    }
    case 5: {
      // insert odd characters
      const i = Math.floor(r() * (text.length + 1));
      return text.slice(0, i) + pick(r, ['"', '\\', '\u0000', '\uffff', '\ud800', '😀', ',', '}', ']', '{', 'NaN', 'Infinity']) + text.slice(i);
    }
    case 6: // duplicate a slice
    {
      const i = Math.floor(r() * text.length);
      const j = i + Math.floor(r() * 200);
      return text.slice(0, j) + text.slice(i, j) + text.slice(j);
    }
    default:
      return text;
  }
}

function mutateSample(r: () => number, base: Sample): Sample {
  const kind = Math.floor(r() * 7);
  switch (kind) {
    case 0: {
      // truncate the bytes, claiming the same or the cut size
      const cut = Math.floor(r() * base.prefix.length);
      return { prefix: base.prefix.slice(0, cut), fileSize: r() < 0.5 ? base.fileSize : cut };
    }
    case 1: {
      // flip bits anywhere in the prefix (length bytes included)
      const prefix = base.prefix.slice();
      for (let n = 1 + Math.floor(r() * 4); n > 0; n--) {
        const i = r() < 0.2 ? Math.floor(r() * 8) : Math.floor(r() * prefix.length);
        prefix[i] ^= 1 << Math.floor(r() * 8);
      }
      return { prefix, fileSize: base.fileSize };
    }
    case 2: {
      // a huge or off-by-some header length
      const json = base.prefix.subarray(8);
      const len = pick(r, [
        2n ** 40n,
        2n ** 64n - 1n,
        2n ** 53n,
        2n ** 53n - 1n,
        BigInt(MAX_HEADER_LENGTH + 1),
        BigInt(MAX_HEADER_LENGTH),
        BigInt(base.fileSize),
        BigInt(base.fileSize - 7),
        BigInt(json.length + 1),
        BigInt(Math.max(0, json.length - 1)),
        0n,
        BigInt(Math.floor(r() * 2 ** 32)) * BigInt(Math.floor(r() * 2 ** 32)),
      ]);
      return { prefix: withLength(json, len), fileSize: base.fileSize };
    }
    case 3: // a different file size
      return { prefix: base.prefix, fileSize: Math.max(0, base.fileSize + pick(r, [-1, 1, -8, 8, -1000, 2 ** 40, -base.fileSize])) };
    case 4: {
      // random garbage
      const prefix = new Uint8Array(Math.floor(r() * 64));
      for (let i = 0; i < prefix.length; i++) prefix[i] = Math.floor(r() * 256);
      return { prefix, fileSize: prefix.length + Math.floor(r() * 100) };
    }
    default:
      return retext(base, mutateText(r, headerText(base)));
  }
}

/** A successful parse must still describe a valid layout. */
function expectValid(h: SafetensorsHeader, fileSize: number): void {
  let at = h.dataOffset;
  for (const t of h.tensors) {
    expect(t.byteOffset).toBe(at);
    expect(t.byteLength).toBe(t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[t.dtype]);
    at += t.byteLength;
  }
  expect(at).toBe(fileSize);
  expect(h.headerLength).toBeLessThanOrEqual(MAX_HEADER_LENGTH);
}

function expectParsesOrSafetensorsError(fn: () => void, fileName: string): 'ok' | 'error' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    expect(e.message.startsWith(`${fileName}: `)).toBe(true);
    return 'error';
  }
}

describe('safetensors fuzzing', () => {
  it(`${HEADER_MUTATIONS} mutated headers parse or throw SafetensorsError`, () => {
    const r = rng(0x5afe);
    const bases = fixtureSamples();
    expect(bases.length).toBeGreaterThanOrEqual(HF_TINY_CASES.length);
    const counts = { ok: 0, error: 0 };
    let slowest = 0;
    for (let i = 0; i < HEADER_MUTATIONS; i++) {
      const base = r() < 0.6 ? pick(r, bases) : synthetic(r);
      let s = mutateSample(r, base);
      if (r() < 0.15) s = mutateSample(r, s);
      const t0 = performance.now();
      const result = expectParsesOrSafetensorsError(() => expectValid(parseSafetensorsHeader(s.prefix, s.fileSize, FILE), s.fileSize), FILE);
      slowest = Math.max(slowest, performance.now() - t0);
      counts[result]++;
    }
    expect(counts.ok + counts.error).toBe(HEADER_MUTATIONS);
    // Both outcomes must be exercised: the fuzzer is not just producing garbage.
    expect(counts.ok).toBeGreaterThan(HEADER_MUTATIONS / 20);
    expect(counts.error).toBeGreaterThan(HEADER_MUTATIONS / 2);
    expect(slowest).toBeLessThan(SLOW_MS);
  });

  it('never accepts a header length beyond the 100 MB bound or the file', () => {
    const r = rng(0x1e9);
    const first8 = new Uint8Array(8);
    const view = new DataView(first8.buffer);
    for (let i = 0; i < 2000; i++) {
      const high = pick(r, [0, 0, 1, 0x1fffff, 0x200000, 0xffffffff, Math.floor(r() * 2 ** 32)]);
      view.setUint32(0, Math.floor(r() * 2 ** 32), true);
      view.setUint32(4, high, true);
      const fileSize = pick(r, [8, 100, 2 ** 30, 2 ** 41, Number.MAX_SAFE_INTEGER]);
      expectParsesOrSafetensorsError(() => {
        const n = readHeaderLength(first8, FILE, fileSize);
        expect(n).toBeLessThanOrEqual(Math.min(MAX_HEADER_LENGTH, fileSize - 8));
        expect(n).toBeGreaterThan(0);
      }, FILE);
    }
  });

  it(`${INDEX_MUTATIONS} mutated shard indexes parse or throw SafetensorsError, also against the shard headers`, () => {
    const r = rng(0x1d3);
    const llamaText = readFileSync(join(HF_TINY, 'llama', 'model.safetensors.index.json'), 'utf8');
    const headers = new Map<string, SafetensorsHeader>();
    for (const f of readdirSafetensors('llama')) {
      const bytes = readFileSync(join(HF_TINY, 'llama', f));
      headers.set(f, parseSafetensorsHeader(bytes, bytes.length, f));
    }
    const counts = { ok: 0, error: 0, checked: 0 };
    let slowest = 0;
    for (let i = 0; i < INDEX_MUTATIONS; i++) {
      let text = llamaText;
      for (let n = 1 + Math.floor(r() * 2); n > 0; n--) text = mutateText(r, text);
      if (r() < 0.1) text = text.replace(/model-0000\d-of-00003\.safetensors/, pick(r, ['../x', 'a/b', '..', '', 'x\\\\y', 'model-00004-of-00003.safetensors']));
      const t0 = performance.now();
      const result = expectParsesOrSafetensorsError(() => {
        const index = parseShardIndex(text, INDEX_FILE);
        for (const s of index.shards) expect(s).not.toMatch(/[/\\]|\.\./);
        counts.checked++;
        checkAgainstHeaders(index, headers);
      }, INDEX_FILE);
      slowest = Math.max(slowest, performance.now() - t0);
      counts[result]++;
    }
    expect(counts.ok).toBeGreaterThan(INDEX_MUTATIONS / 50);
    expect(counts.checked).toBeGreaterThan(INDEX_MUTATIONS / 5);
    expect(counts.error).toBeGreaterThan(INDEX_MUTATIONS / 2);
    expect(slowest).toBeLessThan(SLOW_MS);
  });

  it(`${STREAM_MUTATIONS} mutated files streamed in random chunks agree with the whole-file parse`, async () => {
    const r = rng(0x57e);
    const counts = { ok: 0, error: 0 };
    for (let i = 0; i < STREAM_MUTATIONS; i++) {
      const base = synthetic(r);
      let s = r() < 0.2 ? base : mutateSample(r, base);
      // Whole files: the prefix, then data bytes up to the claimed size (capped: sizes can be huge after damage).
      const dataLength = Math.max(0, Math.min(s.fileSize, 1 << 16) - s.prefix.length);
      const bytes = new Uint8Array(s.prefix.length + dataLength);
      bytes.set(s.prefix);
      for (let j = s.prefix.length; j < bytes.length; j++) bytes[j] = Math.floor(r() * 256);
      const whole = (() => {
        try {
          return parseSafetensorsHeader(bytes, s.fileSize, FILE);
        } catch (e) {
          if (!(e instanceof SafetensorsError)) throw e;
          return null;
        }
      })();
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = pick(r, [1, 2, 3, 7, 16, 100, 4097]);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      s = { prefix: bytes, fileSize: s.fileSize };
      try {
        const got: Uint8Array[] = [];
        for await (const t of readTensors(chunks, s.fileSize, FILE)) got.push(t.bytes);
        expect(whole).not.toBeNull();
        expect(bytes.length).toBe(s.fileSize);
        const h = whole as SafetensorsHeader;
        expect(got.length).toBe(h.tensors.length);
        h.tensors.forEach((t, k) => expect(Buffer.compare(got[k], bytes.subarray(t.byteOffset, t.byteOffset + t.byteLength))).toBe(0));
        counts.ok++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw e;
        expect(e.message.startsWith(`${FILE}: `)).toBe(true);
        // A stream of a complete file fails exactly when the header does.
        if (bytes.length === s.fileSize && s.fileSize >= 8) expect(whole).toBeNull();
        counts.error++;
      }
    }
    expect(counts.ok).toBeGreaterThan(STREAM_MUTATIONS / 10);
    expect(counts.error).toBeGreaterThan(STREAM_MUTATIONS / 10);
  });
});
