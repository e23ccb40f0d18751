import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbortError, DownloadError } from '../../../src/errors.js';
import { fetchFile, headInfo, type FetchFileOptions } from '../../../src/hub/fetch-file.js';
import { HF_TINY } from '../../helpers/hf-tiny.js';
import { startFaultServer, type FaultServer } from '../../helpers/fault-server.js';

const PATH = '/gpt2/model.safetensors';
const FILE = 'model.safetensors';
const MODEL = 'tiny/gpt2';
const DISK = new Uint8Array(readFileSync(join(HF_TINY, PATH)));
const SIZE = DISK.byteLength;

let server: FaultServer;
let url = '';
beforeAll(async () => {
  server = await startFaultServer(HF_TINY);
  url = `${server.url}${PATH}`;
});
afterAll(() => server.close());
afterEach(() => {
  server.clearFaults();
  server.requests.length = 0;
});

const fast = { file: FILE, model: MODEL, backoffMs: 5, maxBackoffMs: 20 } satisfies Partial<FetchFileOptions>;

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

async function download(options: Partial<FetchFileOptions> = {}, target = url): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of fetchFile(target, { ...fast, ...options })) chunks.push(chunk);
  return concat(chunks);
}

/** Byte equality without handing Vitest two 600 KB arrays to diff. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(Buffer.from(actual), Buffer.from(expected))).toBe(0);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function gets(): { range: string | null; status: number }[] {
  return server.requests.filter((r) => r.method === 'GET').map((r) => ({ range: r.range, status: r.status }));
}

describe('fetchFile', () => {
  it('downloads a whole file byte for byte in one plain request', async () => {
    expectSameBytes(await download(), DISK);
    expect(gets()).toEqual([{ range: null, status: 200 }]);
  });

  it('starts at startAt with a Range request', async () => {
    expectSameBytes(await download({ startAt: 100_000 }), DISK.subarray(100_000));
    expect(gets()).toEqual([{ range: 'bytes=100000-', status: 206 }]);
  });

  it('resumes from the last byte after the connection drops mid-file', async () => {
    server.setFault(PATH, { kind: 'drop', afterBytes: 200_000, times: 1 });
    expectSameBytes(await download(), DISK);
    expect(gets()).toEqual([
      { range: null, status: 200 },
      { range: 'bytes=200000-', status: 206 },
    ]);
  });

  it('keeps resuming when every response drops, as long as each one makes progress', async () => {
    server.setFault(PATH, { kind: 'drop', afterBytes: 150_000 });
    expectSameBytes(await download({ retries: 1 }), DISK);
    const ranges = gets().map((r) => r.range);
    expect(ranges).toEqual([null, 'bytes=150000-', 'bytes=300000-', 'bytes=450000-', 'bytes=600000-']);
  });

  it('retries 5xx and 429 answers, then succeeds', async () => {
    server.setFault(PATH, [
      { kind: 'status', status: 500, times: 2 },
      { kind: 'status', status: 429, headers: { 'retry-after': '0' }, times: 1 },
    ]);
    expectSameBytes(await download(), DISK);
    expect(gets().map((r) => r.status)).toEqual([500, 500, 429, 200]);
  });

  it('gives up after the configured number of retries, naming the file and model', async () => {
    server.setFault(PATH, { kind: 'status', status: 503 });
    const err = await download({ retries: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toContain(FILE);
    expect(err.message).toContain(MODEL);
    expect(err.message).toMatch(/503/);
    expect(err.message).toMatch(/3 attempts/);
    expect(gets()).toHaveLength(3);
  });

  it('reports a missing file without retrying', async () => {
    const err = await download({}, `${server.url}/gpt2/no-such.safetensors`).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/404/);
    expect(err.message).toContain(FILE);
    expect(err.message).toContain(MODEL);
    expect(server.requests).toHaveLength(1);
  });

  it.each([401, 403])('explains HTTP %i as a gated or private model, without retrying', async (status) => {
    server.setFault(PATH, { kind: 'status', status });
    const err = await download().catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toContain(String(status));
    expect(err.message).toContain(FILE);
    expect(err.message).toMatch(/gated or private/);
    expect(err.message).toMatch(/Authorization/);
    expect(err.message).toMatch(/local folder/);
    expect(server.requests).toHaveLength(1);
  });

  it('passes extra headers (credentials) along', async () => {
    let seen: Headers | undefined;
    const fetchImpl: typeof fetch = (input, init) => {
      seen = new Headers(init?.headers);
      return fetch(input, init);
    };
    expectSameBytes(await download({ fetchImpl, headers: { Authorization: 'Bearer hf_test' }, startAt: 10 }), DISK.subarray(10));
    expect(seen?.get('authorization')).toBe('Bearer hf_test');
    expect(seen?.get('range')).toBe('bytes=10-');
  });

  it('rejects a Content-Length that disagrees with expectedSize, without retrying', async () => {
    const err = await download({ expectedSize: SIZE + 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/wrong size/);
    expect(err.message).toContain(String(SIZE));
    expect(gets()).toHaveLength(1);
  });

  it('detects a file served short of expectedSize', async () => {
    server.setFault(PATH, { kind: 'truncate', length: 300_000 });
    const err = await download({ expectedSize: SIZE }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/wrong size.*300000/);
  });

  it('detects a chunked body that ends short of expectedSize', async () => {
    server.setFault(PATH, { kind: 'truncate', length: 300_000, declare: 'none' });
    const err = await download({ expectedSize: SIZE }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/300000/);
    // The short end looked like a dropped connection, so it tried to resume; the 416 then showed the file is short.
    expect(gets()).toEqual([
      { range: null, status: 200 },
      { range: 'bytes=300000-', status: 416 },
    ]);
  });

  it('fails when a body keeps ending before its Content-Length', async () => {
    server.setFault(PATH, { kind: 'truncate', length: 300_000, declare: 'full' });
    const err = await download({ retries: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toContain(FILE);
    expect(err.message).toMatch(/after byte 300000/);
    expect(err.message).toMatch(/attempts/);
    expect(gets().map((r) => r.range)).toEqual([null, 'bytes=300000-', 'bytes=300000-']);
  });

  it('detects more bytes than expectedSize', async () => {
    server.setFault(PATH, { kind: 'extra', bytes: 10 });
    const err = await download({ expectedSize: SIZE }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/longer than expected/);
  });

  it('detects more bytes than Content-Length', async () => {
    const fetchImpl: typeof fetch = async () =>
      new Response(new Uint8Array(20), { status: 200, headers: { 'content-length': '10' } });
    const err = await download({ fetchImpl }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/more than 10 bytes/);
  });

  it('retries when a body stream ends before its Content-Length', async () => {
    let calls = 0;
    const fetchImpl: typeof fetch = async (_input, init) => {
      calls += 1;
      const range = new Headers(init?.headers).get('range');
      if (calls === 1) return new Response(DISK.slice(0, 1000), { headers: { 'content-length': String(SIZE) } });
      expect(range).toBe('bytes=1000-');
      return new Response(DISK.slice(1000), {
        status: 206,
        headers: { 'content-length': String(SIZE - 1000), 'content-range': `bytes 1000-${SIZE - 1}/${SIZE}` },
      });
    };
    expectSameBytes(await download({ fetchImpl }), DISK);
    expect(calls).toBe(2);
  });

  it('trusts a 206 whose Content-Range is hidden (cross-origin), using Content-Length', async () => {
    const fetchImpl: typeof fetch = async () =>
      new Response(DISK.slice(500), { status: 206, headers: { 'content-length': String(SIZE - 500) } });
    const events: [number, number | null][] = [];
    const got = await download({ fetchImpl, startAt: 500, onProgress: (l, t) => events.push([l, t]) });
    expectSameBytes(got, DISK.subarray(500));
    expect(events.at(-1)).toEqual([SIZE, SIZE]);
  });

  it('rejects a resumed range whose total differs (the file changed)', async () => {
    let calls = 0;
    const fetchImpl: typeof fetch = async () => {
      calls += 1;
      if (calls === 1) return new Response(DISK.slice(0, 1000), { headers: { 'content-length': String(SIZE) } });
      return new Response(DISK.slice(1000), {
        status: 206,
        headers: { 'content-range': `bytes 1000-${SIZE}/${SIZE + 1}` },
      });
    };
    const err = await download({ fetchImpl }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/wrong size/);
    expect(calls).toBe(2);
  });

  it('rejects a 206 that covers only part of the rest of the file', async () => {
    const fetchImpl: typeof fetch = async () =>
      new Response(DISK.slice(1000, 2000), {
        status: 206,
        headers: { 'content-range': `bytes 1000-1999/${SIZE}`, 'content-length': '1000' },
      });
    const err = await download({ fetchImpl, startAt: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/only part of the range/);
  });

  it('rejects an invalid startAt', async () => {
    await expect(download({ startAt: -1 })).rejects.toThrow(DownloadError);
    await expect(download({ startAt: SIZE + 1, expectedSize: SIZE })).rejects.toThrow(/only/);
  });

  it('retries network errors', async () => {
    let calls = 0;
    const fetchImpl: typeof fetch = async (input, init) => {
      calls += 1;
      if (calls === 1) throw new TypeError('fetch failed');
      return fetch(input, init);
    };
    expectSameBytes(await download({ fetchImpl }), DISK);
    expect(calls).toBe(2);
  });

  it('skips the bytes it already has when the server ignores Range', async () => {
    server.setFault(PATH, { kind: 'ignore-range' });
    expectSameBytes(await download({ startAt: 123_456 }), DISK.subarray(123_456));
    expect(gets()).toEqual([{ range: 'bytes=123456-', status: 200 }]);
  });

  it('resumes through a server that ignores Range after a drop', async () => {
    server.setFault(PATH, [{ kind: 'drop', afterBytes: 250_000, times: 1 }, { kind: 'ignore-range' }]);
    expectSameBytes(await download(), DISK);
    expect(gets()).toEqual([
      { range: null, status: 200 },
      { range: 'bytes=250000-', status: 200 },
    ]);
  });

  it('rejects a wrong Content-Range', async () => {
    server.setFault(PATH, { kind: 'bad-content-range', shift: 7 });
    const err = await download({ startAt: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/did not honour the byte range/);
    expect(err.message).toContain(FILE);
    expect(gets()).toHaveLength(1);
  });

  it('yields nothing when startAt is already the end', async () => {
    expect((await download({ startAt: SIZE, expectedSize: SIZE })).byteLength).toBe(0);
    expect(server.requests).toHaveLength(0);
    expect((await download({ startAt: SIZE })).byteLength).toBe(0);
    expect(gets()).toEqual([{ range: `bytes=${SIZE}-`, status: 416 }]);
  });

  it('reports monotonic progress ending at the size', async () => {
    server.setFault(PATH, { kind: 'drop', afterBytes: 200_000, times: 1 });
    const events: [number, number | null][] = [];
    await download({ startAt: 5000, onProgress: (loaded, total) => events.push([loaded, total]) });
    expect(events.length).toBeGreaterThan(2);
    for (let i = 1; i < events.length; i++) expect(events[i][0]).toBeGreaterThan(events[i - 1][0]);
    expect(events[0][0]).toBeGreaterThan(5000);
    expect(events.every(([, total]) => total === SIZE)).toBe(true);
    expect(events.at(-1)).toEqual([SIZE, SIZE]);
  });

  it('drops a stalled request and resumes', async () => {
    server.setFault(PATH, { kind: 'trickle', chunkSize: 64 * 1024, intervalMs: 400, times: 1 });
    expectSameBytes(await download({ stallTimeoutMs: 100 }), DISK);
    expect(gets().map((r) => r.range)).toEqual([null, null]);
  });

  it('survives a slow trickle within the stall timeout', async () => {
    server.setFault(PATH, { kind: 'trickle', chunkSize: 64 * 1024, intervalMs: 2 });
    expectSameBytes(await download({ stallTimeoutMs: 2000 }), DISK);
    expect(gets()).toHaveLength(1);
  });

  it('aborts mid-download, and a new download from the bytes received completes the file', async () => {
    server.setFault(PATH, { kind: 'trickle', chunkSize: 16 * 1024, intervalMs: 5, times: 1 });
    const controller = new AbortController();
    const received: Uint8Array[] = [];
    let got = 0;
    const err = await (async () => {
      for await (const chunk of fetchFile(url, { ...fast, signal: controller.signal })) {
        received.push(chunk);
        got += chunk.byteLength;
        if (got >= 100_000) controller.abort();
      }
    })().catch((e) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(err.message).toContain(FILE);
    expect(got).toBeGreaterThanOrEqual(100_000);
    expect(got).toBeLessThan(SIZE);

    server.requests.length = 0;
    const rest = await download({ startAt: got });
    expectSameBytes(concat([...received, rest]), DISK);
    expect(gets()).toEqual([{ range: `bytes=${got}-`, status: 206 }]);
  });

  it('aborts promptly during a back-off wait', async () => {
    server.setFault(PATH, { kind: 'status', status: 500 });
    const controller = new AbortController();
    const pending = download({ backoffMs: 10_000, maxBackoffMs: 10_000, signal: controller.signal }).catch((e) => e);
    for (let i = 0; i < 200 && !server.requests.some((r) => r.status === 500); i++) await sleep(10);
    await sleep(20); // now in the 10 s back-off
    const abortedAt = Date.now();
    controller.abort();
    const err = await pending;
    expect(err).toBeInstanceOf(AbortError);
    expect(Date.now() - abortedAt).toBeLessThan(1000);
    expect(gets()).toHaveLength(1);
  });

  it('throws AbortError at once for an already aborted signal', async () => {
    const err = await download({ signal: AbortSignal.abort() }).catch((e) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(server.requests).toHaveLength(0);
  });

  it('stops cleanly when the consumer breaks early', async () => {
    for await (const chunk of fetchFile(url, fast)) {
      expect(chunk.byteLength).toBeGreaterThan(0);
      break;
    }
    expectSameBytes(await download(), DISK);
  });
});

describe('headInfo', () => {
  it('reads size, ETag and range support from HEAD', async () => {
    const info = await headInfo(url, fast);
    expect(info).toEqual({ size: SIZE, etag: await server.etagOf(PATH), acceptRanges: true });
    expect(server.requests.map((r) => r.method)).toEqual(['HEAD']);
  });

  it('falls back to a one-byte GET when HEAD is refused', async () => {
    server.setFault(PATH, { kind: 'no-head' });
    const info = await headInfo(url, fast);
    expect(info).toEqual({ size: SIZE, etag: await server.etagOf(PATH), acceptRanges: true });
    expect(server.requests.map((r) => [r.method, r.range, r.status])).toEqual([
      ['HEAD', null, 405],
      ['GET', 'bytes=0-0', 206],
    ]);
  });

  it('prefers x-linked-size and x-linked-etag across a Hub-style redirect', async () => {
    server.setFault(PATH, { kind: 'redirect' });
    const info = await headInfo(url, fast);
    expect(info).toEqual({ size: SIZE, etag: await server.etagOf(PATH), acceptRanges: true });
    expect(server.requests.map((r) => [r.method, r.status])).toEqual([
      ['HEAD', 302],
      ['HEAD', 200],
    ]);
  });

  it('retries 5xx and reports 404 and 403 as DownloadErrors naming the file', async () => {
    server.setFault(PATH, { kind: 'status', status: 502, times: 1 });
    expect((await headInfo(url, fast)).size).toBe(SIZE);

    const missing = await headInfo(`${server.url}/gpt2/nope.bin`, { ...fast, file: 'nope.bin' }).catch((e) => e);
    expect(missing).toBeInstanceOf(DownloadError);
    expect(missing.message).toMatch(/nope\.bin.*404/);

    server.setFault(PATH, { kind: 'status', status: 403 });
    const gated = await headInfo(url, fast).catch((e) => e);
    expect(gated).toBeInstanceOf(DownloadError);
    expect(gated.message).toMatch(/gated or private/);
    expect(gated.message).toContain(FILE);
  });
});

describe('fault server', () => {
  it('serves ranges, 416 and bit-flipped content', async () => {
    const ranged = await fetch(url, { headers: { Range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 10-19/${SIZE}`);
    expectSameBytes(new Uint8Array(await ranged.arrayBuffer()), DISK.subarray(10, 20));

    const beyond = await fetch(url, { headers: { Range: `bytes=${SIZE}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${SIZE}`);
    await beyond.body?.cancel();

    server.setFault(PATH, { kind: 'corrupt', offset: 42, mask: 0x80 });
    const flipped = new Uint8Array(await (await fetch(url)).arrayBuffer());
    expect(flipped.byteLength).toBe(SIZE);
    expect(flipped[42]).toBe(DISK[42] ^ 0x80);
    expectSameBytes(flipped.subarray(43), DISK.subarray(43));
  });
});
