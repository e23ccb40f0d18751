import { expect, test } from '@playwright/test';

test('the demo shows the GPU adapter, or says how to get WebGPU', async ({ page }, testInfo) => {
  await page.goto('/');
  const status = page.locator('#status');
  await expect(status).not.toHaveAttribute('data-state', 'checking', { timeout: 60_000 });
  if (testInfo.project.name === 'webgpu') {
    await expect(status).toHaveAttribute('data-state', 'ready');
    await expect(status).toContainText('WebGPU ready on');
    await expect(page.locator('#adapter')).not.toBeEmpty();
    await expect(page.locator('#details')).toBeVisible();
  } else {
    await expect(status).toHaveAttribute('data-state', 'unavailable');
    await expect(status).toContainText(/WebGPU|GPU adapter/);
    await expect(page.locator('#details')).toBeHidden();
    await expect(page.locator('#model')).toBeHidden();
  }
});

test.describe('the embedded model', () => {
  test.skip(() => test.info().project.name !== 'webgpu', 'needs WebGPU');

  test('loads offline from the page and generates streamed text; Stop halts it', async ({ page }) => {
    const external: string[] = [];
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (url.hostname !== 'localhost' && url.hostname !== '127.0.0.1') external.push(r.url());
    });
    await page.goto('/');
    await expect(page.locator('#model-state')).toHaveAttribute('data-state', 'ready', { timeout: 90_000 });
    await page.locator('#max-new-tokens').fill('12');
    await page.locator('#generate').click();
    const output = page.locator('#output');
    await expect(output).toHaveAttribute('data-state', 'done', { timeout: 90_000 });
    const text = (await output.textContent()) ?? '';
    expect(text.startsWith('In the beginning')).toBe(true);
    expect(text.length).toBeGreaterThan('In the beginning'.length + 5);
    await expect(page.locator('#stats')).toContainText('decode');

    // A long run, stopped after the first streamed text arrives.
    await page.locator('#max-new-tokens').fill('200');
    await page.locator('#generate').click();
    await expect(output).not.toHaveText('In the beginning', { timeout: 60_000 });
    await page.locator('#stop').click();
    await expect(output).toHaveAttribute('data-state', 'stopped', { timeout: 30_000 });
    expect(external).toEqual([]);
  });
});
