/**
 * Streaming, resumable downloads of large model files (safetensors shards).
 *
 * `fetchFile` yields a file's bytes in order as one seamless stream. When a connection drops mid-body (a network
 * error, or the body ending before its declared length), it waits with exponential back-off and resumes with a
 * `Range: bytes=N-` request from the last byte it yielded. Server errors (5xx) and rate limits (429) are retried
 * the same way; other 4xx statuses and inconsistent answers (a wrong `Content-Range`, more bytes than declared,
 * a size that disagrees with `expectedSize`) fail at once with a `DownloadError` that names the file.
 *
 * `headInfo` asks for a file's size, ETag and whether the server honours ranges.
 */
import { AbortError, DownloadError } from '../errors.js';

export interface FetchFileOptions {
  /** The file's name, used in error messages (e.g. `model-00001-of-00002.safetensors`). */
  file: string;
  /** The model it belongs to, used in error messages. */
  model?: string;
  signal?: AbortSignal;
  /** Extra request headers, e.g. `{ Authorization: 'Bearer hf_...' }` for gated or private models. */
  headers?: Record<string, string>;
  /** Start at this byte offset (resume a download whose first `startAt` bytes the caller already has). */
  startAt?: number;
  /** The file's full size, when known (from an index, a cache entry or `headInfo`); any disagreement is an error. */
  expectedSize?: number;
  /** How many times in a row a failed request is retried (default 4). A request that delivers bytes resets it. */
  retries?: number;
  /** First back-off delay in ms (default 500); it doubles on each consecutive failure, up to `maxBackoffMs`. */
  backoffMs?: number;
  /** Longest back-off delay in ms, also the cap on a server's `Retry-After` (default 30 000). */
  maxBackoffMs?: number;
  /** A request that delivers no byte for this long is dropped and retried (default 60 000; 0 turns it off). */
  stallTimeoutMs?: number;
  /** Called after each chunk with the bytes of the file available so far (counting `startAt`) and the size. */
  onProgress?: (loaded: number, total: number | null) => void;
  fetchImpl?: typeof fetch;
}

export interface HeadInfo {
  /** Size in bytes, or null when the server does not say. */
  size: number | null;
  /** The file's ETag (the Hub's `x-linked-etag` when present), or null. */
  etag: string | null;
  /** Whether the server answers `Range` requests with 206. */
  acceptRanges: boolean;
}

export type HeadInfoOptions = Omit<FetchFileOptions, 'startAt' | 'expectedSize' | 'onProgress' | 'stallTimeoutMs'>;

const DEFAULT_RETRIES = 4;
const DEFAULT_BACKOFF_MS = 500;
const DEFAULT_MAX_BACKOFF_MS = 30_000;
const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/** A failure worth another try (network error, 5xx, 429, body cut short). */
class Transient extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Marks an attempt cancelled because no byte arrived in time. */
const STALLED = Symbol('stalled');

function label(options: { file: string; model?: string }): string {
  return options.model ? `${options.file} of "${options.model}"` : options.file;
}

function abortError(options: { file: string; model?: string; signal?: AbortSignal }): AbortError {
  return new AbortError(`Download of ${label(options)} was cancelled.`, { cause: options.signal?.reason });
}

function isAbort(e: unknown): boolean {
  return (e as { name?: string } | null)?.name === 'AbortError';
}

function message(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message && cause.message !== e.message ? `${e.message} (${cause.message})` : e.message;
}

/** The message for an HTTP status that will not get better by retrying. */
function statusProblem(status: number, options: { file: string; model?: string }, url: string): string {
  const what = label(options);
  if (status === 401 || status === 403) {
    return (
      `${what} needs permission (HTTP ${status} at ${url}): the model may be gated or private. Accept its license on the ` +
      'Hub, then pass credentials (an `Authorization: Bearer <token>` header through `headers`), serve the files ' +
      'through your own authenticated proxy (set env.remoteHost), or load them from a local folder.'
    );
  }
  if (status === 404) return `${what} was not found (HTTP 404 at ${url}). Check the repo id, revision and file name.`;
  if (status === 416) return `The server refused the byte range for ${what} (HTTP 416 at ${url}).`;
  return `Fetching ${what} failed with HTTP ${status} (${url}).`;
}

function retryable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** `Retry-After` in ms (seconds or an HTTP date), or null. */
function retryAfter(response: Response): number | null {
  const value = response.headers.get('retry-after');
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function parseLength(value: string | null): number | null {
  if (value === null || !/^\s*\d+\s*$/.test(value)) return null;
  return Number(value);
}

/** The length of the body as sent, or null when unknown (or when a content coding makes it the encoded length). */
function bodyLength(response: Response): number | null {
  const coding = response.headers.get('content-encoding');
  if (coding && coding.trim().toLowerCase() !== 'identity') return null;
  return parseLength(response.headers.get('content-length'));
}

interface ContentRange {
  start: number;
  end: number;
  total: number | null;
}

/** `bytes START-END/TOTAL` (TOTAL may be `*`), or null when malformed. */
function parseContentRange(value: string): ContentRange | null {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value);
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? null : Number(m[3]);
  if (end < start || (total !== null && end >= total)) return null;
  return { start, end, total };
}

/** `bytes * /TOTAL` from a 416 answer, or null. */
function unsatisfiedTotal(response: Response): number | null {
  const m = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(response.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : null;
}

/** Resolves after `ms`, or rejects with an AbortError as soon as `signal` fires. */
function sleep(ms: number, options: { file: string; model?: string; signal?: AbortSignal }): Promise<void> {
  const signal = options.signal;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(options));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(options));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function backoff(failures: number, base: number, cap: number, hint: number | null): number {
  const exponential = Math.min(cap, base * 2 ** Math.max(0, failures - 1));
  return hint === null ? exponential : Math.min(cap, Math.max(exponential, hint));
}

/** An AbortController that also fires when `outer` does. */
function linkedController(outer: AbortSignal | undefined): { controller: AbortController; unlink: () => void } {
  const controller = new AbortController();
  if (!outer) return { controller, unlink: () => {} };
  const forward = (): void => controller.abort(outer.reason);
  if (outer.aborted) forward();
  else outer.addEventListener('abort', forward, { once: true });
  return { controller, unlink: () => outer.removeEventListener('abort', forward) };
}

/**
 * Downloads `url`, yielding the bytes from `startAt` to the end in order. Resumes transparently after dropped
 * connections; throws `DownloadError` on failures that retrying cannot fix (or once retries run out) and
 * `AbortError` when `signal` fires. Stopping the iteration early cancels the request.
 */
export async function* fetchFile(url: string, options: FetchFileOptions): AsyncGenerator<Uint8Array, void, undefined> {
  const doFetch = options.fetchImpl ?? globalThis.fetch;
  const retries = Math.max(0, options.retries ?? DEFAULT_RETRIES);
  const base = Math.max(0, options.backoffMs ?? DEFAULT_BACKOFF_MS);
  const cap = Math.max(base, options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
  const stallMs = Math.max(0, options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS);
  const what = label(options);
  const signal = options.signal;

  for (const [name, value] of [
    ['startAt', options.startAt],
    ['expectedSize', options.expectedSize],
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new DownloadError(`Invalid ${name} ${value} for ${what}: expected a non-negative integer.`);
    }
  }
  let pos = options.startAt ?? 0;
  let total: number | null = options.expectedSize ?? null;
  let failures = 0;
  let reported = false;

  if (total !== null && pos > total) {
    throw new DownloadError(`Cannot resume ${what} at byte ${pos}: the file has only ${total} bytes.`);
  }

  const sizeMismatch = (claimed: number, source: string): DownloadError =>
    new DownloadError(
      `${what} has the wrong size: ${source} says ${claimed} bytes but ${total} were expected (${url}). ` +
        'The file may have changed on the server; clear the cache and retry.',
    );

  for (;;) {
    if (signal?.aborted) throw abortError(options);
    if (total !== null && pos === total) break;

    const { controller, unlink } = linkedController(signal);
    let stallTimer: ReturnType<typeof setTimeout> | undefined;
    const armStall = (): void => {
      if (stallMs === 0) return;
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => controller.abort(STALLED), stallMs);
    };
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let progressed = false;
    let delay = 0;

    try {
      const headers: Record<string, string> = { ...options.headers };
      if (pos > 0) headers.Range = `bytes=${pos}-`;
      armStall();
      let response: Response;
      try {
        response = await doFetch(url, { headers, signal: controller.signal });
      } catch (e) {
        throw new Transient(`network error at byte ${pos}: ${message(e)}`, null, { cause: e });
      }

      // Where this response's body starts in the file, and how many leading bytes to drop.
      let skip = 0;
      let end: number | null; // offset just past the body's last byte, when known
      const length = bodyLength(response);

      if (response.status === 206) {
        const header = response.headers.get('content-range');
        if (header === null) {
          // Cross-origin responses hide Content-Range unless the server exposes it: trust the range we asked for.
          end = length === null ? null : pos + length;
        } else {
          const range = parseContentRange(header);
          if (range === null || range.start !== pos || (length !== null && length !== range.end - range.start + 1)) {
            await response.body?.cancel().catch(() => {});
            throw new DownloadError(
              `The server did not honour the byte range for ${what}: asked for bytes ${pos}- and got ` +
                `Content-Range "${header}"${length === null ? '' : ` with ${length} bytes`} (${url}).`,
            );
          }
          if (range.total !== null) {
            if (range.end !== range.total - 1) {
              await response.body?.cancel().catch(() => {});
              throw new DownloadError(
                `The server sent only part of the range asked for ${what}: Content-Range "${header}" (${url}).`,
              );
            }
            if (total !== null && range.total !== total) {
              await response.body?.cancel().catch(() => {});
              throw sizeMismatch(range.total, 'Content-Range');
            }
          }
          end = range.end + 1;
        }
      } else if (response.ok) {
        // A full answer: if we asked for a range the server ignored it, so drop what we already have.
        skip = pos;
        end = length;
        if (end !== null && end < pos) {
          await response.body?.cancel().catch(() => {});
          throw new DownloadError(`${what} is ${end} bytes, too short to resume at byte ${pos} (${url}).`);
        }
      } else if (response.status === 416) {
        const serverTotal = unsatisfiedTotal(response);
        await response.body?.cancel().catch(() => {});
        if (serverTotal === pos && (total === null || total === pos)) break; // nothing left to fetch
        if (serverTotal !== null && total !== null) throw sizeMismatch(serverTotal, 'the server');
        throw new DownloadError(statusProblem(416, options, url), { status: 416 });
      } else {
        await response.body?.cancel().catch(() => {});
        if (retryable(response.status)) {
          throw new Transient(`HTTP ${response.status}`, retryAfter(response));
        }
        throw new DownloadError(statusProblem(response.status, options, url), { status: response.status });
      }

      if (end !== null) {
        if (total === null) total = end;
        else if (end !== total) {
          await response.body?.cancel().catch(() => {});
          throw sizeMismatch(end, response.status === 206 ? 'the response' : 'Content-Length');
        }
      }

      if (response.body === null) {
        if (end === null || end === pos) break;
        throw new Transient(`the response has no body (expected ${end - pos} bytes)`);
      }
      reader = response.body.getReader();
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (e) {
          throw new Transient(`connection lost after byte ${pos}: ${message(e)}`, null, { cause: e });
        }
        if (result.done) break;
        armStall();
        let chunk = result.value;
        if (skip > 0) {
          const dropped = Math.min(skip, chunk.byteLength);
          skip -= dropped;
          chunk = chunk.subarray(dropped);
        }
        if (chunk.byteLength === 0) continue;
        if (total !== null && pos + chunk.byteLength > total) {
          throw new DownloadError(
            `${what} is longer than expected: the server sent more than ${total} bytes (${url}).`,
          );
        }
        pos += chunk.byteLength;
        progressed = true;
        failures = 0;
        clearTimeout(stallTimer);
        yield chunk;
        armStall();
        reported = true;
        options.onProgress?.(pos, total);
      }
      if (skip > 0) {
        if (total !== null) throw new Transient(`the response ended before byte ${pos}`);
        throw new DownloadError(`${what} ended before byte ${pos}, where the download was to resume (${url}).`);
      }
      if (total === null) break; // no declared length: a clean end is the end
      if (pos === total) break;
      throw new Transient(`the response ended after byte ${pos} of ${total}`);
    } catch (e) {
      if (signal?.aborted) throw abortError(options);
      let error = e;
      if (controller.signal.aborted && controller.signal.reason === STALLED) {
        error = new Transient(`no data for ${stallMs} ms after byte ${pos}`);
      } else if (isAbort(e) && !(e instanceof Transient)) {
        error = new Transient(`request aborted: ${message(e)}`, null, { cause: e });
      }
      if (!(error instanceof Transient)) throw error;
      if (!progressed) failures += 1;
      else failures = 1;
      if (failures > retries) {
        throw new DownloadError(
          `Downloading ${what} failed after ${retries + 1} attempts: ${error.message} (${url}).`,
          { cause: error.cause ?? error },
        );
      }
      delay = backoff(failures, base, cap, error.retryAfterMs);
    } finally {
      clearTimeout(stallTimer);
      unlink();
      if (reader) {
        // Cancelling frees the connection when the consumer stopped early or the body is being abandoned.
        reader.cancel().catch(() => {});
        try {
          reader.releaseLock();
        } catch {
          // already released
        }
      }
    }
    await sleep(delay, options);
  }
  if (!reported) options.onProgress?.(pos, total);
}

async function withRetries<T>(options: HeadInfoOptions, url: string, attempt: () => Promise<T>): Promise<T> {
  const retries = Math.max(0, options.retries ?? DEFAULT_RETRIES);
  const base = Math.max(0, options.backoffMs ?? DEFAULT_BACKOFF_MS);
  const cap = Math.max(base, options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
  for (let failures = 1; ; failures++) {
    if (options.signal?.aborted) throw abortError(options);
    try {
      return await attempt();
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options);
      if (!(e instanceof Transient)) throw e;
      if (failures > retries) {
        throw new DownloadError(
          `Asking for ${label(options)} failed after ${retries + 1} attempts: ${e.message} (${url}).`,
          { cause: e.cause ?? e },
        );
      }
      await sleep(backoff(failures, base, cap, e.retryAfterMs), options);
    }
  }
}

/**
 * Size, ETag and range support of `url`, from a HEAD request (or a one-byte ranged GET where HEAD is refused).
 * On a redirect (the Hub's `resolve` URLs point at a CDN) the Hub's `x-linked-size` / `x-linked-etag` headers are
 * preferred where visible.
 */
export async function headInfo(url: string, options: HeadInfoOptions): Promise<HeadInfo> {
  const doFetch = options.fetchImpl ?? globalThis.fetch;
  const request = async (init: RequestInit, target = url): Promise<Response> => {
    try {
      const headers = { ...options.headers, ...(init.headers as Record<string, string> | undefined) };
      return await doFetch(target, { ...init, headers, signal: options.signal });
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options);
      throw new Transient(`network error: ${message(e)}`, null, { cause: e });
    }
  };
  const fail = (response: Response): never => {
    if (retryable(response.status)) throw new Transient(`HTTP ${response.status}`, retryAfter(response));
    throw new DownloadError(statusProblem(response.status, options, url), { status: response.status });
  };

  return withRetries(options, url, async () => {
    let linkedSize: number | null = null;
    let linkedEtag: string | null = null;

    // Look at the first hop ourselves: the Hub puts x-linked-* on the redirect, not on the CDN's answer.
    let response = await request({ method: 'HEAD', redirect: 'manual' });
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      linkedSize = parseLength(response.headers.get('x-linked-size'));
      linkedEtag = response.headers.get('x-linked-etag');
      // Browsers hide the redirect's Location (an opaque redirect): then ask again, letting fetch follow it.
      const location = response.headers.get('location');
      response = await request({ method: 'HEAD' }, location ? new URL(location, url).href : url);
    }
    linkedSize ??= parseLength(response.headers.get('x-linked-size'));
    linkedEtag ??= response.headers.get('x-linked-etag');

    if (response.ok) {
      const acceptRanges = /\bbytes\b/i.test(response.headers.get('accept-ranges') ?? '');
      return {
        size: linkedSize ?? bodyLength(response),
        etag: linkedEtag ?? response.headers.get('etag'),
        acceptRanges,
      };
    }
    if (response.status === 401 || response.status === 404 || retryable(response.status)) fail(response);

    // HEAD refused (405, 501, a signed URL valid for GET only...): ask for the first byte instead.
    const get = await request({ method: 'GET', headers: { Range: 'bytes=0-0' } });
    await get.body?.cancel().catch(() => {});
    linkedSize ??= parseLength(get.headers.get('x-linked-size'));
    linkedEtag ??= get.headers.get('x-linked-etag');
    const etag = linkedEtag ?? get.headers.get('etag');
    if (get.status === 206) {
      const range = parseContentRange(get.headers.get('content-range') ?? '');
      return { size: linkedSize ?? range?.total ?? null, etag, acceptRanges: true };
    }
    if (get.status === 416) {
      // An empty file: no byte 0 to send.
      return { size: linkedSize ?? unsatisfiedTotal(get), etag, acceptRanges: true };
    }
    if (get.ok) return { size: linkedSize ?? bodyLength(get), etag, acceptRanges: false };
    return fail(get);
  });
}
