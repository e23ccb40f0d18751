import { expect, test } from '@playwright/test';
import { generate, hooks, serveFolder, setField, waitReady } from './helpers.js';

test.skip(() => test.info().project.name !== 'webgpu', 'needs WebGPU');

let fixtures: Awaited<ReturnType<typeof serveFolder>>;
test.beforeAll(async () => {
  fixtures = await serveFolder('tests/fixtures/hf-tiny');
});
test.afterAll(async () => {
  await fixtures?.close();
});

test('switches to a chat model given by URL and chats with it', async ({ page }) => {
  await page.goto('/');
  await waitReady(page);
  const url = `${fixtures.url}/qwen2`;
  await page.getByTestId('model-input').fill(url);
  await page.getByTestId('model-load').click();
  await expect.poll(async () => (await hooks(page)).model).toBe(url);
  await waitReady(page);
  const h = await hooks(page);
  expect(h.mode).toBe('chat');
  expect(h.hasChatTemplate).toBe(true);
  await expect(page.getByTestId('model-mode')).toHaveText('chat');
  await expect(page.getByTestId('chat-view')).toBeVisible();
  await expect(page.getByTestId('generate')).toHaveText('Send');
  const files = page.getByTestId('progress-files').locator('li[data-state="done"]');
  for (const file of ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'model.safetensors']) {
    await expect(files.and(page.locator(`[data-file="${file}"]`))).toHaveCount(1);
  }
  await expect(page.getByTestId('progress-files').locator('li[data-state="loading"]')).toHaveCount(0);

  await setField(page, 'max-new-tokens', 8);
  await page.getByTestId('chat-input').fill('Hello there!');
  const first = await generate(page);
  expect(first.lastRun).toBe('done');
  expect(first.tokens).toBeGreaterThan(0);
  await expect(page.getByTestId('message-user')).toHaveText(/Hello there!/);
  await expect(page.getByTestId('message-assistant')).toHaveCount(1);

  // A second turn sends the whole conversation.
  await page.getByTestId('chat-input').fill('And again.');
  await generate(page);
  await expect(page.getByTestId('message-user')).toHaveCount(2);
  await expect(page.getByTestId('message-assistant')).toHaveCount(2);

  // The same model can be used for plain completion too.
  await page.getByTestId('mode-completion').click();
  await expect(page.getByTestId('completion-view')).toBeVisible();
  await page.getByTestId('prompt').fill('Once upon a time');
  expect((await generate(page)).lastRun).toBe('done');
});

test('a reload loads from IndexedDB without fetching weights; the cache panel deletes a model', async ({ page }) => {
  const weightRequests: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.endsWith('.safetensors')) weightRequests.push(`${r.method()} ${r.url()}`);
  });
  await page.goto('/');
  await waitReady(page);
  expect(weightRequests.length).toBeGreaterThan(0);
  await expect(page.getByTestId('progress-files').locator('li[data-file="model.safetensors"]')).toHaveAttribute('data-source', 'network');

  weightRequests.length = 0;
  await page.reload();
  await waitReady(page);
  expect(weightRequests).toEqual([]);
  await expect(page.getByTestId('progress-files').locator('li[data-file="model.safetensors"]')).toHaveAttribute('data-source', 'cache');
  expect((await generate(page)).lastRun).toBe('done');

  const usage = page.getByTestId('cache-usage');
  const item = page.getByTestId('cache-list').getByTestId('cache-item');
  await expect(item).toHaveCount(1);
  await expect(item).toContainText('kjv-llama-tiny');
  await expect(item).toContainText(/\d+(\.\d+)? MB/);
  const before = Number(await usage.getAttribute('data-cached-bytes'));
  const siteBefore = Number(await usage.getAttribute('data-usage'));
  expect(before).toBeGreaterThan(10e6);
  await item.getByTestId('cache-delete').click();
  await expect(item).toHaveCount(0);
  await expect(usage).toHaveAttribute('data-cached-bytes', '0');
  await expect(usage).toContainText('0 models');
  const siteAfter = Number(await usage.getAttribute('data-usage'));
  expect(siteAfter).toBeLessThan(siteBefore);
  const report = `site storage ${siteBefore} → ${siteAfter} bytes; cached models ${before} → 0 bytes`;
  console.log(report);
  test.info().annotations.push({ type: 'storage', description: report });

  // With the files gone, the next reload downloads the weights again.
  await page.reload();
  await waitReady(page);
  expect(weightRequests.length).toBeGreaterThan(0);
});

test('loads a model folder picked from disk', async ({ page }) => {
  await page.goto('/');
  await waitReady(page);
  await page.getByTestId('model-folder').setInputFiles('tests/fixtures/hf-tiny/qwen2');
  await expect.poll(async () => (await hooks(page)).model).toMatch(/^local-files:\/\//);
  await waitReady(page);
  await expect(page.getByTestId('model-name')).toHaveText('qwen2 (from disk)');
  await expect(page.getByTestId('progress-files').locator('li[data-file="model.safetensors"]')).toHaveAttribute('data-source', 'disk');
  expect((await hooks(page)).mode).toBe('chat');
  await setField(page, 'max-new-tokens', 6);
  await page.getByTestId('chat-input').fill('Hi');
  expect((await generate(page)).lastRun).toBe('done');
  // Files from disk are read in place, never copied into the cache.
  await page.getByTestId('cache-refresh').click();
  await expect(page.getByTestId('cache-item')).toHaveCount(1);
  await expect(page.getByTestId('cache-item')).toContainText('kjv-llama-tiny');
});
