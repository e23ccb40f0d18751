// A static file server on 127.0.0.1 with Range support and per-path fault injection, for download tests. Node only.
// With `cors`, pages of another origin may read it (ranged requests included); with `control`, HTTP endpoints under
// /__control/ set faults and read the request log, so tests running in a browser can drive it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';

/**
 * A misbehaviour for one path. `times` is how many matching requests it applies to (default: all of them);
 * faults that shape the body only apply to GET requests.
 */
export type Fault =
  /** Send the headers and `afterBytes` bytes of the body, then close the connection. */
  | { kind: 'drop'; afterBytes: number; times?: number }
  /** Answer with this status (and headers) instead of the file, e.g. 500, 404, 401, 403, 429. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; times?: number }
  /**
   * Serve only the first `length` bytes. `declare`: 'short' (default) states the short length, as if the file were
   * that big; 'none' sends no Content-Length (chunked); 'full' states the full length, then closes the connection.
   */
  | { kind: 'truncate'; length: number; declare?: 'short' | 'none' | 'full'; times?: number }
  /** XOR the byte at `offset` of the file with `mask` (default 0x01). */
  | { kind: 'corrupt'; offset: number; mask?: number; times?: number }
  /** Append `bytes` bytes of junk after the file, without Content-Length. */
  | { kind: 'extra'; bytes: number; times?: number }
  /** Answer 200 with the whole file even when a Range was asked for. */
  | { kind: 'ignore-range'; times?: number }
  /** Answer a ranged request with the right bytes under a Content-Range whose start and end are off by `shift`. */
  | { kind: 'bad-content-range'; shift?: number; times?: number }
  /** Send the body in `chunkSize`-byte pieces, waiting `intervalMs` before each. */
  | { kind: 'trickle'; chunkSize: number; intervalMs: number; times?: number }
  /** Send the body without Content-Length (chunked transfer encoding). */
  | { kind: 'chunked'; times?: number }
  /** Refuse HEAD with 405. */
  | { kind: 'no-head'; times?: number }
  /**
   * Redirect (302) to the same path with `?blob=1`, as the Hub's resolve URLs redirect to a CDN: the redirect carries
   * `x-linked-size` and `x-linked-etag`, the target a different `etag`.
   */
  | { kind: 'redirect'; times?: number };

export interface LoggedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Full request URL (path and query). */
  url: string;
  /** The Range header, or null. */
  range: string | null;
  /** The status answered. */
  status: number;
}

export interface FaultServerOptions {
  /**
   * Answer cross-origin requests: `Access-Control-Allow-Origin: *`, preflights (OPTIONS) allowing any method used
   * here and the `Range` header, and the download headers exposed to scripts. Responses also carry
   * `Cache-Control: no-store`, so a browser's HTTP cache never answers in the server's place.
   */
  cors?: boolean;
  /**
   * Serve the control endpoints (never logged, never faulted):
   *  - `POST /__control/fault` with JSON `{ path, fault }` (`fault` a Fault or a list of them): like `setFault`;
   *  - `POST /__control/clear`: like `clearFaults`;
   *  - `GET /__control/requests`: the request log as JSON;
   *  - `POST /__control/reset-log`: empties the request log.
   */
  control?: boolean;
}

export const CONTROL_PREFIX = '/__control/';

export interface FaultServer {
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  url: string;
  /** Replace the faults of `path` (relative to the served folder; a leading '/' is optional). */
  setFault(path: string, fault: Fault | Fault[]): void;
  clearFaults(): void;
  /** Every request, in arrival order; clear it with `requests.length = 0`. */
  requests: LoggedRequest[];
  /** The strong ETag the server gives a file (also the `x-linked-etag` of a redirect). */
  etagOf(path: string): Promise<string>;
  close(): Promise<void>;
}

interface Active {
  fault: Fault;
  left: number;
}

function key(path: string): string {
  return '/' + path.replace(/^\/+/, '');
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function parseRange(header: string, size: number): { start: number; end: number } | 'invalid' | 'unsatisfiable' {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return 'invalid';
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Content-Range, Content-Length, ETag, Accept-Ranges, x-linked-size, x-linked-etag',
  'cache-control': 'no-store',
};

const PREFLIGHT_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, OPTIONS',
  'access-control-allow-headers': 'Range, Content-Type, Authorization',
  'access-control-max-age': '600',
};

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startFaultServer(root: string, options: FaultServerOptions = {}): Promise<FaultServer> {
  const faults = new Map<string, Active[]>();
  const requests: LoggedRequest[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();

  /** The first fault of `kind` for `path` that still applies; uses up one of its `times`. */
  function take<K extends Fault['kind']>(path: string, kinds: K[]): Extract<Fault, { kind: K }> | null {
    for (const active of faults.get(path) ?? []) {
      if (active.left > 0 && (kinds as string[]).includes(active.fault.kind)) {
        active.left -= 1;
        return active.fault as Extract<Fault, { kind: K }>;
      }
    }
    return null;
  }

  async function load(path: string): Promise<Uint8Array | null> {
    const full = normalize(join(root, decodeURIComponent(path)));
    if (!full.startsWith(normalize(root + sep)) && full !== normalize(root)) return null;
    try {
      return new Uint8Array(await readFile(full));
    } catch {
      return null;
    }
  }

  function wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });
  }

  function write(res: ServerResponse, data: Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (data.byteLength === 0 || res.destroyed) return resolve();
      res.write(data, () => resolve());
    });
  }

  /** Sends `body` after the headers, honouring drop / trickle / cut-off. */
  async function sendBody(
    res: ServerResponse,
    body: Uint8Array,
    plan: { dropAfter: number | null; trickle: { chunkSize: number; intervalMs: number } | null },
  ): Promise<void> {
    let closed = false;
    res.on('close', () => (closed = true));
    if (plan.dropAfter !== null) res.flushHeaders(); // the client sees a response even when no byte follows
    const limit = plan.dropAfter === null ? body.byteLength : Math.min(plan.dropAfter, body.byteLength);
    const step = plan.trickle ? Math.max(1, plan.trickle.chunkSize) : 64 * 1024;
    for (let at = 0; at < limit && !closed; at += step) {
      if (plan.trickle) await wait(plan.trickle.intervalMs);
      if (closed) return;
      await write(res, body.subarray(at, Math.min(limit, at + step)));
    }
    if (closed) return;
    if (plan.dropAfter !== null) {
      // Half-close after the bytes are flushed, so the client sees them and then an early end of the connection.
      res.socket?.end();
      return;
    }
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse, log: LoggedRequest): Promise<void> {
    const method = req.method ?? 'GET';
    const isHead = method === 'HEAD';
    const path = log.path;
    const query = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams;
    const answer = (status: number, headers: Record<string, string | number> = {}, text = ''): void => {
      log.status = status;
      res.writeHead(status, headers);
      res.end(isHead ? undefined : text);
    };

    if (method !== 'GET' && !isHead) return answer(405, { allow: 'GET, HEAD' });

    const status = take(path, ['status']);
    if (status) return answer(status.status, status.headers ?? {}, `fault: HTTP ${status.status}`);
    if (isHead && take(path, ['no-head'])) return answer(405, { allow: 'GET' });

    let data = await load(path);
    if (data === null) return answer(404, { 'content-type': 'text/plain' }, 'not found');
    const etag = `"${sha256(data)}"`;

    if (!query.has('blob') && take(path, ['redirect'])) {
      return answer(302, {
        location: `${path}?blob=1`,
        'x-linked-size': data.byteLength,
        'x-linked-etag': etag,
        'content-length': 0,
      });
    }

    let cutAt: number | null = null; // 'truncate' with declare 'full': absolute offset where the body stops
    let chunked = false;
    if (!isHead) {
      const truncate = take(path, ['truncate']);
      if (truncate) {
        const declare = truncate.declare ?? 'short';
        if (declare === 'full') cutAt = truncate.length;
        else data = data.subarray(0, truncate.length);
        if (declare === 'none') chunked = true;
      }
      const corrupt = take(path, ['corrupt']);
      if (corrupt && corrupt.offset < data.byteLength) {
        data = Uint8Array.from(data);
        data[corrupt.offset] ^= corrupt.mask ?? 0x01;
      }
      const extra = take(path, ['extra']);
      if (extra) {
        const grown = new Uint8Array(data.byteLength + extra.bytes);
        grown.set(data);
        grown.fill(0x5a, data.byteLength);
        data = grown;
        chunked = true;
      }
      if (take(path, ['chunked'])) chunked = true;
    }

    const size = data.byteLength;
    const headers: Record<string, string | number> = {
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      etag: query.has('blob') ? `W/"cdn-${size}"` : etag,
    };

    const rangeHeader = req.headers.range;
    let status2 = 200;
    let start = 0;
    let end = size - 1;
    if (rangeHeader !== undefined && !(!isHead && take(path, ['ignore-range']))) {
      const range = parseRange(rangeHeader, size);
      if (range === 'unsatisfiable') return answer(416, { 'content-range': `bytes */${size}` });
      if (range !== 'invalid') {
        status2 = 206;
        ({ start, end } = range);
        const bad = isHead ? null : take(path, ['bad-content-range']);
        const shift = bad ? (bad.shift ?? 1) : 0;
        headers['content-range'] = `bytes ${start + shift}-${end + shift}/${size}`;
      }
    }

    const body = data.subarray(start, end + 1);
    if (!chunked) headers['content-length'] = body.byteLength;
    log.status = status2;
    res.writeHead(status2, headers);
    if (isHead) {
      res.end();
      return;
    }

    const drop = take(path, ['drop']);
    const trickle = take(path, ['trickle']);
    let dropAfter: number | null = drop ? drop.afterBytes : null;
    if (cutAt !== null) {
      const relative = Math.max(0, cutAt - start);
      dropAfter = dropAfter === null ? relative : Math.min(dropAfter, relative);
    }
    await sendBody(res, body, { dropAfter, trickle });
  }

  function setFault(path: string, fault: Fault | Fault[]): void {
    const list = Array.isArray(fault) ? fault : [fault];
    faults.set(
      key(path),
      list.map((f) => ({ fault: f, left: f.times ?? Number.POSITIVE_INFINITY })),
    );
  }

  async function control(req: IncomingMessage, res: ServerResponse, action: string): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const method = req.method ?? 'GET';
    if (action === 'requests' && method === 'GET') return reply(200, requests);
    if (method !== 'POST') return reply(405, { error: `${method} ${CONTROL_PREFIX}${action} is not supported` });
    const text = await readBody(req);
    switch (action) {
      case 'fault': {
        let body: { path?: unknown; fault?: unknown };
        try {
          body = JSON.parse(text) as { path?: unknown; fault?: unknown };
        } catch {
          return reply(400, { error: 'the body is not JSON' });
        }
        if (typeof body.path !== 'string' || typeof body.fault !== 'object' || body.fault === null) {
          return reply(400, { error: 'expected { path: string, fault: Fault | Fault[] }' });
        }
        setFault(body.path, body.fault as Fault | Fault[]);
        return reply(200, { ok: true });
      }
      case 'clear':
        faults.clear();
        return reply(200, { ok: true });
      case 'reset-log':
        requests.length = 0;
        return reply(200, { ok: true });
      default:
        return reply(404, { error: `no control action "${action}"` });
    }
  }

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (options.cors) {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, PREFLIGHT_HEADERS).end();
        return;
      }
      for (const [name, value] of Object.entries(CORS_HEADERS)) res.setHeader(name, value);
    }
    if (options.control && url.startsWith(CONTROL_PREFIX)) {
      const action = url.slice(CONTROL_PREFIX.length).split('?')[0];
      control(req, res, action).catch((e) => {
        if (!res.headersSent) res.writeHead(500).end(String(e));
        else res.destroy();
      });
      return;
    }
    const log: LoggedRequest = {
      method: req.method ?? 'GET',
      path: decodeURIComponent(url.split('?')[0]),
      url,
      range: req.headers.range ?? null,
      status: 0,
    };
    requests.push(log);
    handle(req, res, log).catch((e) => {
      if (!res.headersSent) {
        log.status = 500;
        res.writeHead(500).end(String(e));
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    url: `http://127.0.0.1:${port}`,
    setFault,
    clearFaults() {
      faults.clear();
    },
    requests,
    async etagOf(path) {
      const data = await load(key(path));
      if (data === null) throw new Error(`no file ${path}`);
      return `"${sha256(data)}"`;
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
