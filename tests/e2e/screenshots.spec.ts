/**
 * The README's screenshots of the demo (docs/screenshots/*.png). Run on demand:
 *   DEMO_SCREENSHOTS=1 npx playwright test screenshots --project webgpu
 */
import { expect, test } from '@playwright/test';
import { generate, hooks, serveFolder, setField, waitReady } from './helpers.js';

test.skip(() => !process.env.DEMO_SCREENSHOTS || test.info().project.name !== 'webgpu', 'set DEMO_SCREENSHOTS=1 (webgpu project)');
test.use({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, colorScheme: 'light' });

const OUT = 'docs/screenshots';

test('screenshots of completion, chat and the cache panel', async ({ page }) => {
  const fixtures = await serveFolder('tests/fixtures/hf-tiny');
  try {
    await page.goto('/');
    await waitReady(page);
    await setField(page, 'max-new-tokens', 160);
    await page.getByTestId('prompt').fill('And it came to pass');
    await page.getByTestId('generate').click();
    await expect.poll(async () => (await hooks(page)).tokens, { timeout: 60_000 }).toBeGreaterThanOrEqual(70);
    await page.screenshot({ path: `${OUT}/completion.png` });
    await page.getByTestId('stop').click();
    await expect.poll(async () => (await hooks(page)).lastRun).toBe('stopped');

    await page.getByTestId('model-input').fill(`${fixtures.url}/qwen2`);
    await page.getByTestId('model-load').click();
    await expect.poll(async () => (await hooks(page)).mode).toBe('chat');
    await waitReady(page);
    await setField(page, 'max-new-tokens', 24);
    for (const message of ['Hello! Who are you?', 'Tell me a short story.']) {
      await page.getByTestId('chat-input').fill(message);
      await generate(page);
    }
    await page.screenshot({ path: `${OUT}/chat.png` });

    await expect(page.getByTestId('cache-item')).toHaveCount(2);
    await page.getByTestId('cache-panel').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${OUT}/cache.png` });
  } finally {
    await fixtures.close();
  }
});
