/** Shared steps of the demo's end-to-end tests: a static server for fixture models, and waits on `window.__demo`. */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, resolve } from 'node:path';
import { expect, test, type Page } from '@playwright/test';

/**
 * Serves `root` read-only on 127.0.0.1 (a random port) the way a model host does: GET and HEAD with
 * Content-Length, single byte ranges, CORS for the demo's origin, 404 for missing files.
 */
export async function serveFolder(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const base = resolve(root);
  const server: Server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Accept-Ranges, ETag');
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const path = normalize(join(base, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    let size: number;
    try {
      const stat = statSync(path);
      if (!path.startsWith(base) || !stat.isFile()) throw new Error('not a file');
      size = stat.size;
    } catch {
      return void res.writeHead(404).end();
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Number(range[2]) : size - 1;
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Content-Length', String(end - start + 1));
    if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    res.writeHead(range ? 206 : 200);
    if (req.method === 'HEAD') return void res.end();
    createReadStream(path, { start, end }).pipe(res);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((done) => server.close(() => done())) };
}

type Hooks = Record<string, unknown> & { state: string; tokens: number; text: string; lastRun: string | null; runs: number };

export function hooks(page: Page): Promise<Hooks> {
  return page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as { __demo: unknown }).__demo)));
}

/** Waits until the demo has a model loaded and is idle. */
export async function waitReady(page: Page, timeout = 90_000): Promise<void> {
  await expect
    .poll(async () => (await hooks(page)).state, { timeout, message: 'the demo reaches state ready' })
    .toMatch(/^(ready|error)$/);
  const h = await hooks(page);
  expect(h.error, 'the model loads without an error').toBeNull();
}

/** Clicks Generate (or Send) and waits for the run to end; returns the hooks afterwards. */
export async function generate(page: Page, timeout = 90_000): Promise<Hooks> {
  const runs = (await hooks(page)).runs;
  await page.getByTestId('generate').click();
  await expect.poll(async () => {
    const h = await hooks(page);
    return h.runs > runs && h.lastRun !== null;
  }, { timeout }).toBe(true);
  return hooks(page);
}

/** Sets a number (or text) field of the settings panel. */
export async function setField(page: Page, testId: string, value: string | number): Promise<void> {
  await page.getByTestId(testId).fill(String(value));
}

/** Starts recording the page's long tasks (PerformanceObserver 'longtask'). */
export async function observeLongTasks(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __longTasks: Array<{ start: number; duration: number }> };
    w.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask' });
  });
}

/** The long tasks that overlapped the decode phase of the last run (first token to end), and a line describing them. */
export async function decodeLongTasks(page: Page): Promise<{ max: number; report: string; engine: unknown }> {
  const h = await hooks(page);
  const tasks = await page.evaluate(
    ({ from, to }) =>
      (window as unknown as { __longTasks: Array<{ start: number; duration: number }> }).__longTasks.filter(
        (t) => t.start + t.duration >= from && t.start <= to,
      ),
    { from: h.firstTokenAt as number, to: h.endedAt as number },
  );
  const max = Math.max(0, ...tasks.map((t) => t.duration));
  const ms = (h.endedAt as number) - (h.firstTokenAt as number);
  const report =
    `engine ${h.engine}: ${tasks.length} long task${tasks.length === 1 ? '' : 's'} during ${h.tokens - 1} decode steps ` +
    `(${ms.toFixed(0)} ms), longest ${max.toFixed(0)} ms`;
  console.log(report);
  test.info().annotations.push({ type: 'long tasks', description: report });
  return { max, report, engine: h.engine };
}
