import { expect, test } from '@playwright/test';
import { decodeLongTasks, generate, hooks, observeLongTasks, setField, waitReady } from './helpers.js';

test('the demo opens on WebGPU, or explains how to get it', async ({ page }, testInfo) => {
  await page.goto('/');
  const status = page.getByTestId('gpu-status');
  await expect(status).not.toHaveAttribute('data-state', 'checking', { timeout: 60_000 });
  if (testInfo.project.name === 'webgpu') {
    await expect(status).toHaveAttribute('data-state', 'ready');
    await expect(status).toContainText('WebGPU');
    await expect(page.getByTestId('no-webgpu')).toBeHidden();
    await expect(page.getByTestId('model-panel')).toBeVisible();
  } else {
    const screen = page.getByTestId('no-webgpu');
    await expect(screen).toBeVisible();
    await expect(screen).toContainText('WebGPU');
    await expect(screen.getByRole('button', { name: 'Try again' })).toBeVisible();
    await expect(page.getByTestId('model-panel')).toBeHidden();
    expect((await hooks(page)).state).toBe('no-webgpu');
  }
});

test.describe('the embedded model', () => {
  test.skip(() => test.info().project.name !== 'webgpu', 'needs WebGPU');

  test('streams a completion offline, stops within one step, and keeps the page responsive', async ({ page }) => {
    const external: string[] = [];
    page.on('request', (r) => {
      const { hostname } = new URL(r.url());
      if (hostname !== 'localhost' && hostname !== '127.0.0.1') external.push(r.url());
    });
    await page.goto('/');
    await waitReady(page);
    await expect(page.getByTestId('model-name')).toHaveText('kjv-llama-tiny');
    await expect(page.getByTestId('model-mode')).toHaveText('completion');
    await expect(page.getByTestId('completion-view')).toBeVisible();
    await expect(page.getByTestId('mode-chat')).toBeDisabled();
    // Progress: every file listed and done, the weights among them, and the total at 100%.
    const weights = page.getByTestId('progress-files').locator('li[data-file="model.safetensors"]');
    await expect(weights).toHaveAttribute('data-state', 'done');
    await expect(page.getByTestId('progress-total')).toContainText('100%');

    await observeLongTasks(page);
    await setField(page, 'max-new-tokens', 32);
    await page.getByTestId('generate').click();
    // The text grows while it is generated: sample its length until the run ends.
    const lengths: number[] = [];
    for (let i = 0; i < 600; i++) {
      const h = await hooks(page);
      if (lengths.at(-1) !== h.text.length) lengths.push(h.text.length);
      if (h.lastRun !== null && h.runs === 1) break;
      await page.waitForTimeout(25);
    }
    const h = await hooks(page);
    expect(h.lastRun).toBe('done');
    expect(h.tokens).toBeGreaterThan(3);
    const growing = lengths.filter((n) => n > 0);
    expect(growing.length, `text lengths seen while generating: ${lengths.join(', ')}`).toBeGreaterThanOrEqual(3);
    expect(growing).toEqual([...growing].sort((a, b) => a - b));
    const output = page.getByTestId('output');
    await expect(output).toHaveAttribute('data-state', 'done');
    expect((await output.textContent())!.startsWith('In the beginning')).toBe(true);
    expect(h.text.trim().length).toBeGreaterThan(5);
    const stats = h.lastStats as { decode: { tokensPerSecond: number }; prefill: { tokensPerSecond: number }; gpuMemoryBytes: number };
    expect(stats.decode.tokensPerSecond).toBeGreaterThan(0);
    expect(stats.prefill.tokensPerSecond).toBeGreaterThan(0);
    expect(stats.gpuMemoryBytes).toBeGreaterThan(1e6);
    await expect(page.locator('#stat-decode')).toHaveText(/^\d+(\.\d)?$/);
    await expect(page.locator('#stat-memory')).toContainText('MB');

    // The page stays responsive: no long task while tokens are decoded (asserted when the model runs in a Worker).
    const longTasks = await decodeLongTasks(page);
    if (longTasks.engine === 'worker') expect(longTasks.max, longTasks.report).toBeLessThanOrEqual(50);

    // Stop, clicked while tokens stream in: at most the step already in flight finishes.
    await setField(page, 'max-new-tokens', 200);
    await page.getByTestId('generate').click();
    await expect.poll(async () => (await hooks(page)).tokens, { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    const atStop = await page.evaluate(() => {
      const count = (window as unknown as { __demo: { tokens: number } }).__demo.tokens;
      document.querySelector<HTMLButtonElement>('[data-testid="stop"]')!.click();
      return count;
    });
    await expect.poll(async () => (await hooks(page)).lastRun, { timeout: 30_000 }).toBe('stopped');
    const stopped = (await hooks(page)).tokens;
    expect(stopped).toBeGreaterThanOrEqual(atStop);
    expect(stopped).toBeLessThanOrEqual(atStop + 1);
    await page.waitForTimeout(500);
    expect((await hooks(page)).tokens).toBe(stopped);
    await expect(output).toHaveAttribute('data-state', 'stopped');
    await expect(page.getByTestId('generate')).toBeEnabled();
    expect(external).toEqual([]);
  });

  test('the seed decides sampled text, and changing the weights format reloads the model', async ({ page }) => {
    await page.goto('/');
    await waitReady(page);
    await setField(page, 'max-new-tokens', 16);
    await setField(page, 'temperature', 1);
    await expect(page.getByTestId('do-sample')).toBeChecked();
    const sample = async (seed: number) => {
      await setField(page, 'seed', seed);
      const h = await generate(page);
      expect(h.lastRun).toBe('done');
      return h.text;
    };
    const a = await sample(7);
    expect(a.length).toBeGreaterThan(0);
    expect(await sample(7)).toBe(a);
    expect(await sample(8)).not.toBe(a);

    // Greedy decoding ignores the seed.
    await page.getByTestId('do-sample').uncheck();
    const greedy = await sample(1);
    expect(await sample(2)).toBe(greedy);
    await page.getByTestId('do-sample').check();

    await page.getByTestId('dtype').selectOption('q8');
    await expect.poll(async () => (await hooks(page)).state).toBe('loading');
    await waitReady(page);
    const h = await hooks(page);
    expect(h.dtype).toBe('q8');
    expect(page.url()).toContain('dtype=q8');
    await expect(page.getByTestId('model-panel')).toContainText('q8');
    expect((await sample(7)).length).toBeGreaterThan(0);
  });

  test('runs on the page’s thread with ?worker=0 (long tasks reported for comparison)', async ({ page }) => {
    await page.goto('/?worker=0');
    await waitReady(page);
    expect((await hooks(page)).engine).toBe('in-thread');
    await expect(page.getByTestId('engine')).toContainText('this page');
    await observeLongTasks(page);
    await setField(page, 'max-new-tokens', 32);
    const h = await generate(page);
    expect(h.lastRun).toBe('done');
    expect(h.tokens).toBeGreaterThan(3);
    await decodeLongTasks(page);
  });

  test('a lost GPU device shows its screen, and the model loads again from it', async ({ page }) => {
    await page.goto('/?worker=0');
    await waitReady(page);
    expect(await page.evaluate(() => (window as unknown as { __demo: { loseDevice: () => boolean } }).__demo.loseDevice())).toBe(true);
    await page.waitForTimeout(200);
    await setField(page, 'max-new-tokens', 8);
    await page.getByTestId('generate').click();
    const screen = page.getByTestId('device-lost');
    await expect(screen).toBeVisible({ timeout: 30_000 });
    await expect(screen).toContainText('lost');
    expect((await hooks(page)).state).toBe('device-lost');
    await screen.getByTestId('device-lost-reload').click();
    await waitReady(page);
    await expect(screen).toBeHidden();
    expect((await generate(page)).lastRun).toBe('done');
  });
});
