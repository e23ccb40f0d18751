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
  }
});
